"""Snakemake adapter for rule bench: seed 004's speed table, every model timed together."""

from pathlib import Path

from wwmdistill.arrow_io import write_json
from wwmdistill.job import job
from wwmdistill.settings import SpeedSettings
from wwmdistill.speed import bench_models

with job(snakemake.log[0], snakemake.threads):
    # The inputs and outputs come in the order of the models (rules/evaluate.smk).
    names = [Path(path).stem for path in snakemake.output.bench]
    tables = bench_models(
        dict(zip(names, snakemake.input.models, strict=True)),
        SpeedSettings.from_config(dict(snakemake.params.speed), "evaluation.speed"),
    )
    for name, path in zip(names, snakemake.output.bench, strict=True):
        write_json(path, tables[name] | {"model": name})
