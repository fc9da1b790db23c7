"""Build corpus shards and stats.json from the configured sources."""

from pathlib import Path

from wwmdistill.arrow_io import fingerprint
from wwmdistill.corpus import CorpusSettings, CorpusSource, build_corpus
from wwmdistill.download.sources import input_files
from wwmdistill.job import job

with job(snakemake.log[0], snakemake.threads):
    params = snakemake.params
    sources = [
        CorpusSource(
            name,
            input_files(
                name,
                spec,
                getattr(snakemake.input, f"source_{name}"),
                # Only labels local files: they were found at DAG build (rules/common.smk).
                data_root=Path(params.data_root) if params.data_root else None,
            ),
            spec["max_docs"],
        )
        for name, spec in sorted(params.sources.items())
    ]
    build_corpus(
        sources,
        [Path(path) for path in snakemake.output.shards],
        Path(snakemake.output.stats),
        CorpusSettings.from_config(params.corpus),
        config_fingerprint=fingerprint(params.sources, params.corpus),
    )
