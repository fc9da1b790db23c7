"""Segmentation backends and the segment stage, with real LTP and jieba."""

from __future__ import annotations

import re

import jieba
import pytest
import rjieba
import torch
from ltp_models import HOSTILE, make_hostile, neural_ltp_dir
from test_segmenter_train import peoples_daily, trained_on_peoples_daily, write_corpus

from wwmdistill.arrow_io import ArtifactError, open_shard
from wwmdistill.segment import (
    JiebaSegmenter,
    LtpNeuralSegmenter,
    SegmentationSettings,
    check_partition,
    load_ltp,
    make_segmenter,
    normalize_ends,
    optional_path,
    segment_shard,
)
from wwmdistill.segmenter_train import MODEL_FILE

AWKWARD = [
    "",
    " ",
    "  国家主席江泽民 发表新年讲话。  ",
    "迈向充满希望的新世纪\u3000——一九九八年新年讲话",
    "LTP 4.2 和 jieba\tsegment\n中文 text, 2024年。",
]


def words(text: str, ends: list[int]) -> list[str]:
    return [text[s:e] for s, e in zip([0, *ends], ends, strict=False)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return trained_on_peoples_daily(tmp_path_factory.getbasetemp())[1]


def test_whitespace_leads_the_following_word():
    assert normalize_ends("ab  cd e", [2, 3, 4, 6, 7, 8]) == [2, 6, 8]
    assert normalize_ends("  ab", [1, 2, 4]) == [4]
    assert normalize_ends("ab  ", [2, 3, 4]) == [4]
    assert normalize_ends("   ", [1, 2, 3]) == [3]
    assert normalize_ends("", []) == []


def test_whitespace_backend_words_are_runs_of_non_space():
    seg = make_segmenter(SegmentationSettings(backend="whitespace"))
    text = " Hello,  world\tof text "
    assert words(text, seg.segment([text])[0]) == [" Hello,", "  world", "\tof", " text "]
    assert seg.segment(["", "one"]) == [[], [3]]


@pytest.mark.parametrize("backend", ["ltp", "jieba", "whitespace"])
def test_every_backend_returns_a_partition_with_whitespace_leading_words(backend, model_dir):
    seg = make_segmenter(SegmentationSettings(backend=backend), model_dir)
    for text, ends in zip(AWKWARD, seg.segment(AWKWARD), strict=True):
        check_partition(text, ends)
        pieces = words(text, ends)
        assert "".join(pieces) == text
        # Whitespace only ever starts a word, or ends the text's last one.
        for piece in pieces[:-1]:
            assert piece.strip() and piece == piece.rstrip(), (backend, pieces)


def test_ltp_perceptron_segments_news_text_like_the_gold(model_dir):
    seg = make_segmenter(SegmentationSettings(), model_dir)
    text = "中共中央总书记、国家主席江泽民发表新年讲话。"
    assert words(text, seg.segment([text])[0]) == [
        "中共中央", "总书记", "、", "国家", "主席", "江", "泽民", "发表", "新年", "讲话", "。",
    ]  # fmt: skip
    # The bare model file loads as well as the directory.
    assert seg.segment([text]) == make_segmenter(
        SegmentationSettings(), model_dir / MODEL_FILE
    ).segment([text])


def test_ltp_without_a_model_names_the_setting(tmp_path):
    settings = SegmentationSettings.from_config({"ltp": {"model": "train"}})
    with pytest.raises(FileNotFoundError, match="segmentation.ltp.model='train'"):
        make_segmenter(settings, None)
    with pytest.raises(FileNotFoundError, match="needs config.json"):
        make_segmenter(settings, tmp_path)


def test_rjieba_and_jieba_give_the_same_words():
    texts = [text for _, text, _ in peoples_daily(400)] + AWKWARD
    fast, slow = JiebaSegmenter(), JiebaSegmenter(prefer_rust=False)
    assert (fast.impl, slow.impl) == ("rjieba", "jieba")
    assert fast.segment(texts) == slow.segment(texts)
    assert rjieba.cut(texts[0]) == jieba.lcut(texts[0])


@pytest.mark.parametrize("backend", ["ltp", "jieba"])
def test_user_dict_words_are_never_split(backend, model_dir, tmp_path):
    user_dict = tmp_path / "words.txt"
    user_dict.write_text("江泽民\n北京大学\n  \n", encoding="utf-8")
    text = "国家主席江泽民在北京大学生前来应聘时讲话"
    plain = make_segmenter(SegmentationSettings(backend=backend), model_dir)
    merged = make_segmenter(
        SegmentationSettings(backend=backend, user_dict=str(user_dict)), model_dir
    )
    before, after = plain.segment([text])[0], merged.segment([text])[0]
    inside = {text.index("江泽民") + 1, text.index("江泽民") + 2, *range(9, 12)}
    assert inside & set(before), before  # the backend alone splits one of them
    assert not inside & set(after)
    assert set(after) == set(before) - inside
    assert merged.identity["user_dict_sha256"] != plain.identity.get("user_dict_sha256")


def test_user_dict_merges_overlapping_occurrences(tmp_path):
    user_dict = tmp_path / "words.txt"
    # 京市 and 市长 overlap: a plain regex scan would find 京市 and miss the 市|长 boundary.
    user_dict.write_text("京市\n市长\n", encoding="utf-8")
    text = "南京市长江大桥"
    assert make_segmenter(SegmentationSettings(backend="jieba")).segment([text]) == [[3, 7]]
    seg = make_segmenter(SegmentationSettings(backend="jieba", user_dict=str(user_dict)))
    assert seg.segment([text]) == [[7]]


def test_bad_user_dict_and_config_are_named(tmp_path):
    bad = tmp_path / "words.txt"
    bad.write_text("好词\n坏 词\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"words.txt:2: .*whitespace"):
        make_segmenter(SegmentationSettings(backend="jieba", user_dict=str(bad)))
    with pytest.raises(FileNotFoundError, match="segmentation.user_dict"):
        make_segmenter(SegmentationSettings(backend="jieba", user_dict=str(tmp_path / "no")))
    with pytest.raises(ValueError, match=r"segmentation.ltp: unknown key\(s\) \['epoch'\]"):
        SegmentationSettings.from_config({"ltp": {"epoch": 3}})
    with pytest.raises(ValueError, match="segmentation.backend"):
        SegmentationSettings.from_config({"backend": "hanlp"})


def test_segment_shard_round_trip_with_metadata(tmp_path):
    docs = peoples_daily(300)
    corpus = write_corpus(tmp_path / "corpus.arrow", docs)
    settings = SegmentationSettings.from_config({"backend": "jieba", "batch_size": 64})
    out = tmp_path / "segmented" / "s.arrow"
    assert segment_shard(corpus, out, settings, None) == 300
    shard = open_shard(out, stage="segmented", columns=("doc_id", "text", "word_ends"))
    table = shard.read_all()
    assert table.column("doc_id").to_pylist() == [d for d, _, _ in docs]
    assert table.column("gold_word_ends").to_pylist() == [e for _, _, e in docs]
    texts = table.column("text").to_pylist()
    assert table.column("word_ends").to_pylist() == JiebaSegmenter().segment(texts)
    assert shard.meta["source_fingerprint"] == open_shard(corpus).fingerprint
    assert shard.meta["backend"] == "jieba"
    assert not list(out.parent.glob(".tmp-*"))
    # Same inputs, same fingerprint; another backend, another fingerprint.
    again = tmp_path / "again.arrow"
    segment_shard(corpus, again, settings, None)
    assert open_shard(again).fingerprint == shard.fingerprint
    other = tmp_path / "other.arrow"
    segment_shard(corpus, other, SegmentationSettings(backend="whitespace"), None)
    assert open_shard(other).fingerprint != shard.fingerprint


def test_gold_backend_copies_gold_and_names_a_shard_without_it(tmp_path):
    docs = peoples_daily(50)
    corpus = write_corpus(tmp_path / "corpus.arrow", docs)
    out = tmp_path / "gold.arrow"
    segment_shard(corpus, out, SegmentationSettings(backend="gold"), None)
    assert open_shard(out).read_all().column("word_ends").to_pylist() == [e for _, _, e in docs]

    no_gold = write_corpus(tmp_path / "plain.arrow", [("x", "没有分词", None)])
    with pytest.raises(ValueError, match=r"plain.arrow: backend 'gold' needs gold_word_ends"):
        segment_shard(no_gold, tmp_path / "never.arrow", SegmentationSettings(backend="gold"))
    assert not (tmp_path / "never.arrow").exists()
    with pytest.raises(ArtifactError, match="missing"):
        segment_shard(tmp_path / "absent.arrow", out, SegmentationSettings(backend="gold"))


def test_optional_model_input_forms(tmp_path):
    assert optional_path(None) is None and optional_path([]) is None
    assert optional_path([str(tmp_path)]) == tmp_path == optional_path(str(tmp_path))
    with pytest.raises(ValueError, match="at most one"):
        optional_path(["a", "b"])


@pytest.mark.parametrize("how", HOSTILE)
def test_a_neural_ltp_model_loads_its_weights_but_runs_no_code_it_carries(
    tmp_path, monkeypatch, how
):
    # The switch that turns torch.load's weights_only default off: the loader must not need it.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    honest = neural_ltp_dir(tmp_path / "honest")
    segmenter = load_ltp(honest)
    assert isinstance(segmenter, LtpNeuralSegmenter)
    saved = torch.load(honest / "pytorch_model.bin", weights_only=True)
    loaded = segmenter.ltp.model.state_dict()
    assert all(torch.equal(loaded[name], value) for name, value in saved.items())

    marker = tmp_path / "code-ran"
    carrier = make_hostile(neural_ltp_dir(tmp_path / "hostile"), how, marker)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(carrier))}: (holds more|refusing)"):
        load_ltp(carrier.parent)
    assert not marker.exists()
