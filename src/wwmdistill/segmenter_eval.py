"""Score a segmenter against gold segmentation on the held-out documents."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path
from typing import Any

from wwmdistill.arrow_io import write_json
from wwmdistill.progress import tqdm
from wwmdistill.segment import (
    SegmentationSettings,
    Segmenter,
    check_partition,
    make_segmenter,
    normalize_ends,
)
from wwmdistill.segmenter_train import iter_gold_docs

log = logging.getLogger(__name__)


def _spans(ends: list[int]) -> set[tuple[int, int]]:
    return set(zip([0, *ends], ends, strict=False))


def word_prf(gold: list[list[int]], pred: list[list[int]]) -> dict[str, float | int]:
    """Word-level precision, recall and F1: a predicted word is correct when its (start, end)
    span equals a gold word's span. Counts are summed over documents (micro average)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold segmentations but {len(pred)} predicted")
    correct = gold_words = pred_words = 0
    for g, p in zip(gold, pred, strict=True):
        correct += len(_spans(g) & _spans(p))
        gold_words += len(g)
        pred_words += len(p)
    precision = correct / pred_words if pred_words else 0.0
    recall = correct / gold_words if gold_words else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "correct": correct,
        "gold_words": gold_words,
        "pred_words": pred_words,
    }


def score_segmenter(
    segmenter: Segmenter, texts: list[str], gold: list[list[int]], batch_size: int
) -> dict[str, Any]:
    """Segment `texts` in batches, timing only the segmenter, and score against `gold`."""
    pred: list[list[int]] = []
    seconds = 0.0
    for start in tqdm(range(0, len(texts), batch_size), desc="evaluate segmenter", unit="batch"):
        batch = texts[start : start + batch_size]
        started = time.perf_counter()
        pred.extend(segmenter.segment(batch))
        seconds += time.perf_counter() - started
    characters = sum(map(len, texts))
    return {
        **word_prf(gold, pred),
        "documents": len(texts),
        "characters": characters,
        "seconds": seconds,
        "chars_per_second": characters / seconds if seconds else None,
    }


def evaluate_segmenter(
    corpus_shards: list[Path],
    settings: SegmentationSettings,
    model_path: Path | None,
    out_json: Path,
) -> dict[str, Any]:
    """Score the configured segmenter on up to `eval.max_docs` held-out gold documents."""
    corpus_shards = [Path(p) for p in corpus_shards]
    docs = list(
        itertools.islice(
            iter_gold_docs(corpus_shards, settings.eval.fraction, heldout=True),
            settings.eval.max_docs,
        )
    )
    if not docs:
        raise ValueError(
            f"no held-out gold documents in {[str(p) for p in corpus_shards]} "
            f"(segmentation.eval.fraction={settings.eval.fraction})"
        )
    texts = [text for _, text, _ in docs]
    gold = []
    for doc_id, text, ends in docs:
        try:
            check_partition(text, ends)
        except ValueError as err:
            raise ValueError(f"document {doc_id}: bad gold_word_ends ({err})") from err
        # The gold copy follows the same whitespace rule the segmenters do.
        gold.append(normalize_ends(text, ends))
    if settings.backend == "gold":
        # Scores the gold copy against itself: the check that the pipeline reads it intact.
        result = {
            **word_prf(gold, gold),
            "documents": len(docs),
            "characters": sum(map(len, texts)),
            "seconds": 0.0,
            "chars_per_second": None,
        }
    else:
        segmenter = make_segmenter(settings, model_path)
        result = score_segmenter(segmenter, texts, gold, settings.batch_size)
        result["segmenter"] = segmenter.identity
    result["backend"] = settings.backend
    result["settings"] = settings.as_dict()
    write_json(out_json, result)
    log.info(
        "%s: precision %.4f recall %.4f f1 %.4f on %d held-out documents (%.0f chars/s)",
        settings.backend,
        result["precision"],
        result["recall"],
        result["f1"],
        len(docs),
        result["chars_per_second"] or 0,
    )
    return result
