"""Snakemake adapter for rule augment: one slice of a task's train split, augmented."""

from pathlib import Path

from wwmdistill.augment.slices import augment_split
from wwmdistill.job import job
from wwmdistill.segment import SegmentationSettings, make_segmenter
from wwmdistill.settings import AugmentSettings

task = snakemake.wildcards.task
settings = AugmentSettings.from_config(dict(snakemake.params.augment), f"tasks.{task}.augment")
segmenter_model = list(snakemake.input.segmenter)
with job(snakemake.log[0], snakemake.threads):
    segmenter = make_segmenter(
        SegmentationSettings.from_config(dict(snakemake.params.segmentation)),
        Path(segmenter_model[0]) if segmenter_model else None,
    )
    augment_split(
        Path(snakemake.input.task) / "train.arrow",
        Path(snakemake.input.teacher),
        segmenter,
        settings,
        Path(snakemake.output.slice),
        seed=int(snakemake.params.seed),
        slice_index=int(snakemake.wildcards.slice),
        num_slices=settings.slices,
    )
