"""The run fingerprint that decides whether a checkpoint may be resumed."""

from __future__ import annotations

import pytest

from wwmdistill.finetune import FinetuneSettings
from wwmdistill.training import TrainingSettings, run_fingerprint


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
