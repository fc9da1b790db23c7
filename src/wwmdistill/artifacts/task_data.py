"""Task data: one Arrow file per split of a downstream task, `{task_dir}/{split}.arrow`.

The columns are the task kind's (`TaskKind.row_schema` in `wwmdistill.kinds`); this module owns
the file: its stage, where a split lives, the metadata keys (task, kind, split, the fixed label
order, pair, source files, drop and repair counts, whether it is labelled, the source and the
row count before capping), the writer and the reader. Written by `wwmdistill.tasks.build`; read
by fine-tuning, evaluation, augmentation and task distillation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShard, ArrowShardWriter, open_shard

STAGE = "task"


def split_path(task_dir: str | os.PathLike[str], split: str) -> Path:
    """Where split `split` of the task in `task_dir` lives."""
    return Path(task_dir) / f"{split}.arrow"


def task_split_writer(
    path: str | os.PathLike[str],
    schema: pa.Schema,
    *,
    fingerprint: str,
    task: str,
    kind: str,
    split: str,
    labels: Sequence[str],
    pair: bool,
    files: Sequence[str],
    dropped: Mapping[str, int],
    repaired: Mapping[str, int],
    labelled: bool,
    source: str,
    rows_before_cap: int,
) -> ArrowShardWriter:
    """The atomic writer of one split; `schema` is the task kind's row schema."""
    meta = {
        "task": task,
        "kind": kind,
        "split": split,
        "labels": labels,
        "pair": pair,
        "files": files,
        "dropped": dropped,
        "repaired": repaired,
        "labelled": labelled,
        "source": source,
        "rows_before_cap": rows_before_cap,
    }
    return ArrowShardWriter(path, schema, stage=STAGE, fingerprint=fingerprint, meta=meta)


def open_task_split(path: str | os.PathLike[str]) -> ArrowShard:
    """One split of a task."""
    return open_shard(path, stage=STAGE)


def open_task(path: str | Path) -> tuple[pa.Table, dict[str, Any]]:
    """A task split as a table, with its metadata (labels, kind, labelled, ...)."""
    shard = open_task_split(path)
    return shard.read_all(), shard.meta


@dataclass(frozen=True)
class TaskSplitMeta:
    """What a consumer reads from a split's metadata; absent keys read as their defaults."""

    task: str | None
    kind: str | None
    labels: list[str]
    pair: bool
    labelled: bool


def split_meta(shard: ArrowShard) -> TaskSplitMeta:
    meta = shard.meta
    return TaskSplitMeta(
        task=meta.get("task"),
        kind=meta.get("kind"),
        labels=meta.get("labels", []),
        pair=meta.get("pair", False),
        labelled=meta.get("labelled", True),
    )
