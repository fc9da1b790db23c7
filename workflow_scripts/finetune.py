"""Snakemake adapter for rule finetune: one model on one task with one seed.

With a `gpu` resource above 1 the training runs under torchrun, one process per GPU; without
GPUs, params.processes > 1 runs that many CPU processes over gloo.
"""

from pathlib import Path

from wwmdistill.finetune import run_from_arguments
from wwmdistill.job import job
from wwmdistill.launch import process_count, run_training

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
    run_training(
        "wwmdistill.finetune",
        run_from_arguments,
        arguments,
        process_count(
            int(snakemake.resources.gpu),
            int(snakemake.params.processes),
            f"tasks.{snakemake.wildcards.task}.finetune",
        ),
        Path(snakemake.log[0]).with_suffix(".args.json"),
    )
