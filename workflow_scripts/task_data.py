"""Snakemake adapter for rule task_data: one task's splits as Arrow files."""

from pathlib import Path

from wwmdistill.job import job
from wwmdistill.tasks import build_task, console_echo

# console_echo first: it keeps Snakemake's stderr before job() points it at the log.
with console_echo(), job(snakemake.log[0], snakemake.threads):
    build_task(
        snakemake.wildcards.task,
        dict(snakemake.params.task),
        Path(snakemake.params.data_root),
        Path(snakemake.params.download_dir),
        Path(snakemake.output.task),
        seed=int(snakemake.params.seed),
        tokenizer_dir=Path(snakemake.input.tokenizer),
        # The plan of the DAG build stands: the job reads the files it declared, or downloads.
        found=[Path(path) for path in snakemake.input.files],
    )
