"""The fine-tuned teacher's logits on every augmented row, cached once per task for stage 2."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wwmdistill.artifacts.augmented import open_augmented
from wwmdistill.artifacts.task_logits import task_logits_meta, task_logits_writer
from wwmdistill.distill.task_common import task_table
from wwmdistill.finetune import FinetuneSettings, load_task, load_task_model, train_dataset
from wwmdistill.kinds import MODEL_INPUTS
from wwmdistill.models import model_fingerprint, require_model_dir
from wwmdistill.tokenizer import load_tokenizer, tokenizer_fingerprint

# Both stages and the logit cache log under one name, the stage's.
log = logging.getLogger("wwmdistill.distill.task")


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
    features = train_dataset(task, task_table(table, task), tokenizer, settings)
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
