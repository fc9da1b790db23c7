"""Task distillation stage 1: the student's intermediate layers learn the fine-tuned teacher's.

Embedding and hidden states (through learned width projections) and attention scores, on the
(augmented) training set, with the teacher in the loop; the projections are dropped when the
stage ends.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from torch import Tensor, nn

from wwmdistill.arrow_io import atomic_dir, write_json
from wwmdistill.artifacts.augmented import open_augmented
from wwmdistill.distill.layers import AttentionCapture, layer_mapping, mean_of
from wwmdistill.distill.losses import attention_score_mse, hidden_mse
from wwmdistill.distill.task_common import parse_arguments, task_table
from wwmdistill.finetune import (
    FinetuneSettings,
    TaskData,
    load_task,
    load_task_model,
    train_dataset,
)
from wwmdistill.kinds import MODEL_INPUTS, TaskKind
from wwmdistill.models import model_fingerprint, require_model_dir
from wwmdistill.settings import Stage1Settings, TaskDistillSettings
from wwmdistill.tokenizer import copy_tokenizer_files, load_tokenizer, tokenizer_fingerprint
from wwmdistill.training import (
    TrainingSettings,
    resume_checkpoint,
    run_fingerprint,
    training_arguments,
)

# Both stages and the logit cache log under one name, the stage's.
log = logging.getLogger("wwmdistill.distill.task")


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
    table, data_fp = _train_rows(task, augmented_path)
    features = train_dataset(task, table, tokenizer, finetune)
    features = features.select_columns(list(MODEL_INPUTS))
    set_seed(seed)
    student = load_task_model(Path(student_dir), task, finetune, where)
    teacher = load_task_model(Path(teacher_dir), task, finetune, where)
    if stage.attention > 0:
        _check_heads(student, teacher, where)
    model = IntermediateDistillation(student, teacher.config.hidden_size, stage)
    args = _training_arguments(stage, len(features), checkpoint_dir, seed)
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


def _train_rows(task: TaskData, augmented_path: Path | None) -> tuple[pa.Table, str]:
    """The rows stage 1 trains on and their fingerprint."""
    if augmented_path is None:
        return task.splits["train"], task.fingerprints["train"]
    augmented = open_augmented(Path(augmented_path))
    return task_table(augmented.table, task), augmented.fingerprint


def _check_heads(student: nn.Module, teacher: nn.Module, where: str) -> None:
    s_heads = student.config.num_attention_heads
    t_heads = teacher.config.num_attention_heads
    if s_heads != t_heads:
        raise ValueError(
            f"config {where}.stage1.attention: attention distillation needs equal head "
            f"counts, the student has {s_heads} and the teacher {t_heads}"
        )


def _training_arguments(
    stage: Stage1Settings, examples: int, checkpoint_dir: Path, seed: int
) -> Any:
    """The Trainer's arguments: `max_steps`, or the steps of `epochs` over every rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps = stage.max_steps or max(
        1, math.ceil(stage.epochs * math.ceil(examples / (stage.batch_size * world)))
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
    return training_arguments(
        training,
        checkpoint_dir,
        seed,
    )


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


def run_from_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """run_stage1 from a JSON-able dict of its arguments (see task_common.parse_arguments)."""
    settings, finetune, paths, seed = parse_arguments(arguments)
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


if __name__ == "__main__":
    from wwmdistill.launch import main

    main(run_from_arguments)
