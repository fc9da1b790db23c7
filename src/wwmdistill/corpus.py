"""Corpus shards: normalise, filter, split long documents, exact-dedup, assign to shards.

Streaming in two passes so memory does not grow with the corpus: pass one normalises every
document and routes it by a digest of its text to a per-shard spill file, so identical texts
always meet in the same shard; pass two deduplicates each shard on its own (memory bounded by
the shard) and writes the final Arrow files. Everything is deterministic: same sources and
settings, same shard bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from wwmdistill.arrow_io import fingerprint, write_json, writing
from wwmdistill.artifacts.corpus import CORPUS_SCHEMA, corpus_writer
from wwmdistill.corpus_readers import RawDocument, read_documents
from wwmdistill.download.sources import SourceFile
from wwmdistill.progress import tqdm
from wwmdistill.settings import CorpusSettings

log = logging.getLogger(__name__)

# Full-width ASCII (U+FF01..U+FF5E) maps onto ASCII by a fixed offset; U+3000 is the ideographic
# space. Character-for-character, so gold word boundaries survive the mapping.
_HALFWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class CorpusSource:
    """One configured source: its resolved files and an optional cap on documents."""

    name: str
    files: list[SourceFile]
    max_docs: int | None = None


class EmptyCorpusError(ValueError):
    """Nothing, or too little to fill every shard, was left after filtering."""


def _simplifier(enabled: bool) -> Callable[[str], str] | None:
    if not enabled:
        return None
    import opencc

    return opencc.OpenCC("t2s").convert


def normalize_text(
    text: str, settings: CorpusSettings, simplify: Callable[[str], str] | None = None
) -> str:
    """Full-width to half-width, control characters dropped, whitespace collapsed, t2s."""
    if settings.fullwidth_to_halfwidth:
        text = text.translate(_HALFWIDTH)
    if settings.drop_control:
        # Cc covers C0/C1 controls, Cf zero-width marks and BOMs; keep whitespace for collapsing.
        text = "".join(
            ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
        )
    if simplify is not None:
        text = simplify(text)
    if settings.collapse_whitespace:
        text = _WHITESPACE.sub(" ", text).strip()
    return text


def normalize_document(
    doc: RawDocument, settings: CorpusSettings, simplify: Callable[[str], str] | None = None
) -> RawDocument:
    """Normalise a document; gold words are normalised one by one so their boundaries stay exact."""
    if doc.gold_word_ends is None:
        return RawDocument(doc.doc_id, normalize_text(doc.text, settings, simplify), None)
    words, start = [], 0
    for end in doc.gold_word_ends:
        word = normalize_text(doc.text[start:end], settings, simplify)
        if word:
            words.append(word)
        start = end
    ends, total = [], 0
    for word in words:
        total += len(word)
        ends.append(total)
    return RawDocument(doc.doc_id, "".join(words), ends)


def _sentence_ends(text: str) -> list[int]:
    from ltp_extension.algorithms import StnSplit

    ends, total = [], 0
    for sentence in StnSplit().split(text):
        total += len(sentence)
        ends.append(total)
    return ends


def split_document(doc: RawDocument, max_chars: int) -> list[RawDocument]:
    """Split a long document at sentence ends into pieces of at most `max_chars` characters.

    Sentences are packed greedily; a sentence longer than the limit is cut, at a gold word end
    when the document has gold segmentation.
    """
    if len(doc.text) <= max_chars:
        return [doc]
    allowed = set(doc.gold_word_ends) if doc.gold_word_ends is not None else None
    cuts, piece_start, last_end = [], 0, 0
    for end in _sentence_ends(doc.text):
        if allowed is not None and end not in allowed:
            continue  # a sentence end inside a gold word is not a boundary
        while end - piece_start > max_chars:
            cut = last_end if last_end > piece_start else _hard_cut(piece_start, max_chars, allowed)
            cuts.append(cut)
            piece_start = last_end = cut
        last_end = end
    if len(doc.text) > piece_start:
        cuts.append(len(doc.text))
    pieces, start = [], 0
    for k, cut in enumerate(cuts):
        gold = None
        if doc.gold_word_ends is not None:
            gold = [e - start for e in doc.gold_word_ends if start < e <= cut]
            if not gold or gold[-1] != cut - start:
                gold.append(cut - start)  # a word longer than the limit was hard-cut
        pieces.append(RawDocument(f"{doc.doc_id}#{k}", doc.text[start:cut], gold))
        start = cut
    return pieces


def _hard_cut(start: int, max_chars: int, allowed: set[int] | None) -> int:
    limit = start + max_chars
    if allowed:
        inside = [e for e in allowed if start < e <= limit]
        if inside:
            return max(inside)
    return limit


def shard_of(text: str, shards: int) -> int:
    """Content-addressed shard: identical texts always land in the same shard."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def iter_source_documents(
    sources: Iterable[CorpusSource], on_error: str, skipped: Counter[str]
) -> Iterator[RawDocument]:
    """Documents of every source in order, each source capped at its `max_docs`."""
    for source in sources:
        taken = 0
        for file in source.files:
            for doc in read_documents(
                file.path,
                file.format,
                text_field=file.text_field,
                label=file.label,
                on_error=on_error,
                skipped=skipped,
            ):
                if source.max_docs is not None and taken >= source.max_docs:
                    break
                taken += 1
                yield doc


def build_corpus(
    sources: list[CorpusSource],
    out_paths: list[Path],
    stats_path: Path,
    settings: CorpusSettings,
    *,
    config_fingerprint: str,
) -> dict[str, Any]:
    """Read, normalise, filter, split and deduplicate; write one Arrow file per shard and stats."""
    if len(out_paths) != settings.shards:
        raise ValueError(f"corpus.shards is {settings.shards} but {len(out_paths)} outputs given")
    spill_dir = stats_path.parent / ".spill"
    shutil.rmtree(spill_dir, ignore_errors=True)
    spill_dir.mkdir(parents=True)
    skipped: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    try:
        with writing(spill_dir):
            read, split = _spill(sources, spill_dir, settings, skipped, dropped)
        per_shard, characters = [], 0
        for i, out_path in enumerate(out_paths):
            docs_in_shard, chars_in_shard = _dedup_shard(
                spill_dir / f"{i}.arrows", out_path, settings, dropped, config_fingerprint, i
            )
            per_shard.append(docs_in_shard)
            characters += chars_in_shard
    finally:
        # Failed or not: a spill the size of the corpus must not stay on a disk that may be full.
        shutil.rmtree(spill_dir, ignore_errors=True)
    documents = sum(per_shard)
    stats = {
        "documents_read": read,
        "documents": documents,
        "characters": characters,
        "split_pieces_added": split,
        "dropped": dict(sorted((dropped + skipped).items())),
        "documents_per_shard": per_shard,
        "fingerprint": config_fingerprint,
    }
    if documents == 0:
        raise EmptyCorpusError(
            f"the corpus is empty after filtering: {read} documents read, dropped by reason "
            f"{stats['dropped']}; check corpus.min_chars / max_chars and the sources"
        )
    empty = [str(path) for path, count in zip(out_paths, per_shard, strict=True) if not count]
    # Shards are content-addressed (identical texts meet in one shard), so they are not
    # rebalanced. Fewer documents than shards is always a mistake; an empty shard by chance is
    # named, and the stages that would train or evaluate on nothing refuse it themselves.
    if documents < settings.shards:
        raise EmptyCorpusError(
            f"{documents} documents after filtering are too few for corpus.shards="
            f"{settings.shards}: {len(empty)} shards would get none ({', '.join(empty)}); lower "
            "corpus.shards"
        )
    if empty:
        log.warning("corpus: no document landed in %s", ", ".join(empty))
    write_json(stats_path, stats)
    log.info("corpus: %s", stats)
    return stats


def _spill(
    sources: list[CorpusSource],
    spill_dir: Path,
    settings: CorpusSettings,
    skipped: Counter[str],
    dropped: Counter[str],
) -> tuple[int, int]:
    """Normalise, filter and split the documents into one Arrow stream per shard in `spill_dir`.

    Returns (documents read, pieces added by splitting).
    """
    read = split = 0
    simplify = _simplifier(settings.to_simplified)
    buffers: list[list[RawDocument]] = [[] for _ in range(settings.shards)]
    with contextlib.ExitStack() as stack:
        spills = [
            stack.enter_context(
                ipc.new_stream(
                    stack.enter_context(pa.OSFile(str(spill_dir / f"{i}.arrows"), "wb")),
                    CORPUS_SCHEMA,
                )
            )
            for i in range(settings.shards)
        ]

        def flush(i: int) -> None:
            if buffers[i]:
                spills[i].write_batch(_to_batch(buffers[i]))
                buffers[i] = []

        docs = iter_source_documents(sources, settings.on_error, skipped)
        for raw in tqdm(docs, desc="corpus", unit="doc", mininterval=5):
            read += 1
            doc = normalize_document(raw, settings, simplify)
            if settings.max_chars is not None and len(doc.text) > settings.max_chars:
                dropped["too_long"] += 1
                continue
            pieces = split_document(doc, settings.split_chars)
            split += len(pieces) - 1
            for piece in pieces:
                if len(piece.text) < settings.min_chars:
                    dropped["too_short"] += 1
                    continue
                i = shard_of(piece.text, settings.shards)
                buffers[i].append(piece)
                if len(buffers[i]) >= settings.batch_docs:
                    flush(i)
        for i in range(settings.shards):
            flush(i)
    return read, split


def _to_batch(docs: list[RawDocument]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "doc_id": [d.doc_id for d in docs],
            "text": [d.text for d in docs],
            "gold_word_ends": [d.gold_word_ends for d in docs],
        },
        schema=CORPUS_SCHEMA,
    )


def _dedup_shard(
    spill: Path,
    out_path: Path,
    settings: CorpusSettings,
    dropped: Counter[str],
    config_fingerprint: str,
    index: int,
) -> tuple[int, int]:
    seen: set[bytes] = set()
    documents = characters = 0
    fp = fingerprint("corpus", config_fingerprint, index)
    with (
        pa.memory_map(str(spill)) as source,
        corpus_writer(out_path, fingerprint=fp, shard=index, shards=settings.shards) as out,
    ):
        for batch in ipc.open_stream(source):
            keep = []
            for row, text in enumerate(batch.column("text").to_pylist()):
                if settings.dedup:
                    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
                    if digest in seen:
                        dropped["duplicate"] += 1
                        continue
                    seen.add(digest)
                keep.append(row)
                characters += len(text)
            out.write(batch.take(pa.array(keep, pa.int64())))
            documents += len(keep)
    return documents, characters
