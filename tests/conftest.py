"""Shared fixtures: real masked shards and a tiny teacher, built once per test session.

The shards go through the real front half of the pipeline (CLUE corpus lines -> WordPiece
tokenizer -> jieba segmentation -> static whole-word masking), only much smaller.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from samples import clue_docs, write_corpus_shard

from wwmdistill.masking import MaskingSettings, mask_shard
from wwmdistill.segment import SegmentationSettings, segment_shard
from wwmdistill.tokenizer import (
    TOKENIZER_FILES,
    TokenizerSettings,
    load_tokenizer,
    train_wordpiece,
)

TINY_LINES = 240
TINY_SHARDS = 2
TINY_MAX_SEQ_LEN = 64
TINY_DUPE_FACTOR = 2


@dataclass(frozen=True)
class TinyMasked:
    tokenizer_dir: Path
    masked_paths: list[Path]
    settings: MaskingSettings


@pytest.fixture(scope="session")
def tiny_masked(tmp_path_factory: pytest.TempPathFactory) -> TinyMasked:
    """A WordPiece tokenizer dir and 2 real masked shards (max_seq_len 64, dupe_factor 2)."""
    root = tmp_path_factory.mktemp("tiny_masked")
    docs = clue_docs(TINY_LINES)
    corpus_paths = []
    for s in range(TINY_SHARDS):
        part = docs[s::TINY_SHARDS]
        ids = [f"s{s}d{i}" for i in range(len(part))]
        corpus_paths.append(write_corpus_shard(root / f"corpus/{s:03d}.arrow", ids, part, f"c{s}"))
    tokenizer_dir = root / "tokenizer"
    train_wordpiece(corpus_paths, tokenizer_dir, TokenizerSettings(vocab_size=3000))
    settings = MaskingSettings(
        max_seq_len=TINY_MAX_SEQ_LEN, dupe_factor=TINY_DUPE_FACTOR, batch_docs=8
    )
    segmentation = SegmentationSettings(backend="jieba")
    masked_paths = []
    for s, corpus in enumerate(corpus_paths):
        segmented = root / f"segmented/{s:03d}.arrow"
        segment_shard(corpus, segmented, segmentation)
        masked = root / f"masked/{s:03d}.arrow"
        mask_shard(segmented, tokenizer_dir, masked, settings, seed=11, shard_index=s)
        masked_paths.append(masked)
    return TinyMasked(tokenizer_dir=tokenizer_dir, masked_paths=masked_paths, settings=settings)


@pytest.fixture(scope="session")
def tiny_teacher(tiny_masked: TinyMasked, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random BertForMaskedLM (hidden 64, 2 layers, 2 heads) with the tokenizer files.

    The tokenizer files are copied byte for byte, as the teacher stage does, so the teacher's
    tokenizer fingerprint is the masked shards'.
    """
    import torch
    from transformers import BertConfig, BertForMaskedLM

    tok = load_tokenizer(tiny_masked.tokenizer_dir)
    torch.manual_seed(0)
    model = BertForMaskedLM(
        BertConfig(
            vocab_size=len(tok),
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            max_position_embeddings=TINY_MAX_SEQ_LEN,
            pad_token_id=tok.pad_token_id,
        )
    )
    out = tmp_path_factory.mktemp("tiny_teacher") / "model"
    model.save_pretrained(str(out), safe_serialization=True)
    for name in TOKENIZER_FILES:
        if name != "config.json" and (tiny_masked.tokenizer_dir / name).is_file():
            shutil.copy2(tiny_masked.tokenizer_dir / name, out / name)
    return out
