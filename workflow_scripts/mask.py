"""Snakemake adapter for rule mask: static whole-word masking of one segmented shard."""

from pathlib import Path

from wwmdistill.job import job
from wwmdistill.masking import MaskingSettings, mask_shard

with job(snakemake.log[0], snakemake.threads):
    mask_shard(
        Path(snakemake.input.shard),
        Path(snakemake.input.tokenizer),
        Path(snakemake.output.shard),
        MaskingSettings.from_config(dict(snakemake.params.masking)),
        seed=int(snakemake.params.seed),
        shard_index=int(snakemake.wildcards.shard),
    )
