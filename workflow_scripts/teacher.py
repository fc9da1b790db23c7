"""Snakemake adapter for rule teacher: scratch-pretrain or fetch (and adapt) the teacher model.

The training runs here, or under torchrun (gpus or processes above 1) or srun + torchrun
(nodes above 1): wwmdistill.launch.
"""

from wwmdistill.job import job
from wwmdistill.launch import launch_job
from wwmdistill.teacher import run_from_arguments

heldout = list(snakemake.input.heldout)
arguments = {
    "settings": dict(snakemake.params.teacher),
    "masked_paths": [str(path) for path in snakemake.input.masked],
    "heldout_masked": heldout[0] if heldout else None,
    "tokenizer_dir": str(snakemake.input.tokenizer),
    "out_dir": str(snakemake.output.model),
    "checkpoint_dir": str(snakemake.params.checkpoint_dir),
    "seed": int(snakemake.params.seed),
}

with job(snakemake.log[0], snakemake.threads):
    launch_job(
        run_from_arguments,
        arguments,
        snakemake,
        snakemake.params.teacher["training"],
        "teacher.training",
    )
