"""One task's comparison table: every model's dev scores over seeds, its size and its speed.

The rows come from the prediction directories of fine-tuning and task distillation: each holds
the scores.json and dev predictions of one model and seed. Speed and the deployed formats come
from the deploy stage, on the model of the first seed: its ONNX exports' agreement with PyTorch
(deploy.json) and every format's timings, all rows measured together (speed.json). The table
carries the trivial baseline of the same dev split (fit on train) and each row's margin over it,
and flags a model that predicted a single class on dev: a score that only matches the baseline
means nothing was learned.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wwmdistill.arrow_io import ArtifactError, write_json
from wwmdistill.deploy.runtime import DEPLOY_FILE
from wwmdistill.eval_fields import request_overhead, timing
from wwmdistill.finetune import TaskData
from wwmdistill.speed import model_size_mb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalRow:
    """One model on one task: where its per-seed scores are (seed -> predictions dir)."""

    model: str
    stage: str
    base: str
    predictions: Mapping[int, Path]


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


def load_deployed(
    deployed: Mapping[str, Path], speed_path: Path, task: str
) -> dict[str, dict[str, Any]]:
    """Per row: its deploy.json and its timings from the task's speed.json, checked to belong
    to the task and to each other."""
    speed = json.loads(Path(speed_path).read_text(encoding="utf-8"))
    if speed.get("task") != task:
        raise ArtifactError(f"{speed_path}: times task {speed.get('task')!r}, not {task!r}")
    out = {}
    for row, directory in deployed.items():
        path = Path(directory) / DEPLOY_FILE
        if not path.is_file():
            raise ArtifactError(f"{path}: missing; rerun the deploy of {row} on {task}")
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("task") != task:
            raise ArtifactError(f"{path}: deploys task {record.get('task')!r}, not {task!r}")
        if row not in speed["rows"]:
            raise ArtifactError(f"{speed_path}: no timings of {row}; rerun the task's deploy_speed")
        out[row] = {"record": record, "timing": speed["rows"][row], "seq_lens": speed["seq_lens"]}
    return out


def _deploy_figures(record: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """What deploy.json says of the exports: agreement with PyTorch, logit gap, dev scores."""
    figures = record["agreement"]
    out: dict[str, Any] = {"split": record["split"], "rows": figures["rows"]}
    for fmt in ("fp32", "int8"):
        out[fmt] = {
            "agreement": figures[fmt]["agreement"],
            "max_abs_logit_diff": figures[fmt]["max_abs_logit_diff"],
            "score": (figures[fmt].get("scores") or {}).get(metric),
            "size_mb": record["size_mb"][fmt],
        }
    out["pytorch"] = {"score": (figures["pytorch"].get("scores") or {}).get(metric)}
    return out


def _row_entry(
    row: EvalRow,
    task: TaskData,
    metric: str,
    dev_ids: list[str],
    deployed: Mapping[str, Any],
    bench: Mapping[str, Path] | None,
) -> dict[str, Any]:
    """One model's entry: its scores per seed, max and mean, predicted classes, size, speed and
    its deployed formats."""
    name, kind = task.name, task.kind
    names = list(kind.metrics)
    per_seed, model_dirs, row_metric = _scores(row, name)
    if row_metric != metric:
        raise ArtifactError(f"{row.model} on {name}: scored with {row_metric}, not {metric}")
    if row.model not in deployed:
        raise ArtifactError(f"{row.model} on {name}: not deployed; rerun its deploy")
    mine = deployed[row.model]
    if Path(mine["record"]["model_dir"]) != model_dirs[0]:
        raise ArtifactError(
            f"{row.model} on {name}: deployed from {mine['record']['model_dir']}, but its first "
            f"seed's model is {model_dirs[0]}; rerun the deploy"
        )
    classes = (
        {
            str(seed): predicted_classes(Path(directory) / kind.dev_predictions_file, dev_ids)
            for seed, directory in sorted(row.predictions.items())
        }
        if kind.predicts_classes
        else None
    )
    entry = {
        "model": row.model,
        "stage": row.stage,
        "base": row.base,
        "scores": per_seed,
        "max": {n: max(s[n] for s in per_seed.values()) for n in names},
        "mean": {n: statistics.fmean(s[n] for s in per_seed.values()) for n in names},
        "predicted_classes": classes,
        "single_class": None if classes is None else min(classes.values()) == 1,
        "parameters": mine["timing"]["parameters"],
        "size_mb": model_size_mb(model_dirs[0]),
        "speed": mine["timing"],
        "deploy": _deploy_figures(mine["record"], metric),
        "bench": _bench(bench, row.base),
    }
    log.info("%s on %s: mean %s, deploy %s", row.model, name, entry["mean"], entry["deploy"])
    if entry["single_class"]:
        log.warning("%s on %s predicts one class on dev: %s", row.model, name, classes)
    return entry


def _speed_ratio(
    slower: Mapping[str, Any] | None, faster: Mapping[str, Any] | None
) -> tuple[float | None, bool]:
    """slower's median time over faster's (how many times faster `faster` is), and whether
    either timing is unsteady."""
    if not slower or not faster:
        return None, False
    return slower["median_ms"] / faster["median_ms"], bool(slower["unsteady"] or faster["unsteady"])


def _relative_to_teacher(
    table: list[dict[str, Any]],
    baseline: dict[str, Any],
    metric: str,
    names: list[str],
    seq_len: int,
) -> None:
    """Add each entry's (and the baseline's) ratios to the teacher and margin over the baseline.

    Speed ratios are of PyTorch fp32 at the task's length (throughput at batch 16, latency at
    batch 1), and of the same model's int8 export against it; `unsteady` names the ratios taken
    from a timing whose spread is too large to trust."""
    teacher = next(r for r in table if r["model"] == "teacher")
    baseline["relative"] = {"score": _ratio(baseline["scores"][metric], teacher["mean"][metric])}
    for entry in table:
        ratios = {
            "throughput": _speed_ratio(
                timing(teacher, "pytorch", 16, seq_len), timing(entry, "pytorch", 16, seq_len)
            ),
            "latency_speedup": _speed_ratio(
                timing(teacher, "pytorch", 1, seq_len), timing(entry, "pytorch", 1, seq_len)
            ),
            "int8_throughput": _speed_ratio(
                timing(entry, "pytorch", 16, seq_len), timing(entry, "int8", 16, seq_len)
            ),
        }
        request = request_overhead(entry, "int8")
        pytorch_score, int8_score = (
            entry["deploy"]["pytorch"]["score"],
            entry["deploy"]["int8"]["score"],
        )
        entry["relative"] = {
            "score": _ratio(entry["mean"][metric], teacher["mean"][metric]),
            "parameters": _ratio(entry["parameters"], teacher["parameters"]),
            **{key: value for key, (value, _) in ratios.items()},
            "int8_score_lost": (
                None if pytorch_score is None or int8_score is None else pytorch_score - int8_score
            ),
            "end_to_end_over_model": request["value"] if request else None,
            "unsteady": sorted(
                [key for key, (_, unsteady) in ratios.items() if unsteady]
                + (["end_to_end_over_model"] if request and request["unsteady"] else [])
            ),
        }
        entry["margin"] = {n: entry["mean"][n] - baseline["scores"][n] for n in names}


def build_eval(
    task: TaskData,
    rows: Sequence[EvalRow],
    seq_len: int,
    out_path: Path,
    *,
    config: Mapping[str, Any],
    deployed: Mapping[str, Path],
    speed_path: Path,
    bench: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Write results/eval/{task}.json: scores per seed, max and mean, size, speed, relative.

    Beside them: the task's baseline on dev, each row's margin over it (metric points), its
    distinct predicted classes per seed and `single_class` (null for span QA), its deployed
    formats' agreement and scores (`deployed` maps a row to its results/deploy directory) and
    every format's timings (the task's `speed_path`). `bench` maps a base model to its
    results/bench JSON (seed 004's table at length 512, the encoder alone).
    """
    name, kind = task.name, task.kind
    if not any(row.model == "teacher" for row in rows):
        raise ValueError(f"task {name}: no teacher row to compare the students with")
    metric, names = kind.primary_metric, list(kind.metrics)
    baseline = baseline_scores(task)
    dev_ids = [str(i) for i in task.splits["dev"].column("id").to_pylist()]
    formats = load_deployed(deployed, speed_path, name)
    table = [_row_entry(row, task, metric, dev_ids, formats, bench) for row in rows]
    _relative_to_teacher(table, baseline, metric, names, seq_len)
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
