"""Snakemake adapter for rule augment_merge: one augmented train set from its slices."""

from pathlib import Path

from wwmdistill.augment.slices import merge_augmented
from wwmdistill.job import job

with job(snakemake.log[0], snakemake.threads):
    merge_augmented([Path(p) for p in snakemake.input.slices], Path(snakemake.output.train))
