"""How many ranks a training job starts: one per GPU it holds, else the configured CPU ranks."""

from __future__ import annotations

import os
import subprocess
import sys

from wwmdistill.launch import process_count


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
