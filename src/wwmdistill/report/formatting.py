"""How the report and the model cards write figures: numbers, speed cells, labels, tables.

A missing or non-numeric value renders as "–" everywhere, so a partial run still reports what
it has; a timing whose spread is too large to trust carries the unsteady mark, and so does any
ratio taken from it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from wwmdistill.eval_fields import lookup, request_overhead, request_timing
from wwmdistill.kinds import KINDS

MISSING = "–"
TEACHER = "teacher"
METRIC_NAMES = {"accuracy": "Acc", "em": "EM", "f1": "F1", "average": "Avg"}
ONE_CLASS = "⚠ predicts one class"
UNSTEADY = "⚠"
# evaluation.speed.max_spread's default: the eval JSON's config says when it differs.
MAX_SPREAD = 0.25
FORMATS = {"pytorch": "PyTorch", "fp32": "ONNX fp32", "int8": "ONNX int8"}
DEPLOY_ROOT = "results/deploy"


def as_number(value: Any) -> float | None:
    """A real number as a float; None for anything else (a bool, a string, None, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    """A number with `digits` decimals (and `suffix`), "–" for anything else."""
    number = as_number(value)
    return MISSING if number is None else f"{number:.{digits}f}{suffix}"


def fmt_percent(ratio: Any) -> str:
    """A ratio as a percentage with one decimal: 0.9683 -> "96.8%"."""
    number = as_number(ratio)
    return MISSING if number is None else f"{100 * number:.1f}%"


def fmt_millions(count: Any) -> str:
    """A parameter count in millions with one decimal: 11_000_000 -> "11.0"."""
    number = as_number(count)
    return MISSING if number is None else f"{number / 1e6:.1f}"


def fmt_margin(points: Any) -> str:
    """A signed difference in metric points: 3.2 -> "+3.20", -0.5 -> "-0.50"."""
    number = as_number(points)
    return MISSING if number is None else f"{number:+.2f}"


def fmt_speedup(ratio: Any) -> str:
    number = as_number(ratio)
    return MISSING if number is None else f"{number:.2f}x"


def _mark(text: str, unsteady: Any) -> str:
    """`text` with the unsteady mark when its timing (or a ratio's) was unsteady."""
    return f"{text} {UNSTEADY}" if unsteady is True and text != MISSING else text


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], *, left: int = 1) -> str:
    """A GitHub markdown table; the first `left` (text) columns left-aligned, numbers right."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join([":---"] * left + ["---:"] * (len(header) - left)) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- speed cells


def fmt_ms(stats: Mapping[str, Any] | None) -> str:
    """A timing's median in ms, marked when unsteady."""
    return _mark(fmt(lookup(stats, "median_ms")), lookup(stats, "unsteady"))


def fmt_ms_iqr(stats: Mapping[str, Any] | None) -> str:
    """A timing's median and interquartile range in ms: "3.45 [3.00–3.55]"."""
    text = fmt(lookup(stats, "median_ms"))
    if text != MISSING and as_number(lookup(stats, "q1_ms")) is not None:
        text += f" [{fmt(lookup(stats, 'q1_ms'))}–{fmt(lookup(stats, 'q3_ms'))}]"
    return _mark(text, lookup(stats, "unsteady"))


def fmt_per_second(stats: Mapping[str, Any] | None) -> str:
    """Sequences (or requests) per second at a timing's median, marked when unsteady."""
    return _mark(fmt(lookup(stats, "per_second"), 1), lookup(stats, "unsteady"))


def fmt_relative_speed(row: Any, key: str) -> str:
    """A speed ratio of relative (`throughput`, `int8_throughput`), marked when it is listed
    in relative.unsteady."""
    unsteady = key in (lookup(row, "relative", "unsteady") or ())
    return _mark(fmt_speedup(lookup(row, "relative", key)), unsteady)


def fmt_request(row: Any, fmt_name: str = "int8") -> str:
    """End-to-end ms of one request and its ratio to the model alone: "4.10 (×1.19)"."""
    stats = request_timing(row, fmt_name)
    overhead = request_overhead(row, fmt_name)
    text = fmt(lookup(stats, "median_ms"))
    ratio = as_number(lookup(overhead, "value"))
    if text != MISSING and ratio is not None:
        text += f" (×{ratio:.2f})"
    unsteady = lookup(stats, "unsteady") is True or lookup(overhead, "unsteady") is True
    return _mark(text, unsteady)


def fmt_int8_score(row: Any) -> str:
    """The int8 export's dev score and its difference from the same model in PyTorch."""
    score = lookup(row, "deploy", "int8", "score")
    lost = as_number(lookup(row, "relative", "int8_score_lost"))
    if fmt(score) == MISSING or lost is None:
        return fmt(score)
    return f"{fmt(score)} ({fmt_margin(0.0 - lost)})"  # 0.0 - x: no "-0.00"


def size_mb(row: Any, fmt_name: str) -> Any:
    """A format's size: the timed files' (speed.json), else deploy.json's, else the row's."""
    for keys in (("speed", "size_mb", fmt_name), ("deploy", fmt_name, "size_mb")):
        if (value := lookup(row, *keys)) is not None:
            return value
    return row.get("size_mb") if fmt_name == "pytorch" and isinstance(row, Mapping) else None


def spread_limit(data: Mapping[str, Any]) -> str:
    """evaluation.speed.max_spread as a percentage: 0.25 -> "25%"."""
    limit = as_number(lookup(data, "config", "evaluation", "speed", "max_spread"))
    return f"{100 * (MAX_SPREAD if limit is None else limit):g}%"


def unsteady_note(limit: str) -> str:
    """What the unsteady mark means, for a spread limit such as "25%"."""
    return (
        f"{UNSTEADY} spread (IQR) over {limit} of the median: the figure, and any ratio taken "
        "from it, is not to be trusted."
    )


def threads_of(data: Mapping[str, Any]) -> Any:
    """The torch and onnxruntime threads the task's timings ran on (evaluation.speed)."""
    return lookup(data, "config", "evaluation", "speed", "threads")


def serve_usage(kind: Any) -> tuple[str, str]:
    """The predict command's arguments for a task kind (its input fields in order), and one
    JSON line of the same fields for stdin."""
    task_kind = KINDS.get(str(kind))
    fields = task_kind.input_fields if task_kind else ("text",)
    lists = {
        name
        for name in fields
        if task_kind and pa.types.is_list(task_kind.row_schema.field(name).type)
    }
    arguments = " ".join(f"{name.upper()}..." if name in lists else name.upper() for name in fields)
    line = json.dumps(
        {name: ["…", "…"] if name in lists else "…" for name in fields}, ensure_ascii=False
    )
    return arguments, line


# ---------------------------------------------------------------- labels


def baseline_name(baseline: Mapping[str, Any]) -> str:
    """What a baseline predicts, in a few words: "baseline: majority class neg"."""
    method = baseline.get("method")
    if method == "majority_class":
        return f"baseline: majority class {baseline.get('class')}"
    if method == "majority_position":
        return f"baseline: majority answer position {baseline.get('class')}"
    if method == "first_k_characters":
        return f"baseline: first {baseline.get('k')} characters"
    return f"baseline: {method}"


def model_label(row: Mapping[str, Any]) -> str:
    """The row's model name, with a warning and the seeds where it predicted one class only."""
    name = str(row.get("model", MISSING))
    if row.get("single_class") is not True:
        return name
    counts = row.get("predicted_classes") or {}
    seeds = [seed for seed, count in counts.items() if count == 1]
    return f"{name} {ONE_CLASS}" + (f" (seed {', '.join(seeds)})" if seeds else "")
