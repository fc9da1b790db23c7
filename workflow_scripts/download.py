"""Snakemake adapter: download one url/hf corpus source and write its manifest."""

from pathlib import Path

from wwmdistill.download import download_source
from wwmdistill.logs import log_to

with log_to(snakemake.log[0]):
    download_source(
        snakemake.wildcards.source,
        snakemake.params.source,
        Path(snakemake.output.manifest).parent,
    )
