"""Snakemake adapter for rule task_distill_stage1: intermediate-layer distillation."""

from pathlib import Path

from wwmdistill.distill.task import TaskDistillSettings, run_stage1
from wwmdistill.finetune import FinetuneSettings
from wwmdistill.job import job

task = snakemake.wildcards.task
augmented = list(snakemake.input.augmented)
with job(snakemake.log[0], snakemake.threads):
    run_stage1(
        Path(snakemake.input.task),
        Path(augmented[0]) if augmented else None,
        Path(snakemake.input.student),
        Path(snakemake.input.teacher),
        Path(snakemake.output.model),
        Path(snakemake.params.checkpoint_dir),
        TaskDistillSettings.from_config(
            dict(snakemake.params.task_distill), f"tasks.{task}.task_distill"
        ),
        FinetuneSettings.from_config(dict(snakemake.params.finetune), f"tasks.{task}.finetune"),
        seed=int(snakemake.wildcards.seed),
    )
