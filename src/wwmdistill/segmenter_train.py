"""The LTP segmenter model: a perceptron trained offline on gold text, or a hub model fetched.

Training uses `ltp_extension.perceptron.CWSTrainer` on the corpus's gold-segmented documents that
are not held out for scoring (`is_heldout`). The model directory doubles as a legacy LTP model
directory (config.json naming cws_model.bin), so `ltp.LTP(dir)` loads it as well as this package.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path

from wwmdistill.arrow_io import atomic_dir, fingerprint, write_json
from wwmdistill.artifacts.corpus import open_corpus
from wwmdistill.hub import hub_snapshot
from wwmdistill.progress import tqdm
from wwmdistill.segment import LTP_CONFIG, SegmentationSettings, check_partition

log = logging.getLogger(__name__)

TRAIN_FILE = "train.txt"
DEV_FILE = "dev.txt"
MODEL_FILE = "cws_model.bin"
INFO_FILE = "segmenter.json"


def is_heldout(doc_id: str, fraction: float) -> bool:
    """Whether a document is held out for scoring: a stable hash of its id, the same everywhere."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def gold_words(text: str, ends: list[int]) -> list[str]:
    """The gold words of a text, whitespace removed: the trainer's format separates words by
    spaces, and prediction only ever sees runs of non-whitespace."""
    check_partition(text, ends)
    words = (text[s:e] for s, e in zip([0, *ends], ends, strict=False))
    return [w for w in ("".join(word.split()) for word in words) if w]


def iter_gold_docs(
    corpus_shards: list[Path], fraction: float, heldout: bool
) -> Iterator[tuple[str, str, list[int]]]:
    """(doc_id, text, gold_word_ends) of gold documents on one side of the held-out split."""
    for path in corpus_shards:
        shard = open_corpus(path, columns=("doc_id", "text", "gold_word_ends"))
        for batch in shard.iter_batches(["doc_id", "text", "gold_word_ends"]):
            for doc_id, text, ends in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                if ends is not None and is_heldout(doc_id, fraction) == heldout:
                    yield doc_id, text, ends


def train_ltp_perceptron(
    corpus_shards: list[Path], out_dir: Path, settings: SegmentationSettings, seed: int = 0
) -> Path:
    """Train an LTP perceptron CWS model on gold documents not held out; return the model file.

    At most `ltp.train_max_docs` documents, in shard order, are shuffled with `seed` (the
    trainer's own shuffle is unseeded, so it is turned off). The trainer returns the epoch that
    scores best on its eval data, and the first epoch when it has none, so 5% of the documents
    (at most 1000) form a dev set for that choice, apart from the held-out scoring documents.
    """
    from ltp_extension.perceptron import Algorithm, CWSTrainer

    corpus_shards = [Path(p) for p in corpus_shards]
    out_dir = Path(out_dir)
    ltp = settings.ltp
    with atomic_dir(out_dir) as tmp:
        lines = []
        docs = iter_gold_docs(corpus_shards, settings.eval.fraction, heldout=False)
        for _, text, ends in tqdm(docs, desc="gold documents", unit="doc"):
            words = gold_words(text, ends)
            if words:
                lines.append(" ".join(words))
            if len(lines) >= ltp.train_max_docs:
                break
        if not lines:
            raise ValueError(
                f"no gold-segmented training documents in {[str(p) for p in corpus_shards]}: "
                "the 'train' LTP model needs a source with gold segmentation"
            )
        random.Random(seed).shuffle(lines)
        n_dev = min(1000, len(lines) // 20)
        dev, train = (lines[:n_dev], lines[n_dev:]) if n_dev else (lines, lines)
        train_file, dev_file = tmp / TRAIN_FILE, tmp / DEV_FILE
        train_file.write_text("\n".join(train) + "\n", encoding="utf-8")
        dev_file.write_text("\n".join(dev) + "\n", encoding="utf-8")

        trainer = CWSTrainer()
        trainer.epoch = ltp.epochs
        trainer.shuffle = False
        trainer.algorithm = (
            Algorithm("AP", 1)  # one thread: parallel AP converges slower per epoch
            if ltp.algorithm == "AP"
            else Algorithm(ltp.algorithm, ltp.margin)
        )
        trainer.load_train_data(str(train_file))
        trainer.load_eval_data(str(dev_file))
        log.info("training the LTP perceptron on %d documents: %r", len(train), trainer)
        started = time.perf_counter()
        model = trainer.train()
        seconds = time.perf_counter() - started
        model.save(str(tmp / MODEL_FILE))

        sources = {str(p): open_corpus(p).fingerprint for p in corpus_shards}
        info = {
            "kind": "ltp-perceptron",
            "trained_on": sources,
            "documents": len(train),
            "dev_documents": n_dev,
            "characters": sum(len(line) - line.count(" ") for line in train),
            "heldout_fraction": settings.eval.fraction,
            "ltp": ltp.as_dict(),
            "seed": seed,
            "train_seconds": round(seconds, 2),
            "fingerprint": fingerprint(ltp.as_dict(), settings.eval.fraction, sources, seed),
        }
        write_json(tmp / INFO_FILE, info)
        write_json(tmp / LTP_CONFIG, {"nerual": False, "tasks": {"cws": MODEL_FILE}})
    log.info("LTP perceptron trained in %.1fs -> %s", seconds, out_dir)
    return out_dir / MODEL_FILE


def fetch_ltp_model(hub_id: str, revision: str | None, out_dir: Path) -> Path:
    """Download an LTP hub model (e.g. "LTP/small") into `out_dir`, complete or not at all."""
    with atomic_dir(out_dir) as tmp:
        hub_snapshot(hub_id, revision, tmp, patterns=None, key="segmentation.ltp.model")
        if not (tmp / LTP_CONFIG).is_file():
            raise FileNotFoundError(f"hub model {hub_id}@{revision}: no {LTP_CONFIG}; not LTP")
        config = json.loads((tmp / LTP_CONFIG).read_text(encoding="utf-8"))
        log.info("fetched %s@%s (neural=%s)", hub_id, revision, config.get("nerual"))
    return out_dir
