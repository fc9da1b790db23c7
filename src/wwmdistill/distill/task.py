"""TinyBERT's two-stage task distillation, from a fine-tuned teacher into a general student.

Stage 1 teaches the student's intermediate layers (embedding, hidden states through learned
projections, attention scores) on the (augmented) training set, with the fine-tuned teacher in
the loop. Stage 2 starts from stage 1 and teaches the prediction layer: soft cross-entropy against
the teacher's logits (cached once per task), plus an optional hard-label term, keeping the best
dev checkpoint as fine-tuning does. Span QA distils the start and end logits.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor, nn

from wwmdistill.arrow_io import atomic_dir, fingerprint, write_json
from wwmdistill.artifacts.augmented import open_augmented
from wwmdistill.artifacts.task_logits import open_task_logits, task_logits_meta, task_logits_writer
from wwmdistill.distill.layers import AttentionCapture, layer_mapping, mean_of
from wwmdistill.distill.losses import PAD_LOGIT, attention_score_mse, hidden_mse
from wwmdistill.finetune import (
    FinetuneSettings,
    TaskData,
    TaskRun,
    load_task,
    load_task_model,
    train_dataset,
    train_on_task,
)
from wwmdistill.kinds import MODEL_INPUTS, TaskKind
from wwmdistill.models import model_fingerprint, require_model_dir
from wwmdistill.settings import Stage1Settings, Stage2Settings, TaskDistillSettings
from wwmdistill.tokenizer import copy_tokenizer_files, load_tokenizer, tokenizer_fingerprint
from wwmdistill.training import (
    TrainingSettings,
    resume_checkpoint,
    run_fingerprint,
    training_arguments,
)

log = logging.getLogger(__name__)

def _task_table(table: pa.Table, task: TaskData) -> pa.Table:
    names = task.splits["train"].column_names
    return table.select(names)


# ---------------------------------------------------------------------------------------------
# The teacher's logits on the augmented set, once per task


def cache_task_logits(
    augmented_path: Path,
    task_dir: Path,
    teacher_dir: Path,
    out_path: Path,
    settings: FinetuneSettings,
    *,
    batch_size: int = 64,
) -> dict[str, Any]:
    """The fine-tuned teacher's logits on every augmented row (QA: every training window)."""
    from wwmdistill.progress import tqdm

    task = load_task(task_dir)
    augmented = open_augmented(Path(augmented_path))
    table, augment_fp = augmented.table, augmented.fingerprint
    tokenizer = load_tokenizer(require_model_dir(teacher_dir, need_tokenizer=True))
    model = load_task_model(Path(teacher_dir), task, settings, f"tasks.{task.name}.finetune")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    features = train_dataset(task, _task_table(table, task), tokenizer, settings)
    inputs = features.select_columns(list(MODEL_INPUTS))
    collate = task.kind.collator(tokenizer)
    # Length-sorted batches waste no time on padding; rows are written back in their order.
    order = np.argsort([len(ids) for ids in inputs["input_ids"]], kind="stable")
    results: list[Any] = [None] * len(inputs)
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc="teacher logits", unit="batch"):
            index = order[start : start + batch_size].tolist()
            batch = {k: v.to(device) for k, v in collate([inputs[i] for i in index]).items()}
            out = model(**batch)
            lengths = batch["attention_mask"].sum(-1).tolist()
            for row, cached in zip(index, task.kind.teacher_rows(out, lengths), strict=True):
                results[row] = cached
    columns = task.kind.logits_columns(results)
    teacher_fp = model_fingerprint(teacher_dir)
    cache_meta = task_logits_meta(
        task=task.name,
        kind=task.kind.name,
        augment_fingerprint=augment_fp,
        teacher_fingerprint=teacher_fp,
        tokenizer_fingerprint=tokenizer_fingerprint(Path(teacher_dir)),
        settings=settings.as_dict(),
        rows=table.num_rows,
    )
    with task_logits_writer(out_path, task.kind.logits_schema, cache_meta) as writer:
        writer.write(columns)
    log.info("teacher logits of %d %s rows -> %s", len(results), task.name, out_path)
    return cache_meta


# ---------------------------------------------------------------------------------------------
# Stage 1: intermediate layers


class IntermediateDistillation(nn.Module):
    """The student and its learned width projections (dropped when stage 1 ends)."""

    def __init__(self, student: nn.Module, teacher_hidden: int, settings: Stage1Settings) -> None:
        super().__init__()
        self.student = student
        width, layers = student.config.hidden_size, student.config.num_hidden_layers
        self.projections = (
            nn.ModuleList(nn.Linear(width, teacher_hidden) for _ in range(layers + 1))
            if width != teacher_hidden
            else None
        )
        self.settings = settings

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids=None, teacher=None):
        settings = self.settings
        with AttentionCapture(self.student) as capture:
            out = self.student.base_model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_hidden_states=True,
                return_dict=True,
            )
        states = list(out.hidden_states)
        parts: dict[str, Tensor] = {}
        if settings.embedding > 0:
            projection = None if self.projections is None else self.projections[:1]
            parts["embedding"] = hidden_mse(
                states[:1], teacher["states"][:1], projection, attention_mask
            )
        if settings.hidden > 0:
            projection = None if self.projections is None else self.projections[1:]
            parts["hidden"] = hidden_mse(
                states[1:], teacher["states"][1:], projection, attention_mask
            )
        if settings.attention > 0:
            scores = [capture.scores(i) for i in range(len(capture))]
            parts["attention"] = attention_score_mse(scores, teacher["attention"], attention_mask)
        return parts


def _stage1_trainer(teacher: nn.Module, settings: Stage1Settings, kind: TaskKind):
    from transformers import Trainer

    class Stage1Trainer(Trainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)
            student = self.model.student
            n_teacher = teacher.config.num_hidden_layers
            n_student = student.config.num_hidden_layers
            kind = settings.layer_map
            kind = list(kind) if isinstance(kind, tuple) else kind
            self.attention_map = layer_mapping(kind, n_teacher, n_student, target="attention")
            self.hidden_map = layer_mapping(kind, n_teacher, n_student, target="hidden")

        @torch.no_grad()
        def teacher_targets(self, inputs: dict[str, Tensor]) -> dict[str, Any]:
            with AttentionCapture(self.teacher) as capture:
                out = self.teacher.base_model(
                    input_ids=inputs["input_ids"],
                    attention_mask=inputs["attention_mask"],
                    token_type_ids=inputs.get("token_type_ids"),
                    output_hidden_states=True,
                    return_dict=True,
                )
            attention = [capture.scores(j) for j in range(len(capture))]
            return {
                "states": [mean_of(out.hidden_states, group) for group in self.hidden_map],
                "attention": [mean_of(attention, group) for group in self.attention_map],
            }

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = kind.encoder_inputs(inputs)
            parts = model(**inputs, teacher=self.teacher_targets(inputs))
            loss = sum(getattr(settings, name) * value for name, value in parts.items())
            return (loss, parts) if return_outputs else loss

    return Stage1Trainer


def run_stage1(
    task_dir: Path,
    augmented_path: Path | None,
    student_dir: Path,
    teacher_dir: Path,
    out_dir: Path,
    checkpoint_dir: Path,
    settings: TaskDistillSettings,
    finetune: FinetuneSettings,
    seed: int,
) -> dict[str, Any]:
    """Stage 1 on the augmented rows (or, `augmented_path` None, the original train split)."""
    from transformers import set_seed

    stage = settings.stage1
    task = load_task(task_dir)
    where = f"tasks.{task.name}.task_distill"
    tokenizer = load_tokenizer(require_model_dir(student_dir, need_tokenizer=True))
    _check_tokenizers(student_dir, teacher_dir)
    if augmented_path is None:
        table, data_fp = task.splits["train"], task.fingerprints["train"]
    else:
        augmented = open_augmented(Path(augmented_path))
        table, data_fp = _task_table(augmented.table, task), augmented.fingerprint
    features = train_dataset(task, table, tokenizer, finetune)
    features = features.select_columns(list(MODEL_INPUTS))
    set_seed(seed)
    student = load_task_model(Path(student_dir), task, finetune, where)
    teacher = load_task_model(Path(teacher_dir), task, finetune, where)
    if stage.attention > 0:
        s_heads = student.config.num_attention_heads
        t_heads = teacher.config.num_attention_heads
        if s_heads != t_heads:
            raise ValueError(
                f"config {where}.stage1.attention: attention distillation needs equal head "
                f"counts, the student has {s_heads} and the teacher {t_heads}"
            )
    model = IntermediateDistillation(student, teacher.config.hidden_size, stage)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps = stage.max_steps or max(
        1, math.ceil(stage.epochs * math.ceil(len(features) / (stage.batch_size * world)))
    )
    training = TrainingSettings(
        max_steps=steps,
        batch_size=stage.batch_size,
        learning_rate=stage.learning_rate,
        warmup_ratio=stage.warmup_ratio,
        weight_decay=stage.weight_decay,
        save_steps=min(stage.save_steps, steps),
        logging_steps=stage.logging_steps,
        precision=stage.precision,
    )
    args = training_arguments(
        training,
        checkpoint_dir,
        seed,
    )
    run_fp = run_fingerprint(
        stage.as_dict(),
        finetune.as_dict(),
        model_fingerprint(student_dir),
        model_fingerprint(teacher_dir),
        data_fp,
        seed,
    )
    resume = resume_checkpoint(Path(checkpoint_dir), run_fp, args)
    if resume:
        log.info("resuming stage 1 of %s from %s", task.name, resume)
    trainer = _stage1_trainer(teacher, stage, task.kind)(
        model=model,
        args=args,
        train_dataset=features,
        data_collator=task.kind.collator(tokenizer),
    )
    trainer.train(resume_from_checkpoint=resume)
    metrics = {
        "task": task.name,
        "stage": 1,
        "augmented": augmented_path is not None,
        "examples": len(features),
        "steps": trainer.state.global_step,
        "resumed_from": resume,
        "settings": stage.as_dict(),
        "student_dir": str(student_dir),
        "teacher_dir": str(teacher_dir),
        "teacher_fingerprint": model_fingerprint(teacher_dir),
        "log_history": trainer.state.log_history,
    }
    if trainer.is_world_process_zero():
        with atomic_dir(out_dir) as tmp:
            student.save_pretrained(tmp)
            copy_tokenizer_files(Path(student_dir), tmp)
            write_json(tmp / "stage1.json", metrics)
    return metrics


def _check_tokenizers(student_dir: Path, teacher_dir: Path) -> None:
    student, teacher = (
        tokenizer_fingerprint(Path(student_dir)),
        tokenizer_fingerprint(Path(teacher_dir)),
    )
    if student != teacher:
        raise ValueError(
            f"{student_dir} and {teacher_dir} tokenise differently ({student} vs {teacher}); "
            "task distillation needs the student to share the teacher's tokenizer"
        )


# ---------------------------------------------------------------------------------------------
# Stage 2: the prediction layer


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
    rows = open_augmented(Path(augmented_path))
    table, augment_fp = rows.table, rows.fingerprint
    dataset = train_dataset(task, _task_table(table, task), tokenizer, finetune)
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
    set_seed(seed)
    model = load_task_model(stage1_dir, task, finetune, where)
    stage_finetune = finetune.model_copy(
        update={
            "epochs": stage.epochs,
            "max_steps": stage.max_steps,
            "batch_size": stage.batch_size,
            "learning_rate": stage.learning_rate,
            "evals_per_epoch": stage.evals_per_epoch,
        }
    )
    run = TaskRun(
        task=task,
        model=model,
        tokenizer=tokenizer,
        train=dataset,
        collator=TeacherLogitsCollator(task.kind.collator(tokenizer)),
        settings=stage_finetune,
        seed=seed,
        model_name=model_name,
        base_dir=stage1_dir,
        inputs_fingerprint=fingerprint(
            stage.as_dict(),
            model_fingerprint(stage1_dir),
            augment_fp,
            logits.teacher_fingerprint,
            augmented,
            task.fingerprints,
        ),
        trainer_base=_stage2_base(stage, task.kind),
    )
    extra = {
        "stage": 2,
        "augmented": augmented,
        "task_distill": stage.as_dict(),
        "teacher_fingerprint": logits.teacher_fingerprint,
        "stage1_fingerprint": model_fingerprint(stage1_dir),
    }
    return train_on_task(
        run, out_dir, predictions_dir, checkpoint_dir, callbacks=callbacks, extra_metrics=extra
    )


def run_from_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """run_stage1 or run_stage2 (`stage`: 1 or 2) from a JSON-able dict of their arguments.

    `task_distill` and `finetune` are the task's config blocks; paths are strings. This is what
    the `--config` file of a torchrun launch holds.
    """
    task = arguments["task"]
    settings = TaskDistillSettings.from_config(
        arguments["task_distill"], f"tasks.{task}.task_distill"
    )
    finetune = FinetuneSettings.from_config(arguments["finetune"], f"tasks.{task}.finetune")
    paths = {key: Path(value) for key, value in arguments["paths"].items() if value is not None}
    seed = int(arguments["seed"])
    if arguments["stage"] == 1:
        return run_stage1(
            paths["task"],
            paths.get("augmented"),
            paths["student"],
            paths["teacher"],
            paths["out"],
            paths["checkpoints"],
            settings,
            finetune,
            seed,
        )
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
