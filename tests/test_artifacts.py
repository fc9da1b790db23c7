"""The artifact formats: each writer's stage, columns and metadata keys (in the order written,
which the file's bytes depend on), and each reader's checks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from wwmdistill.arrow_io import ArtifactError, fingerprint, open_shard
from wwmdistill.artifacts import (
    augmented,
    corpus,
    logit_cache,
    masked,
    segmented,
    task_data,
    task_logits,
)


def _keys(path: Path) -> list[str]:
    return list(open_shard(path).meta)


def test_corpus_and_segmented(tmp_path: Path) -> None:
    path = tmp_path / "c.arrow"
    with corpus.corpus_writer(path, fingerprint="c", shard=1, shards=2) as w:
        w.write({"doc_id": ["d"], "text": ["你好"], "gold_word_ends": [[2]]})
    shard = corpus.open_corpus(path, columns=("text",))
    assert (shard.stage, shard.meta) == ("corpus", {"shard": 1, "shards": 2})
    assert shard.schema.names == ["doc_id", "text", "gold_word_ends"]

    seg = tmp_path / "s.arrow"
    with segmented.segmented_writer(
        seg,
        fingerprint="s",
        source_fingerprint="c",
        backend="jieba",
        segmenter={"kind": "jieba"},
        settings={"batch_size": 1},
    ) as w:
        w.write({"doc_id": ["d"], "text": ["你好"], "gold_word_ends": [None], "word_ends": [[2]]})
    assert _keys(seg) == ["source_fingerprint", "backend", "segmenter", "settings"]
    assert segmented.open_segmented(seg).schema.names == [*corpus.CORPUS_SCHEMA.names, "word_ends"]
    with pytest.raises(ArtifactError, match="expected a 'corpus' artifact"):
        corpus.open_corpus(seg)


def _masked(path: Path, rows: int = 2) -> Path:
    with masked.masked_writer(
        path,
        fingerprint=f"m{rows}",
        source_fingerprint="s",
        tokenizer_fingerprint="t",
        settings={"max_seq_len": 16},
        shard_index=0,
        seed=1,
    ) as w:
        w.write(
            {
                "input_ids": [[1, 2, 3]] * rows,
                "masked_positions": [[1]] * rows,
                "masked_labels": [[2]] * rows,
                "doc_id": ["d"] * rows,
                "dupe": [0] * rows,
            }
        )
    return path


def test_masked(tmp_path: Path) -> None:
    path = _masked(tmp_path / "m.arrow")
    assert _keys(path) == ["source_fingerprint", "tokenizer_fingerprint", "settings"] + [
        "shard_index",
        "seed",
    ]
    shard = masked.open_masked(path, columns=masked.MASKED_COLUMNS)
    assert masked.tokenizer_fingerprint_of(shard) == "t"
    assert masked.max_seq_len_of(path) == 16
    assert masked.masked_rows([path, path]) == 4


def test_logit_cache(tmp_path: Path) -> None:
    source = _masked(tmp_path / "m.arrow")
    schema = logit_cache.logits_schema(100, logsumexp=True, hidden=False)
    assert schema.names == ["topk_ids", "topk_logits", "logsumexp"]
    assert schema.field("topk_ids").type == pa.list_(pa.uint16())
    assert logit_cache.logits_schema(70000, logsumexp=False, hidden=True).names == [
        "topk_ids",
        "topk_logits",
        "hidden",
    ]
    path = tmp_path / "l.arrow"
    with logit_cache.logit_cache_writer(
        path,
        schema,
        fingerprint="l",
        source_fingerprint=masked.open_masked(source).fingerprint,
        teacher_fingerprint="T",
        top_k=1,
        vocab_size=100,
        hidden_size=None,
        rows=2,
        settings={"top_k": 1},
    ) as w:
        w.write({"topk_ids": [[5]] * 2, "topk_logits": [[1.0]] * 2, "logsumexp": [[2.0]] * 2})
    assert open_shard(path).meta == {
        "source_fingerprint": "m2",
        "teacher_fingerprint": "T",
        "top_k": 1,
        "vocab_size": 100,
        "hidden_size": None,
        "has_logsumexp": True,
        "has_hidden": False,
        "rows": 2,
        "settings": {"top_k": 1},
    }
    assert _keys(path)[5:7] == ["has_logsumexp", "has_hidden"]
    cache = logit_cache.open_logits(path, source, "T")
    assert logit_cache.cache_columns(cache) == ["topk_ids", "topk_logits", "logsumexp"]
    assert logit_cache.cache_vocab_size(cache) == 100
    assert logit_cache.cache_layout(cache) == {
        "top_k": 1,
        "hidden_size": None,
        "has_logsumexp": True,
        "has_hidden": False,
    }
    assert logit_cache.open_logit_cache(path).fingerprint == "l"
    with pytest.raises(logit_cache.StaleCacheError, match="made by a teacher"):
        logit_cache.open_logits(path, source, "other")
    with pytest.raises(logit_cache.StaleCacheError, match="made from a masked shard"):
        logit_cache.open_logits(path, _masked(tmp_path / "m3.arrow", rows=3))


def _task_split(task_dir: Path) -> Path:
    path = task_data.split_path(task_dir, "train")
    with task_data.task_split_writer(
        path,
        pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.int64())]),
        fingerprint="t",
        task="demo",
        kind="classification",
        split="train",
        labels=["a", "b"],
        pair=False,
        files=["train.json"],
        dropped={},
        repaired={},
        labelled=True,
        source="data_root",
        rows_before_cap=3,
    ) as w:
        w.write({"id": ["0", "1"], "text": ["好", "坏"], "label": [0, 1]})
    return path


def test_task_data(tmp_path: Path) -> None:
    path = _task_split(tmp_path)
    assert path == tmp_path / "train.arrow"
    assert _keys(path) == [
        "task",
        "kind",
        "split",
        "labels",
        "pair",
        "files",
        "dropped",
        "repaired",
        "labelled",
        "source",
        "rows_before_cap",
    ]
    table, meta = task_data.open_task(path)
    assert table.num_rows == 2 and meta["task"] == "demo"
    info = task_data.split_meta(task_data.open_task_split(path))
    assert info == task_data.TaskSplitMeta(
        task="demo", kind="classification", labels=["a", "b"], pair=False, labelled=True
    )


def _slice(path: Path, schema: pa.Schema, index: int, rows: tuple[int, int]) -> Path:
    with augmented.slice_writer(
        path,
        schema,
        task="demo",
        kind="classification",
        labels=["a", "b"],
        pair=False,
        source_fingerprint="t",
        settings={"n": 1},
        teacher_fingerprint="T",
        teacher={"segmenter": "jieba"},
        segmenter="jieba",
        seed=1,
        augment_fingerprint="A",
        slice_index=index,
        num_slices=2,
        rows=rows,
        train_rows=2,
        stats={"examples": 1},
    ) as w:
        start = rows[0]
        w.write({"id": [str(start)], "origin": [start], "augmented": [False]})
    return path


def test_augmented(tmp_path: Path) -> None:
    task_schema = pa.schema([("id", pa.string())]).with_metadata({"k": "v"})
    schema = augmented.augmented_schema(task_schema)
    assert schema.names == ["id", "origin", "augmented"] and schema.metadata is None
    second = _slice(tmp_path / "1.arrow", schema, 1, (1, 2))
    first = _slice(tmp_path / "0.arrow", schema, 0, (0, 1))
    shard = open_shard(first)
    assert shard.fingerprint == fingerprint("A", 0, 2)
    assert list(shard.meta) == [
        "task",
        "kind",
        "split",
        "labels",
        "pair",
        "source_fingerprint",
        "settings",
        "teacher_fingerprint",
        "teacher",
        "segmenter",
        "seed",
        "augment_fingerprint",
        "slice_index",
        "num_slices",
        "rows",
        "train_rows",
        "stats",
    ]
    slices = augmented.open_slices([second, first])
    assert [s.path for s in slices] == [first, second]
    assert augmented.slice_stats(slices[0]) == {"examples": 1}
    merged = tmp_path / "merged.arrow"
    with augmented.merged_writer(merged, slices[0], {"examples": 2}) as w:
        for s in slices:
            for batch in s.iter_batches():
                w.write(batch)
    data = augmented.open_augmented(merged)
    assert data.fingerprint == "A"
    assert list(data.meta)[-2:] == ["rows", "stats"]
    assert data.meta["rows"] == [0, 2] and "slice_index" not in data.meta
    assert data.table.column("origin").to_pylist() == [0, 1]
    with pytest.raises(ArtifactError, match="not an augmentation slice"):
        augmented.open_slices([merged])
    with pytest.raises(ArtifactError, match=r"slice\(s\) \[1\] are not given"):
        augmented.open_slices([first])


def test_task_logits(tmp_path: Path) -> None:
    meta = task_logits.task_logits_meta(
        task="demo",
        kind="classification",
        augment_fingerprint="A",
        teacher_fingerprint="T",
        tokenizer_fingerprint="tok",
        settings={"max_seq_len": 8, "doc_stride": 4, "max_query_len": 4, "epochs": 1},
        rows=2,
    )
    path = tmp_path / "logits.arrow"
    schema = pa.schema([("logits", pa.list_(pa.float32()))])
    with task_logits.task_logits_writer(path, schema, meta) as w:
        w.write({"logits": [[0.1, 0.9], [0.8, 0.2]]})
    shard = open_shard(path)
    assert (shard.stage, shard.fingerprint, shard.meta) == ("task_logits", fingerprint(meta), meta)
    assert list(shard.meta) == list(meta)
    wanted = {"max_seq_len": 8, "doc_stride": 4, "max_query_len": 4, "epochs": 3}
    cache = task_logits.open_task_logits(path, "A", 2, wanted)
    assert cache.teacher_fingerprint == "T" and cache.table.num_rows == 2
    with pytest.raises(ValueError, match="made from augmented data A, not B"):
        task_logits.open_task_logits(path, "B", 2, wanted)
    with pytest.raises(ValueError, match="features made with"):
        task_logits.open_task_logits(path, "A", 2, {**wanted, "max_seq_len": 16})
    with pytest.raises(ValueError, match="2 rows of logits for 3 features"):
        task_logits.open_task_logits(path, "A", 3, wanted)
