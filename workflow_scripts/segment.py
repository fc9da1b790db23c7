"""Segment one corpus shard into a segmented shard."""

from wwmdistill.logs import log_to
from wwmdistill.segment import SegmentationSettings, optional_path, segment_shard

with log_to(snakemake.log[0]):
    segment_shard(
        snakemake.input.shard,
        snakemake.output.shard,
        SegmentationSettings.from_config(snakemake.params.segmentation),
        optional_path(snakemake.input.get("model")),
    )
