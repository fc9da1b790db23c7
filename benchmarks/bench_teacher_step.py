"""What a teacher pretraining step costs on this CPU: precision, dropout, length, torch.compile.

The default teacher's shape (4 layers, hidden 256, 8,000-token vocabulary), one optimizer step
of masked-LM training on 4,096 tokens (batch 32 x 128, or 64 x 64) with 15% of the positions
masked, as the Trainer runs it: fp32, or bf16 autocast (what `precision: bf16` gives on a CPU);
dropout 0.1 (BERT's) or 0 (fused attention, no random masks); eager or `torch.compile`d
(inductor: fused CPU kernels; its compile time falls in the untimed warm-up round). All variants
are timed in the same interleaved rounds (wwmdistill.speed.interleaved) on pinned threads:

    .venv/bin/python benchmarks/bench_teacher_step.py --threads 1 --rounds 7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertForMaskedLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wwmdistill.speed import interleaved, summarise  # noqa: E402

VOCAB = 8000
TOKENS = 4096
# name: (dropout, bf16 autocast, sequence length, torch.compile)
VARIANTS = {
    "fp32, dropout 0.1, length 128": (0.1, False, 128, False),
    "fp32, dropout 0, length 128": (0.0, False, 128, False),
    "bf16, dropout 0.1, length 128": (0.1, True, 128, False),
    "bf16, dropout 0, length 128": (0.0, True, 128, False),
    "bf16, dropout 0, length 64": (0.0, True, 64, False),
    "fp32, dropout 0, length 128, compiled": (0.0, False, 128, True),
    "bf16, dropout 0, length 128, compiled": (0.0, True, 128, True),
}


def training_step(dropout: float, bf16: bool, length: int, compiled: bool):
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(0)
    model = BertForMaskedLM(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = TOKENS // length
    ids = torch.randint(5, VOCAB, (batch, length), generator=torch.Generator().manual_seed(0))
    labels = torch.full_like(ids, -100)
    masked = max(1, round(0.15 * length))
    labels[:, 1 : 1 + masked] = ids[:, 1 : 1 + masked]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    forward = torch.compile(model) if compiled else model

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = forward(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", nargs="*", help="variants whose name contains one of these")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = {
        name: variant
        for name, variant in VARIANTS.items()
        if not args.only or any(part in name for part in args.only)
    }
    steps = {name: training_step(*variant) for name, variant in chosen.items()}
    seconds = interleaved(steps, rounds=args.rounds, warmup=1)
    reference = None
    print(f"| variant ({args.threads} thread(s)) | ms per step [IQR] | tokens/s | speed-up |")
    print("|---|---:|---:|---:|")
    for name, runs in seconds.items():
        stats = summarise(runs, TOKENS, max_spread=0.25)
        reference = reference or stats["median_ms"]
        mark = " ⚠" if stats["unsteady"] else ""
        print(
            f"| {name} | {stats['median_ms']:.0f} [{stats['q1_ms']:.0f}–{stats['q3_ms']:.0f}]"
            f"{mark} | {stats['per_second']:.0f} | {reference / stats['median_ms']:.2f}x |"
        )


if __name__ == "__main__":
    main()
