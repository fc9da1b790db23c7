"""Snakemake adapter for rule task_distill_stage2: prediction-layer distillation.

With a `gpu` resource above 1 it runs under torchrun, one process per GPU; without GPUs, the
task's finetune.processes > 1 runs that many CPU processes over gloo.
"""

from pathlib import Path

from wwmdistill.distill.task import run_from_arguments
from wwmdistill.job import job
from wwmdistill.launch import process_count, run_training

task, variant = snakemake.wildcards.task, snakemake.wildcards.variant
arguments = {
    "stage": 2,
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
    run_training(
        "wwmdistill.distill.task",
        run_from_arguments,
        arguments,
        process_count(
            int(snakemake.resources.gpu),
            int(snakemake.params.finetune["processes"]),
            f"tasks.{task}.finetune",
        ),
        Path(snakemake.log[0]).with_suffix(".args.json"),
    )
