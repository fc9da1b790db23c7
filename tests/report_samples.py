"""Eval and bench JSONs of known values, shared by the report and model card tests.

Timings are chosen so every rendered figure is exact: a b16 median of 40 ms is 400.0 seq/s, a
spread of 0.1 puts the quartiles 5% either side of the median, and 0.5 makes a timing unsteady.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wwmdistill.arrow_io import write_json

STEADY, UNSTEADY = 0.1, 0.5


def stats(median_ms: float, batch: int = 1, spread: float = STEADY) -> dict[str, Any]:
    """A timing as deploy/timing.py summarises it."""
    return {
        "median_ms": median_ms,
        "q1_ms": median_ms * (1 - spread / 2),
        "q3_ms": median_ms * (1 + spread / 2),
        "spread": spread,
        "unsteady": spread > 0.25,
        "per_second": batch * 1000.0 / median_ms,
        "runs_ms": [median_ms] * 3,
    }


def speed(
    seq_len: int,
    ms: dict[str, tuple[float, float]],
    sizes: dict[str, float],
    requests: dict[str, tuple[float, float]],
    *,
    unsteady: tuple[tuple[str, str], ...] = (),
    longest: int | None = 512,
) -> dict[str, Any]:
    """A speed.json row: per format its (b1, b16) medians at `seq_len`, four times those at
    `longest` (None: the model cannot hold it); per ONNX format one request's (end to end,
    model only) medians. `unsteady` names (format, batch) or (format, "request") timings."""

    def spread(fmt: str, what: str) -> float:
        return UNSTEADY if (fmt, what) in unsteady else STEADY

    lengths = [seq_len] + ([] if longest in (None, seq_len) else [longest])
    model = {}
    for fmt, (b1, b16) in ms.items():
        model[fmt] = {
            str(length): {
                "1": stats(b1 * length / seq_len, 1, spread(fmt, "1")),
                "16": stats(b16 * length / seq_len, 16, spread(fmt, "16")),
            }
            for length in lengths
        }
        if longest is None:
            model[fmt]["512"] = {"1": None, "16": None}
    request = {}
    for fmt, (end_to_end, model_only) in requests.items():
        outer = stats(end_to_end, 1, spread(fmt, "request"))
        request[fmt] = {
            "end_to_end": outer,
            "model_only": stats(model_only),
            "overhead": {"value": end_to_end / model_only, "unsteady": outer["unsteady"]},
        }
    return {"parameters": 0, "size_mb": sizes, "model": model, "request": request}


def deploy(pytorch: float, fp32: float, int8: float, sizes: dict[str, float]) -> dict[str, Any]:
    return {
        "split": "dev",
        "rows": 200,
        "fp32": {
            "agreement": 1.0,
            "max_abs_logit_diff": 1e-6,
            "score": fp32,
            "size_mb": sizes["fp32"],
        },
        "int8": {
            "agreement": 0.995,
            "max_abs_logit_diff": 0.02,
            "score": int8,
            "size_mb": sizes["int8"],
        },
        "pytorch": {"score": pytorch},
    }


def row(model: str, scores: dict[str, dict[str, float]], **fields: Any) -> dict[str, Any]:
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


TEACHER_SIZES = {"pytorch": 42.1, "fp32": 42.3, "int8": 10.6}
STUDENT_SIZES = {"pytorch": 21.0, "fp32": 21.2, "int8": 5.3}

AFQMC = {
    "task": "afqmc",
    "kind": "classification",
    "metric": "accuracy",
    "metrics": ["accuracy"],
    "seeds": [1, 2],
    "seq_len": 128,
    "rows": [
        row(
            "teacher",
            {"1": {"accuracy": 70.1}, "2": {"accuracy": 71.0}},
            mean={"accuracy": 70.55},
            parameters=11_000_000,
            size_mb=42.1,
            speed=speed(
                128,
                {"pytorch": (5.0, 40.0), "fp32": (4.0, 32.0), "int8": (2.5, 16.0)},
                TEACHER_SIZES,
                {"fp32": (4.5, 4.0), "int8": (3.0, 2.5)},
            ),
            deploy=deploy(70.1, 70.1, 69.6, TEACHER_SIZES),
            relative={
                "score": 1.0,
                "parameters": 1.0,
                "throughput": 1.0,
                "latency_speedup": 1.0,
                "int8_throughput": 2.5,
                "int8_score_lost": 0.5,
                "end_to_end_over_model": 1.2,
                "unsteady": [],
            },
            margin={"accuracy": 1.55},
            predicted_classes={"1": 2, "2": 2},
            single_class=False,
        ),
        row(
            "first2",
            {"1": {"accuracy": 68.0}, "2": {"accuracy": 68.9}},
            mean={"accuracy": 68.45},
            parameters=5_500_000,
            size_mb=21.0,
            speed=speed(
                128,
                {"pytorch": (2.5, 20.0), "fp32": (2.0, 16.0), "int8": (1.25, 8.0)},
                STUDENT_SIZES,
                {"fp32": (2.5, 2.0), "int8": (1.5, 1.25)},
            ),
            deploy=deploy(68.0, 68.0, 67.75, STUDENT_SIZES),
            relative={
                "score": 0.9702,
                "parameters": 0.5,
                "throughput": 2.0,
                "latency_speedup": 2.0,
                "int8_throughput": 2.5,
                "int8_score_lost": 0.25,
                "end_to_end_over_model": 1.2,
                "unsteady": [],
            },
            margin={"accuracy": -0.55},
            predicted_classes={"1": 2, "2": 2},
            single_class=False,
        ),
        # Seed 1 answered the majority class for every example: it learned nothing. Its int8
        # b16 timing and its int8 requests were unsteady, and it cannot hold 512 positions.
        row(
            "first2.td",
            {"1": {"accuracy": 69.0}, "2": {"accuracy": 69.0}},
            mean={"accuracy": 69.0},
            base="first2",
            stage="task_distill",
            parameters=5_500_000,
            speed=speed(
                128,
                {"pytorch": (2.5, 20.0), "fp32": (2.0, 16.0), "int8": (1.25, 8.0)},
                STUDENT_SIZES,
                {"fp32": (2.5, 2.0), "int8": (1.5, 1.25)},
                unsteady=(("int8", "16"), ("int8", "request")),
                longest=None,
            ),
            deploy=deploy(69.0, 69.0, 69.0, STUDENT_SIZES),
            relative={
                "score": 0.978,
                "throughput": 2.0,
                "latency_speedup": 2.0,
                "int8_throughput": 2.5,
                "int8_score_lost": 0.0,
                "end_to_end_over_model": 1.2,
                "unsteady": ["end_to_end_over_model", "int8_throughput"],
            },
            margin={"accuracy": 0.0},
            predicted_classes={"1": 1, "2": 2},
            single_class=True,
        ),
        # No speed, size, deploy or relative fields at all: rendered as dashes.
        row(
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
    "config": {"task": {}, "evaluation": {"speed": {"threads": 2, "max_spread": 0.3}}},
}

# Timed at its own length only (512), with no config recorded: threads unknown, 25% spread.
CMRC = {
    "task": "cmrc2018",
    "kind": "qa",
    "metric": "f1",
    "metrics": ["em", "f1", "average"],
    "seeds": [1, 2],
    "seq_len": 512,
    "rows": [
        row(
            "teacher",
            {
                "1": {"em": 59.0, "f1": 80.1, "average": 69.55},
                "2": {"em": 61.0, "f1": 80.8, "average": 70.9},
            },
            mean={"em": 60.0, "f1": 80.45, "average": 70.225},
            parameters=11_100_000,
            size_mb=42.1,
            speed=speed(
                512,
                {"pytorch": (40.0, 400.0), "fp32": (32.0, 320.0), "int8": (20.0, 200.0)},
                TEACHER_SIZES,
                {"fp32": (36.0, 32.0), "int8": (24.0, 20.0)},
            ),
            deploy=deploy(80.1, 80.1, 79.1, TEACHER_SIZES),
            relative={"score": 1.0, "throughput": 1.0, "int8_throughput": 2.0, "unsteady": []},
            margin={"em": 60.0, "f1": 60.45, "average": 60.225},
            predicted_classes=None,
            single_class=None,
        ),
        row(
            "first2",
            {
                "1": {"em": 50.0, "f1": 72.0, "average": 61.0},
                "2": {"em": 51.0, "f1": 72.5, "average": 61.75},
            },
            mean={"em": 50.5, "f1": 72.25, "average": 61.375},
            parameters=5_600_000,
            size_mb=21.0,
            speed=speed(
                512,
                {"pytorch": (10.0, 100.0), "fp32": (8.0, 80.0), "int8": (5.0, 50.0)},
                STUDENT_SIZES,
                {"fp32": (9.0, 8.0), "int8": (6.0, 5.0)},
            ),
            # No int8 score recorded: the plot falls back to the row's mean.
            deploy=deploy(72.0, 72.0, None, STUDENT_SIZES),
            relative={
                "score": 0.8981,
                "throughput": 4.0,
                "int8_throughput": 2.0,
                "end_to_end_over_model": 1.2,
                "unsteady": [],
            },
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


def write_inputs(root: Path) -> dict[str, Any]:
    """The two eval JSONs and two bench JSONs under `root`."""
    evals = [root / "eval/afqmc.json", root / "eval/cmrc2018.json"]
    write_json(evals[0], AFQMC)
    write_json(evals[1], CMRC)
    benches = {"teacher": root / "bench/teacher.json", "first2": root / "bench/first2.json"}
    write_json(benches["teacher"], TEACHER_BENCH)
    write_json(benches["first2"], STUDENT_BENCH)
    return {"evals": evals, "benches": benches}
