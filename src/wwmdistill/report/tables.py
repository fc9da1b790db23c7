"""The report's markdown: a model x task summary, per-task tables, seed 004's speed table.

Tables follow the HFL / CLUE READMEs: scores on a 0-100 scale with two decimals, the max and
the mean over fine-tuning seeds, each model's mean relative to the teacher's. Every task table
carries its trivial baseline (majority class of train, first characters of the context for span
QA) and each model's margin over it, and marks a model that predicted one class on dev. Beside
the scores, what a deploying user needs: each row's PyTorch and ONNX (fp32, int8) speed at the
task's length, its exports' agreement and int8 score, and how to serve it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from wwmdistill.arrow_io import atomic_path
from wwmdistill.eval_fields import lookup, request_timing, timing
from wwmdistill.report.formatting import (
    DEPLOY_ROOT,
    FORMATS,
    MISSING,
    ONE_CLASS,
    TEACHER,
    as_number,
    baseline_name,
    fmt,
    fmt_int8_score,
    fmt_margin,
    fmt_millions,
    fmt_ms,
    fmt_ms_iqr,
    fmt_per_second,
    fmt_percent,
    fmt_relative_speed,
    fmt_request,
    markdown_table,
    metric_name,
    model_label,
    serve_usage,
    size_mb,
    spread_limit,
    threads_of,
    unsteady_note,
)
from wwmdistill.report.inputs import load_benches, load_evals


def model_order(evals: Sequence[Mapping[str, Any]], extra: Iterable[str] = ()) -> list[str]:
    """The teacher first, then models in order of first appearance."""
    seen: dict[str, None] = {}
    for data in evals:
        for row in data["rows"]:
            seen.setdefault(str(row.get("model")), None)
    for name in extra:
        seen.setdefault(name, None)
    names = list(seen)
    return sorted(names, key=lambda name: name != TEACHER)


def task_table(data: Mapping[str, Any]) -> str:
    """One task: model x (max, mean per metric), relative score, size, and what deploying it
    gives at the task's length: PyTorch and int8 speed, the int8 speed-up, the speed-up over
    the teacher, a request end to end, the exports' agreement and the int8 score."""
    metrics = list(data["metrics"])
    primary = metric_name(data["metric"])
    seq_len = data.get("seq_len")
    header = ["model"]
    for metric in metrics:
        header += [f"{metric_name(metric)} max", f"{metric_name(metric)} mean"]
    header += [
        "relative score",
        f"{primary} vs baseline",
        "params (M)",
        "size (MB)",
        "int8 size (MB)",
        "PyTorch b1 (ms)",
        "int8 b1 (ms)",
        "int8 b16 (seq/s)",
        "int8 speed-up b16",
        "speed-up vs teacher",
        "int8 request (ms)",
        "fp32 agreement",
        f"int8 {primary} (Δ)",
    ]
    rows = []
    for row in data["rows"]:
        cells = [model_label(row)]
        for metric in metrics:
            cells += [fmt(lookup(row, "max", metric)), fmt(lookup(row, "mean", metric))]
        cells += [
            fmt_percent(lookup(row, "relative", "score")),
            fmt_margin(lookup(row, "margin", data["metric"])),
            fmt_millions(row.get("parameters")),
            fmt(row.get("size_mb"), 1),
            fmt(size_mb(row, "int8"), 1),
            fmt_ms(timing(row, "pytorch", 1, seq_len)),
            fmt_ms(timing(row, "int8", 1, seq_len)),
            fmt_per_second(timing(row, "int8", 16, seq_len)),
            fmt_relative_speed(row, "int8_throughput"),
            fmt_relative_speed(row, "throughput"),
            fmt_request(row, "int8"),
            fmt_percent(lookup(row, "deploy", "fp32", "agreement")),
            fmt_int8_score(row),
        ]
        rows.append(cells)
    baseline = data.get("baseline")
    if isinstance(baseline, Mapping):
        # One deterministic prediction: its score is the max and the mean.
        cells = [baseline_name(baseline)]
        for metric in metrics:
            cells += [fmt(lookup(baseline, "scores", metric))] * 2
        cells += [fmt_percent(lookup(baseline, "relative", "score"))]
        rows.append(cells + [MISSING] * (len(header) - len(cells)))
    return markdown_table(header, rows)


def task_note(data: Mapping[str, Any]) -> str:
    """What the task table's speed and deploy columns measure."""
    threads = threads_of(data)
    primary = metric_name(data["metric"])
    on = "threads not recorded" if threads is None else f"{threads} thread(s)"
    return (
        f"Speed at length {data.get('seq_len') or MISSING} ({on}), the median over interleaved "
        "rounds: b1 ms and b16 seq/s time the model alone on random ids; int8 speed-up is the "
        "model's PyTorch b16 time over its int8 one, speed-up vs teacher the teacher's PyTorch "
        "b16 time over the model's; int8 request is one dev request at a time, raw text in and "
        "answer out (×: over the model alone on the same request). fp32 agreement is the share "
        f"of dev predictions of the ONNX fp32 export equal to PyTorch's; int8 {primary} the int8 "
        "export's dev score (Δ: points against the same model in PyTorch); both of the first "
        f"seed's model. {unsteady_note(spread_limit(data))}"
    )


def _lengths(data: Mapping[str, Any]) -> list[int]:
    """The task's length, then the longest length any row was timed at (the bench's 512)."""
    found = {
        int(length)
        for row in data["rows"]
        for by_length in (lookup(row, "speed", "model") or {}).values()
        if isinstance(by_length, Mapping)
        for length in by_length
        if str(length).isdigit()
    }
    seq_len = data.get("seq_len")
    lengths = [int(seq_len)] if isinstance(seq_len, int) else []
    if found and max(found) not in lengths:
        lengths.append(max(found))
    return lengths


def formats_table(data: Mapping[str, Any]) -> str | None:
    """One row per model and format: size, b1 median [IQR] and b16 per second at each length,
    and for the ONNX formats a request end to end; None when no row was deployed."""
    lengths = _lengths(data)
    header = ["model", "format", "size (MB)"]
    for length in lengths:
        header += [f"b1 ms @{length}", f"b16 seq/s @{length}"]
    header.append("request ms")
    rows = []
    for row in data["rows"]:
        if lookup(row, "speed") is None and lookup(row, "deploy") is None:
            continue
        for fmt_name, title in FORMATS.items():
            cells = [str(row.get("model", MISSING)), title, fmt(size_mb(row, fmt_name), 2)]
            for length in lengths:
                cells += [
                    fmt_ms_iqr(timing(row, fmt_name, 1, length)),
                    fmt_per_second(timing(row, fmt_name, 16, length)),
                ]
            cells.append(fmt_ms_iqr(request_timing(row, fmt_name)))
            rows.append(cells)
    return markdown_table(header, rows, left=2) if rows else None


def serve_note(data: Mapping[str, Any]) -> str:
    """How to serve any row of the task from its deploy directory, torch-free."""
    arguments, line = serve_usage(data.get("kind"))
    command = f"python -m wwmdistill.predict {DEPLOY_ROOT}/{data['task']}/MODEL {arguments}"
    return (
        f"Serve a model of this table without torch: `{command}` (MODEL a row's name; "
        "`--int8` serves the int8 export, `--threads N` sets onnxruntime's threads), or give no "
        f"texts and one JSON object per line on stdin: `{line}`."
    )


def _task_heading(data: Mapping[str, Any]) -> str:
    seeds = data.get("seeds") or []
    parts = [f"primary metric {metric_name(data['metric'])}"]
    if seeds:
        parts.append(f"{len(seeds)} seed(s): {', '.join(str(s) for s in seeds)}")
    if data.get("seq_len"):
        parts.append(f"length {data['seq_len']}")
    lines = [f"### {data['task']}", "", f"{'; '.join(parts)}."]
    baseline = data.get("baseline")
    if isinstance(baseline, Mapping):
        lines.append(
            f"Baseline ({baseline_name(baseline).removeprefix('baseline: ')}): "
            f"{baseline.get('description', MISSING)}: "
            f"{metric_name(data['metric'])} {fmt(lookup(baseline, 'scores', data['metric']))}."
        )
    return "\n".join(lines)


def summary_table(evals: Sequence[Mapping[str, Any]]) -> str:
    """Model x task mean primary score; Average and Relative only over a complete row."""
    header = ["model", "params (M)"]
    header += [f"{data['task']} ({metric_name(data['metric'])})" for data in evals]
    header += ["Average", "Relative"]
    rows = []
    for model in model_order(evals):
        found = [next((r for r in d["rows"] if str(r.get("model")) == model), None) for d in evals]
        params = next((p for r in found if (p := lookup(r, "parameters")) is not None), None)
        rows.append(_summary_cells(evals, found, model, fmt_millions(params)))
    baselines = [data.get("baseline") for data in evals]
    if any(isinstance(b, Mapping) for b in baselines):
        found = [
            {"mean": lookup(b, "scores"), "relative": lookup(b, "relative")} for b in baselines
        ]
        rows.append(_summary_cells(evals, found, "baseline", MISSING))
    return markdown_table(header, rows)


def _summary_cells(
    evals: Sequence[Mapping[str, Any]], found: Sequence[Any], name: str, params: str
) -> list[str]:
    """One summary row from the row (or None) of each task; a one-class score is marked ⚠."""
    scores = [as_number(lookup(r, "mean", d["metric"])) for d, r in zip(evals, found, strict=True)]
    ratios = [as_number(lookup(r, "relative", "score")) for r in found]
    complete = bool(evals) and all(s is not None for s in scores)
    average = sum(scores) / len(scores) if complete else None
    relative = sum(ratios) / len(ratios) if all(r is not None for r in ratios) else None
    cells = [
        fmt(score) + (" ⚠" if lookup(row, "single_class") is True else "")
        for score, row in zip(scores, found, strict=True)
    ]
    return [name, params, *cells, fmt(average), fmt_percent(relative if complete else None)]


def speed_table(benches: Mapping[str, Mapping[str, Any]]) -> str:
    """seed 004's table: size, CPU and GPU latency at batch 1 and throughput at batch 16."""
    header = [
        "model",
        "params (M)",
        "size (MB)",
        "CPU latency b1 (ms)",
        "CPU throughput b16 (seq/s)",
        "GPU latency b1 (ms)",
        "GPU throughput b16 (seq/s)",
    ]
    order = sorted(benches, key=lambda name: name != TEACHER)
    rows = []
    for name in order:
        bench = benches[name]
        rows.append(
            [
                name,
                fmt_millions(bench.get("parameters")),
                fmt(bench.get("size_mb"), 1),
                fmt(lookup(bench, "cpu", "latency_ms_b1")),
                fmt(lookup(bench, "cpu", "throughput_b16"), 1),
                fmt(lookup(bench, "gpu", "latency_ms_b1")),
                fmt(lookup(bench, "gpu", "throughput_b16"), 1),
            ]
        )
    return markdown_table(header, rows)


def _distinct(values: Iterable[Any]) -> str:
    found = list(dict.fromkeys(str(v) for v in values if v not in (None, "")))
    return ", ".join(found) if found else MISSING


def speed_note(benches: Mapping[str, Mapping[str, Any]]) -> str:
    """Where and how the speed table was measured."""
    values = list(benches.values())
    return (
        f"Random inputs of length {_distinct(b.get('seq_len') for b in values)}, encoder only, "
        "float32; latency is the median at batch 1, throughput sequences per second at batch 16. "
        f"CPU: {_distinct(lookup(b, 'device_names', 'cpu') for b in values)} "
        f"({_distinct(b.get('cpu_threads') for b in values)} thread(s)); "
        f"GPU: {_distinct(lookup(b, 'device_names', 'gpu') for b in values)}; "
        f"torch {_distinct(b.get('torch') for b in values)}."
    )


def render_report(
    evals: Sequence[Mapping[str, Any]],
    benches: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
) -> str:
    parts = [
        "# wwmdistill report",
        "",
        "Scores are on the dev sets, 0-100, max and mean over fine-tuning seeds; relative score "
        "is a model's mean primary score over the teacher's. Speed and deployment figures are "
        "on CPU at the task's length, of the first seed's model: PyTorch, and its ONNX fp32 and "
        "int8 exports under results/deploy/{task}/{model}. Each task's baseline row "
        "is a trivial predictor fit on train and scored on the same dev split (the majority "
        "class; for span QA the context's first characters); \"vs baseline\" is a model's "
        f'mean primary score minus the baseline\'s, in points. "{ONE_CLASS}" marks a model '
        "that predicted a single class on dev for the seeds named: it learned nothing.",
        "",
        "## Summary",
        "",
        "Mean primary score per task; Average and Relative (mean of the relative scores) only "
        "for models with every task; ⚠ marks a score of a model that predicts one class.",
        "",
        summary_table(evals) if evals else "No evaluations.",
        "",
        "## Tasks",
    ]
    for data in evals:
        parts += ["", _task_heading(data), "", task_table(data), "", task_note(data)]
        formats = formats_table(data)
        if formats is not None:
            parts += [
                "",
                f"#### {data['task']}: deployed formats",
                "",
                formats,
                "",
                "Per model and format: b1 ms is the median [interquartile range] at batch 1, "
                "b16 seq/s sequences per second at batch 16, both the model alone on random ids "
                "(– where the model cannot hold the length); request ms is one dev request at a "
                f"time end to end. {unsteady_note(spread_limit(data))}",
                "",
                serve_note(data),
            ]
    parts += ["", "## Speed", ""]
    if benches:
        parts += [speed_table(benches), "", speed_note(benches)]
    else:
        parts.append("No speed measurements.")
    dumped = yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True).rstrip()
    parts += ["", "## Configuration", "", "```yaml", dumped, "```", ""]
    return "\n".join(parts)


def build_report(
    eval_paths: Iterable[str | Path],
    bench_paths: Mapping[str, str | Path] | Sequence[str | Path],
    config: Mapping[str, Any],
    out_md: str | Path,
) -> str:
    """Write the markdown report to `out_md` (atomically) and return its text."""
    text = render_report(load_evals(eval_paths), load_benches(bench_paths), config)
    with atomic_path(out_md) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return text
