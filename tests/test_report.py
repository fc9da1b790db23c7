"""The report, its plots and the model card, from eval / bench / metrics JSONs of known values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from transformers import BertConfig

from wwmdistill.arrow_io import write_json
from wwmdistill.model_card import write_model_card
from wwmdistill.report import (
    build_report,
    load_evals,
    loss_history,
    plot_loss_curves,
    plot_score_vs_speed,
    score_speed_points,
    score_vs_speed_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(model: str, scores: dict[str, dict[str, float]], **fields: Any) -> dict[str, Any]:
    metrics = next(iter(scores.values())).keys()
    return {
        "model": model,
        "stage": fields.pop("stage", "finetune"),
        "base": fields.pop("base", model),
        "scores": scores,
        "max": {m: max(s[m] for s in scores.values()) for m in metrics},
        "mean": fields.pop("mean"),
        **fields,
    }


def _speed(latency: float, throughput: float, seq_len: int) -> dict[str, Any]:
    return {"seq_len": seq_len, "cpu": {"latency_ms_b1": latency, "throughput_b16": throughput}}


AFQMC = {
    "task": "afqmc",
    "kind": "classification",
    "metric": "accuracy",
    "metrics": ["accuracy"],
    "seeds": [1, 2],
    "seq_len": 128,
    "rows": [
        _row(
            "teacher",
            {"1": {"accuracy": 70.1}, "2": {"accuracy": 71.0}},
            mean={"accuracy": 70.55},
            parameters=11_000_000,
            size_mb=42.1,
            speed=_speed(5.1, 800.0, 128) | {"gpu": None},
            relative={"score": 1.0, "throughput": 1.0, "latency_speedup": 1.0, "parameters": 1.0},
            margin={"accuracy": 1.55},
            predicted_classes={"1": 2, "2": 2},
            single_class=False,
        ),
        _row(
            "first2",
            {"1": {"accuracy": 68.0}, "2": {"accuracy": 68.9}},
            mean={"accuracy": 68.45},
            parameters=5_500_000,
            size_mb=21.0,
            speed=_speed(2.55, 1600.0, 128),
            relative={"score": 0.9702, "throughput": 2.0, "latency_speedup": 2.0},
            margin={"accuracy": -0.55},
            predicted_classes={"1": 2, "2": 2},
            single_class=False,
        ),
        # Seed 1 answered the majority class for every example: it learned nothing.
        _row(
            "first2.td",
            {"1": {"accuracy": 69.0}, "2": {"accuracy": 69.0}},
            mean={"accuracy": 69.0},
            base="first2",
            stage="task_distill",
            parameters=5_500_000,
            speed=_speed(2.5, 1610.0, 128),
            relative={"score": 0.978, "latency_speedup": 2.04},
            margin={"accuracy": 0.0},
            predicted_classes={"1": 1, "2": 2},
            single_class=True,
        ),
        # No speed, size or relative fields at all: rendered as dashes.
        _row(
            "narrow",
            {"1": {"accuracy": 59.0}, "2": {"accuracy": 61.0}},
            mean={"accuracy": 60.0},
            parameters=3_000_000,
        ),
    ],
    "baseline": {
        "method": "majority_class",
        "description": "the most frequent label of train, predicted for every dev example",
        "fit_on": "train",
        "scored_on": "dev",
        "dev_rows": 200,
        "class": "0",
        "scores": {"accuracy": 69.0},
        "relative": {"score": 69.0 / 70.55},
    },
    "config": {"task": {}, "evaluation": {}},
}

CMRC = {
    "task": "cmrc2018",
    "kind": "qa",
    "metric": "f1",
    "metrics": ["em", "f1", "average"],
    "seeds": [1, 2],
    "seq_len": 512,
    "rows": [
        _row(
            "teacher",
            {
                "1": {"em": 59.0, "f1": 80.1, "average": 69.55},
                "2": {"em": 61.0, "f1": 80.8, "average": 70.9},
            },
            mean={"em": 60.0, "f1": 80.45, "average": 70.225},
            parameters=11_100_000,
            size_mb=42.1,
            speed=_speed(40.0, 60.0, 512) | {"gpu": None},
            relative={"score": 1.0, "latency_speedup": 1.0},
            margin={"em": 60.0, "f1": 60.45, "average": 60.225},
            predicted_classes=None,
            single_class=None,
        ),
        _row(
            "first2",
            {
                "1": {"em": 50.0, "f1": 72.0, "average": 61.0},
                "2": {"em": 51.0, "f1": 72.5, "average": 61.75},
            },
            mean={"em": 50.5, "f1": 72.25, "average": 61.375},
            parameters=5_600_000,
            size_mb=21.0,
            speed=_speed(10.0, 240.0, 512),
            relative={"score": 0.8981, "latency_speedup": 4.0},
            margin={"em": 50.5, "f1": 52.25, "average": 51.375},
            predicted_classes=None,
            single_class=None,
        ),
    ],
    "baseline": {
        "method": "first_k_characters",
        "description": "the first k = 4 characters of every dev context, k the median length "
        "of train's (first) answers, scored with the official CMRC 2018 metric",
        "fit_on": "train",
        "scored_on": "dev",
        "dev_rows": 100,
        "k": 4,
        "scores": {"em": 0.0, "f1": 20.0, "average": 10.0},
        "relative": {"score": 20.0 / 80.45},
    },
}

TEACHER_BENCH = {
    "model_dir": "results/teacher/model",
    "parameters": 10_900_000,
    "size_mb": 42.1,
    "seq_len": 512,
    "cpu": {"seq_len": 512, "device": "cpu", "latency_ms_b1": 120.5, "throughput_b16": 10.3},
    "gpu": {"seq_len": 512, "device": "cuda", "latency_ms_b1": 8.0, "throughput_b16": 400.0},
    "cpu_threads": 4,
    "torch": "2.13.0",
    "device_names": {"cpu": "Test CPU", "gpu": "Test GPU"},
}
STUDENT_BENCH = TEACHER_BENCH | {
    "model_dir": "results/general/first2/model",
    "parameters": 5_400_000,
    "size_mb": 20.96,
    "cpu": {"seq_len": 512, "device": "cpu", "latency_ms_b1": 30.25, "throughput_b16": 41.0},
    "gpu": None,
    "device_names": {"cpu": "Test CPU", "gpu": None},
}

CONFIG = {"evaluation": {"seeds": [1, 2]}, "tasks": {"afqmc": {"source": "local"}}}


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Any]:
    evals = [tmp_path / "eval/afqmc.json", tmp_path / "eval/cmrc2018.json"]
    write_json(evals[0], AFQMC)
    write_json(evals[1], CMRC)
    benches = {"teacher": tmp_path / "bench/teacher.json", "first2": tmp_path / "bench/first2.json"}
    write_json(benches["teacher"], TEACHER_BENCH)
    write_json(benches["first2"], STUDENT_BENCH)
    return {"evals": evals, "benches": benches}


def test_report_tables(inputs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "results/report.md"
    text = build_report(inputs["evals"], inputs["benches"], CONFIG, out)
    assert out.read_text(encoding="utf-8") == text
    lines = text.splitlines()
    assert (
        "| model | Acc max | Acc mean | relative score | Acc vs baseline | params (M) "
        "| size (MB) | CPU latency b1 (ms) | CPU throughput b16 (seq/s) | speed-up vs teacher |"
        in lines
    )
    assert (
        "| teacher | 71.00 | 70.55 | 100.0% | +1.55 | 11.0 | 42.1 | 5.10 | 800.0 | 1.00x |" in lines
    )
    assert (
        "| first2 | 68.90 | 68.45 | 97.0% | -0.55 | 5.5 | 21.0 | 2.55 | 1600.0 | 2.00x |" in lines
    )
    assert "| narrow | 61.00 | 60.00 | – | – | 3.0 | – | – | – | – |" in lines
    # A model that predicted one class on some seed says so, naming the seed.
    assert (
        "| first2.td ⚠ predicts one class (seed 1) | 69.00 | 69.00 | 97.8% | +0.00 | 5.5 | – "
        "| 2.50 | 1610.0 | 2.04x |" in lines
    )
    # The baseline: one prediction, so its score is the max and the mean; relative to the
    # teacher like any row.
    assert (
        "Baseline (majority class 0): the most frequent label of train, predicted for every dev "
        "example: Acc 69.00." in lines
    )
    assert "| baseline: majority class 0 | 69.00 | 69.00 | 97.8% | – | – | – | – | – | – |" in lines
    afqmc = text[text.index("### afqmc") : text.index("### cmrc2018")]
    assert afqmc.index("| narrow |") < afqmc.index("| baseline: majority class 0 |")
    # QA: max and mean of each of EM, F1, Avg.
    assert (
        "| model | EM max | EM mean | F1 max | F1 mean | Avg max | Avg mean | relative score "
        "| F1 vs baseline | params (M) | size (MB) | CPU latency b1 (ms) "
        "| CPU throughput b16 (seq/s) | speed-up vs teacher |" in lines
    )
    assert (
        "| first2 | 51.00 | 50.50 | 72.50 | 72.25 | 61.75 | 61.38 | 89.8% | +52.25 | 5.6 | 21.0 "
        "| 10.00 | 240.0 | 4.00x |" in lines
    )
    assert (
        "| baseline: first 4 characters | 0.00 | 0.00 | 20.00 | 20.00 | 10.00 | 10.00 | 24.9% "
        "| – | – | – | – | – | – |" in lines
    )
    assert "primary metric F1; 2 seed(s): 1, 2; length 512." in lines
    assert "| cmrc2018 ⚠" not in text and "| teacher ⚠" not in text
    # Summary: mean primary per task; Average and Relative only with every task.
    assert "| model | params (M) | afqmc (Acc) | cmrc2018 (F1) | Average | Relative |" in lines
    assert "| teacher | 11.0 | 70.55 | 80.45 | 75.50 | 100.0% |" in lines
    assert "| first2 | 5.5 | 68.45 | 72.25 | 70.35 | 93.4% |" in lines
    assert "| first2.td | 5.5 | 69.00 ⚠ | – | – | – |" in lines
    assert "| narrow | 3.0 | 60.00 | – | – | – |" in lines
    # (69 / 70.55 + 20 / 80.45) / 2 = 61.3%
    assert "| baseline | – | 69.00 | 20.00 | 44.50 | 61.3% |" in lines
    # Speed table at length 512 from the bench JSONs; a null GPU is a dash.
    assert "| teacher | 10.9 | 42.1 | 120.50 | 10.3 | 8.00 | 400.0 |" in lines
    assert "| first2 | 5.4 | 21.0 | 30.25 | 41.0 | – | – |" in lines
    assert "CPU: Test CPU (4 thread(s)); GPU: Test GPU; torch 2.13.0." in text
    assert (
        "```yaml\nevaluation:\n  seeds:\n  - 1\n  - 2\ntasks:\n  afqmc:\n    source: local\n```"
        in text
    )
    # Task sections in the order given, teacher first in the summary.
    assert text.index("### afqmc") < text.index("### cmrc2018")
    summary = text[text.index("## Summary") : text.index("## Tasks")]
    assert summary.index("| teacher |") < summary.index("| first2 |") < summary.index("| narrow |")
    assert summary.index("| narrow |") < summary.index("| baseline |")


def test_report_without_benches_or_evals(tmp_path: Path) -> None:
    text = build_report([], [], {}, tmp_path / "report.md")
    assert "No evaluations." in text and "No speed measurements." in text


def test_report_names_a_broken_json(tmp_path: Path) -> None:
    bad = tmp_path / "afqmc.json"
    bad.write_text('{"task": "afqmc",\n  oops}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"afqmc\.json:2: not JSON"):
        build_report([bad], [], {}, tmp_path / "report.md")
    write_json(bad, {"task": "afqmc"})
    with pytest.raises(ValueError, match=r"afqmc\.json: eval JSON lacks the key 'metric'"):
        build_report([bad], [], {}, tmp_path / "report.md")


def _assert_png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def test_plots(inputs: dict[str, Any], tmp_path: Path) -> None:
    history = [
        {"step": 10, "loss": 9.0, "loss_kd": 1.0, "loss_mlm": 3.0, "learning_rate": 1e-4},
        {"step": 20, "loss": 7.5, "loss_kd": 0.8, "loss_mlm": 2.5},
        {"step": 20, "train_loss": 8.0},  # the Trainer's closing summary: no curve point
    ]
    metrics = tmp_path / "general/first2/metrics.json"
    write_json(metrics, {"log_history": history, "parameters": {"student": 5_500_000}})
    teacher = tmp_path / "teacher/teacher.json"
    write_json(teacher, {"source": "scratch", "parameters": 11_000_000})
    assert loss_history(json.loads(metrics.read_text())) == {
        "loss": ([10.0, 20.0], [9.0, 7.5]),
        "loss_kd": ([10.0, 20.0], [1.0, 0.8]),
        "loss_mlm": ([10.0, 20.0], [3.0, 2.5]),
    }
    curves = tmp_path / "plots/loss.png"
    plot_loss_curves({"teacher": teacher, "first2": metrics}, curves)
    width, height = _assert_png(curves)
    assert width > height  # two panels side by side: total loss, first2's components
    empty = tmp_path / "plots/empty.png"
    plot_loss_curves({"teacher": teacher}, empty)
    _assert_png(empty)

    evals = load_evals(inputs["evals"])
    assert score_speed_points(evals) == [
        ("afqmc", "teacher", 800.0, 70.55),
        ("afqmc", "first2", 1600.0, 68.45),
        ("afqmc", "first2.td (one class)", 1610.0, 69.0),
        ("cmrc2018", "teacher", 60.0, 80.45),
        ("cmrc2018", "first2", 240.0, 72.25),
    ]
    scatter = tmp_path / "plots/score_vs_speed.png"
    plot_score_vs_speed(inputs["evals"], scatter)
    _assert_png(scatter)


def test_score_vs_speed_draws_each_tasks_baseline(inputs: dict[str, Any]) -> None:
    (axes,) = score_vs_speed_figure(load_evals(inputs["evals"])).axes
    # A horizontal line per task at its baseline's primary score, in the task's colour,
    # labelled on the plot and in the legend.
    labels = {
        "afqmc baseline: majority class 0": 69.0,
        "cmrc2018 baseline: first 4 characters": 20.0,
    }
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert set(lines) == set(labels)
    scatters = {c.get_label(): c.get_facecolor()[0] for c in axes.collections}
    for label, score in labels.items():
        assert list(lines[label].get_ydata()) == [score, score]
        assert tuple(lines[label].get_color()) == tuple(scatters[label.split()[0]])
    assert set(labels) <= {text.get_text() for text in axes.texts}
    assert set(labels) <= {text.get_text() for text in axes.get_legend().get_texts()}
    assert "first2.td (one class)" in {text.get_text() for text in axes.texts}


def test_model_card(inputs: dict[str, Any], tmp_path: Path) -> None:
    model_dir = tmp_path / "general/first2/model"
    model_dir.mkdir(parents=True)
    BertConfig(
        vocab_size=8000,
        hidden_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=1024,
    ).to_json_file(model_dir / "config.json")
    write_json(model_dir / "metrics.json", {"parameters": {"student": 5_500_000}})
    write_json(model_dir / "special_tokens_map.json", {"mask_token": "[MASK]"})
    out = tmp_path / "cards/first2/README.md"
    text = write_model_card(
        "first2",
        model_dir,
        out,
        student_settings={"init": "first_n", "first_n": 2, "mode": "cached"},
        teacher={"source": "hfl/chinese-roberta-wwm-ext", "parameters": 102_267_648},
        corpus={
            "sources": {"peoples_daily": {"type": "package"}},
            "corpus": {"shards": 4},
            "masking": {"max_seq_len": 128, "dupe_factor": 5},
            "segmentation": {"backend": "ltp"},
        },
        eval_paths=inputs["evals"],
        bench_path=inputs["benches"]["first2"],
        teacher_bench_path=inputs["benches"]["teacher"],
    )
    assert out.read_text(encoding="utf-8") == text
    assert text.startswith(
        "---\nlanguage: zh\nlicense: apache-2.0\nlibrary_name: transformers\n"
        "pipeline_tag: fill-mask\ntags:\n- bert\n- distillation\n- whole-word-masking\n---\n"
    )
    lines = text.splitlines()
    for line in (
        "| layers | 2 |",
        "| hidden size | 256 |",
        "| attention heads | 4 |",
        "| intermediate size | 1024 |",
        "| vocabulary | 8000 |",
        "| parameters | 5,500,000 (5.5M) |",
        "Distilled from `hfl/chinese-roberta-wwm-ext`.",
        "- initialisation: `first_n` (the teacher's first 2 layers)",
        "- temperature: 2.0 (losses scaled by T²)",
        "| kd | 5 |",
        "| attention | 0 |",
        "- duplication factor (masked copies of each document): 5",
        "| afqmc | teacher | finetune | Acc | 70.55 | 71.00 | 100.0% | +1.55 |",
        "| afqmc | first2 | finetune | Acc | 68.45 | 68.90 | 97.0% | -0.55 |",
        "| afqmc | first2.td ⚠ predicts one class (seed 1) | task_distill | Acc | 69.00 | 69.00 "
        "| 97.8% | +0.00 |",
        "| afqmc | baseline: majority class 0 | – | Acc | 69.00 | 69.00 | 97.8% | – |",
        "| cmrc2018 | first2 | finetune | F1 | 72.25 | 72.50 | 89.8% | +52.25 |",
        "| cmrc2018 | baseline: first 4 characters | – | F1 | 20.00 | 20.00 | 24.9% | – |",
        "| teacher | 10.9 | 42.1 | 120.50 | 10.3 | 8.00 | 400.0 |",
        f'model = AutoModelForMaskedLM.from_pretrained("{model_dir}")',
    ):
        assert line in lines, line
    assert "| afqmc | narrow |" not in text
    assert "| model | stage | metric | mean | max | relative score | vs baseline |" in text
    assert '"⚠ predicts one class" marks a model that predicted a single class' in text
    assert "[MASK]" in text


def test_model_card_names_a_bad_settings_key(inputs: dict[str, Any], tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    BertConfig().to_json_file(model_dir / "config.json")
    with pytest.raises(ValueError, match=r"students\.first2: unknown key\(s\) \['temprature'\]"):
        write_model_card(
            "first2",
            model_dir,
            tmp_path / "README.md",
            student_settings={"temprature": 2.0},
            teacher={},
            corpus={},
            parameters=100,
        )
    assert not (tmp_path / "README.md").exists()
