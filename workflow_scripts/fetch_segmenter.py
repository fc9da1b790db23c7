"""Download the LTP model named by segmentation.ltp.model (a hub id) into the model directory."""

from wwmdistill.job import job
from wwmdistill.segment import SegmentationSettings
from wwmdistill.segmenter_train import fetch_ltp_model

with job(snakemake.log[0], snakemake.threads):
    settings = SegmentationSettings.from_config(snakemake.params.segmentation)
    fetch_ltp_model(settings.ltp.model, settings.ltp.revision, snakemake.output.model)
