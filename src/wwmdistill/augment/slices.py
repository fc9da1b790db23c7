"""The augment stage: one slice of a task's train split augmented into a file, and slices merged.

A slice is a contiguous run of whole groups of rows (see `sampling`), so merged slices equal one
slice, byte for byte in their rows. Each slice's stats count what was augmented; the merge sums
them and recomputes the shares and rates.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from wwmdistill.arrow_io import ArtifactError, fingerprint
from wwmdistill.artifacts.augmented import (
    augmented_schema,
    merged_writer,
    open_slices,
    slice_stats,
    slice_writer,
)
from wwmdistill.artifacts.task_data import open_task_split, split_meta
from wwmdistill.augment.filler import Augmenter
from wwmdistill.augment.sampling import AugmentedExample, default_n, iter_augmented
from wwmdistill.augment.slots import TextPlan
from wwmdistill.kinds import TaskKind, kind_of
from wwmdistill.progress import tqdm
from wwmdistill.segment import Segmenter
from wwmdistill.settings import AugmentSettings

# The stage logs under one name, whichever of its modules speaks.
log = logging.getLogger("wwmdistill.augment")

# Bumped when the rows written for the same inputs and settings change.
AUGMENT_VERSION = "1"
# Stats summed over slices; the shares and rates are recomputed from them.
_ADDITIVE_STATS = (
    "examples",
    "originals",
    "augmented",
    "slots",
    "slots_with_candidates",
    "changed_chars",
    "augmented_chars",
    "masked_variants",
    "teacher_batches",
    "seconds",
)


def slice_rows(num_rows: int, group: int, slice_index: int, num_slices: int) -> tuple[int, int]:
    """Rows [start, end) of a slice: a contiguous run of whole groups of `group` rows.

    Groups are shared out as evenly as they divide; a slice may be empty when there are more
    slices than groups.
    """
    if num_slices < 1 or not 0 <= slice_index < num_slices:
        raise ValueError(f"slice {slice_index} of {num_slices}: not a valid slice")
    groups = -(-num_rows // group)
    first = slice_index * groups // num_slices
    last = (slice_index + 1) * groups // num_slices
    return min(first * group, num_rows), min(last * group, num_rows)


def _file_sha256(path: str | None) -> str | None:
    return None if path is None else hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _changed_chars(plan: TextPlan, choices: Sequence[int]) -> int:
    """Characters that differ from the original inside replaced slots (position by position;
    a synonym of another length counts its extra or missing characters too)."""
    changed = 0
    for slot, choice in zip(plan.slots, choices, strict=True):
        if choice >= 0:
            old, new = plan.text[slot.start : slot.end], slot.candidates[choice]
            differing = sum(a != b for a, b in zip(old, new, strict=False))
            changed += differing + abs(len(old) - len(new))
    return changed


class _Rows:
    """Accumulates output rows column by column, and the counts behind the stats."""

    def __init__(self, schema: pa.Schema, kind: TaskKind) -> None:
        self.schema = schema
        self.columns = kind.augmented_columns
        self.data: dict[str, list[Any]] = {name: [] for name in schema.names}
        self.counts = dict.fromkeys(_ADDITIVE_STATS, 0)

    def add(self, example: AugmentedExample) -> None:
        row = example.row
        self._append(row, example.origin, False)
        self.counts["originals"] += 1
        for plan in example.plans:
            if plan is not None:
                self.counts["slots"] += len(plan.slots)
                self.counts["slots_with_candidates"] += sum(bool(s.candidates) for s in plan.slots)
        for k, variant in enumerate(example.variants, 1):
            copy = dict(row, id=f"{row['id']}-aug{k}")
            copy.update(zip(self.columns, variant.texts, strict=True))
            self._append(copy, example.origin, True)
            self.counts["augmented"] += 1
            for plan, choices, text in zip(
                example.plans, variant.choices, variant.texts, strict=True
            ):
                if plan is not None:
                    self.counts["changed_chars"] += _changed_chars(plan, choices)
                    self.counts["augmented_chars"] += len(text)

    def _append(self, row: dict[str, Any], origin: int, augmented: bool) -> None:
        for name in self.schema.names[:-2]:
            self.data[name].append(row[name])
        self.data["origin"].append(origin)
        self.data["augmented"].append(augmented)
        self.counts["examples"] += 1

    def flush(self) -> pa.Table:
        table = pa.Table.from_pydict(self.data, schema=self.schema)
        self.data = {name: [] for name in self.schema.names}
        return table


def _finish_stats(counts: Mapping[str, float], n: int) -> dict[str, Any]:
    stats: dict[str, Any] = {key: counts[key] for key in _ADDITIVE_STATS}
    stats["n"] = n
    stats["tokens_changed_share"] = counts["changed_chars"] / max(counts["augmented_chars"], 1)
    stats["examples_per_s"] = counts["examples"] / max(counts["seconds"], 1e-9)
    stats["augmented_per_s"] = counts["augmented"] / max(counts["seconds"], 1e-9)
    return stats


def _log_examples(examples: list[AugmentedExample]) -> None:
    for example in examples:
        before = " | ".join(p.text for p in example.plans if p is not None)
        after = " | ".join(t for t in example.variants[0].texts if t is not None)
        log.info("augment example row %d: %s  ->  %s", example.origin, before, after)


def _settings_fingerprint(settings: AugmentSettings) -> dict[str, Any]:
    """What decides the rows: the settings less `slices`, and the word lists' contents."""
    raw = settings.as_dict()
    raw.pop("slices")
    raw["stopwords_sha256"] = _file_sha256(settings.stopwords)
    raw["synonyms_sha256"] = _file_sha256(settings.synonyms)
    return raw


def augment_split(
    train_path: str | Path,
    teacher_dir: str | Path,
    segmenter: Segmenter,
    settings: AugmentSettings,
    out_path: str | Path,
    *,
    seed: int,
    slice_index: int = 0,
    num_slices: int = 1,
) -> dict[str, Any]:
    """Augment one slice of a task's train split into `out_path` (stage "augment"); its stats.

    The slice is rows `slice_rows(train rows, settings.batch_size, slice_index, num_slices)`.
    """
    started = time.perf_counter()
    source = open_task_split(train_path)
    info = split_meta(source)
    try:
        kind = kind_of(info.kind, str(train_path))
    except ValueError as error:
        raise ArtifactError(str(error)) from None
    table = source.read_all()
    start, end = slice_rows(table.num_rows, settings.batch_size, slice_index, num_slices)
    augmenter = Augmenter(teacher_dir, segmenter, settings)
    n = settings.n if settings.n is not None else default_n(table.num_rows)
    schema = augmented_schema(source.schema)
    desc = f"augment {info.task} {slice_index + 1}/{num_slices}"
    parts, counts = _augment_rows(
        table, kind, augmenter, schema, n=n, seed=seed, start=start, end=end, desc=desc
    )
    counts["seconds"] = time.perf_counter() - started
    stats = _finish_stats(counts, n)
    base_fp = fingerprint(
        "augment",
        AUGMENT_VERSION,
        source.fingerprint,
        _settings_fingerprint(settings),
        augmenter.identity,
        seed,
    )
    with slice_writer(
        out_path,
        schema,
        task=info.task,
        kind=kind.name,
        labels=info.labels,
        pair=info.pair,
        source_fingerprint=source.fingerprint,
        settings=settings.as_dict(),
        teacher_fingerprint=augmenter.teacher_fingerprint,
        teacher=augmenter.identity,
        segmenter=augmenter.identity["segmenter"],
        seed=seed,
        augment_fingerprint=base_fp,
        slice_index=slice_index,
        num_slices=num_slices,
        rows=(start, end),
        train_rows=table.num_rows,
        stats=stats,
    ) as writer:
        for part in parts:
            writer.write(part)
    _log_slice(out_path, train_path, start, end, n, stats)
    return stats


def _augment_rows(
    table: pa.Table,
    kind: TaskKind,
    augmenter: Augmenter,
    schema: pa.Schema,
    *,
    n: int,
    seed: int,
    start: int,
    end: int,
    desc: str,
) -> tuple[list[pa.Table], dict[str, Any]]:
    """Rows [start, end) and their variants as tables of the output schema, and their counts
    (all but `seconds`)."""
    rows = _Rows(schema, kind)
    parts: list[pa.Table] = []
    shown: list[AugmentedExample] = []
    with tqdm(total=end - start, desc=desc, unit="example") as bar:
        for example in iter_augmented(
            table, kind, augmenter, n=n, seed=seed, start=start, end=end, progress=bar
        ):
            rows.add(example)
            if example.variants and len(shown) < 3:
                shown.append(example)
            if len(rows.data["origin"]) >= 8192:
                parts.append(rows.flush())
    parts.append(rows.flush())
    _log_examples(shown)
    counts = dict(rows.counts)
    counts["masked_variants"] = augmenter.masked_variants
    counts["teacher_batches"] = augmenter.teacher_batches
    return parts, counts


def _log_slice(
    out_path: str | Path,
    train_path: str | Path,
    start: int,
    end: int,
    n: int,
    stats: Mapping[str, Any],
) -> None:
    log.info(
        "%s: rows %d-%d of %s: %d originals -> %d rows (%d augmented, N=%d); %d of %d slots "
        "with candidates; %.1f%% of augmented characters changed; %.1fs (%.1f rows/s)",
        out_path,
        start,
        end,
        train_path,
        stats["originals"],
        stats["examples"],
        stats["augmented"],
        n,
        stats["slots_with_candidates"],
        stats["slots"],
        100 * stats["tokens_changed_share"],
        stats["seconds"],
        stats["examples_per_s"],
    )


def merge_augmented(slice_paths: Sequence[str | Path], out_path: str | Path) -> dict[str, Any]:
    """Merge every slice of one augmentation into one file, rows grouped by origin in train
    order; returns the summed stats."""
    if not slice_paths:
        raise ValueError("merge_augmented: no slices given")
    shards = open_slices(slice_paths)
    first = shards[0]
    counts = dict.fromkeys(_ADDITIVE_STATS, 0)
    for shard in shards:
        for key in _ADDITIVE_STATS:
            counts[key] += slice_stats(shard)[key]
    stats = _finish_stats(counts, slice_stats(first)["n"])
    last_origin = -1
    with merged_writer(out_path, first, stats) as writer:
        for shard in shards:
            for batch in shard.iter_batches():
                origins = batch.column("origin").to_numpy()
                if origins.size and (origins[0] < last_origin or np.any(np.diff(origins) < 0)):
                    raise ArtifactError(f"{shard.path}: rows are not in train order")
                last_origin = int(origins[-1]) if origins.size else last_origin
                writer.write(batch)
        if writer.rows != stats["examples"]:
            raise ArtifactError(
                f"{out_path}: the slices hold {writer.rows} rows but their stats say "
                f"{stats['examples']}"
            )
    log.info(
        "%s: merged %d slices, %d rows (%d augmented)",
        out_path,
        len(shards),
        writer.rows,
        stats["augmented"],
    )
    return stats
