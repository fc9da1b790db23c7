"""Accuracy and CMRC 2018 EM/F1 on hand-built cases; every expected value is worked out by hand."""

from __future__ import annotations

import pytest

from wwmdistill.metrics import (
    CMRC_PUNCTUATION,
    accuracy,
    cmrc2018_scores,
    longest_common_run,
    mixed_segmentation,
    remove_punctuation,
)


def _one(gold: list[str], prediction: str) -> tuple[float, float]:
    scores = cmrc2018_scores({"q": gold}, {"q": prediction})
    assert scores["total"] == 1 and scores["skipped"] == 0
    assert scores["average"] == pytest.approx((scores["em"] + scores["f1"]) / 2)
    return scores["em"], scores["f1"]


def test_accuracy_exact_values() -> None:
    assert accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == 50.0
    assert accuracy([0, 1, 2], [0, 1, 2]) == 100.0
    assert accuracy([0, 0, 0], [1, 1, 0]) == pytest.approx(100 / 3)
    assert accuracy([5], [4]) == 0.0


def test_accuracy_refuses_unknown_labels_and_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="label -1 at index 2"):
        accuracy([0, 1, 0], [0, 1, -1])
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        accuracy([0, 1, 0], [0, 1])
    with pytest.raises(ValueError, match="no labels"):
        accuracy([], [])


def test_punctuation_list_is_the_official_one() -> None:
    # 11 ASCII + 13 full-width of the second row ('……' is two characters and never matches
    # one) + 8 of the third row.
    assert len(CMRC_PUNCTUATION) == 32
    assert set("，。：？！“”；’《》·、「」（）－～『』") <= CMRC_PUNCTUATION
    assert set("-:_*^/\\~`+=") <= CMRC_PUNCTUATION
    # Not on the list: the single ellipsis, the left single quote, ASCII . , ! ? ( ) and quotes.
    assert not set("…‘.,!?()\"'") & CMRC_PUNCTUATION


def test_mixed_segmentation_splits_cjk_and_word_tokenises_the_rest() -> None:
    # "Hello, " -> hello , ; 世 界 ; "2018" -> 2018 ; 年 ; ！ (on the list: its own token)
    assert mixed_segmentation(" Hello, 世界2018年！ ") == [
        "hello",
        ",",
        "世",
        "界",
        "2018",
        "年",
        "！",
    ]
    # rm_punc drops '！' (listed) but keeps ',' (ASCII comma is not listed).
    assert mixed_segmentation("Hello, 世界2018年！", rm_punc=True) == [
        "hello",
        ",",
        "世",
        "界",
        "2018",
        "年",
    ]
    # Listed punctuation splits a run when kept, and joins it when removed first.
    assert mixed_segmentation("ab-cd") == ["ab", "-", "cd"]
    assert mixed_segmentation("ab-cd", rm_punc=True) == ["abcd"]
    assert remove_punctuation(" 《红楼梦》：AB-c ") == "红楼梦abc"


def test_longest_common_run_is_contiguous() -> None:
    assert longest_common_run(list("abcd"), list("xbcya")) == 2  # "bc"
    assert longest_common_run(list("abc"), list("acb")) == 1  # a common subsequence of 2, no run
    assert longest_common_run([], list("abc")) == 0


def test_year_suffix_mixed_chinese_and_digits() -> None:
    # gold "2018" -> [2018]; prediction "2018年" -> [2018, 年]: lcs 1, P 1/2, R 1, F1 2/3.
    em, f1 = _one(["2018"], "2018年")
    assert em == 0.0
    assert f1 == pytest.approx(200 / 3)


def test_mixed_english_digits_and_chinese() -> None:
    # gold "iPhone 6s发布于2015年" -> [iphone, 6s, 发, 布, 于, 2015, 年] (7 tokens);
    # prediction "iphone 6s" -> [iphone, 6s]: lcs 2, P 1, R 2/7, F1 = (4/7)/(9/7) = 4/9.
    em, f1 = _one(["iPhone 6s发布于2015年"], "iphone 6s")
    assert em == 0.0
    assert f1 == pytest.approx(400 / 9)
    # Case only differs: EM 1.
    assert _one(["iPhone 6s"], "IPHONE 6S") == (100.0, 100.0)


def test_punctuation_differences_are_removed() -> None:
    # remove_punctuation: both "红楼梦"; tokens 红 楼 梦 both.
    assert _one(["《红楼梦》"], "红楼梦") == (100.0, 100.0)
    # Full-width brackets, corner quotes and colon: both "三体小说", tokens 三 体 小 说.
    assert _one(["「三体」（小说）"], "三体：小说") == (100.0, 100.0)
    assert _one(["『北京』、上海"], "北京上海。") == (100.0, 100.0)
    # A single '…' is not on the list: EM 0; F1 tokens [等, 等, …] vs [等, 等]: lcs 2,
    # P 1, R 2/3, F1 = (4/3)/(5/3) = 0.8.
    em, f1 = _one(["等等…"], "等等")
    assert em == 0.0
    assert f1 == pytest.approx(80.0)


def test_english_words_with_punctuation() -> None:
    # gold [new, york, city]; prediction "new york, usa" -> [new, york, ",", usa] (the ASCII
    # comma stays a token): lcs 2, P 2/4, R 2/3, F1 = (2/3)/(7/6) = 4/7.
    em, f1 = _one(["New York City"], "new york, usa")
    assert em == 0.0
    assert f1 == pytest.approx(400 / 7)
    # Removing '-' before tokenising joins "ab-cd" into one token: gold [abcd] vs [ab, cd]
    # share nothing, and EM compares "abcd" with "ab cd".
    assert _one(["ab-cd"], "ab cd") == (0.0, 0.0)
    assert _one(["ab-cd"], "abcd") == (100.0, 100.0)


def test_several_gold_answers_take_the_max() -> None:
    assert _one(["北京大学", "北大"], "北大") == (100.0, 100.0)
    # vs 北京大学: lcs 2 (北京), P 1, R 1/2, F1 2/3; vs 北大: lcs 1, P 1/2, R 1/2, F1 1/2.
    em, f1 = _one(["北京大学", "北大"], "北京")
    assert em == 0.0
    assert f1 == pytest.approx(200 / 3)


def test_empty_prediction_scores_zero() -> None:
    assert _one(["北京"], "") == (0.0, 0.0)
    # Only punctuation left: EM compares "" with "" (1), F1 has no tokens to share (0).
    assert _one(["。"], "") == (100.0, 0.0)


def test_missing_predictions_are_skipped_and_score_zero() -> None:
    gold = {"a": ["北京"], "b": ["2018年"], "c": ["上海"], "d": ["x"]}
    # a: EM 1, F1 1; b: "2018" vs [2018, 年]: P 1, R 1/2, F1 2/3; c: F1 0; d: missing.
    scores = cmrc2018_scores(gold, {"a": "北京", "b": "2018", "c": "广州", "extra": "x"})
    assert scores["total"] == 4
    assert scores["skipped"] == 1
    assert scores["em"] == pytest.approx(25.0)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 4)
    assert scores["average"] == pytest.approx((25.0 + 100 * (1 + 2 / 3) / 4) / 2)


def test_gold_without_answers_is_an_error() -> None:
    with pytest.raises(ValueError, match="'q1' needs a list of gold answers"):
        cmrc2018_scores({"q1": []}, {"q1": "x"})
    with pytest.raises(ValueError, match="'q1' needs a list"):
        cmrc2018_scores({"q1": "北京"}, {"q1": "北京"})
    with pytest.raises(ValueError, match="no gold questions"):
        cmrc2018_scores({}, {})
