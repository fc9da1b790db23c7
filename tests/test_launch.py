"""How many ranks a training job starts: one per GPU it holds, else the configured CPU ranks;
several nodes only inside a Slurm job (tests/test_slurm.py runs that for real)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wwmdistill import teacher
from wwmdistill.launch import entry_module, process_count, run_training


def test_without_gpus_the_configured_cpu_processes_run() -> None:
    assert process_count(0, 1, "students.s.training") == 1
    assert process_count(0, 2, "students.s.training") == 2


def test_a_job_that_sees_fewer_gpus_than_it_asked_for_stops_naming_the_key() -> None:
    # CUDA_VISIBLE_DEVICES is read when CUDA starts, so the check runs in a fresh interpreter;
    # hiding every card makes it behave the same on a GPU machine.
    code = "from wwmdistill.launch import process_count as p; p(2, 1, 'tasks.tnews.finetune')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=os.environ | {"CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "config tasks.tnews.finetune.gpus: the job asks for 2 GPU(s) but sees 0" in result.stderr
    assert "CUDA_VISIBLE_DEVICES=)" in result.stderr


def test_several_nodes_outside_a_slurm_job_stop_naming_the_key(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    need_slurm = r"config teacher\.training\.nodes: 2 nodes need a Slurm job"
    with pytest.raises(RuntimeError, match=need_slurm):
        run_training(
            teacher.run_from_arguments,  # run here, its empty arguments would raise KeyError
            {},
            gpus=0,
            processes=1,
            nodes=2,
            threads=1,
            arguments_file=tmp_path / "args.json",
            where="teacher.training",
        )


def test_the_ranks_start_the_module_of_the_function_they_run() -> None:
    assert entry_module(teacher.run_from_arguments) == "wwmdistill.teacher"
    with pytest.raises(ValueError, match="not a library module's run_from_arguments"):
        entry_module(teacher.build_teacher)
