"""Snakemake adapter for rule general: distil the teacher into one student.

The training runs here, or under torchrun (gpus or processes above 1) or srun + torchrun
(nodes above 1): wwmdistill.launch.
"""

from wwmdistill.distill.general import run_from_arguments
from wwmdistill.job import job
from wwmdistill.launch import launch_job

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
    launch_job(
        run_from_arguments,
        arguments,
        snakemake,
        snakemake.params.student["training"],
        f"students.{snakemake.wildcards.student}.training",
    )
