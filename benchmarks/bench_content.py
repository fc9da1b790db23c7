"""What judging external inputs by content costs a DAG build: a multi-GB corpus, cold and cached.

Usage: .venv/bin/python benchmarks/bench_content.py [--gib 2] [--repeats 5]
A local corpus source of `--gib` GiB (text lines) in a temporary working directory: the first
`snakemake -n` hashes it (SHA-256, once), the later ones find its digest in
.snakemake/wwmdistill/content-digests.json by path, size and mtime. Also timed: a dry run with
the file's mtime moved (touched: hashed again, nothing planned) and ContentDigests.of alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from wwmdistill.content import ContentDigests  # noqa: E402


def dry_run(workdir: Path) -> float:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    start = time.perf_counter()
    subprocess.run(
        [*cmd, "results/corpus/stats.json", "--dry-run", "--cores", "1", "--quiet", "all"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def write_corpus(path: Path, gib: float) -> None:
    line = ("中文维基百科的一段正文，用来占满语料文件。" * 8 + "\n").encode()
    block = line * ((1 << 20) // len(line) + 1)
    with open(path, "wb") as out:
        for _ in range(int(gib * (1 << 30)) // len(block)):
            out.write(block)


def summary(seconds: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else seconds * 3
    return f"median {median:.2f} s (IQR {q1:.2f}-{q3:.2f}, n={len(seconds)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        corpus = workdir / "data" / "corpus.txt"
        corpus.parent.mkdir()
        write_corpus(corpus, args.gib)
        config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
        config["data_root"] = "data"
        config["sources"] = {"big": {"type": "local", "paths": ["corpus.txt"]}}
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
        size = corpus.stat().st_size / (1 << 30)
        print(f"corpus: {size:.2f} GiB")
        print(f"first dry run (hashes the corpus): {dry_run(workdir):.2f} s")
        cached = [dry_run(workdir) for _ in range(args.repeats)]
        print(f"dry run, digest cached: {summary(cached)}")
        touched = []
        for _ in range(args.repeats):
            os.utime(corpus)
            touched.append(dry_run(workdir))
        print(f"dry run after a touch (hashed again): {summary(touched)}")
        digests = ContentDigests(workdir / "bench-cache.json")
        start = time.perf_counter()
        digests.of([corpus])
        cold = time.perf_counter() - start
        warm = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            ContentDigests(workdir / "bench-cache.json").of([corpus])
            warm.append(time.perf_counter() - start)
        rate = size / cold
        print(f"ContentDigests.of: cold {cold:.2f} s ({rate:.2f} GiB/s), cached {summary(warm)}")


if __name__ == "__main__":
    main()
