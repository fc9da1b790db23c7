"""Snakemake adapter for rule bench: seed 004's speed table for one model."""

from pathlib import Path

from wwmdistill.arrow_io import write_json
from wwmdistill.job import job
from wwmdistill.speed import bench_model

speed = snakemake.params.speed
with job(snakemake.log[0], snakemake.threads):
    result = bench_model(
        Path(snakemake.input.model),
        seq_len=speed["bench_seq_len"],
        repeats=speed["repeats"],
        warmup=speed["warmup"],
        threads=snakemake.threads,
    )
    write_json(snakemake.output.bench, result | {"model": snakemake.wildcards.model})
