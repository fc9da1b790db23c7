"""Span-extraction QA (CMRC 2018, DRCD): sliding-window features and answer decoding.

Examples are columns of the task stage's qa schema (`id`, `question`, `context`, `answers`,
`answer_starts`). Each example becomes one or more windows "[CLS] question [SEP] context part
[SEP]": the fast tokenizer truncates only the context and returns the overflow as further windows
that overlap by `doc_stride` tokens. Character offsets from the tokenizer tie every context token
back to the context, so answers map to tokens and predicted tokens map back to the exact text.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from transformers import BatchEncoding, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# Offsets given to tokens outside the context ([CLS], question, [SEP], padding) in eval features.
NO_OFFSET = (-1, -1)


def _check_lengths(max_seq_len: int, doc_stride: int, max_query_len: int) -> None:
    if max_query_len < 1 or doc_stride < 0:
        raise ValueError(f"qa: max_query_len {max_query_len} and doc_stride {doc_stride} too small")
    room = max_seq_len - max_query_len - 3
    # Every window must advance: the tokenizer refuses a stride that fills the context room.
    if doc_stride >= room:
        raise ValueError(
            f"qa: doc_stride {doc_stride} must be below max_seq_len - max_query_len - 3 = {room} "
            f"(max_seq_len {max_seq_len}, max_query_len {max_query_len})"
        )


def _truncate_questions(
    questions: list[str], tokenizer: PreTrainedTokenizerBase, max_query_len: int
) -> list[str]:
    """Questions cut after their `max_query_len`-th token (at that token's last character).

    WordPiece tokenizes a prefix cut at a token end into the same first tokens, so this keeps
    exactly the first `max_query_len` question tokens.
    """
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for question, offsets in zip(questions, enc["offset_mapping"], strict=True):
        out.append(
            question[: offsets[max_query_len - 1][1]] if len(offsets) > max_query_len else question
        )
    return out


def _windows(
    examples: Mapping[str, Sequence[Any]],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_len: int,
    doc_stride: int,
    max_query_len: int,
) -> BatchEncoding:
    _check_lengths(max_seq_len, doc_stride, max_query_len)
    questions = _truncate_questions(
        [str(q) for q in examples["question"]], tokenizer, max_query_len
    )
    contexts = [str(c) for c in examples["context"]]
    return tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=max_seq_len,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
        return_attention_mask=True,
    )


def _context_mask(enc: BatchEncoding, i: int) -> np.ndarray:
    return np.array([s == 1 for s in enc.sequence_ids(i)], dtype=bool)


def _answer_chars(
    qid: str, context: str, answers: Sequence[str], starts: Sequence[int]
) -> tuple[int, int] | None:
    """(start, end) characters of the first usable gold answer, or None when none is found.

    An answer whose stated start does not hold its text (CMRC 2018 has starts of -1, and starts
    counted in UTF-16 units after characters beyond the BMP) is taken at its occurrence nearest
    the stated start.
    """
    if len(answers) != len(starts):
        raise ValueError(f"qa: example {qid!r} has {len(answers)} answers, {len(starts)} starts")
    if not answers:
        raise ValueError(
            f"qa: example {qid!r} has no answer (train features need a labelled split)"
        )
    for text, start in zip(answers, starts, strict=True):
        if text.strip() and start >= 0 and context[start : start + len(text)] == text:
            return start, start + len(text)
    for text, start in zip(answers, starts, strict=True):
        if not text.strip():
            continue
        found, at = [], context.find(text)
        while at >= 0:
            found.append(at)
            at = context.find(text, at + 1)
        if found:
            best = min(found, key=lambda f: abs(f - start))
            return best, best + len(text)
    return None


def train_features(
    examples: Mapping[str, Sequence[Any]],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_len: int,
    doc_stride: int,
    max_query_len: int,
) -> dict[str, list]:
    """Training windows with start/end token labels (both 0, the [CLS], when a window misses
    the answer or holds only part of it). Examples whose answer is nowhere in the context are
    dropped with a warning. Sequences are not padded.
    """
    ids, contexts = list(examples["id"]), list(examples["context"])
    spans = [
        _answer_chars(str(qid), str(ctx), list(answers), list(starts))
        for qid, ctx, answers, starts in zip(
            ids, contexts, examples["answers"], examples["answer_starts"], strict=True
        )
    ]
    enc = _windows(examples, tokenizer, max_seq_len, doc_stride, max_query_len)
    lost = [str(ids[k]) for k, span in enumerate(spans) if span is None]
    if lost:
        log.warning("qa: %d examples dropped, answer not in context: %s", len(lost), lost[:5])
    names = ("input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions")
    out: dict[str, list] = {name: [] for name in names}
    for i, k in enumerate(enc["overflow_to_sample_mapping"]):
        span = spans[k]
        if span is None:
            continue
        out["input_ids"].append(enc["input_ids"][i])
        out["token_type_ids"].append(enc["token_type_ids"][i])
        out["attention_mask"].append(enc["attention_mask"][i])
        start, end = _token_span(enc, i, *span)
        out["start_positions"].append(start)
        out["end_positions"].append(end)
    return out


def _token_span(enc: BatchEncoding, i: int, start_char: int, end_char: int) -> tuple[int, int]:
    """First and last token of the answer characters in window i, or (0, 0) when the window
    does not hold all of them."""
    ctx = np.flatnonzero(_context_mask(enc, i))
    if ctx.size == 0:
        return 0, 0
    offsets = np.asarray(enc["offset_mapping"][i], dtype=np.int64)[ctx]
    if offsets[0, 0] > start_char or offsets[-1, 1] < end_char:
        return 0, 0
    # The first token ending after the start, the last token starting before the end; the
    # answer's own leading or trailing whitespace belongs to no token.
    first = int(np.searchsorted(offsets[:, 1], start_char, side="right"))
    last = int(np.searchsorted(offsets[:, 0], end_char, side="left")) - 1
    if first > last:
        return 0, 0
    return int(ctx[first]), int(ctx[last])


def eval_features(
    examples: Mapping[str, Sequence[Any]],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_len: int,
    doc_stride: int,
    max_query_len: int,
) -> dict[str, list]:
    """Evaluation windows with `example_index` (row in `examples`) and `offset_mapping` (
    [start, end] characters of the context per token, [-1, -1] elsewhere). Not padded."""
    enc = _windows(examples, tokenizer, max_seq_len, doc_stride, max_query_len)
    offset_mapping = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        keep = _context_mask(enc, i)
        offset_mapping.append(
            [list(o) if k else list(NO_OFFSET) for o, k in zip(offsets, keep, strict=True)]
        )
    return {
        "input_ids": enc["input_ids"],
        "token_type_ids": enc["token_type_ids"],
        "attention_mask": enc["attention_mask"],
        "example_index": [int(k) for k in enc["overflow_to_sample_mapping"]],
        "offset_mapping": offset_mapping,
    }


def _best_span(
    start_logits: np.ndarray, end_logits: np.ndarray, valid: np.ndarray, n_best: int, max_len: int
) -> tuple[float, int, int] | None:
    """Highest start+end score among the n_best starts x n_best ends of valid tokens."""
    tokens = np.flatnonzero(valid)
    if tokens.size == 0:
        return None
    starts = tokens[np.argsort(-start_logits[tokens], kind="stable")[:n_best]]
    ends = tokens[np.argsort(-end_logits[tokens], kind="stable")[:n_best]]
    length = ends[None, :] - starts[:, None] + 1
    scores = start_logits[starts][:, None] + end_logits[ends][None, :]
    scores = np.where((length >= 1) & (length <= max_len), scores, -np.inf)
    flat = int(np.argmax(scores))
    row, col = divmod(flat, scores.shape[1])
    if not np.isfinite(scores[row, col]):
        return None
    return float(scores[row, col]), int(starts[row]), int(ends[col])


def decode_answers(
    examples: Mapping[str, Sequence[Any]],
    features: Mapping[str, Sequence[Any]],
    start_logits: Sequence[Sequence[float]] | np.ndarray,
    end_logits: Sequence[Sequence[float]] | np.ndarray,
    n_best: int = 20,
    max_answer_len: int = 30,
) -> dict[str, str]:
    """The best answer text per example id over all its windows.

    A span scores start logit + end logit; only context tokens count, end >= start, and at most
    `max_answer_len` tokens. Logit rows may be padded past a window's length. An example with
    no valid span gets "".
    """
    ids = [str(i) for i in examples["id"]]
    contexts = [str(c) for c in examples["context"]]
    example_index = list(features["example_index"])
    offset_mapping = features["offset_mapping"]
    if not (len(start_logits) == len(end_logits) == len(example_index) == len(offset_mapping)):
        raise ValueError(
            f"qa: {len(start_logits)} start and {len(end_logits)} end logit rows for "
            f"{len(example_index)} features"
        )
    best: list[tuple[float, int, int] | None] = [None] * len(ids)
    for f, k in enumerate(example_index):
        offsets = np.asarray(offset_mapping[f], dtype=np.int64).reshape(-1, 2)
        n = len(offsets)
        s = np.asarray(start_logits[f], dtype=np.float64)
        e = np.asarray(end_logits[f], dtype=np.float64)
        if s.shape[0] < n or e.shape[0] < n:
            raise ValueError(f"qa: feature {f} has {n} tokens but {s.shape[0]} logits")
        found = _best_span(s[:n], e[:n], offsets[:, 0] >= 0, n_best, max_answer_len)
        if found is None:
            continue
        score, start, end = found
        if best[k] is None or score > best[k][0]:
            best[k] = (score, int(offsets[start, 0]), int(offsets[end, 1]))
    return {
        qid: ("" if b is None else _span_text(contexts[k], b[1], b[2]))
        for k, (qid, b) in enumerate(zip(ids, best, strict=True))
    }


def _span_text(context: str, start: int, end: int) -> str:
    # BERT's normalizer strips accents, so combining marks after a span's last character
    # belong to no token; they are part of that character, not of the next token.
    while end < len(context) and unicodedata.category(context[end]) == "Mn":
        end += 1
    return context[start:end]
