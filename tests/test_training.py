"""The run fingerprint that decides whether a checkpoint may be resumed, which checkpoint is,
and the precision flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from wwmdistill import training
from wwmdistill.finetune import FinetuneSettings
from wwmdistill.training import (
    TrainingSettings,
    mixed_precision,
    resume_checkpoint,
    run_fingerprint,
    training_arguments,
)


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 2 + 1
    if value is None:
        return 7
    return "fp32" if value != "fp32" else "auto"


@pytest.mark.parametrize(
    "settings",
    [TrainingSettings(), FinetuneSettings(max_steps=10)],
    ids=["pretraining", "finetune"],
)
def test_every_setting_but_save_steps_is_in_the_fingerprint(settings) -> None:
    base = settings.as_dict()
    reference = run_fingerprint(base, "inputs")
    for name in base:
        changed = base | {name: _changed(base[name])}
        same = run_fingerprint(changed, "inputs") == reference
        assert same == (name == "save_steps"), name
    assert run_fingerprint(base, "other inputs") != reference
    # Nested blocks (a student's `training`) are read the same way.
    nested = {"training": base, "temperature": 2.0}
    moved = {"training": base | {"save_steps": 3}, "temperature": 2.0}
    assert run_fingerprint(nested) == run_fingerprint(moved)


def test_the_rank_count_is_in_the_fingerprint(monkeypatch) -> None:
    settings = TrainingSettings().as_dict()
    monkeypatch.setenv("WORLD_SIZE", "1")
    one = run_fingerprint(settings)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert run_fingerprint(settings) != one


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU's precision rules")
def test_cpu_precision_is_fp32_unless_bf16_is_asked_for_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fp32 = {"bf16": False, "fp16": False}
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: True)
    assert mixed_precision("auto") == fp32
    assert mixed_precision("fp32") == fp32
    assert mixed_precision("fp16") == fp32  # no fp16 autocast worth having on a CPU
    assert mixed_precision("bf16") == {"bf16": True, "fp16": False, "use_cpu": True}
    settings = TrainingSettings.from_config({"max_steps": 2, "precision": "bf16"})
    arguments = training_arguments(settings, tmp_path / "checkpoints", seed=1)
    assert arguments.bf16 and arguments.use_cpu
    # Without bf16 instructions autocast is emulated, far slower than fp32: fp32, said so.
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: False)
    assert mixed_precision("bf16") == fp32
    assert "no bf16 instructions" in caplog.text
    assert not training_arguments(settings, tmp_path / "checkpoints", seed=1).bf16


def test_a_checkpoint_killed_while_its_state_was_written_is_never_resumed(tmp_path: Path) -> None:
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[])
    checkpoints = tmp_path / "checkpoints"
    assert resume_checkpoint(checkpoints, "run-a", args) is None
    whole, empty, cut, missing = (checkpoints / f"checkpoint-{n}" for n in (3, 6, 9, 12))
    for directory in (whole, empty, cut, missing):
        directory.mkdir()
    (whole / "trainer_state.json").write_text('{"global_step": 3}')
    (empty / "trainer_state.json").write_text("")  # killed as the Trainer opened it
    (cut / "trainer_state.json").write_text('{"global_step": 9, "log_hi')
    assert resume_checkpoint(checkpoints, "run-a", args) == str(whole)
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-3"]
