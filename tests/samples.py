"""Real sample text for tests: the CLUE corpus sample in ../shared/data, and corpus shards of it."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from wwmdistill.arrow_io import ArrowShardWriter, open_shard
from wwmdistill.artifacts.corpus import CORPUS_SCHEMA

CLUE_CORPUS = (
    Path(__file__).resolve().parents[2] / "shared/data/corpus/CLUECorpusSmall_bert_sampled.txt"
)


def clue_docs(max_lines: int) -> list[str]:
    """Documents of the first `max_lines` lines (blank lines separate documents)."""
    if not CLUE_CORPUS.is_file():
        pytest.fail(f"real corpus missing: {CLUE_CORPUS}")
    docs, cur = [], []
    with CLUE_CORPUS.open(encoding="utf-8") as f:
        for line in itertools.islice(f, max_lines):
            if line.strip():
                cur.append(line.rstrip("\n"))
            elif cur:
                docs.append("\n".join(cur))
                cur = []
    return docs + (["\n".join(cur)] if cur else [])


def write_corpus_shard(path: Path, doc_ids: list[str], texts: list[str], fp: str) -> Path:
    """A corpus-stage shard of these documents, without gold segmentation."""
    with ArrowShardWriter(path, CORPUS_SCHEMA, stage="corpus", fingerprint=fp) as writer:
        writer.write({"doc_id": doc_ids, "text": texts, "gold_word_ends": [None] * len(texts)})
    return path


def emptied(shard: Path, out: Path, stage: str) -> Path:
    """`shard`'s schema and metadata with no rows, as a corpus too small for its shards leaves."""
    source = open_shard(shard, stage=stage)
    meta = {k: v for k, v in source.meta.items() if k not in ("stage", "fingerprint")}
    with ArrowShardWriter(
        out, source.schema.remove_metadata(), stage=stage, fingerprint="empty", meta=meta
    ):
        pass
    return out


def whole_checkpoints(directory: Path) -> list[Path]:
    """The checkpoints under `directory` whose trainer_state.json (written last) is whole JSON.

    A test that kills a training run waits for one of these: killed while that file was being
    written, a checkpoint is incomplete, and the resume rightly removes it.
    """
    whole = []
    for state in directory.glob("checkpoint-*/trainer_state.json"):
        try:
            json.loads(state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        whole.append(state.parent)
    return whole
