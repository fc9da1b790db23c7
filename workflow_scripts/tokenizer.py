"""Snakemake adapter for rule tokenizer: train a WordPiece vocab or fetch the teacher's."""

from pathlib import Path

from wwmdistill.logs import log_to
from wwmdistill.tokenizer import TokenizerSettings, build_tokenizer

with log_to(snakemake.log[0]):
    build_tokenizer(
        [Path(p) for p in snakemake.input.shards],
        Path(snakemake.output.dir),
        TokenizerSettings.from_config(dict(snakemake.params.tokenizer)),
    )
