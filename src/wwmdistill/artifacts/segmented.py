"""Segmented shards: the corpus columns plus `word_ends`, the segmenter's word boundaries as
character offsets.

Metadata: the corpus shard's fingerprint, the backend, the segmenter's identity and the
segmentation settings. Written by `wwmdistill.segment`; read by masking.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShard, ArrowShardWriter, open_shard
from wwmdistill.artifacts.corpus import CORPUS_SCHEMA

STAGE = "segmented"
SEGMENTED_SCHEMA = CORPUS_SCHEMA.append(pa.field("word_ends", pa.list_(pa.int32())))


def segmented_writer(
    path: str | os.PathLike[str],
    *,
    fingerprint: str,
    source_fingerprint: str,
    backend: str,
    segmenter: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> ArrowShardWriter:
    """The atomic writer of the segmented shard of the corpus shard `source_fingerprint`."""
    meta = {
        "source_fingerprint": source_fingerprint,
        "backend": backend,
        "segmenter": segmenter,
        "settings": settings,
    }
    return ArrowShardWriter(path, SEGMENTED_SCHEMA, stage=STAGE, fingerprint=fingerprint, meta=meta)


def open_segmented(path: str | os.PathLike[str], columns: tuple[str, ...] = ()) -> ArrowShard:
    """A segmented shard, checked to hold `columns`."""
    return open_shard(path, stage=STAGE, columns=columns)
