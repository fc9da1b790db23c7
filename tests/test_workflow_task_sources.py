"""Where task data comes from, through the real `snakemake` command on the tiny config: no data
and no network, a partial set of files, a carve-out of a single labelled file and traditional
text against a simplified vocabulary. Each run targets `results/tasks/<task>` only, with a
tokenizer directory as `tokenizer.source`, so no corpus is built."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from pathlib import Path

import pytest
from test_tasks import drcd_doc, simplified_tokenizer
from tiny_workflow import SHARED_DATA, prepare_workdir, snakemake, tiny_config

from wwmdistill.tasks import open_task

pytestmark = pytest.mark.workflow


def console_of(result: subprocess.CompletedProcess) -> str:
    """What the user sees running snakemake (its log lines go to both streams)."""
    return result.stdout + result.stderr


def task_workdir(workdir: Path, tasks: dict) -> Path:
    config = tiny_config(workdir / "data")
    config["tokenizer"] = {"source": str(simplified_tokenizer(workdir / "tokenizer_src"))}
    config["tasks"] = tasks
    return prepare_workdir(workdir, config)


# Hostile input, with the download tests in the fault suite.
@pytest.mark.faults
def test_no_files_and_no_network_fail_the_job_with_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `.invalid` never resolves (RFC 2606): offline, whatever network this machine has.
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    url = "https://cluebenchmark.invalid/tasks/afqmc_public.zip"
    block = {"url": url, "hf_dataset": "clue/clue", "hf_name": "afqmc"}
    workdir = task_workdir(tmp_path, {"afqmc": block})
    started = time.monotonic()
    result = snakemake(workdir, "--cores", "1", "results/tasks/afqmc", check=False)
    assert time.monotonic() - started < 120  # no retries and back-offs against a dead network
    assert result.returncode != 0 and "Error in rule task_data" in result.stderr
    # Said at DAG build, before any job runs.
    assert f"the job downloads {url} else hf:clue/clue/afqmc" in console_of(result)
    log = (workdir / "results/logs/tasks/afqmc.log").read_text(encoding="utf-8")
    assert log.count("MissingTaskData: task afqmc: no data: ") == 1
    message = log.split("MissingTaskData: ", 1)[1]
    for name in ("train.json", "dev.json", "test.json"):
        assert str(workdir / "data/clue/afqmc" / name) in message
    assert f"{url} (cannot resolve cluebenchmark.invalid" in message
    assert "hf:clue/clue/afqmc (cannot resolve hub.invalid" in message
    assert "To provide the data, put the official files at" in message
    # The same message reaches the console, not only the log.
    assert "task afqmc: no data: none of" in console_of(result)
    assert not (workdir / "results/tasks/afqmc").exists()


def test_partial_set_of_files_stops_the_dag_naming_the_missing(tmp_path: Path) -> None:
    workdir = task_workdir(tmp_path, {"lcqmc": {}})
    lcqmc = workdir / "data/lcqmc"
    lcqmc.mkdir(parents=True)
    rows = "".join(f"问题{i}\t问句{i}\t{i % 2}\n" for i in range(40))
    for name in ("dev.txt", "test.txt"):
        (lcqmc / name).write_text(rows, encoding="utf-8")
    result = snakemake(workdir, "--dry-run", "results/tasks/lcqmc", check=False)
    assert result.returncode != 0
    assert (
        f"task lcqmc: {lcqmc} has dev.txt, test.txt but not {lcqmc / 'train.txt'} (train)"
        in console_of(result)
    )
    assert "hf:" not in console_of(result)  # never swapped for the HF copy
    # Carving train out of dev.txt is the user's call, and said on the console.
    config = tiny_config(workdir / "data")
    config["tokenizer"] = {"source": str(workdir / "tokenizer_src")}
    config["tasks"] = {"lcqmc": {"splits": {"train": "dev.txt"}}}
    prepare_workdir(workdir, config)
    console = console_of(snakemake(workdir, "--dry-run", "results/tasks/lcqmc"))
    assert f"task lcqmc: reading {lcqmc} (train: dev.txt, dev: dev.txt, test: test.txt); " in (
        console
    )
    assert "train, dev carved from dev.txt" in console


def test_dev_carve_out_and_traditional_text(tmp_path: Path) -> None:
    workdir = task_workdir(
        tmp_path,
        {
            "afqmc": {"splits": {"train": "dev.json", "test": None}},
            "drcd": {"splits": {"train": None, "test": None, "dev": "dev.json"}},
        },
    )
    afqmc = workdir / "data/clue/afqmc/dev.json"
    afqmc.parent.mkdir(parents=True)
    with (SHARED_DATA / "clue/afqmc/dev.json").open(encoding="utf-8") as f:
        afqmc.write_text("".join(itertools.islice(f, 300)), encoding="utf-8")
    drcd = workdir / "data/drcd/dev.json"
    drcd.parent.mkdir(parents=True)
    drcd.write_text(json.dumps(drcd_doc(answer_start=6), ensure_ascii=False), encoding="utf-8")
    console = console_of(
        snakemake(workdir, "--cores", "1", "results/tasks/afqmc", "results/tasks/drcd")
    )
    tasks = workdir / "results/tasks"

    stats = json.loads((tasks / "afqmc/stats.json").read_text())
    train = open_task(tasks / "afqmc/train.arrow")[0].to_pylist()
    dev = open_task(tasks / "afqmc/dev.arrow")[0].to_pylist()
    assert not {r["id"] for r in train} & {r["id"] for r in dev}  # never evaluated on train
    assert len(train) + len(dev) == 300 and stats["dev"]["rows"] == 30
    assert stats["dev"]["carved"]["from"] == "clue/afqmc/dev.json"
    assert stats["dev"]["carved"]["seed"] == 7 and stats["dev"]["carved"]["by"] == "label"
    assert "afqmc: carved train, dev from clue/afqmc/dev.json (seed 7, by label)" in console

    stats = json.loads((tasks / "drcd/stats.json").read_text())["dev"]
    rows = open_task(tasks / "drcd/dev.arrow")[0].to_pylist()
    assert stats["to_simplified"] is True and rows[0]["context"].startswith("这间酒店")
    assert stats["unk_rate"] == 0 and json.loads((tasks / "afqmc/stats.json").read_text())
    log = (workdir / "results/logs/tasks/drcd.log").read_text(encoding="utf-8")
    for shown in (log, console):
        assert "drcd: traditional text, and the tokenizer" in shown
        assert "a simplified vocabulary, so the text is converted to simplified" in shown
        assert "answer '服務態度亦算不錯' is not at answer_start 6; moved to 7" in shown
