"""The run's report: per-task tables, a model x task summary, the speed table and two plots.

Tables follow the HFL / CLUE READMEs: scores on a 0-100 scale with two decimals, the max and
the mean over fine-tuning seeds, each model's mean relative to the teacher's. Every task table
carries its trivial baseline (majority class of train, first characters of the context for span
QA) and each model's margin over it, and marks a model that predicted one class on dev. A
missing row or field renders as "–" so a partial run still reports what it has.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from wwmdistill.arrow_io import atomic_path

MISSING = "–"
TEACHER = "teacher"
METRIC_NAMES = {"accuracy": "Acc", "em": "EM", "f1": "F1", "average": "Avg"}
ONE_CLASS = "⚠ predicts one class"


# ---------------------------------------------------------------- formatting


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    """A number with `digits` decimals (and `suffix`), "–" for anything else."""
    number = _number(value)
    return MISSING if number is None else f"{number:.{digits}f}{suffix}"


def fmt_percent(ratio: Any) -> str:
    """A ratio as a percentage with one decimal: 0.9683 -> "96.8%"."""
    number = _number(ratio)
    return MISSING if number is None else f"{100 * number:.1f}%"


def fmt_millions(count: Any) -> str:
    """A parameter count in millions with one decimal: 11_000_000 -> "11.0"."""
    number = _number(count)
    return MISSING if number is None else f"{number / 1e6:.1f}"


def fmt_margin(points: Any) -> str:
    """A signed difference in metric points: 3.2 -> "+3.20", -0.5 -> "-0.50"."""
    number = _number(points)
    return MISSING if number is None else f"{number:+.2f}"


def fmt_speedup(ratio: Any) -> str:
    number = _number(ratio)
    return MISSING if number is None else f"{number:.2f}x"


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], *, left: int = 1) -> str:
    """A GitHub markdown table; the first `left` (text) columns left-aligned, numbers right."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join([":---"] * left + ["---:"] * (len(header) - left)) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _get(data: Any, *keys: str) -> Any:
    """data[k1][k2]... or None where a level is missing or null."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


# ---------------------------------------------------------------- inputs


def load_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"report: {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"report: {path}:{err.lineno}: not JSON: {err.msg}") from err


def load_evals(eval_paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The eval JSONs in the given order; each must name its task and primary metric."""
    evals = []
    for path in eval_paths:
        data = load_json(path)
        for key in ("task", "metric"):
            if key not in data:
                raise ValueError(f"report: {path}: eval JSON lacks the key {key!r}")
        data.setdefault("metrics", [data["metric"]])
        data.setdefault("rows", [])
        evals.append(data)
    return evals


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


def load_benches(
    bench_paths: Mapping[str, str | Path] | Sequence[str | Path],
) -> dict[str, dict[str, Any]]:
    """Bench JSONs by model name: the mapping's key, else the JSON's `model`, else the file stem."""
    if isinstance(bench_paths, Mapping):
        return {str(name): load_json(path) for name, path in bench_paths.items()}
    benches = {}
    for path in bench_paths:
        data = load_json(path)
        benches[str(data.get("model") or Path(path).stem)] = data
    return benches


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


# ---------------------------------------------------------------- tables


def task_table(data: Mapping[str, Any]) -> str:
    """One task: model x (max, mean per metric), relative score, size and speed at its length."""
    metrics = list(data["metrics"])
    header = ["model"]
    for metric in metrics:
        header += [f"{metric_name(metric)} max", f"{metric_name(metric)} mean"]
    header += [
        "relative score",
        f"{metric_name(data['metric'])} vs baseline",
        "params (M)",
        "size (MB)",
        "CPU latency b1 (ms)",
        "CPU throughput b16 (seq/s)",
        "speed-up vs teacher",
    ]
    rows = []
    for row in data["rows"]:
        cells = [model_label(row)]
        for metric in metrics:
            cells += [fmt(_get(row, "max", metric)), fmt(_get(row, "mean", metric))]
        cells += [
            fmt_percent(_get(row, "relative", "score")),
            fmt_margin(_get(row, "margin", data["metric"])),
            fmt_millions(row.get("parameters")),
            fmt(row.get("size_mb"), 1),
            fmt(_get(row, "speed", "cpu", "latency_ms_b1")),
            fmt(_get(row, "speed", "cpu", "throughput_b16"), 1),
            fmt_speedup(_get(row, "relative", "latency_speedup")),
        ]
        rows.append(cells)
    baseline = data.get("baseline")
    if isinstance(baseline, Mapping):
        # One deterministic prediction: its score is the max and the mean.
        cells = [baseline_name(baseline)]
        for metric in metrics:
            cells += [fmt(_get(baseline, "scores", metric))] * 2
        cells += [fmt_percent(_get(baseline, "relative", "score"))]
        rows.append(cells + [MISSING] * (len(header) - len(cells)))
    return markdown_table(header, rows)


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
            f"{metric_name(data['metric'])} {fmt(_get(baseline, 'scores', data['metric']))}."
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
        params = next((p for r in found if (p := _get(r, "parameters")) is not None), None)
        rows.append(_summary_cells(evals, found, model, fmt_millions(params)))
    baselines = [data.get("baseline") for data in evals]
    if any(isinstance(b, Mapping) for b in baselines):
        found = [{"mean": _get(b, "scores"), "relative": _get(b, "relative")} for b in baselines]
        rows.append(_summary_cells(evals, found, "baseline", MISSING))
    return markdown_table(header, rows)


def _summary_cells(
    evals: Sequence[Mapping[str, Any]], found: Sequence[Any], name: str, params: str
) -> list[str]:
    """One summary row from the row (or None) of each task; a one-class score is marked ⚠."""
    scores = [_number(_get(r, "mean", d["metric"])) for d, r in zip(evals, found, strict=True)]
    ratios = [_number(_get(r, "relative", "score")) for r in found]
    complete = bool(evals) and all(s is not None for s in scores)
    average = sum(scores) / len(scores) if complete else None
    relative = sum(ratios) / len(ratios) if all(r is not None for r in ratios) else None
    cells = [
        fmt(score) + (" ⚠" if _get(row, "single_class") is True else "")
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
                fmt(_get(bench, "cpu", "latency_ms_b1")),
                fmt(_get(bench, "cpu", "throughput_b16"), 1),
                fmt(_get(bench, "gpu", "latency_ms_b1")),
                fmt(_get(bench, "gpu", "throughput_b16"), 1),
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
        f"CPU: {_distinct(_get(b, 'device_names', 'cpu') for b in values)} "
        f"({_distinct(b.get('cpu_threads') for b in values)} thread(s)); "
        f"GPU: {_distinct(_get(b, 'device_names', 'gpu') for b in values)}; "
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
        "is a model's mean primary score over the teacher's; speed-up is the teacher's CPU "
        "latency at batch 1 over the model's, at the task's length. Each task's baseline row "
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
        parts += ["", _task_heading(data), "", task_table(data)]
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


# ---------------------------------------------------------------- plots


def _figure(width: float, height: float):
    # A bare Figure on the Agg canvas: no pyplot state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure, out_png: str | Path) -> None:
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight")


def _placeholder(figure, message: str) -> None:
    axes = figure.add_subplot(1, 1, 1)
    axes.text(0.5, 0.5, message, ha="center", va="center")
    axes.set_axis_off()


def loss_history(data: Mapping[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """Per logged quantity (loss, loss_kd, ...): steps and values from a Trainer log_history."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for entry in data.get("log_history") or []:
        step = _number(entry.get("step"))
        if step is None:
            continue
        for key, value in entry.items():
            number = _number(value)
            if (key == "loss" or key.startswith("loss_")) and number is not None:
                steps, values = curves.setdefault(key, ([], []))
                steps.append(step)
                values.append(number)
    return curves


def plot_loss_curves(metrics_paths: Mapping[str, str | Path], out_png: str | Path) -> None:
    """Total training loss of every model on one panel, then one panel of components per model.

    A metrics file without a log_history (a fetched teacher) is left out of the plot.
    """
    histories = {name: loss_history(load_json(path)) for name, path in metrics_paths.items()}
    histories = {name: curves for name, curves in histories.items() if curves}
    with_parts = [name for name, curves in histories.items() if len(curves) > 1]
    panels = 1 + len(with_parts)
    columns = min(panels, 3)
    rows = math.ceil(panels / columns)
    figure = _figure(5.0 * columns, 3.6 * rows)
    if not histories:
        _placeholder(figure, "no loss history logged")
        _save_png(figure, out_png)
        return
    axes = figure.add_subplot(rows, columns, 1)
    for name, curves in histories.items():
        if "loss" in curves:
            axes.plot(*curves["loss"], label=name)
    axes.set(title="training loss", xlabel="step", ylabel="loss")
    axes.legend(fontsize="small")
    for index, name in enumerate(with_parts, start=2):
        axes = figure.add_subplot(rows, columns, index)
        for key, (steps, values) in histories[name].items():
            if key != "loss":
                axes.plot(steps, values, label=key.removeprefix("loss_"))
        axes.set(title=f"{name}: loss components", xlabel="step", ylabel="unweighted loss")
        axes.legend(fontsize="small")
    figure.tight_layout()
    _save_png(figure, out_png)


def score_speed_points(
    evals: Sequence[Mapping[str, Any]],
) -> list[tuple[str, str, float, float]]:
    """(task, model, CPU throughput at batch 16, mean primary score) for rows with both.

    A model that predicts one class is named "(one class)" after it.
    """
    points = []
    for data in evals:
        for row in data["rows"]:
            speed = _number(_get(row, "speed", "cpu", "throughput_b16"))
            score = _number(_get(row, "mean", data["metric"]))
            if speed is not None and score is not None:
                name = str(row.get("model")) + (" (one class)" if row.get("single_class") else "")
                points.append((str(data["task"]), name, speed, score))
    return points


def baseline_levels(evals: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, str]]:
    """Per task with a baseline: its primary score and the label of its line on the plot."""
    levels = {}
    for data in evals:
        score = _number(_get(data, "baseline", "scores", data["metric"]))
        if score is not None:
            levels[str(data["task"])] = (score, f"{data['task']} {baseline_name(data['baseline'])}")
    return levels


def score_vs_speed_figure(evals: Sequence[Mapping[str, Any]]):
    """Mean primary score against CPU throughput: a labelled point per model and task.

    Each task's baseline is a dashed horizontal line in the task's colour, labelled on the line
    (at the left edge, whatever the x scale) and in the legend.
    """
    points = score_speed_points(evals)
    figure = _figure(7.0, 5.0)
    if not points:
        _placeholder(figure, "no rows with both a score and a CPU throughput")
        return figure
    axes = figure.add_subplot(1, 1, 1)
    levels = baseline_levels(evals)
    for task in dict.fromkeys(p[0] for p in points):
        mine = [p for p in points if p[0] == task]
        dots = axes.scatter([p[2] for p in mine], [p[3] for p in mine], label=task)
        for _, model, x, y in mine:
            axes.annotate(
                model, (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small"
            )
        if task in levels:
            score, label = levels[task]
            color = dots.get_facecolor()[0]
            axes.axhline(score, color=color, linestyle="--", linewidth=1, label=label)
            axes.text(
                0.01,
                score,
                label,
                transform=axes.get_yaxis_transform(),
                color=color,
                fontsize="small",
                va="bottom",
            )
    speeds = [p[2] for p in points]
    if min(speeds) > 0 and max(speeds) / min(speeds) > 10:
        axes.set_xscale("log")  # students are often orders of magnitude faster
    axes.set(
        title="score against CPU speed",
        xlabel="CPU throughput at batch 16 (sequences/s, task length)",
        ylabel="mean primary score (dev)",
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return figure


def plot_score_vs_speed(eval_paths: Iterable[str | Path], out_png: str | Path) -> None:
    """The score-against-speed figure of the eval JSONs, as a PNG."""
    _save_png(score_vs_speed_figure(load_evals(eval_paths)), out_png)
