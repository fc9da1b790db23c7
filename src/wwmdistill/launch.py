"""Running a training stage in one process, under torchrun, or under srun + torchrun on nodes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wwmdistill.progress import current_console


def process_count(gpus: int, processes: int, where: str) -> int:
    """The ranks of a training job on one node: one per GPU it holds, else `processes` CPU ranks.

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def torchrun_command(
    module: str,
    arguments_file: Path,
    ranks_per_node: int,
    nodes: int,
    threads: int,
    gpus: int,
    where: str,
) -> list[str]:
    """The command that starts `python -m module --config arguments_file` in every rank.

    One node: `torchrun --standalone`. Several: inside a Slurm job that holds the nodes, `srun`
    starts one torchrun agent per node and the agents meet at a c10d rendezvous hosted here,
    on the job's first node, which then numbers the nodes.
    """
    torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={ranks_per_node}"]
    entry = ["-m", module, "--config", str(arguments_file)]
    if nodes <= 1:
        return [*torchrun, "--standalone", *entry]
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        raise RuntimeError(
            f"config {where}.nodes: {nodes} nodes need a Slurm job that holds them "
            "(snakemake --profile profiles/slurm); this job runs outside Slurm"
        )
    srun = shutil.which("srun")
    if srun is None:
        raise RuntimeError(f"config {where}.nodes: {nodes} nodes need srun, not on PATH")
    step = [srun, f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1"]
    step.append(f"--cpus-per-task={threads}")
    if gpus > 0:
        step.append(f"--gres=gpu:{gpus}")
    rendezvous = [
        f"--nnodes={nodes}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={socket.gethostname()}:{_free_port()}",
        f"--rdzv-id=wwmdistill-{job_id}",
    ]
    return [*step, *torchrun, *rendezvous, *entry]


def entry_module(run: Callable[[dict[str, Any]], Any]) -> str:
    """The module whose `python -m` entry (launch.main) calls `run`, as each rank starts it."""
    module = getattr(run, "__module__", None)
    if not module or module == "__main__" or getattr(run, "__name__", "") != "run_from_arguments":
        raise ValueError(f"{run!r}: not a library module's run_from_arguments")
    return module


def run_training(
    run: Callable[[dict[str, Any]], Any],
    arguments: dict[str, Any],
    *,
    gpus: int,
    processes: int,
    nodes: int,
    threads: int,
    arguments_file: Path,
    where: str,
) -> None:
    """`run(arguments)` here, or `python -m <run's module> --config arguments_file` in every rank.

    The ranks are one per GPU (gloo CPU ranks without GPUs) on each of `nodes` nodes. The
    arguments travel in a JSON file, never through a shell string.
    """
    ranks_per_node = process_count(gpus, processes, where)
    if nodes <= 1 and ranks_per_node <= 1:
        run(arguments)
        return
    module = entry_module(run)
    arguments_file = Path(arguments_file)
    arguments_file.parent.mkdir(parents=True, exist_ok=True)
    arguments_file.write_text(json.dumps(arguments, indent=2), encoding="utf-8")
    command = torchrun_command(module, arguments_file, ranks_per_node, nodes, threads, gpus, where)
    logging.getLogger(__name__).info("launching %s", command)
    run_relaying_heartbeat(command)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def run_relaying_heartbeat(command: list[str]) -> None:
    """Run `command` (the ranks) with their output on our stderr, as an inherited one would be.

    The ranks have no console of their own: they tag their heartbeat with this job's label, and
    those lines go to this job's console too. Raises CalledProcessError if the command fails.
    """
    console = current_console()
    tag = console.tag.encode()
    # Outside a job the console is our stderr, which has the line already.
    relay = console.stream is not sys.stderr
    sys.stderr.flush()
    with subprocess.Popen(
        command,
        env=os.environ | console.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        try:
            pending = b""
            while chunk := process.stdout.read1(1 << 16):
                _write_all(2, chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines if relay else ():
                    # After a tqdm bar's carriage returns, the heartbeat starts at its tag.
                    if (start := line.find(tag)) >= 0:
                        console.say(line[start:].decode(errors="replace"))
        except BaseException:
            process.kill()  # as subprocess.run does: no rank outlives a failed or stopped job
            raise
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)


def launch_job(
    run: Callable[[dict[str, Any]], Any],
    arguments: dict[str, Any],
    smk: Any,
    settings: Mapping[str, Any],
    where: str,
) -> None:
    """run_training for a Snakemake job: `settings` is the config block holding gpus, processes
    and nodes (`where` names it); the arguments file sits beside the rule's log."""
    run_training(
        run,
        arguments,
        gpus=int(settings["gpus"]),
        processes=int(settings["processes"]),
        nodes=int(settings["nodes"]),
        threads=int(smk.threads),
        arguments_file=Path(smk.log[0]).with_suffix(".args.json"),
        where=where,
    )


def main(run: Callable[[dict[str, Any]], Any], argv: list[str] | None = None) -> None:
    """The `--config args.json` entry point torchrun launches in each process."""
    parser = argparse.ArgumentParser(description="run a wwmdistill training stage")
    parser.add_argument("--config", type=Path, required=True, help="JSON of the stage's arguments")
    config = parser.parse_args(argv).config
    logging.basicConfig(level=logging.INFO)
    run(json.loads(config.read_text(encoding="utf-8")))
    _leave_process_group()


def _leave_process_group() -> None:
    """Tear the rank's process group down before the interpreter does.

    The other ranks return while the first still evaluates and writes; left to interpreter exit,
    gloo's threads can be destroyed still joinable ("terminate called without an active
    exception", SIGABRT), which fails the whole torchrun job after a finished training.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
