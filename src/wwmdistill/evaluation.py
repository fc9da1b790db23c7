"""One task's comparison table: every model's dev scores over seeds, its size and its speed.

The rows come from the prediction directories of fine-tuning (and, later, task distillation):
each holds the scores.json and dev predictions of one model and seed. Speed is measured here, on
the fine-tuned model of the first seed, at the task's sequence length; size and parameters are
its own. The table carries the trivial baseline of the same dev split (fit on train) and each
row's margin over it, and flags a model that predicted a single class on dev: a score that only
matches the baseline means nothing was learned.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wwmdistill.arrow_io import ArtifactError, write_json
from wwmdistill.finetune import TaskData
from wwmdistill.kinds import TaskKind
from wwmdistill.models import count_parameters, require_model_dir
from wwmdistill.settings import SpeedSettings
from wwmdistill.speed import measure_speed, model_size_mb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalRow:
    """One model on one task: where its per-seed scores are (seed -> predictions dir)."""

    model: str
    stage: str
    base: str
    predictions: Mapping[int, Path]


_DEFAULT_SPEED = SpeedSettings()  # frozen, so one instance serves every call


def _scores(row: EvalRow, task: str) -> tuple[dict[str, dict[str, float]], list[Path], str]:
    per_seed, model_dirs, kinds = {}, [], set()
    for seed, directory in sorted(row.predictions.items()):
        path = Path(directory) / "scores.json"
        if not path.is_file():
            raise ArtifactError(f"{path}: missing; rerun the fine-tuning of {row.model}")
        scores = json.loads(path.read_text(encoding="utf-8"))
        if scores.get("task") != task or int(scores.get("seed", -1)) != seed:
            raise ArtifactError(
                f"{path}: holds task {scores.get('task')!r} seed {scores.get('seed')}, expected "
                f"{task!r} seed {seed}"
            )
        per_seed[str(seed)] = scores["dev"]
        model_dirs.append(Path(scores["model_dir"]))
        kinds.add(scores["metric"])
    if len(kinds) != 1:
        raise ArtifactError(f"{row.model} on {task}: mixed metrics {sorted(kinds)}")
    return per_seed, model_dirs, kinds.pop()


def _speed(model_dir: Path, kind: TaskKind, seq_len: int, settings: SpeedSettings) -> dict:
    model = kind.speed_model(require_model_dir(model_dir))
    speed: dict[str, Any] = {"seq_len": seq_len}
    speed["cpu"] = measure_speed(
        model, seq_len, device="cpu", repeats=settings.repeats, warmup=settings.warmup
    )
    speed["gpu"] = (
        measure_speed(
            model.to("cuda"),
            seq_len,
            device="cuda",
            repeats=settings.repeats,
            warmup=settings.warmup,
        )
        if torch.cuda.is_available()
        else None
    )
    return speed | {"parameters": count_parameters(model)}


def baseline_scores(task: TaskData) -> dict[str, Any]:
    """The task kind's trivial baseline of the dev split the models are scored on, fit on train."""
    train, dev = task.splits["train"], task.splits["dev"]
    try:
        baseline = task.kind.baseline(task.labels, train, dev)
    except ValueError as error:
        raise ValueError(f"task {task.name}: {error}") from None
    return {"fit_on": "train", "scored_on": "dev", "dev_rows": dev.num_rows} | baseline


def predicted_classes(path: Path, dev_ids: Sequence[str]) -> int:
    """How many distinct labels a model predicted on dev, from its {"id", "label"} lines."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; rerun the fine-tuning that writes it")
    labels, seen = set(), set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                row_id, label = record["id"], record["label"]
            except (json.JSONDecodeError, TypeError, KeyError) as err:
                raise ArtifactError(
                    f'{path}:{number}: not a {{"id", "label"}} JSON line ({err})'
                ) from err
            if not isinstance(label, str | int):
                raise ArtifactError(f"{path}:{number}: label {label!r} is not a string or int")
            seen.add(str(row_id))
            labels.add(label)
    if seen != set(dev_ids):
        raise ArtifactError(
            f"{path}: predicts {len(seen)} ids, {len(seen - set(dev_ids))} not in dev; the dev "
            f"split has {len(set(dev_ids))}; rerun the fine-tuning on the current task data"
        )
    return len(labels)


def _bench(bench: Mapping[str, Path] | None, base: str) -> dict[str, Any] | None:
    if not bench or base not in bench:
        return None
    table = json.loads(Path(bench[base]).read_text(encoding="utf-8"))
    return {key: table.get(key) for key in ("seq_len", "size_mb", "parameters", "cpu", "gpu")}


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def _row_entry(
    row: EvalRow,
    task: TaskData,
    metric: str,
    dev_ids: list[str],
    seq_len: int,
    speed: SpeedSettings,
    bench: Mapping[str, Path] | None,
) -> dict[str, Any]:
    """One model's entry: its scores per seed, max and mean, predicted classes, size, speed."""
    name, kind = task.name, task.kind
    names = list(kind.metrics)
    per_seed, model_dirs, row_metric = _scores(row, name)
    if row_metric != metric:
        raise ArtifactError(f"{row.model} on {name}: scored with {row_metric}, not {metric}")
    classes = (
        {
            str(seed): predicted_classes(Path(directory) / kind.dev_predictions_file, dev_ids)
            for seed, directory in sorted(row.predictions.items())
        }
        if kind.predicts_classes
        else None
    )
    measured = _speed(model_dirs[0], kind, seq_len, speed)
    entry = {
        "model": row.model,
        "stage": row.stage,
        "base": row.base,
        "scores": per_seed,
        "max": {n: max(s[n] for s in per_seed.values()) for n in names},
        "mean": {n: statistics.fmean(s[n] for s in per_seed.values()) for n in names},
        "predicted_classes": classes,
        "single_class": None if classes is None else min(classes.values()) == 1,
        "parameters": measured.pop("parameters"),
        "size_mb": model_size_mb(model_dirs[0]),
        "speed": measured,
        "bench": _bench(bench, row.base),
    }
    log.info("%s on %s: mean %s, speed %s", row.model, name, entry["mean"], measured)
    if entry["single_class"]:
        log.warning("%s on %s predicts one class on dev: %s", row.model, name, classes)
    return entry


def _relative_to_teacher(
    table: list[dict[str, Any]], baseline: dict[str, Any], metric: str, names: list[str]
) -> None:
    """Add each entry's (and the baseline's) ratios to the teacher and margin over the baseline."""
    teacher = next(r for r in table if r["model"] == "teacher")
    baseline["relative"] = {"score": _ratio(baseline["scores"][metric], teacher["mean"][metric])}
    for entry in table:
        cpu, teacher_cpu = entry["speed"]["cpu"], teacher["speed"]["cpu"]
        entry["relative"] = {
            "score": _ratio(entry["mean"][metric], teacher["mean"][metric]),
            "throughput": _ratio(cpu["throughput_b16"], teacher_cpu["throughput_b16"]),
            "latency_speedup": _ratio(teacher_cpu["latency_ms_b1"], cpu["latency_ms_b1"]),
            "parameters": _ratio(entry["parameters"], teacher["parameters"]),
        }
        entry["margin"] = {n: entry["mean"][n] - baseline["scores"][n] for n in names}


def build_eval(
    task: TaskData,
    rows: Sequence[EvalRow],
    seq_len: int,
    out_path: Path,
    *,
    config: Mapping[str, Any],
    speed: SpeedSettings = _DEFAULT_SPEED,
    bench: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Write results/eval/{task}.json: scores per seed, max and mean, size, speed, relative.

    Beside them: the task's baseline on dev, each row's margin over it (metric points), its
    distinct predicted classes per seed and `single_class` (null for span QA). `bench` maps a
    base model to its results/bench JSON (seed 004's table at length 512), which each row
    carries beside the speed at the task's length.
    """
    name, kind = task.name, task.kind
    if not any(row.model == "teacher" for row in rows):
        raise ValueError(f"task {name}: no teacher row to compare the students with")
    metric, names = kind.primary_metric, list(kind.metrics)
    baseline = baseline_scores(task)
    dev_ids = [str(i) for i in task.splits["dev"].column("id").to_pylist()]
    table = [_row_entry(row, task, metric, dev_ids, seq_len, speed, bench) for row in rows]
    _relative_to_teacher(table, baseline, metric, names)
    result = {
        "task": name,
        "kind": kind.name,
        "metric": metric,
        "metrics": names,
        "seeds": sorted({int(s) for r in table for s in r["scores"]}),
        "seq_len": seq_len,
        "baseline": baseline,
        "rows": table,
        "config": dict(config),
    }
    write_json(out_path, result)
    return result
