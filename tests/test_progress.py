"""The console heartbeat of long jobs: a line at most every interval; full progress in the log."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from wwmdistill.job import job, log_label
from wwmdistill.launch import run_relaying_heartbeat
from wwmdistill.progress import Console, Heartbeat, console, heartbeat_callback, tqdm

BEAT = re.compile(r"^\[(?P<label>[^\]]+)\] (?P<what>.+) (?P<done>\d+)/(?P<total>\d+) \(\d+%\)")


def test_a_line_at_most_every_interval_with_rate_and_time_left() -> None:
    stream, now = io.StringIO(), [100.0]
    beat = Heartbeat("step", "steps", console=Console(stream, "teacher", 10), clock=lambda: now[0])
    for step in range(41):  # one step a second from step 0 at t=100
        now[0] = 100.0 + step
        beat.update(step, 40)
    assert stream.getvalue().splitlines() == [
        "[teacher] step 10/40 (25%), 1 steps/s, about 30s left",
        "[teacher] step 20/40 (50%), 1 steps/s, about 20s left",
        "[teacher] step 30/40 (75%), 1 steps/s, about 10s left",
        "[teacher] step 40/40 (100%), 1 steps/s, about 0s left",
    ]
    # Measured from the first update (a resumed run's own pace); minutes and hours beyond.
    slow = Heartbeat("step", "steps", console=Console(stream, "t", 0), clock=lambda: now[0])
    now[0] = 0.0
    slow.update(100, 10_000)
    now[0] = 200.0
    assert slow.line(300, 10_000, now[0]) == "[t] step 300/10000 (3%), 1 steps/s, about 2h41m left"
    assert slow.line(300, 500, now[0]).endswith("about 3m20s left")
    assert slow.line(300, None, now[0]) == "[t] step 300, 1 steps/s"


def test_a_long_loop_in_a_job_beats_on_the_console_and_keeps_its_bar_in_the_log(
    tmp_path, capfd
) -> None:
    log = tmp_path / "results/logs/logits/00000.log"
    with job(log, heartbeat_seconds=0.05):
        for _ in tqdm(range(40), desc="teacher logits", unit="row", mininterval=0):
            time.sleep(0.01)
    console_lines = capfd.readouterr().err.splitlines()
    beats = [BEAT.match(line) for line in console_lines]
    assert beats and all(beats), console_lines
    assert {(m["label"], m["what"], m["total"]) for m in beats} == {
        ("logits/00000", "teacher logits", "40")
    }
    assert all(re.search(r", [\d.]+ row/s, about \d+s left$", line) for line in console_lines)
    # Not chatty: 0.4 s of work at one line per 0.05 s at most, however many updates.
    assert 1 <= len(beats) <= 9
    assert [int(m["done"]) for m in beats] == sorted(int(m["done"]) for m in beats)
    text = log.read_text(encoding="utf-8")
    assert "teacher logits: 100%" in text and "40/40" in text
    assert "[logits/00000]" not in text


def test_only_rank_zero_beats(monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setenv("RANK", "1")
    with console(stream, "general/s", 0):
        for _ in tqdm(range(5), desc="mlm eval", mininterval=0):
            time.sleep(0.001)
    assert stream.getvalue() == ""


def test_the_trainer_callback_beats_with_the_optimizer_steps() -> None:
    stream = io.StringIO()
    callback = heartbeat_callback(Console(stream, "teacher", 0))
    state = SimpleNamespace(global_step=0, max_steps=4, is_world_process_zero=True)
    callback.on_train_begin(None, state, None)
    for step in range(1, 5):
        state.global_step = step
        time.sleep(0.001)
        callback.on_step_end(None, state, None)
    other = SimpleNamespace(global_step=3, max_steps=4, is_world_process_zero=False)
    callback.on_step_end(None, other, None)
    assert [BEAT.match(line)["done"] for line in stream.getvalue().splitlines()] == ["2", "3", "4"]


def test_a_trainer_run_beats_and_computes_what_it_did_without(tmp_path) -> None:
    from transformers import Trainer, TrainingArguments

    class Line(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def forward(self, x, labels):
            return {"loss": ((self.w(x).squeeze(-1) - labels) ** 2).mean()}

    rows = [{"x": torch.tensor([i, 1.0]), "labels": torch.tensor(2.0 * i)} for i in range(8)]

    def train(callbacks: list) -> torch.Tensor:
        torch.manual_seed(0)
        model = Line()
        args = TrainingArguments(
            output_dir=str(tmp_path / "out"),
            max_steps=6,
            per_device_train_batch_size=2,
            learning_rate=0.01,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=0,
        )
        Trainer(model=model, args=args, train_dataset=rows, callbacks=callbacks).train()
        return model.w.weight.detach().clone()

    stream = io.StringIO()
    beating = train([heartbeat_callback(Console(stream, "finetune/t/m/seed1", 0))])
    lines = stream.getvalue().splitlines()
    assert lines and lines[-1].startswith("[finetune/t/m/seed1] step 6/6 (100%), ")
    assert torch.equal(beating, train([]))


def test_the_launcher_relays_the_ranks_heartbeat_and_logs_all_they_print(tmp_path, capfd) -> None:
    log = tmp_path / "logs/teacher.log"
    rank = (
        "import sys\n"
        "print('INFO loading the model', flush=True)\n"
        "sys.stderr.write('\\rstep bar 10%|#  | 1/10'); sys.stderr.flush()\n"
        "sys.stderr.write('[teacher] step 1/10 (10%), 2 steps/s, about 5s left\\n')\n"
        "sys.stderr.write('[other] not ours\\n')\n"
    )
    with job(log, heartbeat_seconds=0):
        run_relaying_heartbeat([sys.executable, "-c", rank])
        with pytest.raises(subprocess.CalledProcessError):
            run_relaying_heartbeat([sys.executable, "-c", "raise SystemExit(3)"])
    assert capfd.readouterr().err == "[teacher] step 1/10 (10%), 2 steps/s, about 5s left\n"
    text = log.read_text(encoding="utf-8")
    assert "INFO loading the model" in text and "[other] not ours" in text
    assert "step bar 10%|#  | 1/10[teacher] step 1/10" in text


def test_a_job_is_called_by_its_log_under_logs() -> None:
    assert log_label("results/logs/general/tiny.log") == "general/tiny"
    assert log_label("results/logs/teacher.log") == "teacher"
    assert log_label("elsewhere/run.log") == "run"
