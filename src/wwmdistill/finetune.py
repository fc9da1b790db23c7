"""Fine-tuning a model on a task of any kind (`wwmdistill.kinds`), with the Trainer.

The teacher and every general student are fine-tuned with the same recipe (CLUE's by default),
evaluated on dev as training goes, and the best dev checkpoint is what is kept. Checkpoints live
outside the rule output and a rerun resumes from the newest, so a kill loses at most one
evaluation interval.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from wwmdistill.arrow_io import atomic_dir, fingerprint, write_json
from wwmdistill.artifacts.task_data import TaskSplitMeta, open_task_split, split_meta, split_path
from wwmdistill.kinds import MODEL_INPUTS, TaskKind, kind_of
from wwmdistill.models import model_fingerprint, require_model_dir, weight_files
from wwmdistill.progress import heartbeat_callback
from wwmdistill.settings import FinetuneSettings
from wwmdistill.tokenizer import copy_tokenizer_files, load_tokenizer
from wwmdistill.training import (
    NoRowsError,
    TrainingSettings,
    finished_state,
    resume_checkpoint,
    run_fingerprint,
    training_arguments,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskData:
    """A task's splits as read from results/tasks/{task}/."""

    name: str
    kind: TaskKind
    labels: list[str]
    splits: dict[str, pa.Table]
    labelled: dict[str, bool]
    fingerprints: dict[str, str]


def _task_name(info: TaskSplitMeta, task_dir: Path) -> str:
    return task_dir.name if info.task is None else info.task


def load_task(task_dir: str | Path) -> TaskData:
    task_dir = Path(task_dir)
    splits, labelled, fps = {}, {}, {}
    info: TaskSplitMeta | None = None
    for split in ("train", "dev", "test"):
        path = split_path(task_dir, split)
        if not path.exists():
            continue
        shard = open_task_split(path)
        splits[split] = shard.read_all()
        info = split_meta(shard)
        labelled[split] = bool(info.labelled)
        fps[split] = shard.fingerprint
    for needed in ("train", "dev"):
        if needed not in splits:
            raise FileNotFoundError(f"{task_dir}: no {needed}.arrow; a task needs train and dev")
        if splits[needed].num_rows == 0:
            name = _task_name(info, task_dir)
            raise NoRowsError(
                f"{task_dir / needed}.arrow holds no rows: nothing to train or score on; "
                f"check tasks.{name}.max_examples and tasks.{name}.splits"
            )
    return TaskData(
        name=str(_task_name(info, task_dir)),
        kind=kind_of(info.kind, str(task_dir)),
        labels=list(info.labels or []),
        splits=splits,
        labelled=labelled,
        fingerprints=fps,
    )


def _dataset(columns: dict[str, list]):
    from datasets import Dataset

    return Dataset.from_dict(columns)


class _Predictor:
    """Turns a model's raw outputs on one split into predictions and scores."""

    def __init__(self, task: TaskData, split: str, tokenizer, settings: FinetuneSettings):
        self.kind, self.settings = task.kind, settings
        self.table = task.splits[split]
        self.features = self.kind.eval_features(self.table, tokenizer, settings)
        self.dataset = _dataset({key: self.features[key] for key in MODEL_INPUTS})

    def predictions(self, raw: Any) -> dict[str, Any]:
        """id -> prediction (a label or option index, an answer text)."""
        return self.kind.decode(raw, self.table, self.features, self.settings)

    def scores(self, predicted: dict[str, Any]) -> dict[str, float]:
        return self.kind.score(self.table, predicted)


def _trainer_class(predictor: _Predictor, base: Any):
    """A `base` Trainer whose evaluation scores the dev split with the task's official metric."""

    class TaskTrainer(base):
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            output = self.predict(predictor.dataset, metric_key_prefix=metric_key_prefix)
            scores = predictor.scores(predictor.predictions(output.predictions))
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in scores.items()}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(
                self.args, self.state, self.control, metrics
            )
            return metrics

    return TaskTrainer


def _load_model(model_dir: Path, task: TaskData):
    return task.kind.load_model(require_model_dir(model_dir), task.labels)


def train_dataset(task: TaskData, table: pa.Table, tokenizer, settings: FinetuneSettings):
    """Model inputs and gold targets of a training table (the train split, or augmented rows)."""
    try:
        return _dataset(task.kind.train_features(table, tokenizer, settings))
    except ValueError as error:
        raise ValueError(f"task {task.name}: {error}") from None


def _schedule(train_rows: int, settings: FinetuneSettings, world_size: int) -> tuple[int, int]:
    """(max_steps, eval_steps): evaluate (and checkpoint) evals_per_epoch times an epoch."""
    per_step = settings.batch_size * world_size
    steps_per_epoch = max(1, math.ceil(train_rows / per_step))
    max_steps = settings.max_steps or max(1, math.ceil(settings.epochs * steps_per_epoch))
    eval_steps = max(1, min(max_steps, steps_per_epoch // settings.evals_per_epoch))
    return max_steps, eval_steps


@dataclass
class TaskRun:
    """What one training run on a task needs beyond the Trainer's defaults.

    `trainer_base` is the Trainer class the task trainer derives from (task distillation's
    loss); `inputs_fingerprint` identifies what it reads besides `settings` (base model, data),
    so that checkpoints of another run are never resumed.
    """

    task: TaskData
    model: Any
    tokenizer: Any
    train: Any
    collator: Any
    settings: FinetuneSettings
    seed: int
    model_name: str
    base_dir: Path
    inputs_fingerprint: str
    trainer_base: Any = None
    trainer_kwargs: dict[str, Any] | None = None


def train_on_task(
    run: TaskRun,
    out_dir: Path,
    predictions_dir: Path,
    checkpoint_dir: Path,
    *,
    callbacks: list | None = None,
    extra_metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train with dev evaluations, keep the best checkpoint, write the model and predictions."""
    from transformers import Trainer

    task, settings = run.task, run.settings
    out_dir, predictions_dir = Path(out_dir), Path(predictions_dir)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = _Predictor(task, "dev", run.tokenizer, settings)
    max_steps, eval_steps = _schedule(len(run.train), settings, world_size)
    metric = task.kind.primary_metric
    args = _training_args(settings, checkpoint_dir, run.seed, max_steps, eval_steps, metric)
    run_fp = run_fingerprint(settings.as_dict(), run.inputs_fingerprint, run.seed)
    resume = resume_checkpoint(Path(checkpoint_dir), run_fp, args)
    trainer = _trainer_class(dev, run.trainer_base or Trainer)(
        model=run.model,
        args=args,
        train_dataset=run.train,
        eval_dataset=dev.dataset,
        data_collator=run.collator,
        callbacks=[*(callbacks or []), heartbeat_callback()],
        **(run.trainer_kwargs or {}),
    )
    _train_to_best(trainer, run, resume, max_steps)
    dev_predicted = dev.predictions(trainer.predict(dev.dataset).predictions)
    dev_scores = dev.scores(dev_predicted)
    test_predicted = None
    if "test" in task.splits and not task.labelled["test"]:
        test = _Predictor(task, "test", run.tokenizer, settings)
        test_predicted = test.predictions(trainer.predict(test.dataset).predictions)
    metrics: dict[str, Any] = {
        "task": task.name,
        "kind": task.kind.name,
        "model": run.model_name,
        "base_model": str(run.base_dir),
        "base_fingerprint": model_fingerprint(run.base_dir),
        "seed": run.seed,
        "settings": settings.as_dict(),
        "dev": dev_scores,
        "metric": metric,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_metric": trainer.state.best_metric,
        "steps": trainer.state.global_step,
        "resumed_from": resume,
        "processes": args.world_size,
        "rows": {split: table.num_rows for split, table in task.splits.items()},
        "train_examples": len(run.train),
        "log_history": trainer.state.log_history,
        **(extra_metrics or {}),
    }
    if not trainer.is_world_process_zero():
        return metrics
    with atomic_dir(out_dir) as tmp:
        trainer.model.save_pretrained(tmp)
        copy_tokenizer_files(run.base_dir, tmp)
        write_json(tmp / "metrics.json", metrics)
    _write_predictions(predictions_dir, run, out_dir, dev_predicted, test_predicted, dev_scores)
    log.info("%s on %s (seed %d): dev %s", run.model_name, task.name, run.seed, dev_scores)
    return metrics


def _training_args(
    settings: FinetuneSettings,
    checkpoint_dir: Path,
    seed: int,
    max_steps: int,
    eval_steps: int,
    metric: str,
) -> Any:
    """The Trainer's arguments: evaluate and checkpoint every `eval_steps`, keep the best by
    `metric`."""
    training = TrainingSettings(
        max_steps=max_steps,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        warmup_ratio=settings.warmup_ratio,
        weight_decay=settings.weight_decay,
        save_steps=eval_steps,
        logging_steps=settings.logging_steps,
        precision=settings.precision,
        processes=settings.processes,
    )
    return training_arguments(
        training,
        checkpoint_dir,
        seed,
        eval_strategy="steps",
        eval_steps=eval_steps,
        per_device_eval_batch_size=settings.eval_batch_size,
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=True,
    )


def _train_to_best(trainer: Any, run: TaskRun, resume: str | None, max_steps: int) -> None:
    """Train (resuming from `resume`) and end on the best dev checkpoint; a run that already
    finished loads that checkpoint instead of training again."""
    if state := finished_state(resume, max_steps):
        trainer.state = state
        trainer.model = _load_model(Path(state.best_model_checkpoint or resume), run.task)
        trainer.model_wrapped = trainer.model
    else:
        if resume:
            log.info("resuming %s on %s from %s", run.model_name, run.task.name, resume)
        trainer.train(resume_from_checkpoint=resume)


def _write_predictions(
    predictions_dir: Path,
    run: TaskRun,
    out_dir: Path,
    dev_predicted: dict[str, Any],
    test_predicted: dict[str, Any] | None,
    dev_scores: dict[str, float],
) -> None:
    """`predictions_dir`: dev predictions in the official format, CLUE submission files for an
    unlabelled test split, and scores.json."""
    task = run.task
    with atomic_dir(predictions_dir) as tmp:
        task.kind.write_predictions(
            tmp, task.name, task.labels, "dev", dev_predicted, submission=False
        )
        if test_predicted is not None:
            task.kind.write_predictions(
                tmp, task.name, task.labels, "test", test_predicted, submission=True
            )
        write_json(
            tmp / "scores.json",
            {
                "task": task.name,
                "model": run.model_name,
                "seed": run.seed,
                "dev": dev_scores,
                "metric": task.kind.primary_metric,
                "model_dir": str(out_dir),
                "size_mb": sum(p.stat().st_size for p in weight_files(out_dir)) / 2**20,
            },
        )


def load_task_model(model_dir: Path, task: TaskData, settings: FinetuneSettings, where: str):
    """The model of `model_dir` with the task's head, checked against the sequence length."""
    model = _load_model(model_dir, task)
    if model.config.max_position_embeddings < settings.max_seq_len:
        raise ValueError(
            f"config {where}.max_seq_len: {settings.max_seq_len} exceeds {model_dir}'s "
            f"max_position_embeddings {model.config.max_position_embeddings}"
        )
    return model


def run_finetune(
    task_dir: Path,
    model_dir: Path,
    out_dir: Path,
    predictions_dir: Path,
    checkpoint_dir: Path,
    settings: FinetuneSettings,
    seed: int,
    *,
    model_name: str,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Fine-tune `model_dir` on the task in `task_dir`; keep the best dev checkpoint.

    Writes `out_dir` (the model, its tokenizer files, metrics.json) and `predictions_dir` (dev
    predictions in the official format, scores.json, and CLUE submission files for an
    unlabelled test split). Returns the metrics.
    """
    from transformers import set_seed

    model_dir = Path(model_dir)
    task = load_task(task_dir)
    tokenizer = load_tokenizer(require_model_dir(model_dir, need_tokenizer=True))
    set_seed(seed)
    model = load_task_model(model_dir, task, settings, f"tasks.{task.name}.finetune")
    run = TaskRun(
        task=task,
        model=model,
        tokenizer=tokenizer,
        train=train_dataset(task, task.splits["train"], tokenizer, settings),
        collator=task.kind.collator(tokenizer),
        settings=settings,
        seed=seed,
        model_name=model_name,
        base_dir=model_dir,
        inputs_fingerprint=fingerprint(model_fingerprint(model_dir), task.fingerprints),
    )
    return train_on_task(run, out_dir, predictions_dir, checkpoint_dir, callbacks=callbacks)


def run_from_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """run_finetune from a JSON-able dict of its arguments; `settings` is the finetune block."""
    return run_finetune(
        Path(arguments["task_dir"]),
        Path(arguments["model_dir"]),
        Path(arguments["out_dir"]),
        Path(arguments["predictions_dir"]),
        Path(arguments["checkpoint_dir"]),
        FinetuneSettings.from_config(arguments["settings"], arguments["where"]),
        int(arguments["seed"]),
        model_name=arguments["model_name"],
    )


if __name__ == "__main__":
    from wwmdistill.launch import main

    main(run_from_arguments)
