"""Task metrics on a 0-100 scale: accuracy, and CMRC 2018's EM/F1 as its official script scores.

CMRC 2018 scoring follows ymcui/cmrc2018 `baseline/cmrc2018_evaluate.py` (v6) rule for rule, so
numbers compare with published ones: lowercase and strip; every CJK character (U+4E00-U+9FA5)
and every character of the script's punctuation list is a token of its own, other runs are
word-tokenised; F1 drops the punctuation before segmenting and scores the longest common
contiguous run of tokens; EM compares the strings with the punctuation removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

# The official list, character by character. Its '……' entry is two characters, so a single
# '…' never equals it: the ellipsis is not punctuation there, and it is not here either.
CMRC_PUNCTUATION = frozenset("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Percent of predictions equal to their label; labels must be known (>= 0)."""
    preds = np.asarray(predictions, dtype=np.int64).reshape(-1)
    golds = np.asarray(labels, dtype=np.int64).reshape(-1)
    if preds.shape != golds.shape:
        raise ValueError(f"accuracy: {preds.size} predictions for {golds.size} labels")
    if golds.size == 0:
        raise ValueError("accuracy: no labels")
    if (golds < 0).any():
        first = int(np.flatnonzero(golds < 0)[0])
        raise ValueError(
            f"accuracy: label {int(golds[first])} at index {first} is unknown (unlabelled split?)"
        )
    return float((preds == golds).mean() * 100.0)


@lru_cache(maxsize=1)
def _word_tokenizer():
    # NLTKWordTokenizer is the word tokenizer inside nltk.word_tokenize; calling it directly
    # skips the punkt sentence split, which needs downloaded data. The two differ only on
    # a period ending a sentence inside a run (punkt splits it off), rare in answer spans.
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fa5"


def mixed_segmentation(text: str, rm_punc: bool = False) -> list[str]:
    """CMRC 2018 tokens: CJK and punctuation characters alone, other runs word-tokenised.

    With `rm_punc` the punctuation characters are dropped before segmenting, so they no longer
    split a run: "ab-cd" is the one token "abcd", as in the official script.
    """
    tokens: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            tokens.extend(_word_tokenizer().tokenize("".join(run)))
            run.clear()

    for ch in str(text).lower().strip():
        is_punc = ch in CMRC_PUNCTUATION
        if is_punc and rm_punc:
            continue
        if is_punc or _is_cjk(ch):
            flush()
            tokens.append(ch)
        else:
            run.append(ch)
    flush()
    return tokens


def remove_punctuation(text: str) -> str:
    """Lowercased, stripped text without the CMRC 2018 punctuation characters."""
    return "".join(ch for ch in str(text).lower().strip() if ch not in CMRC_PUNCTUATION)


def longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest contiguous run of tokens that `a` and `b` share."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                cur[j + 1] = prev[j] + 1
                best = max(best, cur[j + 1])
        prev = cur
    return best


def _f1(answers: Sequence[str], prediction: str) -> float:
    pred_tokens = mixed_segmentation(prediction, rm_punc=True)
    best = 0.0
    for answer in answers:
        gold_tokens = mixed_segmentation(answer, rm_punc=True)
        common = longest_common_run(gold_tokens, pred_tokens)
        if common == 0:
            continue
        precision = common / len(pred_tokens)
        recall = common / len(gold_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _em(answers: Sequence[str], prediction: str) -> float:
    pred = remove_punctuation(prediction)
    return float(any(remove_punctuation(a) == pred for a in answers))


def cmrc2018_scores(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict:
    """EM, F1 and their average (0-100) over every gold question, as the official script.

    A question missing from `predictions` scores 0 and is counted in `skipped`; predictions for
    ids not in `gold` are ignored. Returns {em, f1, average, total, skipped}.
    """
    if not gold:
        raise ValueError("cmrc2018_scores: no gold questions")
    em = f1 = 0.0
    skipped = 0
    for qid, answers in gold.items():
        if isinstance(answers, str) or not answers:
            raise ValueError(f"cmrc2018_scores: question {qid!r} needs a list of gold answers")
        if qid not in predictions:
            skipped += 1
            continue
        prediction = str(predictions[qid])
        f1 += _f1(answers, prediction)
        em += _em(answers, prediction)
    total = len(gold)
    em_score = 100.0 * em / total
    f1_score = 100.0 * f1 / total
    return {
        "em": em_score,
        "f1": f1_score,
        "average": (em_score + f1_score) / 2,
        "total": total,
        "skipped": skipped,
    }
