"""Snakemake adapter for rule deploy_speed: a task's rows and formats timed together."""

from pathlib import Path

from wwmdistill.arrow_io import write_json
from wwmdistill.deploy.timing import speed_table
from wwmdistill.finetune import load_task
from wwmdistill.job import job
from wwmdistill.settings import SpeedSettings

with job(snakemake.log[0], snakemake.threads):
    task = load_task(Path(snakemake.input.task))
    rows = zip(snakemake.params.rows, snakemake.input.models, snakemake.input.deployed, strict=True)
    table = speed_table(
        [(name, Path(model), Path(deployed)) for name, model, deployed in rows],
        task.labels,
        task.splits["dev"],
        snakemake.params.seq_len,
        SpeedSettings.from_config(dict(snakemake.params.speed), "evaluation.speed"),
    )
    write_json(snakemake.output.speed, {"task": task.name, "kind": task.kind.name} | table)
