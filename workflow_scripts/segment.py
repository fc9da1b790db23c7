"""Segment one corpus shard into a segmented shard."""

from wwmdistill.job import job
from wwmdistill.segment import SegmentationSettings, optional_path, segment_shard

with job(snakemake.log[0], snakemake.threads):
    segment_shard(
        snakemake.input.shard,
        snakemake.output.shard,
        SegmentationSettings.from_config(snakemake.params.segmentation),
        optional_path(snakemake.input.get("model")),
    )
