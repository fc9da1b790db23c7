"""Batches/s the training reader delivers (masked shards + logit cache through the collator).

Usage, after the default DAG has run (`make run`):
    .venv/bin/python benchmarks/bench_reader.py --results results --batches 200
Compare with a training step's time from results/general/*/metrics.json (train_runtime / steps).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from wwmdistill.arrow_io import open_shard
from wwmdistill.mlm_data import MaskedLMCollator, masked_dataset
from wwmdistill.tokenizer import load_tokenizer


def batches_per_second(results: Path, batches: int, batch_size: int, with_logits: bool) -> float:
    logits_paths = sorted((results / "teacher" / "logits").glob("*.arrow"))
    masked_paths = [results / "masked" / path.name for path in logits_paths]
    meta = open_shard(logits_paths[0], stage="logits").meta
    tokenizer = load_tokenizer(results / "tokenizer")
    collator = MaskedLMCollator(
        tokenizer.pad_token_id,
        top_k=meta["top_k"] if with_logits else None,
        hidden_size=meta["hidden_size"] if with_logits and meta["has_hidden"] else None,
    )
    dataset = masked_dataset(
        masked_paths, logits_paths if with_logits else None, seed=0, repeat=True
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collator)
    iterator = iter(loader)
    next(iterator)  # opening the shards is not part of the steady state
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for with_logits in (False, True):
        rate = batches_per_second(args.results, args.batches, args.batch_size, with_logits)
        label = "masked + logit cache" if with_logits else "masked shards only"
        print(f"{label}: {rate:.0f} batches/s at batch {args.batch_size}")


if __name__ == "__main__":
    main()
