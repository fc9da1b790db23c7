"""Speed and size of a real (tiny, random) BERT directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModel, BertConfig, BertModel

from wwmdistill.arrow_io import ArtifactError
from wwmdistill.models import count_parameters
from wwmdistill.settings import SpeedSettings
from wwmdistill.speed import (
    bench_models,
    first_plain_id,
    interleaved,
    max_length,
    model_size_mb,
    random_inputs,
    ratio,
    summarise,
)

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
    "rounds",
    "warmup",
    "interleaved_with",
}


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


def test_interleaved_rounds_rotate_the_order_and_time_every_call() -> None:
    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in "abc"}
    seconds = interleaved(calls, rounds=4, warmup=1)
    # The warm-up round in order, then each round one call further along.
    assert "".join(order) == "abc" + "abc" + "bca" + "cab" + "abc"
    assert {name: len(runs) for name, runs in seconds.items()} == {"a": 4, "b": 4, "c": 4}


def test_summary_gives_median_quartiles_and_flags_a_wide_spread() -> None:
    steady = summarise([0.010, 0.011, 0.009, 0.010, 0.012], per_call=16, max_spread=0.25)
    assert steady["median_ms"] == pytest.approx(10.0)
    assert (steady["q1_ms"], steady["q3_ms"]) == (pytest.approx(10.0), pytest.approx(11.0))
    assert steady["spread"] == pytest.approx(0.1) and steady["unsteady"] is False
    assert steady["per_second"] == pytest.approx(1600.0)
    noisy = summarise([0.010, 0.030, 0.009, 0.010, 0.014], per_call=1, max_spread=0.25)
    assert noisy["median_ms"] == pytest.approx(10.0) and noisy["unsteady"] is True
    assert ratio(noisy, steady) == {"value": pytest.approx(1.0), "unsteady": True}


def test_bench_times_every_model_together(tiny_teacher: Path, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    small = tmp_path / "small"
    BertModel(BertConfig.from_pretrained(tiny_teacher, num_hidden_layers=1)).save_pretrained(small)
    settings = SpeedSettings(bench_seq_len=32, repeats=3, warmup=1)
    tables = bench_models({"teacher": tiny_teacher, "small": small}, settings)
    assert torch.get_num_threads() == threads  # restored after the measurement
    assert sorted(tables) == ["small", "teacher"]
    result = tables["teacher"]
    assert set(result) == BENCH_KEYS
    assert result["model_dir"] == str(tiny_teacher) and result["interleaved_with"] == [
        "small",
        "teacher",
    ]
    assert result["seq_len"] == 32 and result["cpu_threads"] == 1 and result["rounds"] == 3
    cpu = result["cpu"]
    for batch in ("1", "16"):
        assert len(cpu["per_batch"][batch]["runs_ms"]) == 3
    assert cpu["latency_ms_b1"] == cpu["per_batch"]["1"]["median_ms"] > 0
    assert cpu["throughput_b16"] == pytest.approx(16_000 / cpu["per_batch"]["16"]["median_ms"])
    if torch.cuda.is_available():
        assert result["gpu"]["device"] == "cuda" and result["gpu"]["latency_ms_b1"] > 0
        assert result["device_names"]["gpu"]
    else:
        assert result["gpu"] is None and result["device_names"]["gpu"] is None
    assert result["torch"] == torch.__version__
    # The encoder alone (what AutoModel loads), not the masked-LM head.
    assert result["parameters"] == count_parameters(AutoModel.from_pretrained(tiny_teacher))
    assert tables["small"]["parameters"] < result["parameters"]
    weights = tiny_teacher / "model.safetensors"
    assert result["size_mb"] == weights.stat().st_size / 2**20
    assert model_size_mb(tiny_teacher) == result["size_mb"]
    too_long = SpeedSettings(bench_seq_len=4096, repeats=1, warmup=0)
    with pytest.raises(ValueError, match=r"bench_seq_len 4096 is longer than the model allows"):
        bench_models({"teacher": tiny_teacher}, too_long)


def test_model_size_needs_weights(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no weights"):
        model_size_mb(tmp_path)
