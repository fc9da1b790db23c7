"""Snakemake adapter for rule task_distill_stage2: prediction-layer distillation."""

from pathlib import Path

from wwmdistill.distill.task import TaskDistillSettings, run_stage2
from wwmdistill.finetune import FinetuneSettings
from wwmdistill.job import job

task, variant = snakemake.wildcards.task, snakemake.wildcards.variant
with job(snakemake.log[0], snakemake.threads):
    run_stage2(
        Path(snakemake.input.task),
        Path(snakemake.input.augmented),
        Path(snakemake.input.logits),
        Path(snakemake.input.stage1),
        Path(snakemake.output.model),
        Path(snakemake.output.predictions),
        Path(snakemake.params.checkpoint_dir),
        TaskDistillSettings.from_config(
            dict(snakemake.params.task_distill), f"tasks.{task}.task_distill"
        ),
        FinetuneSettings.from_config(dict(snakemake.params.finetune), f"tasks.{task}.finetune"),
        seed=int(snakemake.wildcards.seed),
        augmented=variant == "td",
        model_name=f"{snakemake.wildcards.student}.{variant}",
    )
