"""Masked shards: one training instance a row, with its static whole-word masks.

Columns: `input_ids`, `masked_positions`, `masked_labels` (the original ids there), and `doc_id`
and `dupe` for provenance. Metadata: the segmented shard's fingerprint, the tokenizer's, the
masking settings, the shard index and the seed. Written by `wwmdistill.masking`; read by the
teacher, the logit cache, the MLM datasets and general distillation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShard, ArrowShardWriter, open_shard

STAGE = "masked"
MASKED_SCHEMA = pa.schema(
    [
        ("input_ids", pa.list_(pa.int32())),
        ("masked_positions", pa.list_(pa.int16())),
        ("masked_labels", pa.list_(pa.int32())),
        ("doc_id", pa.string()),
        ("dupe", pa.int8()),
    ]
)
MASKED_COLUMNS = tuple(MASKED_SCHEMA.names)


def masked_writer(
    path: str | os.PathLike[str],
    *,
    fingerprint: str,
    source_fingerprint: str,
    tokenizer_fingerprint: str,
    settings: Mapping[str, Any],
    shard_index: int,
    seed: int,
) -> ArrowShardWriter:
    """The atomic writer of the masked shard of the segmented shard `source_fingerprint`."""
    meta = {
        "source_fingerprint": source_fingerprint,
        "tokenizer_fingerprint": tokenizer_fingerprint,
        "settings": settings,
        "shard_index": shard_index,
        "seed": seed,
    }
    return ArrowShardWriter(path, MASKED_SCHEMA, stage=STAGE, fingerprint=fingerprint, meta=meta)


def open_masked(path: str | os.PathLike[str], columns: tuple[str, ...] = ()) -> ArrowShard:
    """A masked shard, checked to hold `columns`."""
    return open_shard(path, stage=STAGE, columns=columns)


def masked_rows(paths: Sequence[str | os.PathLike[str]]) -> int:
    """The rows the masked shards `paths` hold between them."""
    return sum(open_masked(path).num_rows for path in paths)


def tokenizer_fingerprint_of(masked: ArrowShard) -> str | None:
    """The fingerprint of the tokenizer that made the shard's ids (None if not recorded)."""
    return masked.meta.get("tokenizer_fingerprint")


def max_seq_len_of(path: Path) -> int:
    """The max_seq_len the masked shard at `path` was cut to."""
    shard = open_masked(path)
    try:
        return int(shard.meta["settings"]["max_seq_len"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: masked shard metadata has no settings.max_seq_len") from err
