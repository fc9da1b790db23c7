"""Logit cache shards: the teacher's top-k logits at every masked position of a masked shard.

Aligned row for row with its masked shard (checked on opening, not assumed). Per masked position:
`topk_ids` (uint16 when the vocab fits, else int32) and `topk_logits` (float16); optionally
`logsumexp` over the full vocabulary and the teacher's final `hidden` state. Metadata: the masked
shard's and the teacher's fingerprints, the layout (top_k, vocab_size, hidden_size, has_logsumexp,
has_hidden), the row count and the logits settings. Written by `wwmdistill.teacher_logits`; read by
the MLM datasets and general distillation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShard, ArrowShardWriter, ArtifactError, open_shard
from wwmdistill.artifacts.masked import open_masked

STAGE = "logits"
# Every column a cache may hold, in schema order; the first two are always there.
LOGITS_COLUMNS = ("topk_ids", "topk_logits", "logsumexp", "hidden")
_REQUIRED = LOGITS_COLUMNS[:2]


class StaleCacheError(ArtifactError):
    """A logits shard was made from another masked shard or another teacher."""


def logits_schema(vocab_size: int, *, logsumexp: bool, hidden: bool) -> pa.Schema:
    ids = pa.uint16() if vocab_size <= 65535 else pa.int32()
    fields = [("topk_ids", pa.list_(ids)), ("topk_logits", pa.list_(pa.float16()))]
    if logsumexp:
        fields.append(("logsumexp", pa.list_(pa.float32())))
    if hidden:
        fields.append(("hidden", pa.list_(pa.float16())))
    return pa.schema(fields)


def logit_cache_writer(
    path: str | os.PathLike[str],
    schema: pa.Schema,
    *,
    fingerprint: str,
    source_fingerprint: str,
    teacher_fingerprint: str,
    top_k: int,
    vocab_size: int,
    hidden_size: int | None,
    rows: int,
    settings: Mapping[str, Any],
) -> ArrowShardWriter:
    """The atomic writer of the cache of masked shard `source_fingerprint` (`rows` rows).

    `schema` comes from `logits_schema`; whether it holds logsumexp and hidden is recorded.
    """
    meta = {
        "source_fingerprint": source_fingerprint,
        "teacher_fingerprint": teacher_fingerprint,
        "top_k": top_k,
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "has_logsumexp": "logsumexp" in schema.names,
        "has_hidden": "hidden" in schema.names,
        "rows": rows,
        "settings": settings,
    }
    return ArrowShardWriter(path, schema, stage=STAGE, fingerprint=fingerprint, meta=meta)


def open_logit_cache(path: str | os.PathLike[str]) -> ArrowShard:
    """A logits shard as it is, unchecked against its masked shard (for its fingerprint)."""
    return open_shard(path, stage=STAGE)


def open_logits(
    path: Path, masked_shard: Path, teacher_fingerprint: str | None = None
) -> ArrowShard:
    """Open a logits shard checked to be aligned with `masked_shard` (and made by the teacher)."""
    path, masked_shard = Path(path), Path(masked_shard)
    cache = open_shard(path, stage=STAGE, columns=_REQUIRED)
    masked = open_masked(masked_shard)
    made_from = cache.meta.get("source_fingerprint")
    if made_from != masked.fingerprint:
        raise StaleCacheError(
            f"{path}: made from a masked shard with fingerprint {made_from}, but {masked_shard} "
            f"has fingerprint {masked.fingerprint}; rerun the logits stage"
        )
    if cache.num_rows != masked.num_rows:
        raise StaleCacheError(
            f"{path}: {cache.num_rows} rows but {masked_shard} has {masked.num_rows} "
            f"(fingerprints {made_from} and {masked.fingerprint}); rerun the logits stage"
        )
    made_by = cache.meta.get("teacher_fingerprint")
    if teacher_fingerprint is not None and made_by != teacher_fingerprint:
        raise StaleCacheError(
            f"{path}: made by a teacher with fingerprint {made_by}, expected teacher "
            f"fingerprint {teacher_fingerprint}; rerun the logits stage"
        )
    for flag, column in (("has_logsumexp", "logsumexp"), ("has_hidden", "hidden")):
        if cache.meta.get(flag) and column not in cache.schema.names:
            raise ArtifactError(f"{path}: metadata says {flag} but there is no {column} column")
    return cache


def cache_columns(cache: ArrowShard) -> list[str]:
    """The columns of `LOGITS_COLUMNS` the cache holds, in that order."""
    return [c for c in LOGITS_COLUMNS if c in cache.schema.names]


def cache_vocab_size(cache: ArrowShard) -> int | None:
    """The teacher vocabulary the cache's ids index."""
    return cache.meta.get("vocab_size")


def cache_layout(cache: ArrowShard) -> dict[str, Any]:
    """What a reader must agree on across shards: top_k, hidden_size, has_logsumexp, has_hidden."""
    layout = {key: cache.meta.get(key) for key in ("top_k", "hidden_size", "has_logsumexp")}
    layout["has_hidden"] = bool(cache.meta.get("has_hidden"))
    return layout
