"""Snakemake adapter for rule task_distill_stage1: intermediate-layer distillation.

The training runs here, or under torchrun (gpus or processes above 1) or srun + torchrun
(nodes above 1): wwmdistill.launch.
"""

from wwmdistill.distill.task_stage1 import run_from_arguments
from wwmdistill.job import job
from wwmdistill.launch import launch_job

task = snakemake.wildcards.task
augmented = list(snakemake.input.augmented)
arguments = {
    "task": task,
    "task_distill": dict(snakemake.params.task_distill),
    "finetune": dict(snakemake.params.finetune),
    "seed": int(snakemake.wildcards.seed),
    "paths": {
        "task": str(snakemake.input.task),
        "augmented": augmented[0] if augmented else None,
        "student": str(snakemake.input.student),
        "teacher": str(snakemake.input.teacher),
        "out": str(snakemake.output.model),
        "checkpoints": str(snakemake.params.checkpoint_dir),
    },
}

with job(snakemake.log[0], snakemake.threads):
    launch_job(
        run_from_arguments,
        arguments,
        snakemake,
        snakemake.params.finetune,
        f"tasks.{task}.finetune",
    )
