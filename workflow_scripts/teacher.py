"""Snakemake adapter for rule teacher: scratch-pretrain or fetch (and adapt) the teacher model.

The training runs here, or under torchrun (gpus or processes above 1) or srun + torchrun
(nodes above 1): wwmdistill.launch.
"""

from wwmdistill.job import job
from wwmdistill.launch import launch_job
from wwmdistill.teacher import run_from_arguments

arguments = {
    "settings": dict(snakemake.params.teacher),
    # The held-out shard goes last: build_teacher evaluates on it and never trains on it.
    "masked_paths": [str(path) for path in [*snakemake.input.masked, *snakemake.input.heldout]],
    "tokenizer_dir": str(snakemake.input.tokenizer),
    "out_dir": str(snakemake.output.model),
    "checkpoint_dir": str(snakemake.params.checkpoint_dir),
    "seed": int(snakemake.params.seed),
}

with job(snakemake.log[0], snakemake.threads):
    launch_job(
        "wwmdistill.teacher",
        run_from_arguments,
        arguments,
        snakemake,
        snakemake.params.teacher["training"],
        "teacher.training",
    )
