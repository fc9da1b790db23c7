"""Snakemake adapter: download one url/hf corpus source and write its manifest."""

from pathlib import Path

from wwmdistill.download.source_download import download_source
from wwmdistill.job import job

with job(snakemake.log[0], snakemake.threads):
    download_source(
        snakemake.wildcards.source,
        snakemake.params.source,
        Path(snakemake.output.manifest).parent,
    )
