"""Snakemake adapter for rule general: distil the teacher into one student.

With a `gpu` resource above 1 the training runs under torchrun, one process per GPU; without
GPUs, params.processes > 1 runs that many CPU processes over gloo.
"""

from pathlib import Path

from wwmdistill.distill.general import run_from_arguments
from wwmdistill.job import job
from wwmdistill.launch import process_count, run_training

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

with job(snakemake.log[0], snakemake.threads):
    run_training(
        "wwmdistill.distill.general",
        run_from_arguments,
        arguments,
        process_count(
            int(snakemake.resources.gpu),
            int(snakemake.params.processes),
            f"students.{snakemake.wildcards.student}.training",
        ),
        Path(snakemake.log[0]).with_suffix(".args.json"),
    )
