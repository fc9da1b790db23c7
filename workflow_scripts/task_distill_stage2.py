"""Snakemake adapter for rule task_distill_stage2: prediction-layer distillation.

The training runs here, or under torchrun (gpus or processes above 1) or srun + torchrun
(nodes above 1): wwmdistill.launch.
"""

from wwmdistill.distill.task_stage2 import run_from_arguments
from wwmdistill.job import job
from wwmdistill.launch import launch_job

task, variant = snakemake.wildcards.task, snakemake.wildcards.variant
arguments = {
    "task": task,
    "task_distill": dict(snakemake.params.task_distill),
    "finetune": dict(snakemake.params.finetune),
    "seed": int(snakemake.wildcards.seed),
    "augmented": variant == "td",
    "model_name": f"{snakemake.wildcards.student}.{variant}",
    "paths": {
        "task": str(snakemake.input.task),
        "augmented": str(snakemake.input.augmented),
        "logits": str(snakemake.input.logits),
        "stage1": str(snakemake.input.stage1),
        "out": str(snakemake.output.model),
        "predictions": str(snakemake.output.predictions),
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
