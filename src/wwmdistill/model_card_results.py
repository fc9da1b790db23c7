"""The results part of a model card: the student's dev scores beside the teacher's and the
baselines, the speed table, and the ONNX deployments of its task models with how to serve them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wwmdistill.eval_fields import timing
from wwmdistill.report.formatting import (
    DEPLOY_ROOT,
    MISSING,
    ONE_CLASS,
    TEACHER,
    baseline_name,
    fmt,
    fmt_int8_score,
    fmt_margin,
    fmt_ms,
    fmt_per_second,
    fmt_percent,
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
from wwmdistill.report.inputs import load_evals
from wwmdistill.report.tables import speed_note, speed_table


def results_section(name: str, eval_paths: Iterable[str | Path]) -> str:
    """Per task: the teacher's and this student's rows (its own and those built on it), then
    the task's baseline; a model that predicted one class on dev is marked."""
    rows = []
    for data in load_evals(eval_paths):
        metric = data["metric"]
        task = str(data["task"])
        mine = [
            row
            for row in data["rows"]
            if str(row.get("model")) in (TEACHER, name) or row.get("base") == name
        ]
        for row in mine:
            rows.append(
                [
                    task,
                    model_label(row),
                    str(row.get("stage", MISSING)),
                    metric_name(metric),
                    fmt((row.get("mean") or {}).get(metric)),
                    fmt((row.get("max") or {}).get(metric)),
                    fmt_percent((row.get("relative") or {}).get("score")),
                    fmt_margin((row.get("margin") or {}).get(metric)),
                ]
            )
        baseline = data.get("baseline")
        if mine and isinstance(baseline, Mapping):
            score = fmt((baseline.get("scores") or {}).get(metric))
            relative = fmt_percent((baseline.get("relative") or {}).get("score"))
            rows.append(
                [task, baseline_name(baseline), MISSING, metric_name(metric), score, score]
                + [relative, MISSING]
            )
    lines = ["## Results", ""]
    if not rows:
        return "\n".join([*lines, "No evaluations yet."])
    lines += [
        "Dev-set scores (0-100), mean and max over fine-tuning seeds; relative score is the "
        "mean over the teacher's mean; vs baseline is the mean minus the task's baseline (a "
        "trivial predictor fit on train: the majority class, or for span QA the context's first "
        f'characters), in points. "{ONE_CLASS}" marks a model that predicted a single class '
        "on dev: it learned nothing.",
        "",
        markdown_table(
            ["task", "model", "stage", "metric", "mean", "max", "relative score", "vs baseline"],
            rows,
            left=4,
        ),
    ]
    return "\n".join(lines)


def deploy_section(name: str, evals: list[dict[str, Any]]) -> str:
    """Per task: the student's own rows (fine-tuned and task-distilled) as deployed, their
    exports' agreement and scores, sizes and speed at the task's length, and how to serve them."""
    rows: list[list[str]] = []
    examples: list[str] = []
    threads: dict[str, None] = {}
    limits: dict[str, None] = {}
    for data in evals:
        task, seq_len = str(data["task"]), data.get("seq_len")
        mine = [
            row
            for row in data["rows"]
            if str(row.get("model")) == name or row.get("base") == name
            if row.get("deploy") is not None or row.get("speed") is not None
        ]
        for row in mine:
            sizes = " / ".join(fmt(size_mb(row, f), 2) for f in ("pytorch", "fp32", "int8"))
            rows.append(
                [
                    task,
                    str(row.get("model", MISSING)),
                    f"`{DEPLOY_ROOT}/{task}/{row.get('model')}`",
                    metric_name(data["metric"]),
                    str(seq_len or MISSING),
                    fmt_percent(((row.get("deploy") or {}).get("fp32") or {}).get("agreement")),
                    fmt(((row.get("deploy") or {}).get("pytorch") or {}).get("score")),
                    fmt_int8_score(row),
                    sizes,
                    fmt_ms(timing(row, "int8", 1, seq_len)),
                    fmt_per_second(timing(row, "int8", 16, seq_len)),
                    fmt_request(row, "int8"),
                ]
            )
        if mine:
            count = threads_of(data)
            threads[f"{task} {'not recorded' if count is None else count}"] = None
            limits[spread_limit(data)] = None
            command = f"python -m wwmdistill.predict {DEPLOY_ROOT}/{task}/{mine[0].get('model')}"
            arguments, line = serve_usage(data.get("kind"))
            examples += [
                f"# {task}: one example from the arguments",
                f"{command} {arguments}",
                "# or one JSON object per line on stdin, through the int8 export",
                f"echo '{line}' | {command} --int8 --threads {count or 1}",
            ]
    lines = ["## Deploy", ""]
    if not rows:
        return "\n".join([*lines, "Not deployed yet."])
    lines += [
        "Each task model built on this student is exported to ONNX fp32 (`model.onnx`) and int8 "
        "(`model.int8.onnx`) in its directory, beside its tokenizer files, `labels.json` and "
        "`deploy.json`; the first seed's model. fp32 agreement is the share of dev predictions "
        "equal to PyTorch's; the scores are on dev (Δ: the int8 export's points against "
        "PyTorch); sizes are PyTorch / fp32 / int8; int8 b1 ms and b16 seq/s time the model "
        "alone at the task's length, int8 request one dev request at a time, raw text in and "
        "answer out (×: over the model alone). Threads (torch and onnxruntime): "
        f"{', '.join(threads)}. {unsteady_note(' / '.join(limits))}",
        "",
        markdown_table(
            [
                "task",
                "model",
                "directory",
                "metric",
                "length",
                "fp32 agreement",
                "PyTorch",
                "int8 (Δ)",
                "size (MB)",
                "int8 b1 (ms)",
                "int8 b16 (seq/s)",
                "int8 request (ms)",
            ],
            rows,
            left=4,
        ),
        "",
        "Serve a directory without torch (onnxruntime and the model's own tokenizer); it prints "
        "one JSON line per example: a label and every label's probability, an answer span, or "
        "the chosen option.",
        "",
        "```bash",
        *examples,
        "```",
    ]
    return "\n".join(lines)


def speed_section(benches: Mapping[str, Mapping[str, Any]]) -> str:
    if not benches:
        return "## Speed\n\nNot measured."
    return f"## Speed\n\n{speed_table(benches)}\n\n{speed_note(benches)}"
