"""Word-level precision/recall/F1 and the segmenter evaluation job."""

from __future__ import annotations

import json

import pytest
from test_segmenter_train import peoples_daily, write_corpus

from wwmdistill.segment import SegmentationSettings
from wwmdistill.segmenter_eval import evaluate_segmenter, word_prf
from wwmdistill.segmenter_train import is_heldout


def test_identical_segmentations_score_one():
    assert word_prf([[2, 3, 5]], [[2, 3, 5]]) == {
        "precision": 1.0, "recall": 1.0, "f1": 1.0,
        "correct": 3, "gold_words": 3, "pred_words": 3,
    }  # fmt: skip


def test_a_word_counts_only_when_both_ends_match():
    # gold: ab|c|de  pred: a|bc|de -> only "de" (3, 5) matches.
    result = word_prf([[2, 3, 5]], [[1, 3, 5]])
    assert (result["correct"], result["gold_words"], result["pred_words"]) == (1, 3, 3)
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["recall"] == pytest.approx(1 / 3)


def test_counts_are_summed_over_documents():
    # doc 1: gold ab|cd, pred abcd -> 0 of 1 predicted, 0 of 2 gold.
    # doc 2: gold a|b|c, pred a|bc -> "a" matches: 1 of 2 predicted, 1 of 3 gold.
    result = word_prf([[2, 4], [1, 2, 3]], [[4], [1, 3]])
    assert (result["correct"], result["gold_words"], result["pred_words"]) == (1, 5, 3)
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["recall"] == pytest.approx(1 / 5)
    assert result["f1"] == pytest.approx(2 * (1 / 3) * (1 / 5) / (1 / 3 + 1 / 5))


def test_nothing_right_scores_zero_and_lengths_must_agree():
    assert word_prf([[1, 2]], [[2]])["f1"] == 0.0
    assert word_prf([[]], [[]])["f1"] == 0.0
    with pytest.raises(ValueError, match="1 gold segmentations but 2 predicted"):
        word_prf([[1]], [[1], [1]])


def test_evaluation_scores_heldout_gold_documents_only(tmp_path):
    # Held-out documents whose gold is whitespace-delimited words, one not held out which the
    # whitespace backend would get wrong: only held-out ones may count.
    held = [f"d{i}" for i in range(200) if is_heldout(f"d{i}", 0.3)][:3]
    kept = next(f"d{i}" for i in range(200) if not is_heldout(f"d{i}", 0.3))
    docs = [
        (held[0], "ab cd", [2, 5]),
        (held[1], "x yz", [1, 4]),
        (held[2], "pq rs", [1, 2, 5]),  # gold p|q| rs vs pred pq| rs: 1 of 3 gold, 1 of 2 pred
        (kept, "mn op", [1, 5]),
        ("no-gold", "uv wx", None),
    ]
    corpus = write_corpus(tmp_path / "c.arrow", docs)
    settings = SegmentationSettings.from_config(
        {"backend": "whitespace", "eval": {"fraction": 0.3, "max_docs": 10}}
    )
    out = tmp_path / "eval" / "segmenter.json"
    result = evaluate_segmenter([corpus], settings, None, out)
    assert json.loads(out.read_text(encoding="utf-8")) == result
    assert result["backend"] == "whitespace"
    assert (result["documents"], result["characters"]) == (3, 14)
    assert (result["gold_words"], result["pred_words"], result["correct"]) == (7, 6, 5)
    assert result["precision"] == pytest.approx(5 / 6)
    assert result["recall"] == pytest.approx(5 / 7)
    assert result["chars_per_second"] > 0

    capped = SegmentationSettings.from_config(
        {"backend": "gold", "eval": {"fraction": 0.3, "max_docs": 2}}
    )
    gold = evaluate_segmenter([corpus], capped, None, tmp_path / "gold.json")
    assert (gold["documents"], gold["f1"]) == (2, 1.0)


def test_jieba_on_peoples_daily_scores_below_the_trained_segmenter(tmp_path):
    # jieba follows another segmentation standard than People's Daily: a real but lower score.
    corpus = write_corpus(tmp_path / "c.arrow", peoples_daily(3000))
    settings = SegmentationSettings.from_config({"backend": "jieba"})
    result = evaluate_segmenter([corpus], settings, None, tmp_path / "e.json")
    assert result["documents"] == sum(is_heldout(d, 0.05) for d, _, _ in peoples_daily(3000))
    assert 0.7 < result["f1"] < 0.9


def test_no_heldout_gold_is_an_error(tmp_path):
    corpus = write_corpus(tmp_path / "c.arrow", [("x", "没有分词", None)])
    with pytest.raises(ValueError, match="no held-out gold documents"):
        evaluate_segmenter(
            [corpus], SegmentationSettings(backend="jieba"), None, tmp_path / "e.json"
        )
    assert not (tmp_path / "e.json").exists()
