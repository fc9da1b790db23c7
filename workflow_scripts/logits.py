"""Snakemake adapter for rule logits: the teacher's top-k logit cache of one masked shard."""

from pathlib import Path

from wwmdistill.job import job

with job(snakemake.log[0], snakemake.threads):
    # Imported inside the job: torch sizes its thread pool from OMP_NUM_THREADS when it loads.
    from wwmdistill.teacher_logits import LogitsSettings, cache_logits

    cache_logits(
        Path(snakemake.input.masked),
        Path(snakemake.input.teacher),
        Path(snakemake.output.shard),
        LogitsSettings.from_config(dict(snakemake.params.logits)),
    )
