"""Score the configured segmenter on the held-out gold documents."""

from wwmdistill.job import job
from wwmdistill.segment import SegmentationSettings, optional_path
from wwmdistill.segmenter_eval import evaluate_segmenter

with job(snakemake.log[0], snakemake.threads):
    evaluate_segmenter(
        list(snakemake.input.shards),
        SegmentationSettings.from_config(snakemake.params.segmentation),
        optional_path(snakemake.input.get("model")),
        snakemake.output.json,
    )
