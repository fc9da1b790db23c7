"""The report's figures: training loss curves, and dev score against CPU speed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wwmdistill.arrow_io import atomic_path
from wwmdistill.eval_fields import lookup, timing
from wwmdistill.report.formatting import FORMATS, as_number, baseline_name
from wwmdistill.report.inputs import load_evals, load_json

FORMAT_MARKERS = {"pytorch": "o", "fp32": "s", "int8": "^"}


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
        step = as_number(entry.get("step"))
        if step is None:
            continue
        for key, value in entry.items():
            number = as_number(value)
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
) -> list[tuple[str, str, str, float, float]]:
    """(task, model, format, throughput at batch 16, score) per row and format timed.

    Throughput is the format's sequences per second at the task's length; the score is the
    row's mean primary score for PyTorch, the export's dev score for fp32 and int8 (the mean
    where the export has none). A model that predicts one class is named "(one class)" after it.
    """
    points = []
    for data in evals:
        for row in data["rows"]:
            mean = as_number(lookup(row, "mean", data["metric"]))
            name = str(row.get("model")) + (" (one class)" if row.get("single_class") else "")
            for fmt_name in FORMATS:
                speed = as_number(
                    lookup(timing(row, fmt_name, 16, data.get("seq_len")), "per_second")
                )
                score = mean
                if fmt_name != "pytorch":
                    exported = as_number(lookup(row, "deploy", fmt_name, "score"))
                    score = mean if exported is None else exported
                if speed is not None and score is not None:
                    points.append((str(data["task"]), name, fmt_name, speed, score))
    return points


def baseline_levels(evals: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, str]]:
    """Per task with a baseline: its primary score and the label of its line on the plot."""
    levels = {}
    for data in evals:
        score = as_number(lookup(data, "baseline", "scores", data["metric"]))
        if score is not None:
            levels[str(data["task"])] = (score, f"{data['task']} {baseline_name(data['baseline'])}")
    return levels


def score_vs_speed_figure(evals: Sequence[Mapping[str, Any]]):
    """Score against CPU throughput: a point per model, format and task, the task as colour,
    the format as marker, the model named at its first format's point.

    Each task's baseline is a dashed horizontal line in the task's colour, labelled on the line
    (at the left edge, whatever the x scale) and in the legend.
    """
    from matplotlib import rcParams
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    points = score_speed_points(evals)
    figure = _figure(7.0, 5.0)
    if not points:
        _placeholder(figure, "no rows with both a score and a CPU throughput")
        return figure
    axes = figure.add_subplot(1, 1, 1)
    levels = baseline_levels(evals)
    cycle = rcParams["axes.prop_cycle"].by_key()["color"]
    handles: list[Any] = []
    for index, task in enumerate(dict.fromkeys(p[0] for p in points)):
        color = cycle[index % len(cycle)]
        handles.append(Patch(color=color, label=task))
        mine = [p for p in points if p[0] == task]
        for fmt_name in FORMATS:
            dots = [p for p in mine if p[2] == fmt_name]
            if dots:
                axes.scatter(
                    [p[3] for p in dots],
                    [p[4] for p in dots],
                    color=color,
                    marker=FORMAT_MARKERS[fmt_name],
                    label=f"{task} {FORMATS[fmt_name]}",
                )
        for model in dict.fromkeys(p[1] for p in mine):
            _, _, _, x, y = next(p for p in mine if p[1] == model)
            axes.annotate(
                model, (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small"
            )
        if task in levels:
            score, label = levels[task]
            line = axes.axhline(score, color=color, linestyle="--", linewidth=1, label=label)
            handles.append(line)
            axes.text(
                0.01,
                score,
                label,
                transform=axes.get_yaxis_transform(),
                color=color,
                fontsize="small",
                va="bottom",
            )
    handles += [
        Line2D([], [], color="grey", marker=FORMAT_MARKERS[f], linestyle="none", label=title)
        for f, title in FORMATS.items()
        if any(p[2] == f for p in points)
    ]
    speeds = [p[3] for p in points]
    if min(speeds) > 0 and max(speeds) / min(speeds) > 10:
        axes.set_xscale("log")  # students are often orders of magnitude faster
    axes.set(
        title="score against CPU speed",
        xlabel="throughput at batch 16 (sequences/s, task length)",
        ylabel="dev score (PyTorch: mean over seeds; ONNX: first seed)",
    )
    axes.grid(alpha=0.3)
    axes.legend(handles=handles, fontsize="small")
    return figure


def plot_score_vs_speed(eval_paths: Iterable[str | Path], out_png: str | Path) -> None:
    """The score-against-speed figure of the eval JSONs, as a PNG."""
    _save_png(score_vs_speed_figure(load_evals(eval_paths)), out_png)
