"""The eval table's baselines and single-class flags, on task splits and predictions built here.

Every expected number is worked out by hand from the rows below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers import BertConfig, BertForSequenceClassification

from wwmdistill.arrow_io import ArrowShardWriter, ArtifactError, write_json
from wwmdistill.evaluation import (
    EvalRow,
    baseline_scores,
    build_eval,
    predicted_classes,
)
from wwmdistill.finetune import TaskData, load_task
from wwmdistill.kinds import KINDS

PREDICTIONS = KINDS["classification"].dev_predictions_file
LABELS = ["neg", "pos"]
# train: 3 pos, 2 neg -> the baseline predicts pos; dev: 1 pos of 4 -> 25% accuracy (dev's own
# majority, neg, would score 75%: an oracle).
TRAIN_LABELS = [0, 1, 1, 1, 0]
DEV_LABELS = [0, 0, 1, 0]


def _write_split(path: Path, kind: str, columns: dict[str, list], labels: list[str]) -> None:
    schema = KINDS[kind].row_schema
    meta = {"task": path.parent.name, "kind": kind, "labels": labels, "labelled": True}
    with ArrowShardWriter(path, schema, stage="task", fingerprint="test", meta=meta) as writer:
        writer.write(columns)


def _classification(root: Path, train: list[int], dev: list[int]) -> TaskData:
    task_dir = root / "sentiment"
    for split, labels in (("train", train), ("dev", dev)):
        ids = [f"{split}-{i}" for i in range(len(labels))]
        columns = {"id": ids, "text_a": ["好"] * len(ids), "text_b": [None] * len(ids)}
        _write_split(
            task_dir / f"{split}.arrow", "classification", columns | {"label": labels}, LABELS
        )
    return load_task(task_dir)


def _qa(root: Path) -> TaskData:
    task_dir = root / "reading"
    # Train's answer lengths 2, 3, 5, 4: the lower median is k = 3.
    train = {
        "id": ["t0", "t1", "t2", "t3"],
        "question": ["问"] * 4,
        "context": ["天津港口", "南京长江大桥", "广州是花城啊", "重庆山城美食"],
        "answers": [["天津"], ["南京长"], ["广州是花城"], ["重庆山城"]],
        "answer_starts": [[0], [0], [0], [0]],
    }
    # The first 3 characters: "北京是" against 北京 (F1 2*(2/3*1)/(2/3+1) = 0.8, EM 0),
    # "长城很" exactly (1, 1), "上海在" against 东部 (0, 0): EM 100/3, F1 60.
    dev = {
        "id": ["d0", "d1", "d2"],
        "question": ["首都？", "什么？", "哪里？"],
        "context": ["北京是中国的首都。", "长城很长。", "上海在东部。"],
        "answers": [["北京"], ["长城很"], ["东部"]],
        "answer_starts": [[0], [0], [3]],
    }
    _write_split(task_dir / "train.arrow", "qa", train, [])
    _write_split(task_dir / "dev.arrow", "qa", dev, [])
    return load_task(task_dir)


def _predictions(directory: Path, labels: list[Any], ids: list[str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    ids = ids or [f"dev-{i}" for i in range(len(labels))]
    lines = [json.dumps({"id": i, "label": label}) for i, label in zip(ids, labels, strict=True)]
    (directory / PREDICTIONS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def test_majority_class_of_train_scored_on_dev(tmp_path: Path) -> None:
    baseline = baseline_scores(_classification(tmp_path, TRAIN_LABELS, DEV_LABELS))
    assert baseline["method"] == "majority_class"
    assert baseline["class"] == "pos"
    assert baseline["scores"] == {"accuracy": 25.0}
    assert baseline["fit_on"] == "train" and baseline["scored_on"] == "dev"
    assert baseline["dev_rows"] == 4


def test_majority_class_tie_takes_the_first_label(tmp_path: Path) -> None:
    baseline = baseline_scores(_classification(tmp_path, [1, 0, 1, 0], [1, 1, 1, 0]))
    assert baseline["class"] == "neg" and baseline["scores"] == {"accuracy": 25.0}


def test_unlabelled_dev_has_no_baseline(tmp_path: Path) -> None:
    task = _classification(tmp_path, TRAIN_LABELS, [0, -1, 1, 0])
    with pytest.raises(ValueError, match="task sentiment: the dev split has unlabelled rows"):
        baseline_scores(task)


def test_majority_answer_position_for_multiple_choice(tmp_path: Path) -> None:
    task_dir = tmp_path / "c3"
    # Train's answers are mostly the third option (2); dev has it 2 times of 5: 40%.
    for split, positions in (("train", [2, 2, 0, 1, 2]), ("dev", [2, 0, 0, 2, 3])):
        n = len(positions)
        columns = {
            "id": [f"{split}-{i}" for i in range(n)],
            "context": ["甲乙丙丁。"] * n,
            "question": ["哪个？"] * n,
            "choices": [["甲", "乙", "丙", "丁"]] * n,
            "label": positions,
        }
        _write_split(task_dir / f"{split}.arrow", "multiple_choice", columns, [])
    baseline = baseline_scores(load_task(task_dir))
    assert baseline["method"] == "majority_position"
    assert baseline["class"] == 2 and baseline["scores"] == {"accuracy": 40.0}


def test_first_characters_for_span_qa(tmp_path: Path) -> None:
    baseline = baseline_scores(_qa(tmp_path))
    assert baseline["method"] == "first_k_characters" and baseline["k"] == 3
    assert "class" not in baseline
    scores = baseline["scores"]
    assert scores["em"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(60.0)
    assert scores["average"] == pytest.approx((100 / 3 + 60.0) / 2)


def test_predicted_classes_counts_distinct_labels(tmp_path: Path) -> None:
    ids = [f"dev-{i}" for i in range(4)]
    one = _predictions(tmp_path / "one", ["neg"] * 4)
    assert predicted_classes(one / PREDICTIONS, ids) == 1
    two = _predictions(tmp_path / "two", ["neg", "pos", "neg", "neg"])
    assert predicted_classes(two / PREDICTIONS, ids) == 2
    # Multiple choice writes the option's index.
    assert predicted_classes(_predictions(tmp_path / "mc", [0, 3, 3, 1]) / PREDICTIONS, ids) == 3


def test_predictions_that_do_not_match_dev_are_refused(tmp_path: Path) -> None:
    ids = [f"dev-{i}" for i in range(4)]
    short = _predictions(tmp_path / "short", ["neg"] * 3)
    with pytest.raises(ArtifactError, match=r"short/dev_predictions.jsonl: predicts 3 ids"):
        predicted_classes(short / PREDICTIONS, ids)
    broken = _predictions(tmp_path / "broken", ["neg"] * 4)
    text = (broken / PREDICTIONS).read_text().splitlines()
    text[1] = '{"id": "dev-1"}'
    (broken / PREDICTIONS).write_text("\n".join(text) + "\n")
    with pytest.raises(ArtifactError, match=r"broken/dev_predictions.jsonl:2: not a"):
        predicted_classes(broken / PREDICTIONS, ids)
    with pytest.raises(ArtifactError, match=r"missing/dev_predictions.jsonl: missing"):
        predicted_classes(tmp_path / "missing" / PREDICTIONS, ids)


def _model(path: Path) -> Path:
    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def _row(root: Path, model: str, model_dir: Path, per_seed: dict[int, tuple[float, list]]):
    directories = {}
    for seed, (score, labels) in per_seed.items():
        directory = _predictions(root / model / f"seed{seed}", labels)
        write_json(
            directory / "scores.json",
            {
                "task": "sentiment",
                "model": model,
                "seed": seed,
                "dev": {"accuracy": score},
                "metric": "accuracy",
                "model_dir": str(model_dir),
            },
        )
        directories[seed] = directory
    return EvalRow(model, "finetune", model, directories)


def test_eval_table_carries_the_baseline_margins_and_single_class_flags(tmp_path: Path) -> None:
    task = _classification(tmp_path / "tasks", TRAIN_LABELS, DEV_LABELS)
    model_dir = _model(tmp_path / "model")
    rows = [
        _row(tmp_path, "teacher", model_dir, {1: (75.0, LABELS * 2), 2: (100.0, LABELS * 2)}),
        # Seed 2 answers pos for every dev example: 25%, the baseline's score.
        _row(tmp_path, "lazy", model_dir, {1: (50.0, LABELS * 2), 2: (25.0, ["pos"] * 4)}),
    ]
    deployed = {
        "teacher": _deploy_record(tmp_path, "teacher", model_dir, (75.0, 75.0, 75.0)),
        "lazy": _deploy_record(tmp_path, "lazy", model_dir, (50.0, 50.0, 25.0)),
    }
    out = tmp_path / "eval/sentiment.json"
    result = build_eval(
        task, rows, 8, out, config={}, deployed=deployed, speed_path=_speed_file(tmp_path)
    )
    assert json.loads(out.read_text()) == result
    assert result["baseline"]["class"] == "pos"
    assert result["baseline"]["scores"] == {"accuracy": 25.0}
    assert result["baseline"]["relative"] == {"score": 25.0 / 87.5}
    teacher, lazy = result["rows"]
    assert teacher["predicted_classes"] == {"1": 2, "2": 2} and teacher["single_class"] is False
    assert lazy["predicted_classes"] == {"1": 2, "2": 1} and lazy["single_class"] is True
    # Mean and max over the seeds (HFL's practice).
    assert teacher["mean"] == {"accuracy": 87.5} and teacher["max"] == {"accuracy": 100.0}
    assert lazy["mean"] == {"accuracy": 37.5} and lazy["max"] == {"accuracy": 50.0}
    assert teacher["margin"] == {"accuracy": 87.5 - 25.0}
    assert lazy["margin"] == {"accuracy": 37.5 - 25.0}
    # Ratios of the medians at the task's length (8): the teacher's PyTorch b16 takes 40 ms,
    # lazy's 10 ms; lazy's int8 b16 takes 4 ms. Lazy's b1 timing is unsteady, and so is the
    # latency ratio taken from it.
    assert lazy["relative"]["throughput"] == 4.0
    assert lazy["relative"]["latency_speedup"] == 2.0
    assert lazy["relative"]["int8_throughput"] == 2.5
    assert lazy["relative"]["int8_score_lost"] == 25.0
    assert lazy["relative"]["end_to_end_over_model"] == 1.25
    assert lazy["relative"]["unsteady"] == ["latency_speedup"]
    assert teacher["relative"]["unsteady"] == []
    assert lazy["deploy"]["fp32"] == {
        "agreement": 1.0,
        "max_abs_logit_diff": 1e-06,
        "score": 50.0,
        "size_mb": 0.5,
    }
    assert lazy["deploy"]["int8"]["score"] == 25.0 and lazy["parameters"] == 1000


def _stats(median_ms: float, spread: float = 0.1) -> dict[str, Any]:
    return {"median_ms": median_ms, "spread": spread, "unsteady": spread > 0.25}


def _speed_file(root: Path) -> Path:
    """speed.json of two rows with known medians (ms) at length 8, batch 1 and 16."""

    def row(pytorch: tuple, int8: tuple, b1_spread: float) -> dict[str, Any]:
        return {
            "parameters": 1000,
            "size_mb": {"pytorch": 0.4, "fp32": 0.5, "int8": 0.2},
            "model": {
                "pytorch": {"8": {"1": _stats(pytorch[0], b1_spread), "16": _stats(pytorch[1])}},
                "fp32": {"8": {"1": _stats(pytorch[0]), "16": _stats(pytorch[1])}},
                "int8": {"8": {"1": _stats(int8[0]), "16": _stats(int8[1])}},
            },
            "request": {
                "int8": {
                    "end_to_end": _stats(1.25),
                    "model_only": _stats(1.0),
                    "overhead": {"value": 1.25, "unsteady": False},
                }
            },
        }

    path = root / "deploy/speed.json"
    write_json(
        path,
        {
            "task": "sentiment",
            "seq_lens": [8],
            "rows": {
                "teacher": row((4.0, 40.0), (2.0, 20.0), 0.1),
                "lazy": row((2.0, 10.0), (1.0, 4.0), 0.5),
            },
        },
    )
    return path


def _deploy_record(root: Path, row: str, model_dir: Path, scores: tuple) -> Path:
    """A deploy directory's deploy.json: PyTorch, fp32 and int8 scores on dev."""
    pytorch, fp32, int8 = scores
    directory = root / "deploy" / row
    write_json(
        directory / "deploy.json",
        {
            "task": "sentiment",
            "model_dir": str(model_dir),
            "split": "dev",
            "size_mb": {"fp32": 0.5, "int8": 0.2},
            "agreement": {
                "rows": 4,
                "pytorch": {"scores": {"accuracy": pytorch}},
                "fp32": {
                    "scores": {"accuracy": fp32},
                    "agreement": 1.0,
                    "max_abs_logit_diff": 1e-6,
                },
                "int8": {
                    "scores": {"accuracy": int8},
                    "agreement": 0.75,
                    "max_abs_logit_diff": 0.1,
                },
            },
        },
    )
    return directory
