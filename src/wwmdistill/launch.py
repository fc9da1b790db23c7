"""Running a training stage in one process or under torchrun, from one JSON of its arguments."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def process_count(gpus: int, processes: int, where: str) -> int:
    """The ranks of a training job: one per GPU it holds, else `processes` CPU ranks (gloo).

    Which cards the ranks see is CUDA_VISIBLE_DEVICES (Slurm sets it to the job's GPUs); a job
    that sees fewer cards than it asked for stops here instead of piling ranks onto one card.
    """
    if gpus < 1:
        return processes
    import torch

    visible = torch.cuda.device_count()
    if visible < gpus:
        devices = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise RuntimeError(
            f"config {where}.gpus: the job asks for {gpus} GPU(s) but sees {visible} "
            f"(CUDA_VISIBLE_DEVICES={devices})"
        )
    return gpus


def run_training(
    module: str,
    run: Callable[[dict[str, Any]], Any],
    arguments: dict[str, Any],
    processes: int,
    arguments_file: Path,
) -> None:
    """`run(arguments)` here, or `python -m module --config arguments_file` in `processes` ranks.

    torchrun starts one process per GPU (gloo on CPU). The arguments travel in a JSON file,
    never through a shell string.
    """
    if processes <= 1:
        run(arguments)
        return
    arguments_file = Path(arguments_file)
    arguments_file.parent.mkdir(parents=True, exist_ok=True)
    arguments_file.write_text(json.dumps(arguments, indent=2), encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={processes}", "-m", module, "--config", str(arguments_file)]
    subprocess.run(command, check=True)


def main(run: Callable[[dict[str, Any]], Any], argv: list[str] | None = None) -> None:
    """The `--config args.json` entry point torchrun launches in each process."""
    parser = argparse.ArgumentParser(description="run a wwmdistill training stage")
    parser.add_argument("--config", type=Path, required=True, help="JSON of the stage's arguments")
    config = parser.parse_args(argv).config
    logging.basicConfig(level=logging.INFO)
    run(json.loads(config.read_text(encoding="utf-8")))
