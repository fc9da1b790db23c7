"""The masked-LM filler: a text's words become slots, each with its best whole-word fillers.

A word of L characters (L tokens with a Chinese BERT vocab) has all L tokens masked at once, as
the whole-word-masking teacher was trained, and its candidates are the best fillers of the same
length by summed log-probability; synonyms, when configured, follow them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wwmdistill.augment.slots import Slot, TextPlan
from wwmdistill.augment.words import HAS_CJK, load_stopwords, load_synonyms
from wwmdistill.models import (
    ModelMismatchError,
    load_masked_lm,
    mlm_head,
    model_fingerprint,
    require_model_dir,
)
from wwmdistill.segment import Segmenter
from wwmdistill.settings import AugmentSettings
from wwmdistill.tokenizer import load_tokenizer, tokenizer_fingerprint

# The stage logs under one name, whichever of its modules speaks.
log = logging.getLogger("wwmdistill.augment")


@dataclass(frozen=True)
class _Request:
    """One masked variant: a text's token ids with one slot's tokens to mask."""

    text_index: int
    slot_index: int
    ids: list[int]
    positions: list[int]
    word: str


class Augmenter:
    """Segments texts into slots and finds each slot's candidates with the masked LM.

    `plan` gathers one masked variant per slot of all its texts and runs them through the
    model `batch_size` at a time, length-sorted; the encoder runs on whole rows, the MLM head
    only at the masked positions.
    """

    def __init__(
        self,
        teacher_dir: str | Path,
        segmenter: Segmenter,
        settings: AugmentSettings,
        device: str | torch.device | None = None,
    ) -> None:
        teacher_dir = Path(teacher_dir)
        self.settings = settings
        self.segmenter = segmenter
        self.stopwords = load_stopwords(settings.stopwords)
        self.synonyms = load_synonyms(settings.synonyms) if settings.synonyms else {}
        self.tokenizer = load_tokenizer(require_model_dir(teacher_dir, need_tokenizer=True))
        model = load_masked_lm(teacher_dir)
        config = model.config
        if len(self.tokenizer) > config.vocab_size:
            raise ModelMismatchError(
                f"{teacher_dir}: the tokenizer has {len(self.tokenizer)} tokens but the model's "
                f"vocab_size is {config.vocab_size}"
            )
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.head = mlm_head(model)
        limit = getattr(config, "max_position_embeddings", None)
        self.max_len = settings.max_seq_len
        if config.model_type == "bert" and limit is not None and limit < self.max_len:
            log.info("%s takes at most %d positions; max_seq_len lowered to it", teacher_dir, limit)
            self.max_len = limit
        self.pad_id = self.tokenizer.pad_token_id or 0
        # Fillers are single CJK characters: never special tokens, `##` pieces or other scripts,
        # so a word of L characters is always replaced by a word of L characters.
        special = set(self.tokenizer.all_special_ids)
        self.chars = np.full(config.vocab_size, "", dtype=object)
        allowed = torch.zeros(config.vocab_size, dtype=torch.bool)
        for token, index in self.tokenizer.get_vocab().items():
            if index not in special and len(token) == 1 and HAS_CJK.match(token):
                self.chars[index] = token
                allowed[index] = True
        if not bool(allowed.any()):
            log.warning(
                "%s: no single-CJK-character token in the vocab; no MLM candidates", teacher_dir
            )
        self.blocked = (~allowed).to(self.device)
        self.top_k = min(settings.m + 1, max(int(allowed.sum()), 1))
        self.teacher_fingerprint = model_fingerprint(teacher_dir)
        self.identity = {
            "teacher_fingerprint": self.teacher_fingerprint,
            "tokenizer_fingerprint": tokenizer_fingerprint(teacher_dir),
            "segmenter": dict(segmenter.identity),
            "max_len": self.max_len,
        }
        self.masked_variants = 0
        self.teacher_batches = 0

    def is_slot_word(self, word: str) -> bool:
        """A word (stripped of whitespace) is a slot unless a stopword, CJK-free or too long."""
        return (
            0 < len(word) <= self.settings.max_word_chars
            and word not in self.stopwords
            and HAS_CJK.search(word) is not None
        )

    def word_spans(self, text: str, ends: Sequence[int]) -> list[tuple[int, int]]:
        """The [start, end) spans of the slot words of a segmented text, whitespace trimmed."""
        spans, start = [], 0
        for end in ends:
            word = text[start:end]
            # Segmenters attach whitespace to a word (see segment.py); it is never replaced.
            core_start = start + len(word) - len(word.lstrip())
            core_end = end - (len(word) - len(word.rstrip()))
            if core_start < core_end and self.is_slot_word(text[core_start:core_end]):
                spans.append((core_start, core_end))
            start = end
        return spans

    def plan(self, texts: Sequence[str]) -> list[TextPlan]:
        """Every text's slots with their candidates (MLM fillers first, then synonyms)."""
        texts = list(texts)
        if not texts:
            return []
        ends = self.segmenter.segment(texts)
        spans = [self.word_spans(t, e) for t, e in zip(texts, ends, strict=True)]
        encoded = self.tokenizer(
            texts, return_offsets_mapping=True, truncation=True, max_length=self.max_len
        )
        requests = []
        for t, (text, text_spans) in enumerate(zip(texts, spans, strict=True)):
            char_token = _char_tokens(encoded["offset_mapping"][t], len(text))
            for s, (start, end) in enumerate(text_spans):
                positions = _slot_positions(char_token, start, end)
                if positions is not None:
                    ids = encoded["input_ids"][t]
                    requests.append(_Request(t, s, ids, positions, text[start:end]))
        filled = self._fill(requests)
        found: dict[tuple[int, int], tuple[str, ...]] = {
            (r.text_index, r.slot_index): words for r, words in zip(requests, filled, strict=True)
        }
        plans = []
        for t, (text, text_spans) in enumerate(zip(texts, spans, strict=True)):
            slots = []
            for s, (start, end) in enumerate(text_spans):
                candidates = list(found.get((t, s), ()))
                for synonym in self.synonyms.get(text[start:end], ()):
                    if synonym not in candidates:
                        candidates.append(synonym)
                slots.append(Slot(start, end, tuple(candidates)))
            plans.append(TextPlan(text, tuple(slots)))
        return plans

    def _fill(self, requests: list[_Request]) -> list[tuple[str, ...]]:
        """Each request's top-m whole-word fillers, in order of summed log-probability."""
        out: list[tuple[str, ...]] = [()] * len(requests)
        # Length-sorted batches waste little on padding; a stable sort keeps them reproducible.
        order = sorted(range(len(requests)), key=lambda i: len(requests[i].ids))
        size = self.settings.batch_size
        for b in range(0, len(order), size):
            members = order[b : b + size]
            batch = [requests[i] for i in members]
            values, ids = self._top_fillers(batch)
            first_row = np.cumsum([0] + [len(r.positions) for r in batch])
            # Words of one length share one vectorised beam search.
            by_length: dict[int, list[int]] = {}
            for j, request in enumerate(batch):
                by_length.setdefault(len(request.positions), []).append(j)
            for span, js in by_length.items():
                rows = first_row[js][:, None] + np.arange(span)
                words = self._best_words(values[rows], ids[rows], [batch[j].word for j in js])
                for j, found in zip(js, words, strict=True):
                    out[members[j]] = found
        return out

    @torch.inference_mode()
    def _top_fillers(self, batch: list[_Request]) -> tuple[np.ndarray, np.ndarray]:
        """Log-probabilities and ids of the top allowed tokens at every masked position."""
        length = max(len(r.ids) for r in batch)
        ids = np.full((len(batch), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.int64)
        for i, request in enumerate(batch):
            ids[i, : len(request.ids)] = request.ids
            ids[i, request.positions] = self.tokenizer.mask_token_id
            mask[i, : len(request.ids)] = 1
        rows = np.repeat(np.arange(len(batch)), [len(r.positions) for r in batch])
        cols = np.concatenate([r.positions for r in batch])
        dev = self.device
        states = self.model.base_model(
            input_ids=torch.from_numpy(ids).to(dev), attention_mask=torch.from_numpy(mask).to(dev)
        ).last_hidden_state
        hidden = states[torch.from_numpy(rows).to(dev), torch.from_numpy(cols).to(dev)]
        # Normalised over the whole vocab, so a word's score is its log-probability under the
        # teacher; disallowed tokens are then dropped from the ranking only.
        logp = torch.log_softmax(self.head(hidden).float(), dim=-1)
        values, top = torch.topk(logp.masked_fill(self.blocked, float("-inf")), self.top_k, dim=-1)
        self.masked_variants += len(batch)
        self.teacher_batches += 1
        return values.cpu().numpy(), top.cpu().numpy()

    def _best_words(
        self, values: np.ndarray, ids: np.ndarray, originals: list[str]
    ) -> list[tuple[str, ...]]:
        """The top-m words of each request, excluding its original word.

        `values` and `ids` are [requests, positions, top_k]. Positions were masked together, so
        a word's score is the sum of its positions' scores, and a beam of width m + 1 over each
        position's top m + 1 is exact.
        """
        count, span, k = values.shape
        scores = np.zeros((count, 1))
        combos = np.zeros((count, 1, 0), dtype=np.int64)
        for j in range(span):
            total = (scores[:, :, None] + values[:, j, None, :]).reshape(count, -1)
            keep = np.argsort(-total, axis=1, kind="stable")[:, :k]
            tokens = np.take_along_axis(ids[:, j, :], keep % k, axis=1)
            combos = np.take_along_axis(combos, (keep // k)[:, :, None], axis=1)
            combos = np.concatenate([combos, tokens[:, :, None]], axis=2)
            scores = np.take_along_axis(total, keep, axis=1)
        # Object arrays of str concatenate element-wise with `+`.
        words = self.chars[combos[:, :, 0]]
        for j in range(1, span):
            words = words + self.chars[combos[:, :, j]]
        out = []
        rows = zip(words.tolist(), np.isfinite(scores).tolist(), originals, strict=True)
        for row, finite, original in rows:
            kept = [w for w, ok in zip(row, finite, strict=True) if ok and w != original]
            out.append(tuple(kept[: self.settings.m]))
        return out


def _char_tokens(offsets: Sequence[tuple[int, int]], length: int) -> list[int]:
    """For each character the index of the token covering it exactly alone, -1 otherwise."""
    out = [-1] * length
    for index, (start, end) in enumerate(offsets):
        if end == start + 1:
            out[start] = index
        else:
            # A token spanning several characters (or none: specials) maps no single character.
            for c in range(start, end):
                out[c] = -2
    return out


def _slot_positions(char_token: list[int], start: int, end: int) -> list[int] | None:
    """The slot's token positions when each of its characters is exactly one token, else None.

    A truncated slot, or one inside a longer word piece, gets no MLM candidates.
    """
    positions = char_token[start:end]
    if any(p < 0 for p in positions):
        return None
    return positions
