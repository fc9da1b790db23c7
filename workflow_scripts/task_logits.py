"""Snakemake adapter for rule task_logits: the fine-tuned teacher's logits on the augmented set."""

from pathlib import Path

from wwmdistill.distill.task_logits import cache_task_logits
from wwmdistill.finetune import FinetuneSettings
from wwmdistill.job import job

task = snakemake.wildcards.task
with job(snakemake.log[0], snakemake.threads):
    cache_task_logits(
        Path(snakemake.input.augmented),
        Path(snakemake.input.task),
        Path(snakemake.input.teacher),
        Path(snakemake.output.logits),
        FinetuneSettings.from_config(dict(snakemake.params.finetune), f"tasks.{task}.finetune"),
    )
