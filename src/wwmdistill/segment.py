"""Word segmentation: corpus shards -> segmented shards carrying `word_ends` character offsets.

Every backend returns, per text, the exclusive end offsets of its words. They always partition
the text: strictly increasing, the last equal to `len(text)` (an empty text has no words).
Whitespace is never a word of its own: a run of whitespace is the leading part of the word that
follows it (trailing whitespace joins the last word), so a word never spans whitespace except at
its start. This keeps whole-word masking from treating spaces as words, whatever the backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import operator
import os
import pickle
import re
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from itertools import accumulate, islice
from pathlib import Path
from typing import Any, Protocol

from wwmdistill.arrow_io import fingerprint
from wwmdistill.artifacts.corpus import open_corpus
from wwmdistill.artifacts.segmented import segmented_writer
from wwmdistill.progress import tqdm
from wwmdistill.settings import SegmentationSettings

log = logging.getLogger(__name__)

LTP_CONFIG = "config.json"
LTP_WEIGHTS = "pytorch_model.bin"
# The key under which an LTP config names what to call to build the model.
_LTP_TARGET = "_ltp_target_"
_WHITESPACE = re.compile(r"\s+")
_NON_WHITESPACE = re.compile(r"\S+")


class Segmenter(Protocol):
    """Segments a batch of texts into words, returned as exclusive end offsets per text."""

    identity: dict[str, Any]

    def segment(self, texts: list[str]) -> list[list[int]]: ...


def normalize_ends(text: str, ends: Iterable[int]) -> list[int]:
    """Make `ends` a valid partition of `text` that follows the whitespace rule.

    A boundary is forced where each whitespace run starts (unless the run ends the text) and
    removed inside and right after it, so the run leads the next word.
    """
    n = len(text)
    if n == 0:
        return []
    cuts = {e for e in ends if 0 < e < n}
    cuts.add(n)
    for run in _WHITESPACE.finditer(text):
        start, end = run.span()
        cuts.difference_update(range(start + 1, end + 1))
        if end == n:
            cuts.discard(start)
        elif start > 0:
            cuts.add(start)
    cuts.add(n)
    return sorted(cuts)


def ends_from_words(text: str, words: Sequence[str]) -> list[int]:
    """Turn a backend's words into end offsets, checking they spell out the text exactly."""
    if "".join(words) != text:
        raise ValueError(f"segmenter words do not spell out the text: {text[:60]!r}")
    return list(accumulate(map(len, words)))


def check_partition(text: str, ends: Sequence[int]) -> None:
    """Raise unless `ends` partitions `text`: strictly increasing, last == len(text)."""
    if not text:
        if ends:
            raise ValueError(f"word ends {list(ends)[:10]} given for an empty text")
        return
    if not ends or ends[-1] != len(text) or ends[0] <= 0:
        raise ValueError(f"word ends do not cover a text of length {len(text)}: {list(ends)[:10]}")
    if not all(map(operator.lt, ends, islice(ends, 1, None))):
        raise ValueError(f"word ends are not strictly increasing: {list(ends)[:20]}")


class UserDict:
    """Words never to split, applied after any backend by merging boundaries inside them.

    A post-merge (rather than feeding words to each backend's own dictionary) gives the same
    guarantee for LTP and jieba, and keeps the rjieba fast path. One regex alternation inside a
    lookahead finds, at every position, the longest dictionary word starting there, overlapping
    occurrences included; every boundary strictly inside one is removed.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"config segmentation.user_dict: {self.path} is not a file")
        raw = self.path.read_bytes()
        words: set[str] = set()
        for lineno, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            word = line.strip()
            if _WHITESPACE.search(word):
                raise ValueError(f"{self.path}:{lineno}: a user-dict word contains whitespace")
            if len(word) > 1:
                words.add(word)
        self.sha256 = hashlib.sha256(raw).hexdigest()
        ordered = sorted(words, key=lambda w: (-len(w), w))
        alternation = "|".join(map(re.escape, ordered))
        self._pattern = re.compile(f"(?=({alternation}))") if ordered else None

    def merge(self, text: str, ends: list[int]) -> list[int]:
        if self._pattern is None:
            return ends
        inside: set[int] = set()
        for match in self._pattern.finditer(text):
            inside.update(range(match.start(1) + 1, match.end(1)))
        return [e for e in ends if e not in inside] if inside else ends


class LtpPerceptronSegmenter:
    """A legacy LTP perceptron CWS model, run through ltp_extension's parallel batch call.

    The model never saw whitespace in training and drops leading spaces, so it is given each
    run of non-whitespace separately; whitespace then forces a boundary.
    """

    def __init__(self, model_file: Path) -> None:
        from ltp_extension.perceptron import CWSModel

        self.model = CWSModel.load(str(model_file))
        self.identity = {"kind": "ltp-perceptron", "model_sha256": _file_digest([model_file])}

    def segment(self, texts: list[str]) -> list[list[int]]:
        return _segment_chunks(texts, lambda chunks: self.model.batch_predict(chunks))


def _ltp_model_part(target: object) -> bool:
    """Whether an `_ltp_target_` names ltp_core's backbone builder or one of its model modules."""
    if not isinstance(target, str) or not target.startswith("ltp_core.models."):
        return False
    import torch
    from ltp_core.models.utils import load_transformers
    from ltp_core.models.utils.instantiate import find_callable

    try:
        found = find_callable(target)
    except (ImportError, AttributeError, ValueError):
        return False
    # Checked once resolved: a dotted path can reach through a module into anything it imports.
    return found is load_transformers or (
        isinstance(found, type)
        and issubclass(found, torch.nn.Module)
        and found.__module__.startswith("ltp_core.models.")
    )


def check_ltp_targets(node: object, config_file: Path) -> None:
    """Refuse an LTP config that names anything but ltp_core's model parts to build the model.

    LTP imports and calls whatever each `_ltp_target_` names, at any depth (os.system as well as
    its own classes), so an unchecked model directory is code.
    """
    if not isinstance(node, dict):
        return
    if _LTP_TARGET in node and not _ltp_model_part(node[_LTP_TARGET]):
        raise ValueError(
            f"{config_file}: refusing {_LTP_TARGET} {node[_LTP_TARGET]!r}; an LTP model may only "
            "be built from ltp_core's model classes"
        )
    for value in node.values():
        check_ltp_targets(value, config_file)


def load_neural_ltp(model_dir: Path, config: dict[str, Any]):
    """What `ltp.LTP(model_dir)` returns for a neural model, without running code from the model.

    LTP's own loader calls what config.json names and unpickles pytorch_model.bin with torch's
    default `weights_only`, which TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns off: here the names are
    checked first and the weights read with `weights_only=True` whatever the environment.
    """
    import torch
    from ltp.nerual import LTP as NeuralLTP  # sic: LTP's own module name
    from transformers import AutoTokenizer

    check_ltp_targets(config, model_dir / LTP_CONFIG)
    weights_file = model_dir / LTP_WEIGHTS
    try:
        weights = torch.load(weights_file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{weights_file}: holds more than weights (pickled objects or code); refusing to "
            "unpickle it"
        ) from err
    ltp = NeuralLTP(config=config)
    ltp.tokenizer = AutoTokenizer.from_pretrained(
        str(model_dir), config=ltp.model.backbone.config, use_fast=True, local_files_only=True
    )
    ltp.load_state_dict(weights, strict=False)  # as LTP's own loader does
    return ltp.eval()


class LtpNeuralSegmenter:
    """An LTP neural model directory (LTP/tiny, small, base…) through LTP's cws task."""

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        import torch

        self.ltp = load_neural_ltp(model_dir, config)
        if torch.cuda.is_available():
            self.ltp.to("cuda")
        self.identity = {
            "kind": "ltp-neural",
            "model_sha256": _file_digest(sorted(p for p in model_dir.rglob("*") if p.is_file())),
        }

    def segment(self, texts: list[str]) -> list[list[int]]:
        return _segment_chunks(texts, lambda chunks: self.ltp.pipeline(chunks, tasks=["cws"]).cws)


class JiebaSegmenter:
    """jieba's default mode with HMM; rjieba (the same algorithm and dictionary in Rust) if present.

    Both are given the whole text: jieba emits whitespace as words of its own, which
    `normalize_ends` then attaches to the following word.
    """

    def __init__(self, prefer_rust: bool = True) -> None:
        self.impl = "jieba"
        self._cut = None
        if prefer_rust:
            try:
                import rjieba

                self._cut, self.impl = rjieba.cut, "rjieba"
            except ImportError:
                log.info("rjieba is not installed; using jieba (same words, slower)")
        if self._cut is None:
            import jieba

            self._cut = jieba.lcut
        # Both ship the same dictionary and algorithm, so the identity does not name which ran.
        self.identity = {"kind": "jieba", "jieba": _version("jieba")}

    def segment(self, texts: list[str]) -> list[list[int]]:
        return [ends_from_words(text, self._cut(text)) for text in texts]


class WhitespaceSegmenter:
    """Words are runs of non-whitespace, each with the whitespace before it (non-Chinese text)."""

    identity = {"kind": "whitespace"}

    def segment(self, texts: list[str]) -> list[list[int]]:
        return [normalize_ends(text, []) for text in texts]


class _Normalized:
    """Wraps a backend: applies the user dictionary and the whitespace rule, checks the result."""

    def __init__(self, inner: Segmenter, user_dict: UserDict | None) -> None:
        self.inner = inner
        self.user_dict = user_dict
        self.identity = dict(inner.identity)
        if user_dict is not None:
            self.identity["user_dict_sha256"] = user_dict.sha256

    def segment(self, texts: list[str]) -> list[list[int]]:
        out = []
        for text, ends in zip(texts, self.inner.segment(texts), strict=True):
            ends = normalize_ends(text, ends)
            if self.user_dict is not None:
                ends = self.user_dict.merge(text, ends)
            check_partition(text, ends)
            out.append(ends)
        return out


def _segment_chunks(texts: list[str], predict) -> list[list[int]]:
    """Run `predict` on every non-whitespace run of every text in one batch call, map back."""
    spans = [[m.span() for m in _NON_WHITESPACE.finditer(text)] for text in texts]
    chunks = [text[s:e] for text, spn in zip(texts, spans, strict=True) for s, e in spn]
    words = iter(predict(chunks) if chunks else [])
    out = []
    for text, spn in zip(texts, spans, strict=True):
        ends: list[int] = []
        for s, e in spn:
            ends.extend(s + end for end in ends_from_words(text[s:e], next(words)))
        out.append(ends)
    return out


def _file_digest(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def optional_path(value: str | os.PathLike[str] | Sequence[str] | None) -> Path | None:
    """An optional single-file input: None, a path, or a list of zero or one paths (as Snakemake
    gives a named input built from a list)."""
    if value is None or isinstance(value, str | os.PathLike):
        return None if value is None else Path(value)
    if len(value) > 1:
        raise ValueError(f"expected at most one model path, got {list(value)}")
    return Path(value[0]) if value else None


def resolve_ltp_model(settings: SegmentationSettings, model_path: Path | None) -> Path:
    """The LTP model to load: the rule's model input, else `ltp.model` when it is a local path."""
    path = Path(model_path) if model_path is not None else Path(settings.ltp.model)
    if not path.exists():
        raise FileNotFoundError(
            f"config segmentation.ltp.model={settings.ltp.model!r}: no model at {path}; 'train' "
            "and hub ids need the directory written by train_segmenter / fetch_segmenter"
        )
    return path


def load_ltp(path: Path) -> LtpPerceptronSegmenter | LtpNeuralSegmenter:
    """Load an LTP model: a perceptron file, or a directory whose config.json says which kind."""
    if path.is_file():
        return LtpPerceptronSegmenter(path)
    config_file = path / LTP_CONFIG
    if not config_file.is_file():
        raise FileNotFoundError(f"{path}: an LTP model directory needs {LTP_CONFIG}")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        neural = bool(config["nerual"])  # sic: LTP's own key
        cws_file = None if neural else path / config["tasks"]["cws"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{config_file}: not an LTP config ({err!r})") from err
    if cws_file is None:
        return LtpNeuralSegmenter(path, config)
    return LtpPerceptronSegmenter(cws_file)


def make_segmenter(settings: SegmentationSettings, model_path: Path | None = None) -> Segmenter:
    """The configured backend, wrapped so its output obeys the partition and whitespace rules."""
    inner: Segmenter
    if settings.backend == "ltp":
        inner = load_ltp(resolve_ltp_model(settings, model_path))
    elif settings.backend == "jieba":
        inner = JiebaSegmenter()
    elif settings.backend == "whitespace":
        inner = WhitespaceSegmenter()
    else:
        raise ValueError(
            f"backend {settings.backend!r} has no text segmenter: 'gold' copies a shard's "
            "gold_word_ends (see segment_shard)"
        )
    user_dict = None
    if settings.user_dict and settings.backend == "whitespace":
        log.warning("segmentation.user_dict is ignored by the whitespace backend")
    elif settings.user_dict:
        user_dict = UserDict(settings.user_dict)
    return _Normalized(inner, user_dict)


def gold_ends(path: Path, texts: list[str], gold: list[list[int] | None]) -> list[list[int]]:
    """The gold segmentation of a batch, checked; a document without one is an error."""
    out = []
    for text, ends in zip(texts, gold, strict=True):
        if ends is None:
            raise ValueError(
                f"{path}: backend 'gold' needs gold_word_ends, but a document has none "
                f"(text {text[:40]!r}); choose another segmentation.backend"
            )
        check_partition(text, ends)
        out.append(normalize_ends(text, ends))
    return out


def segment_shard(
    corpus_shard: Path,
    out_path: Path,
    settings: SegmentationSettings,
    model_path: Path | None = None,
) -> int:
    """Segment one corpus shard batch by batch into a segmented shard; return its row count."""
    corpus_shard, out_path = Path(corpus_shard), Path(out_path)
    source = open_corpus(corpus_shard, columns=("doc_id", "text", "gold_word_ends"))
    segmenter = None if settings.backend == "gold" else make_segmenter(settings, model_path)
    identity = {"kind": "gold"} if segmenter is None else segmenter.identity
    fp = fingerprint(settings.as_dict(), source.fingerprint, identity)
    chars = 0
    started = time.perf_counter()
    with (
        segmented_writer(
            out_path,
            fingerprint=fp,
            source_fingerprint=source.fingerprint,
            backend=settings.backend,
            segmenter=identity,
            settings=settings.as_dict(),
        ) as writer,
        tqdm(total=source.num_rows, desc=f"segment {corpus_shard.name}", unit="doc") as bar,
    ):
        for batch in source.iter_batches(["doc_id", "text", "gold_word_ends"]):
            # Batches are re-sliced to batch_size so memory and backend calls stay bounded.
            for offset in range(0, batch.num_rows, settings.batch_size):
                part = batch.slice(offset, settings.batch_size)
                texts = part.column("text").to_pylist()
                if segmenter is None:
                    ends = gold_ends(corpus_shard, texts, part.column("gold_word_ends").to_pylist())
                else:
                    ends = segmenter.segment(texts)
                writer.write(
                    {
                        "doc_id": part.column("doc_id"),
                        "text": part.column("text"),
                        "gold_word_ends": part.column("gold_word_ends"),
                        "word_ends": ends,
                    }
                )
                chars += sum(map(len, texts))
                bar.update(part.num_rows)
    elapsed = time.perf_counter() - started
    log.info(
        "%s: %d documents, %d characters segmented with %s in %.1fs (%.0f chars/s)",
        out_path,
        writer.rows,
        chars,
        settings.backend,
        elapsed,
        chars / max(elapsed, 1e-9),
    )
    return writer.rows
