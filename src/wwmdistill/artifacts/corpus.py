"""Corpus shards: one normalised, deduplicated document a row, with its gold segmentation if any.

Metadata: the shard's index and the shard count. Written by `wwmdistill.corpus`; read by
segmentation, the tokenizer trainer and the segmenter trainer.
"""

from __future__ import annotations

import os

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShard, ArrowShardWriter, open_shard

STAGE = "corpus"
CORPUS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("text", pa.string()),
        ("gold_word_ends", pa.list_(pa.int32())),
    ]
)


def corpus_writer(
    path: str | os.PathLike[str], *, fingerprint: str, shard: int, shards: int
) -> ArrowShardWriter:
    """The atomic writer of corpus shard `shard` of `shards`."""
    meta = {"shard": shard, "shards": shards}
    return ArrowShardWriter(path, CORPUS_SCHEMA, stage=STAGE, fingerprint=fingerprint, meta=meta)


def open_corpus(path: str | os.PathLike[str], columns: tuple[str, ...] = ()) -> ArrowShard:
    """A corpus shard, checked to hold `columns`."""
    return open_shard(path, stage=STAGE, columns=columns)
