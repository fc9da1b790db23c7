"""Static whole-word masking: segmented documents -> packed, masked training instances.

Words are the segmenter's real spans mapped onto tokens through the fast tokenizer's offsets
(a token belongs to the word its first character falls in), so every token of a word is masked
together whatever the tokenizer (WordPiece `##` pieces, byte-level BPE). A tokenizer that marks
subword continuations (WordPiece's `##`) also never has a word of its own split: a piece that
continues the previous token's pre-token word joins that token's group even where the segmenter
cuts between them (`６ | ℃` tokenised `６ ##℃`), so a group is the union of segmenter words and
WordPiece words, as in Google BERT and DataCollatorForWholeWordMask. Everything after
tokenisation works on flat numpy arrays over a whole record batch of documents: no Python loop
runs per token, only a few vectorised passes per batch. `masking.unit: token` masks each token
alone instead (BERT's original masking: characters for Chinese), over the same instances.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wwmdistill.arrow_io import fingerprint, rebatch
from wwmdistill.artifacts.masked import MASKED_SCHEMA, masked_writer
from wwmdistill.artifacts.segmented import open_segmented
from wwmdistill.progress import tqdm
from wwmdistill.settings import MaskingSettings
from wwmdistill.tokenizer import load_tokenizer, random_replacement_ids, tokenizer_fingerprint

log = logging.getLogger(__name__)

# A sentence ends after these characters; a token starting with one of them (or a closing
# quote/bracket) still belongs to the sentence before it, so "！”" stays together.
SENTENCE_END_CHARS = "。！？!?；…\n"
_NO_SENTENCE_START = SENTENCE_END_CHARS + "”’」』）)》】"
_END_CODES = np.array([ord(c) for c in SENTENCE_END_CHARS], dtype=np.uint32)
_NO_START_CODES = np.array([ord(c) for c in _NO_SENTENCE_START], dtype=np.uint32)
# What masking reads of a segmented shard.
_SEGMENTED_COLUMNS = ("doc_id", "text", "word_ends")
# Bumped when the rows written for the same inputs and settings change (2: a WordPiece word is
# never split between whole-word groups).
MASKING_VERSION = "2"


def greedy_select(rows: np.ndarray, lengths: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Which candidate words the reference greedy takes, for many rows at once.

    `rows` is sorted and each row's words are in their shuffled order. The reference walks
    the words and takes one when it still fits the row's budget, skipping (not stopping at)
    one that would overflow. Vectorised exactly: per pass, drop words longer than the remaining
    budget (they can never fit again), take each row's prefix that fits, drop the first word
    past it (it overflowed) and repeat on the rest. Every pass takes at least one word per
    unfinished row, so the remaining budget strictly falls; in practice 2-3 passes.
    """
    lengths = lengths.astype(np.int64, copy=False)
    selected = np.zeros(rows.size, dtype=bool)
    remaining = budget.astype(np.int64, copy=True)
    idx = np.arange(rows.size)
    while idx.size:
        idx = idx[lengths[idx] <= remaining[rows[idx]]]
        if not idx.size:
            break
        r, ln = rows[idx], lengths[idx]
        first = np.ones(idx.size, dtype=bool)
        first[1:] = r[1:] != r[:-1]
        cum = np.cumsum(ln)
        group_base = (cum - ln)[first]
        cum_in_row = cum - group_base[np.cumsum(first) - 1]
        fits = cum_in_row <= remaining[r]
        taken = idx[fits]
        selected[taken] = True
        np.subtract.at(remaining, rows[taken], lengths[taken])
        # fits is a prefix of each row, so the overflowing word directly follows a fitting one.
        prev_fits = np.zeros(idx.size, dtype=bool)
        prev_fits[1:] = fits[:-1] & ~first[1:]
        idx = idx[~fits & ~prev_fits & ~first]
    return selected


@dataclass
class _Instances:
    """A record batch's unique instances as flat arrays (before masking)."""

    input_ids: np.ndarray  # int32, all rows concatenated, [CLS] ... [SEP]
    row_offsets: np.ndarray  # int64, len rows + 1
    doc_rows: np.ndarray  # which document of the batch each row starts in
    content_pos: np.ndarray  # flat position in input_ids of every content token
    content_row: np.ndarray  # row of every content token
    unit: np.ndarray  # whole-word unit id of every content token (row-local words)
    unit_row: np.ndarray  # row of every unit
    unit_len: np.ndarray  # tokens in every unit


def _global_word_ends(
    col: pa.ListArray,
    text_len: np.ndarray,
    char_base: np.ndarray,
    doc_ids: list[str] | None,
    batch_index: int,
) -> np.ndarray:
    """All documents' word ends in batch-global character offsets, checked to partition texts."""
    if col.null_count:
        raise ValueError(f"record batch {batch_index}: null word_ends")
    offs = col.offsets.to_numpy().astype(np.int64)
    ends = col.values.to_numpy(zero_copy_only=False)[offs[0] : offs[-1]].astype(np.int64)
    offs -= offs[0]
    n_words = np.diff(offs)
    doc_of_end = np.repeat(np.arange(n_words.size), n_words)
    bad = np.zeros(n_words.size, dtype=bool)
    # Within a document: strictly increasing, first > 0, last == len(text).
    first_end = np.zeros(ends.size, dtype=bool)
    first_end[offs[:-1][n_words > 0]] = True
    prev = np.concatenate([[0], ends[:-1]])
    prev[first_end] = 0
    bad[doc_of_end[ends <= prev]] = True
    has_words = n_words > 0
    bad[has_words] |= ends[offs[1:][has_words] - 1] != text_len[has_words]
    bad |= ~has_words & (text_len > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        name = repr(doc_ids[i]) if doc_ids else f"#{i}"
        raise ValueError(
            f"record batch {batch_index}: word_ends of document {name} are not strictly "
            "increasing character offsets ending at len(text)"
        )
    return ends + char_base[doc_of_end]


def _marks_subwords(backend: Any) -> bool:
    """Whether the tokenizer's model marks the pieces that continue a word (WordPiece's `##`).

    Only then is its pre-token word a word: byte-level BPE and Metaspace pre-tokenizers leave a
    whole run of CJK characters as one pre-token, which must not become one masking group.
    """
    return bool(getattr(backend.model, "continuing_subword_prefix", None))


def _tokenise(
    texts: list[str], backend: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The batch's token ids and their character starts, flattened over the documents, the
    number of tokens of each document, and which tokens continue the previous token's
    pre-token word in a tokenizer that marks subwords (never a document's first token)."""
    n_docs = len(texts)
    encodings = backend.encode_batch(texts, add_special_tokens=False)
    n_tok_doc = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n_docs)
    n = int(n_tok_doc.sum())
    # chain.from_iterable flattens in C: no Python bytecode runs per token.
    ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int32, count=n)
    spans = np.fromiter(
        chain.from_iterable(chain.from_iterable(e.offsets for e in encodings)),
        dtype=np.int64,
        count=2 * n,
    )
    continues = np.zeros(n, dtype=bool)
    if n and _marks_subwords(backend):
        # Pre-token word indices restart at 0 in every document; without special tokens
        # every token has one.
        word_ids = np.fromiter(
            chain.from_iterable(e.word_ids for e in encodings), dtype=np.int64, count=n
        )
        continues[1:] = word_ids[1:] == word_ids[:-1]
        doc_starts = np.cumsum(n_tok_doc)[:-1]
        continues[doc_starts[doc_starts < n]] = False  # a document's first token
    return ids, spans[0::2], n_tok_doc, continues


def _sentence_starts(texts: list[str], gstart: np.ndarray, doc_first: np.ndarray) -> np.ndarray:
    """Which tokens start a sentence, from their global character starts `gstart`.

    A new sentence starts after a sentence-end character (between the previous token's start
    and this token's), unless this token itself is end punctuation or a closing quote; every
    document's first token starts one.
    """
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    end_count = np.concatenate([[0], np.cumsum(np.isin(codes, _END_CODES))])
    no_start = np.isin(codes, _NO_START_CODES)
    new_sentence = doc_first.copy()
    if gstart.size > 1:
        ended = end_count[gstart[1:]] - end_count[gstart[:-1]] > 0
        new_sentence[1:] |= ended & ~no_start[gstart[1:]]
    return new_sentence


def _pack(seg_first: np.ndarray, doc_first: np.ndarray, limit: int) -> np.ndarray:
    """The first token of every instance: packing units (starting at `seg_first`) taken greedily
    while at most `limit` tokens fit, never across a document.

    Greedy packing as pointer chasing: an instance starting at segment s ends before next[s]
    (the first segment that would overflow, or the document's end). Instance starts are the
    segments reachable from each document's first segment; pointer doubling finds them all in
    log2(instances per document) vectorised passes.
    """
    n_seg = seg_first.size
    seg_end = np.append(seg_first[1:], doc_first.size)
    doc_first_seg = np.flatnonzero(doc_first[seg_first])
    doc_end_seg = np.append(doc_first_seg[1:], n_seg)[
        np.searchsorted(doc_first_seg, np.arange(n_seg), side="right") - 1
    ]
    nxt = np.minimum(np.searchsorted(seg_end, seg_first + limit, side="right"), doc_end_seg)
    jump = np.append(nxt, n_seg)
    reach = np.zeros(n_seg + 1, dtype=bool)
    reach[doc_first_seg] = True
    while not np.all(jump == n_seg):
        reach[jump[reach]] = True
        jump = jump[jump]
    return seg_first[np.flatnonzero(reach[:n_seg])]


def build_instances(
    texts: list[str],
    word_ends: pa.ListArray,
    backend: Any,
    *,
    max_seq_len: int,
    cls_id: int,
    sep_id: int,
    doc_ids: list[str] | None = None,
    batch_index: int = 0,
    whole_words: bool = True,
    cross_documents: bool = False,
) -> _Instances:
    """Tokenise a batch of documents, map tokens to words and pack sentences into instances.

    The masking units are whole words, or with `whole_words` False each token alone (BERT's
    original masking); the instances are packed the same way either way. With
    `cross_documents` an instance goes on into the batch's next document (RoBERTa's
    FULL-SENTENCES): rows are full, not padded out by short documents."""
    limit = max_seq_len - 2
    ids, starts, n_tok_doc, continues = _tokenise(texts, backend)
    n = ids.size
    doc_of_tok = np.repeat(np.arange(len(texts)), n_tok_doc)

    # Global character coordinates: documents laid end to end, so one searchsorted maps all
    # tokens of the batch to their words.
    text_len = pc.utf8_length(pa.array(texts, pa.string())).to_numpy().astype(np.int64)
    char_base = np.concatenate([[0], np.cumsum(text_len)])
    global_ends = _global_word_ends(word_ends, text_len, char_base, doc_ids, batch_index)
    gstart = starts + char_base[doc_of_tok]
    word = np.searchsorted(global_ends, gstart, side="right")

    doc_first = np.zeros(n, dtype=bool)
    doc_first[np.cumsum(n_tok_doc)[n_tok_doc > 0] - n_tok_doc[n_tok_doc > 0]] = True

    new_sentence = _sentence_starts(texts, gstart, doc_first)
    sentence = np.cumsum(new_sentence) - 1
    long_sentence = (np.bincount(sentence) > limit)[sentence]

    # A whole-word group starts at a segmenter word, unless the token continues the previous
    # token's WordPiece word: groups are unions of the two kinds of word.
    word_first = doc_first.copy()
    word_first[1:] |= (word[1:] != word[:-1]) & ~continues[1:]
    word_run = np.cumsum(word_first) - 1
    run_first = np.flatnonzero(word_first)
    pos_in_word = np.arange(n) - run_first[word_run]
    long_word = (np.bincount(word_run) > limit)[word_run]

    # Packing units: whole sentences; a sentence over the limit splits into its words, and a
    # word over the limit into limit-sized pieces.
    seg_first_mask = new_sentence | (long_sentence & word_first)
    seg_first_mask |= long_word & (pos_in_word % limit == 0)
    pack_first = doc_first
    if cross_documents:
        pack_first = np.zeros(n, dtype=bool)
        pack_first[:1] = True
    inst_start = _pack(np.flatnonzero(seg_first_mask), pack_first, limit)
    inst_len = np.diff(np.append(inst_start, n))
    n_inst = inst_start.size

    row_len = inst_len + 2
    row_offsets = np.concatenate([[0], np.cumsum(row_len)])
    inst_of_tok = np.repeat(np.arange(n_inst), inst_len)
    content_pos = np.arange(n) + 2 * inst_of_tok + 1
    input_ids = np.empty(int(row_offsets[-1]), dtype=np.int32)
    input_ids[content_pos] = ids
    input_ids[row_offsets[:-1]] = cls_id
    input_ids[row_offsets[1:] - 1] = sep_id

    unit_first = word_first.copy() if whole_words else np.ones(n, dtype=bool)
    unit_first[inst_start] = True
    unit = np.cumsum(unit_first) - 1
    return _Instances(
        input_ids=input_ids,
        row_offsets=row_offsets,
        doc_rows=doc_of_tok[inst_start],
        content_pos=content_pos,
        content_row=inst_of_tok,
        unit=unit,
        unit_row=inst_of_tok[unit_first],
        unit_len=np.bincount(unit, minlength=int(unit_first.sum())),
    )


@dataclass
class _Masked:
    input_ids: np.ndarray
    positions: np.ndarray  # in-row positions, grouped by row, ascending
    labels: np.ndarray
    counts: np.ndarray  # masked tokens per row
    n_mask: int
    n_random: int
    budget: int


def mask_instances(
    inst: _Instances,
    settings: MaskingSettings,
    rng: np.random.Generator,
    *,
    mask_id: int,
    replacement_ids: np.ndarray,
) -> _Masked:
    """One masked copy of every instance: shuffled whole words under the per-row budget."""
    n_rows = inst.row_offsets.size - 1
    row_len = np.diff(inst.row_offsets)
    budget = np.minimum(
        settings.max_predictions_per_seq,
        np.maximum(1, np.rint(row_len * settings.masked_lm_prob).astype(np.int64)),
    )
    order = np.lexsort((rng.random(inst.unit_row.size), inst.unit_row))
    chosen = np.zeros(inst.unit_row.size, dtype=bool)
    chosen[order[greedy_select(inst.unit_row[order], inst.unit_len[order], budget)]] = True

    masked_tok = np.flatnonzero(chosen[inst.unit])
    flat_pos = inst.content_pos[masked_tok]
    rows = inst.content_row[masked_tok]
    labels = inst.input_ids[flat_pos]
    draw = rng.random(masked_tok.size)
    to_mask = draw < settings.mask_token_prob
    to_random = ~to_mask & (draw < settings.mask_token_prob + settings.random_token_prob)
    input_ids = inst.input_ids.copy()
    input_ids[flat_pos[to_mask]] = mask_id
    n_random = int(to_random.sum())
    input_ids[flat_pos[to_random]] = replacement_ids[
        rng.integers(0, replacement_ids.size, n_random)
    ]
    return _Masked(
        input_ids=input_ids,
        positions=(flat_pos - inst.row_offsets[rows]).astype(np.int16),
        labels=labels,
        counts=np.bincount(rows, minlength=n_rows),
        n_mask=int(to_mask.sum()),
        n_random=n_random,
        budget=int(budget.sum()),
    )


def _list_array(offsets: np.ndarray, values: np.ndarray, value_type: pa.DataType) -> pa.Array:
    return pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32)), pa.array(values, type=value_type)
    )


# The counts mask_shard's statistics start with, in the order they are reported.
_COUNTS = (
    "documents",
    "instances",
    "rows",
    "tokens",
    "masked_tokens",
    "mask_token",
    "random_token",
    "kept_token",
    "budget",
    "unk_tokens",
)


def mask_shard(
    segmented_shard: Path,
    tokenizer_dir: Path,
    out_path: Path,
    settings: MaskingSettings,
    *,
    seed: int,
    shard_index: int,
) -> dict[str, Any]:
    """Write the masked shard for one segmented shard; return its statistics.

    Deterministic: every (record batch, dupe) draws from its own generator seeded by
    (seed, shard_index, batch index, dupe), so the same inputs give the same bytes.
    """
    segmented_shard, out_path = Path(segmented_shard), Path(out_path)
    source = open_segmented(segmented_shard, columns=_SEGMENTED_COLUMNS)
    tok = load_tokenizer(tokenizer_dir)
    backend = tok.backend_tokenizer
    # A tokenizer.json may carry truncation/padding; a document must be tokenised whole.
    backend.no_truncation()
    backend.no_padding()
    replacement = np.asarray(random_replacement_ids(tok), dtype=np.int32)
    tok_fp = tokenizer_fingerprint(tokenizer_dir)
    settings_dict = settings.as_dict()
    fp = fingerprint(MASKING_VERSION, settings_dict, seed, shard_index, source.fingerprint, tok_fp)
    stats = dict.fromkeys(_COUNTS, 0)
    n_batches = math.ceil(source.num_rows / settings.batch_docs)
    with masked_writer(
        out_path,
        fingerprint=fp,
        source_fingerprint=source.fingerprint,
        tokenizer_fingerprint=tok_fp,
        settings=settings_dict,
        shard_index=shard_index,
        seed=seed,
    ) as w:
        batches = rebatch(source.iter_batches(list(_SEGMENTED_COLUMNS)), settings.batch_docs)
        for b, batch in enumerate(tqdm(batches, total=n_batches, desc="mask", unit="batch")):
            texts = batch.column("text")
            if texts.null_count:
                raise ValueError(f"{segmented_shard}: record batch {b}: null text")
            doc_ids = batch.column("doc_id")
            inst = build_instances(
                texts.to_pylist(),
                batch.column("word_ends"),
                backend,
                max_seq_len=settings.max_seq_len,
                cls_id=tok.cls_token_id,
                sep_id=tok.sep_token_id,
                doc_ids=doc_ids.to_pylist(),
                batch_index=b,
                whole_words=settings.unit == "word",
                cross_documents=settings.cross_documents,
            )
            stats["documents"] += batch.num_rows
            stats["instances"] += inst.row_offsets.size - 1
            if tok.unk_token_id is not None:
                stats["unk_tokens"] += int(np.sum(inst.input_ids == tok.unk_token_id))
            row_doc_ids = doc_ids.take(pa.array(inst.doc_rows))
            for dupe in range(settings.dupe_factor):
                rng = np.random.default_rng([seed, shard_index, b, dupe])
                m = mask_instances(
                    inst, settings, rng, mask_id=tok.mask_token_id, replacement_ids=replacement
                )
                w.write(_masked_batch(inst, m, row_doc_ids, dupe))
                _count_copy(stats, inst, m)
    stats["masked_fraction"] = stats["masked_tokens"] / max(stats["tokens"], 1)
    stats["budget_filled"] = stats["masked_tokens"] / max(stats["budget"], 1)
    log.info("masked %s -> %s: %s", segmented_shard, out_path, stats)
    return stats


def _masked_batch(inst: _Instances, m: _Masked, row_doc_ids: pa.Array, dupe: int) -> pa.RecordBatch:
    """One masked copy of a batch's instances as masked-shard rows."""
    n_rows = inst.row_offsets.size - 1
    mask_offsets = np.concatenate([[0], np.cumsum(m.counts)])
    return pa.RecordBatch.from_arrays(
        [
            _list_array(inst.row_offsets, m.input_ids, pa.int32()),
            _list_array(mask_offsets, m.positions, pa.int16()),
            _list_array(mask_offsets, m.labels, pa.int32()),
            row_doc_ids,
            pa.array(np.full(n_rows, dupe, dtype=np.int8)),
        ],
        schema=MASKED_SCHEMA,
    )


def _count_copy(stats: dict[str, Any], inst: _Instances, m: _Masked) -> None:
    """Add one masked copy's rows, tokens and masking outcomes to `stats`."""
    stats["rows"] += inst.row_offsets.size - 1
    stats["tokens"] += int(inst.input_ids.size)
    stats["masked_tokens"] += int(m.labels.size)
    stats["mask_token"] += m.n_mask
    stats["random_token"] += m.n_random
    stats["kept_token"] += int(m.labels.size) - m.n_mask - m.n_random
    stats["budget"] += m.budget
