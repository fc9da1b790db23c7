"""TinyBERT's data augmentation made to work for Chinese: word candidates from a WWM teacher.

TinyBERT replaces a single-piece word by the MLM's top predictions at a [MASK] and a multi-piece
word by its GloVe neighbours; it skips every word that is not [a-z], so it augments nothing in
Chinese, and there is no Chinese GloVe. Here words come from the configured segmenter and every
candidate comes from the masked LM: a word of L characters (L tokens with a Chinese BERT vocab)
has all L tokens masked at once, as the whole-word-masking teacher was trained, and its
candidates are the best whole-word fillers of the same length by summed log-probability.
Synonyms from a Cilin-style file can be added.

Rows are processed in groups of `batch_size` examples at absolute positions of the train split
(group g holds rows [g * batch_size, (g + 1) * batch_size)). A slice is a contiguous run of
whole groups, and each example's random generator is seeded from (seed, row), so an example's
teacher batches and random draws never depend on how the split was sliced: merged slices equal
one slice, byte for byte in their rows.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from wwmdistill.arrow_io import ArtifactError, fingerprint
from wwmdistill.artifacts.augmented import (
    augmented_schema,
    merged_writer,
    open_slices,
    slice_stats,
    slice_writer,
)
from wwmdistill.artifacts.task_data import open_task_split, split_meta
from wwmdistill.kinds import TaskKind, kind_of
from wwmdistill.models import (
    ModelMismatchError,
    load_masked_lm,
    mlm_head,
    model_fingerprint,
    require_model_dir,
)
from wwmdistill.progress import tqdm
from wwmdistill.segment import Segmenter
from wwmdistill.settings import AugmentSettings
from wwmdistill.tokenizer import load_tokenizer, tokenizer_fingerprint

log = logging.getLogger(__name__)

# Bumped when the rows written for the same inputs and settings change.
AUGMENT_VERSION = "1"
BUILTIN_STOPWORDS = "data/stopwords_zh.txt"
# BERT's CJK ranges (BasicTokenizer._is_chinese_char): each of these characters is a token.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ceaf"
_CJK += "\U0002f800-\U0002fa1f"
_HAS_CJK = re.compile(f"[{_CJK}]")
_ALL_CJK = re.compile(f"[{_CJK}]+")
_WHITESPACE = re.compile(r"\s")
# Stats summed over slices; the shares and rates are recomputed from them.
_ADDITIVE_STATS = (
    "examples",
    "originals",
    "augmented",
    "slots",
    "slots_with_candidates",
    "changed_chars",
    "augmented_chars",
    "masked_variants",
    "teacher_batches",
    "seconds",
)


def default_n(train_rows: int) -> int:
    """TinyBERT's augmented examples per original: 30, 20 from 50k rows, 10 from 300k rows."""
    if train_rows >= 300_000:
        return 10
    if train_rows >= 50_000:
        return 20
    return 30


def _is_all_cjk(text: str) -> bool:
    return _ALL_CJK.fullmatch(text) is not None


def _decode(path: Path, raw: bytes) -> str:
    # Cilin as published is GB-encoded; a UTF-8 copy is read as it is.
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: neither UTF-8 nor GB18030 ({err})") from err


def load_stopwords(path: str | Path | None) -> frozenset[str]:
    """Stopwords, one a line (`#` starts a comment line); None reads the built-in list."""
    if path is None:
        name = f"wwmdistill/{BUILTIN_STOPWORDS}"
        text = resources.files("wwmdistill").joinpath(BUILTIN_STOPWORDS).read_text("utf-8")
    else:
        name = str(path)
        text = _decode(Path(path), Path(path).read_bytes())
    words = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        if _WHITESPACE.search(word):
            raise ValueError(f"{name}:{lineno}: a stopword line holds more than one word")
        words.add(word)
    return frozenset(words)


def load_synonyms(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Synonyms from a Cilin-style file: `Aa01A01= 人 士 人物 人士` per line.

    Only `=` lines are synonym sets; `#` (related words) and `@` (a word standing alone) are
    skipped. A word's synonyms are the other CJK-only words of every set it is in, in file order.
    """
    path = Path(path)
    text = _decode(path, path.read_bytes())
    synonyms: dict[str, list[str]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        code = parts[0]
        if len(code) < 2 or code[-1] not in "=#@":
            raise ValueError(
                f"{path}:{lineno}: expected a Cilin code ending in '=', '#' or '@', got {code!r}"
            )
        if code[-1] != "=":
            continue
        words = [w for w in dict.fromkeys(parts[1:]) if _is_all_cjk(w)]
        for word in words:
            known = synonyms.setdefault(word, [])
            known.extend(w for w in words if w != word and w not in known)
    return {word: tuple(others) for word, others in synonyms.items() if others}


def _file_sha256(path: str | None) -> str | None:
    return None if path is None else hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Slot:
    """A replaceable word: characters [start, end) of its text and what may replace it."""

    start: int
    end: int
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class TextPlan:
    """A text's slots, in text order; everything outside them is never changed."""

    text: str
    slots: tuple[Slot, ...]


def apply_choices(plan: TextPlan, choices: Sequence[int]) -> str:
    """The text with slot i replaced by its candidate `choices[i]` (-1 keeps the word)."""
    if len(choices) != len(plan.slots):
        raise ValueError(f"{len(choices)} choices for {len(plan.slots)} slots")
    pieces, cursor = [], 0
    for slot, choice in zip(plan.slots, choices, strict=True):
        if choice < 0:
            continue
        pieces.append(plan.text[cursor : slot.start])
        pieces.append(slot.candidates[choice])
        cursor = slot.end
    pieces.append(plan.text[cursor:])
    return "".join(pieces)


def align(plan: TextPlan, text: str) -> tuple[int, ...] | None:
    """The choices that turn the plan's text into `text`, or None when no choices can.

    Depth-first over the slots (a synonym may differ in length, so a slot may match more than
    one way); everything between slots must be the original's.
    """
    slots = plan.slots
    # A stack of (next slot, position reached in `text`, choices so far).
    stack: list[tuple[int, int, tuple[int, ...]]] = [(0, 0, ())]
    while stack:
        i, pos, chosen = stack.pop()
        fixed_from = slots[i - 1].end if i else 0
        fixed_to = slots[i].start if i < len(slots) else len(plan.text)
        fixed = plan.text[fixed_from:fixed_to]
        if not text.startswith(fixed, pos):
            continue
        pos += len(fixed)
        if i == len(slots):
            if pos == len(text):
                return chosen
            continue
        slot = slots[i]
        options = [(-1, plan.text[slot.start : slot.end]), *enumerate(slot.candidates)]
        # Pushed in reverse so the original word is tried first.
        for choice, word in reversed(options):
            if text.startswith(word, pos):
                stack.append((i + 1, pos + len(word), (*chosen, choice)))
    return None


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
            if index not in special and len(token) == 1 and _HAS_CJK.match(token):
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
            and _HAS_CJK.search(word) is not None
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


@dataclass(frozen=True)
class Variant:
    """An augmented copy: its texts per augmented column and each plan's slot choices."""

    texts: tuple[str | None, ...]
    choices: tuple[tuple[int, ...] | None, ...]


@dataclass(frozen=True)
class AugmentedExample:
    """An original row (as a dict), its plans (None for a null column) and its variants."""

    origin: int
    row: dict[str, Any]
    plans: tuple[TextPlan | None, ...]
    variants: tuple[Variant, ...]


def example_rng(seed: int, origin: int) -> np.random.Generator:
    """The generator of one original: depends on (seed, row) only, never on slicing."""
    return np.random.default_rng([seed, origin])


def sample_variants(
    plans: Sequence[TextPlan | None], rng: np.random.Generator, n: int, p: float
) -> list[Variant]:
    """TinyBERT's sampling: n draws, each slot replaced with probability p by a uniform pick.

    Draws equal to the original or to an earlier draw are dropped, so at most n come back.
    """
    live = [
        (side, s, len(slot.candidates))
        for side, plan in enumerate(plans)
        if plan is not None
        for s, slot in enumerate(plan.slots)
        if slot.candidates
    ]
    if not live:
        return []
    counts = np.array([c for _, _, c in live])
    replaced = rng.random((n, len(live))) < p
    picks = rng.integers(0, counts, size=(n, len(live)))
    original = tuple(None if plan is None else plan.text for plan in plans)
    seen = {original}
    variants = []
    for draw in range(n):
        choices = [None if plan is None else [-1] * len(plan.slots) for plan in plans]
        for j, (side, s, _) in enumerate(live):
            if replaced[draw, j]:
                choices[side][s] = int(picks[draw, j])
        texts = tuple(
            None if plan is None else apply_choices(plan, ch)
            for plan, ch in zip(plans, choices, strict=True)
        )
        if texts in seen:
            continue
        seen.add(texts)
        variants.append(Variant(texts, tuple(None if ch is None else tuple(ch) for ch in choices)))
    return variants


def iter_augmented(
    table: pa.Table,
    kind: TaskKind,
    augmenter: Augmenter,
    *,
    n: int,
    seed: int,
    start: int = 0,
    end: int | None = None,
    progress: tqdm | None = None,
) -> Iterator[AugmentedExample]:
    """Augment rows [start, end) of a task split, group by group (see the module docstring).

    `start` must begin a group, so that the teacher batches are those of any other slicing.
    """
    group = augmenter.settings.batch_size
    end = table.num_rows if end is None else end
    if start % group:
        raise ValueError(f"start row {start} does not begin a group of {group} rows")
    columns = kind.augmented_columns
    for first in range(start, end, group):
        part = table.slice(first, min(group, end - first))
        records = part.to_pylist()
        values = [[record[c] for record in records] for c in columns]
        texts = [t for column in values for t in column if t is not None]
        plans = iter(augmenter.plan(texts))
        row_plans = [[None if t is None else next(plans) for t in column] for column in values]
        for r in range(part.num_rows):
            origin = first + r
            example_plans = tuple(column[r] for column in row_plans)
            variants = sample_variants(
                example_plans, example_rng(seed, origin), n, augmenter.settings.p
            )
            yield AugmentedExample(origin, records[r], example_plans, tuple(variants))
        if progress is not None:
            progress.update(part.num_rows)


def slice_rows(num_rows: int, group: int, slice_index: int, num_slices: int) -> tuple[int, int]:
    """Rows [start, end) of a slice: a contiguous run of whole groups of `group` rows.

    Groups are shared out as evenly as they divide; a slice may be empty when there are more
    slices than groups.
    """
    if num_slices < 1 or not 0 <= slice_index < num_slices:
        raise ValueError(f"slice {slice_index} of {num_slices}: not a valid slice")
    groups = -(-num_rows // group)
    first = slice_index * groups // num_slices
    last = (slice_index + 1) * groups // num_slices
    return min(first * group, num_rows), min(last * group, num_rows)


def _changed_chars(plan: TextPlan, choices: Sequence[int]) -> int:
    """Characters that differ from the original inside replaced slots (position by position;
    a synonym of another length counts its extra or missing characters too)."""
    changed = 0
    for slot, choice in zip(plan.slots, choices, strict=True):
        if choice >= 0:
            old, new = plan.text[slot.start : slot.end], slot.candidates[choice]
            differing = sum(a != b for a, b in zip(old, new, strict=False))
            changed += differing + abs(len(old) - len(new))
    return changed


class _Rows:
    """Accumulates output rows column by column, and the counts behind the stats."""

    def __init__(self, schema: pa.Schema, kind: TaskKind) -> None:
        self.schema = schema
        self.columns = kind.augmented_columns
        self.data: dict[str, list[Any]] = {name: [] for name in schema.names}
        self.counts = dict.fromkeys(_ADDITIVE_STATS, 0)

    def add(self, example: AugmentedExample) -> None:
        row = example.row
        self._append(row, example.origin, False)
        self.counts["originals"] += 1
        for plan in example.plans:
            if plan is not None:
                self.counts["slots"] += len(plan.slots)
                self.counts["slots_with_candidates"] += sum(bool(s.candidates) for s in plan.slots)
        for k, variant in enumerate(example.variants, 1):
            copy = dict(row, id=f"{row['id']}-aug{k}")
            copy.update(zip(self.columns, variant.texts, strict=True))
            self._append(copy, example.origin, True)
            self.counts["augmented"] += 1
            for plan, choices, text in zip(
                example.plans, variant.choices, variant.texts, strict=True
            ):
                if plan is not None:
                    self.counts["changed_chars"] += _changed_chars(plan, choices)
                    self.counts["augmented_chars"] += len(text)

    def _append(self, row: dict[str, Any], origin: int, augmented: bool) -> None:
        for name in self.schema.names[:-2]:
            self.data[name].append(row[name])
        self.data["origin"].append(origin)
        self.data["augmented"].append(augmented)
        self.counts["examples"] += 1

    def flush(self) -> pa.Table:
        table = pa.Table.from_pydict(self.data, schema=self.schema)
        self.data = {name: [] for name in self.schema.names}
        return table


def _finish_stats(counts: Mapping[str, float], n: int) -> dict[str, Any]:
    stats: dict[str, Any] = {key: counts[key] for key in _ADDITIVE_STATS}
    stats["n"] = n
    stats["tokens_changed_share"] = counts["changed_chars"] / max(counts["augmented_chars"], 1)
    stats["examples_per_s"] = counts["examples"] / max(counts["seconds"], 1e-9)
    stats["augmented_per_s"] = counts["augmented"] / max(counts["seconds"], 1e-9)
    return stats


def _log_examples(examples: list[AugmentedExample]) -> None:
    for example in examples:
        before = " | ".join(p.text for p in example.plans if p is not None)
        after = " | ".join(t for t in example.variants[0].texts if t is not None)
        log.info("augment example row %d: %s  ->  %s", example.origin, before, after)


def _settings_fingerprint(settings: AugmentSettings) -> dict[str, Any]:
    """What decides the rows: the settings less `slices`, and the word lists' contents."""
    raw = settings.as_dict()
    raw.pop("slices")
    raw["stopwords_sha256"] = _file_sha256(settings.stopwords)
    raw["synonyms_sha256"] = _file_sha256(settings.synonyms)
    return raw


def augment_split(
    train_path: str | Path,
    teacher_dir: str | Path,
    segmenter: Segmenter,
    settings: AugmentSettings,
    out_path: str | Path,
    *,
    seed: int,
    slice_index: int = 0,
    num_slices: int = 1,
) -> dict[str, Any]:
    """Augment one slice of a task's train split into `out_path` (stage "augment"); its stats.

    The slice is rows `slice_rows(train rows, settings.batch_size, slice_index, num_slices)`.
    """
    started = time.perf_counter()
    source = open_task_split(train_path)
    info = split_meta(source)
    try:
        kind = kind_of(info.kind, str(train_path))
    except ValueError as error:
        raise ArtifactError(str(error)) from None
    table = source.read_all()
    start, end = slice_rows(table.num_rows, settings.batch_size, slice_index, num_slices)
    augmenter = Augmenter(teacher_dir, segmenter, settings)
    n = settings.n if settings.n is not None else default_n(table.num_rows)
    schema = augmented_schema(source.schema)
    rows = _Rows(schema, kind)
    parts: list[pa.Table] = []
    shown: list[AugmentedExample] = []
    desc = f"augment {info.task} {slice_index + 1}/{num_slices}"
    with tqdm(total=end - start, desc=desc, unit="example") as bar:
        for example in iter_augmented(
            table, kind, augmenter, n=n, seed=seed, start=start, end=end, progress=bar
        ):
            rows.add(example)
            if example.variants and len(shown) < 3:
                shown.append(example)
            if len(rows.data["origin"]) >= 8192:
                parts.append(rows.flush())
    parts.append(rows.flush())
    _log_examples(shown)
    counts = dict(rows.counts)
    counts["masked_variants"] = augmenter.masked_variants
    counts["teacher_batches"] = augmenter.teacher_batches
    counts["seconds"] = time.perf_counter() - started
    stats = _finish_stats(counts, n)
    base_fp = fingerprint(
        "augment",
        AUGMENT_VERSION,
        source.fingerprint,
        _settings_fingerprint(settings),
        augmenter.identity,
        seed,
    )
    with slice_writer(
        out_path,
        schema,
        task=info.task,
        kind=kind.name,
        labels=info.labels,
        pair=info.pair,
        source_fingerprint=source.fingerprint,
        settings=settings.as_dict(),
        teacher_fingerprint=augmenter.teacher_fingerprint,
        teacher=augmenter.identity,
        segmenter=augmenter.identity["segmenter"],
        seed=seed,
        augment_fingerprint=base_fp,
        slice_index=slice_index,
        num_slices=num_slices,
        rows=(start, end),
        train_rows=table.num_rows,
        stats=stats,
    ) as writer:
        for part in parts:
            writer.write(part)
    log.info(
        "%s: rows %d-%d of %s: %d originals -> %d rows (%d augmented, N=%d); %d of %d slots "
        "with candidates; %.1f%% of augmented characters changed; %.1fs (%.1f rows/s)",
        out_path,
        start,
        end,
        train_path,
        stats["originals"],
        stats["examples"],
        stats["augmented"],
        n,
        stats["slots_with_candidates"],
        stats["slots"],
        100 * stats["tokens_changed_share"],
        stats["seconds"],
        stats["examples_per_s"],
    )
    return stats


def merge_augmented(slice_paths: Sequence[str | Path], out_path: str | Path) -> dict[str, Any]:
    """Merge every slice of one augmentation into one file, rows grouped by origin in train
    order; returns the summed stats."""
    if not slice_paths:
        raise ValueError("merge_augmented: no slices given")
    shards = open_slices(slice_paths)
    first = shards[0]
    counts = dict.fromkeys(_ADDITIVE_STATS, 0)
    for shard in shards:
        for key in _ADDITIVE_STATS:
            counts[key] += slice_stats(shard)[key]
    stats = _finish_stats(counts, slice_stats(first)["n"])
    last_origin = -1
    with merged_writer(out_path, first, stats) as writer:
        for shard in shards:
            for batch in shard.iter_batches():
                origins = batch.column("origin").to_numpy()
                if origins.size and (origins[0] < last_origin or np.any(np.diff(origins) < 0)):
                    raise ArtifactError(f"{shard.path}: rows are not in train order")
                last_origin = int(origins[-1]) if origins.size else last_origin
                writer.write(batch)
        if writer.rows != stats["examples"]:
            raise ArtifactError(
                f"{out_path}: the slices hold {writer.rows} rows but their stats say "
                f"{stats['examples']}"
            )
    log.info(
        "%s: merged %d slices, %d rows (%d augmented)",
        out_path,
        len(shards),
        writer.rows,
        stats["augmented"],
    )
    return stats
