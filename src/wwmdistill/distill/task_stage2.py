"""Task distillation stage 2: the student's prediction layer learns the teacher's outputs.

Starts from stage 1's weights: soft cross-entropy against the teacher's logits (cached once per
task by `task_logits`), plus an optional hard-label term, keeping the best dev checkpoint as
fine-tuning does. Span QA distils the start and end logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wwmdistill.arrow_io import fingerprint
from wwmdistill.artifacts.augmented import open_augmented
from wwmdistill.artifacts.task_logits import open_task_logits
from wwmdistill.distill.losses import PAD_LOGIT
from wwmdistill.distill.task_common import parse_arguments, task_table
from wwmdistill.finetune import (
    FinetuneSettings,
    TaskData,
    TaskRun,
    load_task,
    load_task_model,
    train_dataset,
    train_on_task,
)
from wwmdistill.kinds import TaskKind
from wwmdistill.models import model_fingerprint, require_model_dir
from wwmdistill.settings import Stage2Settings, TaskDistillSettings
from wwmdistill.tokenizer import load_tokenizer


class TeacherLogitsCollator:
    """Pads the inputs (the kind's collator) and the teacher's per-token QA logits."""

    def __init__(self, pad: Any) -> None:
        self.pad = pad

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        names = [k for k in features[0] if k.startswith("teacher_")]
        teacher = {k: [f.pop(k) for f in features] for k in names}
        batch = self.pad(features)
        width = batch["input_ids"].shape[1]
        for name, rows in teacher.items():
            if name == "teacher_logits":
                batch[name] = torch.tensor(rows, dtype=torch.float32)
                continue
            padded = torch.full((len(rows), width), PAD_LOGIT, dtype=torch.float32)
            for i, row in enumerate(rows):
                padded[i, : len(row)] = torch.tensor(row, dtype=torch.float32)
            batch[name] = padded
        return batch


def _stage2_base(settings: Stage2Settings, kind: TaskKind):
    from transformers import Trainer

    class PredictionDistillationTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            teacher = {k: inputs.pop(k) for k in list(inputs) if k.startswith("teacher_")}
            labels = {
                k: inputs.pop(k)
                for k in ("labels", "start_positions", "end_positions")
                if k in inputs
            }
            out = model(**inputs)
            loss = kind.distillation_loss(
                out,
                teacher,
                labels,
                inputs["attention_mask"],
                settings.temperature,
                settings.hard_weight,
            )
            return (loss, out) if return_outputs else loss

    return PredictionDistillationTrainer


def run_stage2(
    task_dir: Path,
    augmented_path: Path,
    logits_path: Path,
    stage1_dir: Path,
    out_dir: Path,
    predictions_dir: Path,
    checkpoint_dir: Path,
    settings: TaskDistillSettings,
    finetune: FinetuneSettings,
    seed: int,
    *,
    augmented: bool,
    model_name: str,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Stage 2 from stage 1's weights: soft CE against the cached teacher logits."""
    from transformers import set_seed

    stage = settings.stage2
    task = load_task(task_dir)
    where = f"tasks.{task.name}.task_distill"
    stage1_dir = Path(stage1_dir)
    tokenizer = load_tokenizer(require_model_dir(stage1_dir, need_tokenizer=True))
    dataset, augment_fp, teacher_fp = _train_features(
        task, augmented_path, logits_path, tokenizer, finetune, augmented=augmented, where=where
    )
    set_seed(seed)
    model = load_task_model(stage1_dir, task, finetune, where)
    run = TaskRun(
        task=task,
        model=model,
        tokenizer=tokenizer,
        train=dataset,
        collator=TeacherLogitsCollator(task.kind.collator(tokenizer)),
        settings=_stage_finetune(finetune, stage),
        seed=seed,
        model_name=model_name,
        base_dir=stage1_dir,
        inputs_fingerprint=fingerprint(
            stage.as_dict(),
            model_fingerprint(stage1_dir),
            augment_fp,
            teacher_fp,
            augmented,
            task.fingerprints,
        ),
        trainer_base=_stage2_base(stage, task.kind),
    )
    extra = {
        "stage": 2,
        "augmented": augmented,
        "task_distill": stage.as_dict(),
        "teacher_fingerprint": teacher_fp,
        "stage1_fingerprint": model_fingerprint(stage1_dir),
    }
    return train_on_task(
        run, out_dir, predictions_dir, checkpoint_dir, callbacks=callbacks, extra_metrics=extra
    )


def _train_features(
    task: TaskData,
    augmented_path: Path,
    logits_path: Path,
    tokenizer,
    finetune: FinetuneSettings,
    *,
    augmented: bool,
    where: str,
) -> tuple[Any, str, str]:
    """The training features with the teacher's cached logits beside them (only the original
    rows' when not `augmented`), the augmented data's and the teacher's fingerprints."""
    rows = open_augmented(Path(augmented_path))
    table, augment_fp = rows.table, rows.fingerprint
    dataset = train_dataset(task, task_table(table, task), tokenizer, finetune)
    logits = open_task_logits(Path(logits_path), augment_fp, len(dataset), finetune.as_dict())
    for name, column in task.kind.teacher_columns(logits.table).items():
        dataset = dataset.add_column(name, column)
    if not augmented:
        if not task.kind.one_feature_per_row:
            raise ValueError(
                f"config {where}.ablation: the no-augmentation ablation needs one feature per "
                f"row, which {task.kind.name} tasks do not have"
            )
        keep = np.flatnonzero(~table.column("augmented").to_numpy(zero_copy_only=False))
        dataset = dataset.select(keep.tolist())
    return dataset, augment_fp, logits.teacher_fingerprint


def _stage_finetune(finetune: FinetuneSettings, stage: Stage2Settings) -> FinetuneSettings:
    """The task's fine-tuning settings with stage 2's schedule."""
    return finetune.model_copy(
        update={
            "epochs": stage.epochs,
            "max_steps": stage.max_steps,
            "batch_size": stage.batch_size,
            "learning_rate": stage.learning_rate,
            "evals_per_epoch": stage.evals_per_epoch,
        }
    )


def run_from_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """run_stage2 from a JSON-able dict of its arguments (see task_common.parse_arguments);
    `augmented` and `model_name` are run_stage2's keywords."""
    settings, finetune, paths, seed = parse_arguments(arguments)
    return run_stage2(
        paths["task"],
        paths["augmented"],
        paths["logits"],
        paths["stage1"],
        paths["out"],
        paths["predictions"],
        paths["checkpoints"],
        settings,
        finetune,
        seed,
        augmented=bool(arguments["augmented"]),
        model_name=arguments["model_name"],
    )


if __name__ == "__main__":
    from wwmdistill.launch import main

    main(run_from_arguments)
