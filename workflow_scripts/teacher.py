"""Snakemake adapter for rule teacher: scratch-pretrain or fetch (and adapt) the teacher model."""

from pathlib import Path

from wwmdistill.job import job
from wwmdistill.teacher import TeacherSettings, build_teacher

with job(snakemake.log[0], snakemake.threads):
    build_teacher(
        TeacherSettings.from_config(dict(snakemake.params.teacher)),
        # The held-out shard goes last: build_teacher evaluates on it and never trains on it.
        [Path(path) for path in [*snakemake.input.masked, *snakemake.input.heldout]],
        Path(snakemake.input.tokenizer),
        Path(snakemake.output.model),
        Path(snakemake.params.checkpoint_dir),
        seed=int(snakemake.params.seed),
    )
