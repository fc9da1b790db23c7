"""The streaming masked-LM dataset, its collator and MLM evaluation, on real masked shards."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets.distributed import split_dataset_by_node
from transformers.modeling_outputs import BaseModelOutput

from wwmdistill.arrow_io import ArrowShardWriter, open_shard
from wwmdistill.artifacts.logit_cache import StaleCacheError
from wwmdistill.mlm_data import MaskedLMCollator, masked_dataset, mlm_eval
from wwmdistill.models import load_masked_lm
from wwmdistill.teacher_logits import LogitsSettings, cache_logits


def _key(row: dict) -> tuple:
    """A row's identity: provenance plus content (one document gives several rows per dupe)."""
    return (
        row["doc_id"],
        int(row["dupe"]),
        tuple(int(i) for i in row["input_ids"]),
        tuple(int(p) for p in row["masked_positions"]),
    )


def _shard_rows(path: Path) -> list[dict]:
    return open_shard(path, stage="masked").read_all().to_pylist()


def test_collator_pads_and_scatters_labels_exactly() -> None:
    examples = [
        {  # as the dataset yields them: numpy views in the stored dtypes
            "input_ids": np.array([2, 10, 4, 12, 3], dtype=np.int32),
            "masked_positions": np.array([2, 3], dtype=np.int16),
            "masked_labels": np.array([11, 13], dtype=np.int32),
            "topk_ids": np.array([11, 5, 13, 6], dtype=np.uint16),
            "topk_logits": np.array([3.5, 1.0, 2.0, -1.0], dtype=np.float16),
            "logsumexp": np.array([4.0, 2.5], dtype=np.float32),
            "hidden": np.arange(6, dtype=np.float16),
        },
        {  # plain lists work too
            "input_ids": [2, 4, 3],
            "masked_positions": [1],
            "masked_labels": [20],
            "topk_ids": [20, 7],
            "topk_logits": [0.5, 0.25],
            "logsumexp": [1.5],
            "hidden": [6.0, 7.0, 8.0],
        },
    ]
    batch = MaskedLMCollator(pad_id=0, top_k=2, hidden_size=3)(examples)
    assert batch["input_ids"].tolist() == [[2, 10, 4, 12, 3], [2, 4, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["labels"].tolist() == [
        [-100, -100, 11, 13, -100],
        [-100, 20, -100, -100, -100],
    ]
    assert batch["mask_index"].tolist() == [[0, 2], [0, 3], [1, 1]]
    assert batch["teacher_topk_ids"].tolist() == [[11, 5], [13, 6], [20, 7]]
    assert batch["teacher_topk_logits"].tolist() == [[3.5, 1.0], [2.0, -1.0], [0.5, 0.25]]
    assert batch["teacher_logsumexp"].tolist() == [4.0, 2.5, 1.5]
    assert batch["teacher_hidden"].tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    for name in ("input_ids", "attention_mask", "labels", "mask_index", "teacher_topk_ids"):
        assert batch[name].dtype == torch.long, name
    for name in ("teacher_topk_logits", "teacher_logsumexp", "teacher_hidden"):
        assert batch[name].dtype == torch.float32, name
    # Without top_k / hidden_size the teacher fields are left out.
    assert set(MaskedLMCollator(pad_id=0)(examples)) == {
        "input_ids",
        "attention_mask",
        "labels",
        "mask_index",
    }


def test_collator_rejects_inconsistent_examples() -> None:
    row = {"input_ids": [2, 4, 3], "masked_positions": [1], "masked_labels": [9]}
    with pytest.raises(ValueError, match="'topk_ids' holds 3 values for 1 masked positions"):
        MaskedLMCollator(0, top_k=2)([{**row, "topk_ids": [1, 2, 3], "topk_logits": [0, 0]}])
    with pytest.raises(KeyError, match="'topk_ids'"):
        MaskedLMCollator(0, top_k=2)([row])
    with pytest.raises(ValueError, match="outside its row"):
        MaskedLMCollator(0)([{**row, "masked_positions": [3]}])


def test_dataset_yields_every_row_once_shuffled_and_deterministic(tiny_masked) -> None:
    paths = tiny_masked.masked_paths
    in_files = [_key(r) for p in paths for r in _shard_rows(p)]
    first = [_key(r) for r in masked_dataset(paths, seed=3, shuffle_buffer=64)]
    assert Counter(first) == Counter(in_files)
    assert Counter(k[:2] for k in first) == Counter(k[:2] for k in in_files)  # doc_id, dupe
    assert first != in_files  # shuffled
    assert [_key(r) for r in masked_dataset(paths, seed=3, shuffle_buffer=64)] == first
    assert [_key(r) for r in masked_dataset(paths, seed=4, shuffle_buffer=64)] != first


def test_ranks_get_whole_disjoint_shards(tiny_masked) -> None:
    paths = tiny_masked.masked_paths
    dataset = masked_dataset(paths, seed=0, shuffle_buffer=16)
    per_rank = [
        Counter(_key(r) for r in split_dataset_by_node(dataset, rank=rank, world_size=2))
        for rank in (0, 1)
    ]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert per_rank[0] + per_rank[1] == Counter(_key(r) for p in paths for r in _shard_rows(p))
    by_shard = [{_key(r) for r in _shard_rows(p)} for p in paths]
    assert sorted(set(c) in by_shard for c in per_rank) == [True, True]


def test_repeat_makes_one_endless_reshuffled_pass(tiny_masked) -> None:
    path = tiny_masked.masked_paths[0]
    rows = open_shard(path).num_rows
    stream = iter(masked_dataset([path], seed=0, shuffle_buffer=16, repeat=True))
    passes = [[_key(next(stream)) for _ in range(rows)] for _ in range(3)]
    assert set(passes[0] + passes[1] + passes[2]) == {_key(r) for r in _shard_rows(path)}
    assert passes[1] != passes[0]


@pytest.fixture(scope="module")
def tiny_logits(tiny_masked, tiny_teacher, tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("logits")
    paths = []
    for masked in tiny_masked.masked_paths:
        path = out / masked.name
        # One record batch per logits shard; the masked shards have several (batch_docs 8).
        cache_logits(masked, tiny_teacher, path, LogitsSettings(top_k=4, batch_size=16))
        paths.append(path)
    return paths


def test_dataset_pairs_each_row_with_its_logits(tiny_masked, tiny_logits, tiny_teacher) -> None:
    expected = {}
    for masked, logits in zip(tiny_masked.masked_paths, tiny_logits, strict=True):
        cache = open_shard(logits, stage="logits").read_all().to_pylist()
        for row, lg in zip(_shard_rows(masked), cache, strict=True):
            expected[_key(row)] = lg
    rows = list(masked_dataset(tiny_masked.masked_paths, tiny_logits, seed=1, shuffle_buffer=32))
    assert len(rows) == len(expected)
    hidden = load_masked_lm(tiny_teacher).config.hidden_size
    for row in rows:
        want = expected[_key(row)]
        n = len(row["masked_positions"])
        assert len(row["topk_ids"]) == 4 * n and len(row["hidden"]) == hidden * n
        for name in ("topk_ids", "topk_logits", "logsumexp", "hidden"):
            np.testing.assert_array_equal(row[name], np.asarray(want[name], dtype=row[name].dtype))
    batch = MaskedLMCollator(0, top_k=4, hidden_size=hidden)(rows[:8])
    m = batch["mask_index"].shape[0]
    assert batch["teacher_topk_ids"].shape == (m, 4)
    assert batch["teacher_hidden"].shape == (m, hidden)
    assert batch["teacher_logsumexp"].shape == (m,)
    # Top-k logits come in descending order and lie below the full-vocab logsumexp.
    top = batch["teacher_topk_logits"]
    assert (top[:, :-1] >= top[:, 1:]).all()
    assert (top[:, 0] <= batch["teacher_logsumexp"] + 1e-2).all()


def test_logits_of_another_shard_are_refused(tiny_masked, tiny_logits) -> None:
    swapped = masked_dataset(tiny_masked.masked_paths, tiny_logits[::-1], seed=0)
    with pytest.raises(StaleCacheError, match=str(tiny_logits[1])):
        list(swapped)
    with pytest.raises(ValueError, match="pair up"):
        masked_dataset(tiny_masked.masked_paths, tiny_logits[:1], seed=0)


class OneHotEncoder(torch.nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, input_ids, attention_mask):
        one_hot = torch.nn.functional.one_hot(input_ids, self.vocab_size).float()
        return BaseModelOutput(last_hidden_state=one_hot)


class IdentityLM(torch.nn.Module):
    """Predicts the input token itself with logit `scale` (every other token 0), laid out as
    a base model plus an MLM head, as mlm_eval expects."""

    def __init__(self, vocab_size: int, scale: float) -> None:
        super().__init__()
        self.encoder = OneHotEncoder(vocab_size)
        self.head = torch.nn.Sequential(torch.nn.Linear(vocab_size, vocab_size, bias=False))
        with torch.no_grad():
            self.head[0].weight.copy_(torch.eye(vocab_size) * scale)

    @property
    def base_model(self) -> torch.nn.Module:
        return self.encoder

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.head[0]


def test_mlm_eval_exact_on_a_model_with_known_output(tiny_masked) -> None:
    paths = tiny_masked.masked_paths
    kept = total = 0
    for path in paths:
        for row in _shard_rows(path):
            for p, label in zip(row["masked_positions"], row["masked_labels"], strict=True):
                kept += row["input_ids"][p] == label
                total += 1
    vocab, scale = 1400, 5.0
    got = mlm_eval(IdentityLM(vocab, scale), paths, MaskedLMCollator(0), batch_size=7)
    assert got["tokens"] == total
    assert got["accuracy"] == kept / total
    # Right token: -log(e^s / (e^s + V - 1)); any other: -log(1 / (e^s + V - 1)).
    log_z = math.log(math.exp(scale) + vocab - 1)
    mean_ce = (kept * (log_z - scale) + (total - kept) * log_z) / total
    assert got["perplexity"] == pytest.approx(math.exp(mean_ce), rel=1e-5)
    assert 0.05 < kept / total < 0.2  # the 10% kept-token share of 80/10/10


def test_mlm_eval_matches_unpadded_rows_on_a_bert(tiny_masked, tiny_teacher, tmp_path) -> None:
    model = load_masked_lm(tiny_teacher).eval()
    path = tiny_masked.masked_paths[0]
    correct = nll = total = 0
    with torch.no_grad():
        for row in _shard_rows(path)[:40]:
            logits = model(input_ids=torch.tensor([row["input_ids"]])).logits[0]
            picked = logits[row["masked_positions"]]
            labels = torch.tensor(row["masked_labels"])
            correct += int((picked.argmax(-1) == labels).sum())
            nll += float(torch.nn.functional.cross_entropy(picked, labels, reduction="sum"))
            total += len(labels)
    first_rows = tmp_path / "first40.arrow"
    shard = open_shard(path, stage="masked")
    with ArrowShardWriter(
        first_rows, shard.schema.remove_metadata(), stage="masked", fingerprint="f40"
    ) as w:
        w.write(shard.read_all().slice(0, 40))
    model.train()  # mlm_eval evaluates without dropout and restores the mode
    got = mlm_eval(model, [first_rows], MaskedLMCollator(0), batch_size=16)
    assert got["tokens"] == total
    assert got["accuracy"] == correct / total
    assert got["perplexity"] == pytest.approx(math.exp(nll / total), rel=1e-4)
    assert model.training
