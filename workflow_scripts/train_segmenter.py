"""Train the LTP perceptron segmenter on the corpus's gold-segmented, non-held-out documents."""

from wwmdistill.job import job
from wwmdistill.segment import SegmentationSettings
from wwmdistill.segmenter_train import train_ltp_perceptron

with job(snakemake.log[0], snakemake.threads):
    train_ltp_perceptron(
        list(snakemake.input.shards),
        snakemake.output.model,
        SegmentationSettings.from_config(snakemake.params.segmentation),
        seed=snakemake.params.seed,
    )
