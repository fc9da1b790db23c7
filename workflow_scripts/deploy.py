"""Snakemake adapter for rule deploy: one row of a task's table as ONNX fp32 and int8."""

from pathlib import Path

from wwmdistill.deploy.bundle import deploy_model
from wwmdistill.finetune import load_task
from wwmdistill.job import job
from wwmdistill.settings import FinetuneSettings

where = f"tasks.{snakemake.wildcards.task}.finetune"
with job(snakemake.log[0], snakemake.threads):
    settings = FinetuneSettings.from_config(dict(snakemake.params.finetune), where)
    deploy_model(
        Path(snakemake.input.model),
        load_task(Path(snakemake.input.task)),
        Path(snakemake.output.deployed),
        settings,
        threads=snakemake.threads,
        batch_size=settings.eval_batch_size,
    )
