"""Snakemake adapter for rule general: distil the teacher into one student.

With params.processes > 1 the training runs under torchrun (one process per GPU, gloo on CPU);
its arguments travel in a JSON file beside the log, never through a shell string.
"""

import json
import subprocess
import sys
from pathlib import Path

from wwmdistill.distill.general import run_from_arguments
from wwmdistill.job import job

heldout = list(snakemake.input.heldout)
arguments = {
    "student_name": snakemake.wildcards.student,
    "settings": dict(snakemake.params.student),
    "teacher_dir": str(snakemake.input.teacher),
    "tokenizer_dir": str(snakemake.input.tokenizer),
    "masked_paths": [str(p) for p in snakemake.input.masked],
    "logits_paths": [str(p) for p in snakemake.input.logits],
    "heldout_masked": heldout[0] if heldout else None,
    "out_dir": str(snakemake.output.model),
    "checkpoint_dir": str(snakemake.params.checkpoint_dir),
    "seed": int(snakemake.params.seed),
}
processes = int(snakemake.params.processes)

with job(snakemake.log[0], snakemake.threads):
    if processes > 1:
        launch = Path(snakemake.log[0]).with_suffix(".args.json")
        launch.write_text(json.dumps(arguments, indent=2), encoding="utf-8")
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += [f"--nproc_per_node={processes}", "-m", "wwmdistill.distill.general"]
        subprocess.run([*command, "--config", str(launch)], check=True)
    else:
        run_from_arguments(arguments)
