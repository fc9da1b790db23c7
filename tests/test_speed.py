"""Speed and size of a real (tiny, random) BERT directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModel, BertConfig, BertModel

from wwmdistill.arrow_io import ArtifactError
from wwmdistill.models import count_parameters
from wwmdistill.speed import (
    bench_model,
    first_plain_id,
    max_length,
    measure_speed,
    model_size_mb,
    random_inputs,
)

# The contract's keys, plus the measurement's own settings and per-batch detail.
SPEED_KEYS = {"seq_len", "device", "latency_ms_b1", "throughput_b16", "batch_sizes"}
SPEED_KEYS |= {"repeats", "warmup", "seed", "per_batch"}
BENCH_KEYS = {
    "model_dir",
    "parameters",
    "size_mb",
    "seq_len",
    "cpu",
    "gpu",
    "cpu_threads",
    "torch",
    "device_names",
    "model_type",
}


@pytest.fixture(scope="module")
def small_encoder() -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=24,
        pad_token_id=0,
    )
    return BertModel(config).eval()


def test_random_inputs_are_a_function_of_their_arguments() -> None:
    a = random_inputs(50, 3, 7, low=5, seed=4)
    b = random_inputs(50, 3, 7, low=5, seed=4)
    c = random_inputs(50, 3, 7, low=5, seed=5)
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert not torch.equal(a["input_ids"], c["input_ids"])
    assert a["input_ids"].shape == (3, 7)
    assert int(a["input_ids"].min()) >= 5 and int(a["input_ids"].max()) < 50
    assert torch.equal(a["attention_mask"], torch.ones(3, 7, dtype=torch.long))
    # The ids are torch's CPU generator draw for the seed, nothing else.
    expected = torch.randint(5, 50, (3, 7), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a["input_ids"], expected)
    with pytest.raises(ValueError, match=r"low 50 not in \[0, vocab_size 50\)"):
        random_inputs(50, 1, 4, low=50)


def test_first_plain_id_and_max_length() -> None:
    config = BertConfig(vocab_size=200, pad_token_id=0, max_position_embeddings=512)
    assert first_plain_id(config) == 1
    assert first_plain_id(config, [0, 100, 101, 102, 103]) == 104
    assert max_length(config) == 512
    roberta = BertConfig(max_position_embeddings=514, pad_token_id=1)
    roberta.model_type = "roberta"  # position ids start after padding_idx: 512 usable
    assert max_length(roberta) == 512


def test_measure_speed_reports_medians_per_batch(small_encoder: BertModel) -> None:
    result = measure_speed(small_encoder, 16, batch_sizes=(1, 16, 2), repeats=3, warmup=1)
    assert set(result) == SPEED_KEYS
    assert result["seq_len"] == 16 and result["device"] == "cpu"
    assert result["batch_sizes"] == [1, 16, 2]
    per_batch = result["per_batch"]
    assert set(per_batch) == {"1", "16", "2"}
    for batch, timing in per_batch.items():
        assert len(timing["runs_ms"]) == 3
        assert timing["latency_ms"] == sorted(timing["runs_ms"])[1]
        assert timing["throughput"] == pytest.approx(int(batch) / (timing["latency_ms"] / 1000))
    assert result["latency_ms_b1"] == per_batch["1"]["latency_ms"] > 0
    assert result["throughput_b16"] == per_batch["16"]["throughput"] > 0


def test_measure_speed_without_batch_1_or_16_and_too_long(small_encoder: BertModel) -> None:
    result = measure_speed(small_encoder, 8, batch_sizes=(2,), repeats=1, warmup=0)
    assert result["latency_ms_b1"] is None and result["throughput_b16"] is None
    with pytest.raises(ValueError, match=r"seq_len 25 is longer than the model allows \(24"):
        measure_speed(small_encoder, 25)


def test_bench_model_on_a_model_directory(tiny_teacher: Path) -> None:
    threads = torch.get_num_threads()
    result = bench_model(tiny_teacher, seq_len=32, repeats=2, warmup=1, threads=1)
    assert set(result) == BENCH_KEYS
    assert result["model_dir"] == str(tiny_teacher)
    assert result["seq_len"] == 32 and result["cpu_threads"] == 1
    assert torch.get_num_threads() == threads  # restored after the measurement
    assert set(result["cpu"]) == SPEED_KEYS
    assert result["cpu"]["latency_ms_b1"] > 0 and result["cpu"]["throughput_b16"] > 0
    if torch.cuda.is_available():
        assert result["gpu"]["device"] == "cuda" and result["gpu"]["latency_ms_b1"] > 0
        assert result["device_names"]["gpu"]
    else:
        assert result["gpu"] is None and result["device_names"]["gpu"] is None
    assert result["torch"] == torch.__version__
    # The encoder alone (what AutoModel loads), not the masked-LM head.
    assert result["parameters"] == count_parameters(AutoModel.from_pretrained(tiny_teacher))
    weights = tiny_teacher / "model.safetensors"
    assert result["size_mb"] == weights.stat().st_size / 2**20
    assert model_size_mb(tiny_teacher) == result["size_mb"]


def test_model_size_needs_weights(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no weights"):
        model_size_mb(tmp_path)
