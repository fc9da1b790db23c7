"""Download the LTP model named by segmentation.ltp.model (a hub id) into the model directory."""

from wwmdistill.logs import log_to
from wwmdistill.segment import SegmentationSettings
from wwmdistill.segmenter_train import fetch_ltp_model

with log_to(snakemake.log[0]):
    settings = SegmentationSettings.from_config(snakemake.params.segmentation)
    fetch_ltp_model(settings.ltp.model, settings.ltp.revision, snakemake.output.model)
