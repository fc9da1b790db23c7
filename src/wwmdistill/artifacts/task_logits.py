"""Task-logit caches: the fine-tuned teacher's outputs on every row of a task's augmented data.

The columns are the task kind's (`TaskKind.logits_schema` in `wwmdistill.kinds`), one row per
training feature (span QA: per window); this module owns the file: stage, metadata keys (task,
kind, the augmented data's, teacher's and tokenizer's fingerprints, the fine-tuning settings the
features were made with, the row count), its fingerprint (of that metadata), writer and reader.
Written by `wwmdistill.distill.task_logits`, read by `wwmdistill.distill.task_stage2`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShardWriter, fingerprint, open_shard

STAGE = "task_logits"
# The fine-tuning settings that decide the features the logits belong to.
FEATURE_KEYS = ("max_seq_len", "doc_stride", "max_query_len")


def task_logits_meta(
    *,
    task: str,
    kind: str,
    augment_fingerprint: str,
    teacher_fingerprint: str,
    tokenizer_fingerprint: str,
    settings: Mapping[str, Any],
    rows: int,
) -> dict[str, Any]:
    """The metadata a cache records; its fingerprint is the fingerprint of this."""
    return {
        "task": task,
        "kind": kind,
        "augment_fingerprint": augment_fingerprint,
        "teacher_fingerprint": teacher_fingerprint,
        "tokenizer_fingerprint": tokenizer_fingerprint,
        "settings": settings,
        "rows": rows,
    }


def task_logits_writer(
    path: str | os.PathLike[str], schema: pa.Schema, meta: Mapping[str, Any]
) -> ArrowShardWriter:
    """The atomic writer of a cache; `schema` is the kind's, `meta` from `task_logits_meta`."""
    return ArrowShardWriter(path, schema, stage=STAGE, fingerprint=fingerprint(meta), meta=meta)


@dataclass(frozen=True)
class TaskLogits:
    """A cache's rows and metadata."""

    table: pa.Table
    meta: dict[str, Any]

    @property
    def teacher_fingerprint(self) -> str:
        return self.meta["teacher_fingerprint"]


def open_task_logits(
    path: Path, augment_fp: str, expected_rows: int, settings: Mapping[str, Any]
) -> TaskLogits:
    """The cache, refused unless made from the augmented data `augment_fp` with features as
    `settings` (fine-tuning settings) make them, `expected_rows` of them."""
    shard = open_shard(path, stage=STAGE)
    meta = shard.meta
    if meta.get("augment_fingerprint") != augment_fp:
        raise ValueError(
            f"{path}: made from augmented data {meta.get('augment_fingerprint')}, not "
            f"{augment_fp}; rerun its task_logits job"
        )
    wanted = {k: v for k, v in settings.items() if k in FEATURE_KEYS}
    made = {k: v for k, v in (meta.get("settings") or {}).items() if k in FEATURE_KEYS}
    if made != wanted:
        raise ValueError(f"{path}: features made with {made}, these settings want {wanted}")
    table = shard.read_all()
    if table.num_rows != expected_rows:
        raise ValueError(f"{path}: {table.num_rows} rows of logits for {expected_rows} features")
    return TaskLogits(table, meta)
