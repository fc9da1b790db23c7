"""Snakemake adapter for rule tokenizer: train a WordPiece vocab or fetch the teacher's."""

from pathlib import Path

from wwmdistill.job import job
from wwmdistill.tokenizer import TokenizerSettings, build_tokenizer

with job(snakemake.log[0], snakemake.threads):
    build_tokenizer(
        [Path(p) for p in snakemake.input.shards],
        Path(snakemake.output.dir),
        TokenizerSettings.from_config(dict(snakemake.params.tokenizer)),
    )
