"""Snakemake adapter for rule finetune: one model on one task with one seed.

The training runs here, or under torchrun (gpus or processes above 1) or srun + torchrun
(nodes above 1): wwmdistill.launch.
"""

from wwmdistill.finetune import run_from_arguments
from wwmdistill.job import job
from wwmdistill.launch import launch_job

arguments = {
    "task_dir": str(snakemake.input.task),
    "model_dir": str(snakemake.input.model),
    "out_dir": str(snakemake.output.model),
    "predictions_dir": str(snakemake.output.predictions),
    "checkpoint_dir": str(snakemake.params.checkpoint_dir),
    "settings": dict(snakemake.params.finetune),
    "where": f"tasks.{snakemake.wildcards.task}.finetune",
    "seed": int(snakemake.wildcards.seed),
    "model_name": snakemake.wildcards.model,
}

with job(snakemake.log[0], snakemake.threads):
    launch_job(
        run_from_arguments,
        arguments,
        snakemake,
        snakemake.params.finetune,
        f"tasks.{snakemake.wildcards.task}.finetune",
    )
