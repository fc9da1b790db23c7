"""Augmented task data: a task's train split with its augmented variants, in slices and merged.

Columns: the task split's, plus `origin` (the row in train) and `augmented` (False: the original).
A slice holds a contiguous run of train rows; its metadata records where it comes from (task,
kind, labels, pair, the train split's, teacher's and segmenter's identity, settings, seed), the
run's `augment_fingerprint`, its `slice_index` of `num_slices`, its `rows` [start, end) of
`train_rows`, and its `stats`. The merged file has the run's metadata, rows [0, train_rows), the
summed stats and the run's fingerprint. Written by `wwmdistill.augment`; read by task
distillation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShard, ArrowShardWriter, ArtifactError, fingerprint, open_shard

STAGE = "augment"
# Metadata keys every slice of one merge must share, checked one by one so a refusal says which.
_SAME_KEYS = (
    "task",
    "kind",
    "source_fingerprint",
    "settings",
    "teacher_fingerprint",
    "segmenter",
    "seed",
    "num_slices",
    "augment_fingerprint",
)
# What only a slice records.
_SLICE_KEYS = ("slice_index", "rows", "stats")


def augmented_schema(task_schema: pa.Schema) -> pa.Schema:
    """The task split's columns plus `origin` (row in train) and `augmented` (False: original)."""
    schema = task_schema.remove_metadata()
    return schema.append(pa.field("origin", pa.int64())).append(pa.field("augmented", pa.bool_()))


def slice_writer(
    path: str | os.PathLike[str],
    schema: pa.Schema,
    *,
    task: str | None,
    kind: str,
    labels: Sequence[str],
    pair: bool,
    source_fingerprint: str,
    settings: Mapping[str, Any],
    teacher_fingerprint: str,
    teacher: Mapping[str, Any],
    segmenter: Any,
    seed: int,
    augment_fingerprint: str,
    slice_index: int,
    num_slices: int,
    rows: tuple[int, int],
    train_rows: int,
    stats: Mapping[str, Any],
) -> ArrowShardWriter:
    """The atomic writer of slice `slice_index` of `num_slices` (train `rows` [start, end))."""
    meta = {
        "task": task,
        "kind": kind,
        "split": "train",
        "labels": labels,
        "pair": pair,
        "source_fingerprint": source_fingerprint,
        "settings": settings,
        "teacher_fingerprint": teacher_fingerprint,
        "teacher": teacher,
        "segmenter": segmenter,
        "seed": seed,
        "augment_fingerprint": augment_fingerprint,
        "slice_index": slice_index,
        "num_slices": num_slices,
        "rows": list(rows),
        "train_rows": train_rows,
        "stats": stats,
    }
    slice_fp = fingerprint(augment_fingerprint, slice_index, num_slices)
    return ArrowShardWriter(path, schema, stage=STAGE, fingerprint=slice_fp, meta=meta)


def _check_slices(shards: list[ArrowShard]) -> list[ArrowShard]:
    """The slices ordered by index, refused unless they are all of one run and all present."""
    first = shards[0]
    for shard in shards:
        if "slice_index" not in shard.meta:
            raise ArtifactError(f"{shard.path}: not an augmentation slice (already merged?)")
        for key in _SAME_KEYS:
            if shard.meta.get(key) != first.meta.get(key):
                raise ArtifactError(
                    f"{shard.path}: its {key} differs from {first.path}'s; every slice must come "
                    "from one task, settings, teacher, segmenter and seed"
                )
    expected = first.meta["num_slices"]
    by_index: dict[int, Any] = {}
    for shard in shards:
        index = shard.meta["slice_index"]
        if index in by_index:
            raise ArtifactError(f"{shard.path}: slice {index} is also {by_index[index].path}")
        by_index[index] = shard
    missing = sorted(set(range(expected)) - set(by_index))
    if missing:
        raise ArtifactError(
            f"{first.path}: {expected} slices were made but slice(s) {missing} are not given"
        )
    ordered = [by_index[i] for i in range(expected)]
    cursor = 0
    for shard in ordered:
        start, end = shard.meta["rows"]
        if start != cursor:
            raise ArtifactError(f"{shard.path}: starts at row {start}, expected {cursor}")
        cursor = end
    if cursor != first.meta["train_rows"]:
        raise ArtifactError(
            f"{ordered[-1].path}: ends at row {cursor} of {first.meta['train_rows']}"
        )
    return ordered


def open_slices(paths: Sequence[str | os.PathLike[str]]) -> list[ArrowShard]:
    """Every slice of one augmentation run, ordered by index; refused unless all of one run,
    all present and together covering the train split."""
    return _check_slices([open_shard(p, stage=STAGE) for p in paths])


def slice_stats(shard: ArrowShard) -> dict[str, Any]:
    """The stats a slice recorded."""
    return shard.meta["stats"]


def merged_writer(
    path: str | os.PathLike[str], first: ArrowShard, stats: Mapping[str, Any]
) -> ArrowShardWriter:
    """The atomic writer of the merged file of the run `first` (from `open_slices`) is a slice
    of, with the merged `stats`; it takes the run's fingerprint."""
    meta = {k: v for k, v in first.meta.items() if k not in _SLICE_KEYS}
    meta.update(rows=[0, first.meta["train_rows"]], stats=stats)
    return ArrowShardWriter(
        path,
        first.schema.remove_metadata(),
        stage=STAGE,
        fingerprint=first.meta["augment_fingerprint"],
        meta=meta,
    )


@dataclass(frozen=True)
class AugmentedData:
    """Augmented rows (originals included) with the file's metadata and fingerprint."""

    table: pa.Table
    meta: dict[str, Any]
    fingerprint: str


def open_augmented(path: str | os.PathLike[str]) -> AugmentedData:
    """An augmented file (merged, or a single slice), checked to hold origin and augmented."""
    shard = open_shard(path, stage=STAGE, columns=("origin", "augmented"))
    return AugmentedData(shard.read_all(), shard.meta, shard.fingerprint)
