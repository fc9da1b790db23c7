"""Inference speed and size of models, as in seed 004's speed table, and the timing method
every speed figure of the project shares.

Timing: every model of a table is timed in the same interleaved rounds, and the figures are the
median over rounds with the interquartile range; a spread above `max_spread` of the median
marks the figure (and any ratio taken from it) unsteady. Seed 004's table: random token ids at
a fixed length (512 by default), latency at batch 1 (ms) and throughput at batch 16 (sequences
per second), on the CPU and, when there is one, the GPU; size is the bytes of the stored weight
files. The encoder alone is timed: the students are compared on what the encoder costs,
whatever head a task puts on top.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from wwmdistill.models import count_parameters, require_model_dir, weight_files
from wwmdistill.settings import SpeedSettings

# Config attributes that hold special-token ids; random ids start above all of them.
SPECIAL_ID_KEYS = (
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "sep_token_id",
    "cls_token_id",
    "mask_token_id",
    "unk_token_id",
)
# Models whose position ids start after the padding index (RoBERTa's offset).
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "roberta-prelayernorm")


def random_inputs(
    vocab_size: int, batch_size: int, seq_len: int, *, low: int = 0, seed: int = 4
) -> dict[str, torch.Tensor]:
    """Token ids uniform in [low, vocab_size) from a generator seeded with `seed`; mask all ones.

    The same arguments give the same ids on every machine (a CPU generator, moved later).
    """
    if not 0 <= low < vocab_size:
        raise ValueError(f"random ids: low {low} not in [0, vocab_size {vocab_size})")
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"random ids: batch_size {batch_size} and seq_len {seq_len} must be >= 1")
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(low, vocab_size, (batch_size, seq_len), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def first_plain_id(config: Any, special_ids: Sequence[int] = ()) -> int:
    """The id after every special token the config (and `special_ids`) knows of."""
    ids = [getattr(config, key, None) for key in SPECIAL_ID_KEYS]
    ids = [i for i in [*ids, *special_ids] if isinstance(i, int) and i >= 0]
    return max(ids) + 1 if ids else 0


def max_length(config: Any) -> int | None:
    """The longest input the model's position embeddings allow (None when unbounded)."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return None
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        return positions - (getattr(config, "pad_token_id", 1) or 0) - 1
    return positions


def model_size_mb(model_dir: str | Path) -> float:
    """Bytes of the model directory's weight files, in MiB (2**20 bytes)."""
    return sum(path.stat().st_size for path in weight_files(Path(model_dir))) / 2**20


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _tokenizer_special_ids(model_dir: Path) -> list[int]:
    """Special ids of the directory's tokenizer, [] when it has none that loads."""
    from transformers import AutoTokenizer

    if not (model_dir / "tokenizer.json").is_file() and not (model_dir / "vocab.txt").is_file():
        return []
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError):
        return []
    return list(tokenizer.all_special_ids)


def interleaved(
    calls: Mapping[str, Callable[[], object]], rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds of each call in each of `rounds` rounds, after `warmup` untimed ones.

    Each round makes every call once, starting one call further along than the last, so a burst
    of load on a shared machine lands on every call alike, and no call always runs first (cold
    caches) or always after the same neighbour.
    """
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def summarise(seconds: Sequence[float], per_call: int, max_spread: float) -> dict[str, Any]:
    """Median and quartiles in ms, items per second at the median, and whether the spread (IQR
    over the median) is small enough to trust."""
    ms = sorted(s * 1000.0 for s in seconds)
    if len(ms) >= 2:
        q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    else:
        q1 = q3 = ms[0]
    median = statistics.median(ms)
    spread = (q3 - q1) / median if median > 0 else 0.0
    return {
        "median_ms": median,
        "q1_ms": q1,
        "q3_ms": q3,
        "spread": spread,
        "unsteady": spread > max_spread,
        "per_second": per_call * 1000.0 / median if median > 0 else None,
        "runs_ms": [s * 1000.0 for s in seconds],
    }


def ratio(numerator: Mapping[str, Any], denominator: Mapping[str, Any]) -> dict[str, Any]:
    """numerator's median over denominator's, unsteady when either timing is."""
    return {
        "value": numerator["median_ms"] / denominator["median_ms"],
        "unsteady": bool(numerator["unsteady"] or denominator["unsteady"]),
    }


def _encoder_calls(
    model: PreTrainedModel, seq_len: int, batch_sizes: Sequence[int], device: str, low: int
) -> dict[int, Callable[[], object]]:
    on_cuda = torch.device(device).type == "cuda"
    calls = {}
    for batch in batch_sizes:
        inputs = random_inputs(model.config.vocab_size, batch, seq_len, low=low)
        inputs = {key: value.to(device) for key, value in inputs.items()}

        def call(inputs: dict[str, torch.Tensor] = inputs) -> object:
            with torch.inference_mode():
                out = model(**inputs)
            if on_cuda:  # kernels run asynchronously: wait for them before reading the clock
                torch.cuda.synchronize(device)
            return out

        calls[batch] = call
    return calls


def _device_table(
    per_batch: Mapping[int, dict[str, Any]], seq_len: int, device: str
) -> dict[str, Any]:
    b1, b16 = per_batch.get(1), per_batch.get(16)
    return {
        "seq_len": seq_len,
        "device": device,
        "latency_ms_b1": b1["median_ms"] if b1 else None,
        "throughput_b16": b16["per_second"] if b16 else None,
        "unsteady": sorted(str(b) for b, stats in per_batch.items() if stats["unsteady"]),
        "per_batch": {str(b): stats for b, stats in per_batch.items()},
    }


def bench_models(
    model_dirs: Mapping[str, str | Path],
    settings: SpeedSettings,
    *,
    batch_sizes: Sequence[int] = (1, 16),
) -> dict[str, dict[str, Any]]:
    """Seed 004's table: size, parameters and the speed of each directory's encoder at
    `settings.bench_seq_len`, every model timed in the same interleaved rounds on the CPU (torch
    on `settings.threads` threads) and, when there is one, on the GPU. Per model name, a
    JSON-able table: median latency at batch 1, sequences per second at batch 16, and each batch
    size's median, quartiles and steadiness.
    """
    from transformers import AutoModel

    seq_len = settings.bench_seq_len
    models, sizes, lows = {}, {}, {}
    for name, model_dir in model_dirs.items():
        model_dir = require_model_dir(model_dir)
        sizes[name] = model_size_mb(model_dir)
        # float32 whatever the checkpoint's dtype: the table compares architectures, not storage.
        models[name] = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()
        lows[name] = first_plain_id(models[name].config, _tokenizer_special_ids(model_dir))
        limit = max_length(models[name].config)
        if limit is not None and seq_len > limit:
            raise ValueError(
                f"speed: {model_dir}: bench_seq_len {seq_len} is longer than the model allows "
                f"({limit} positions)"
            )
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    tables: dict[str, dict[str, Any]] = {name: {} for name in models}
    try:
        for device in devices:
            calls = {}
            for name, model in models.items():
                model.to(device)
                for batch, call in _encoder_calls(
                    model, seq_len, batch_sizes, device, lows[name]
                ).items():
                    calls[f"{name}\0{batch}"] = call
            seconds = interleaved(calls, settings.repeats, settings.warmup)
            for name in models:
                per_batch = {
                    batch: summarise(seconds[f"{name}\0{batch}"], batch, settings.max_spread)
                    for batch in batch_sizes
                }
                tables[name]["cpu" if device == "cpu" else "gpu"] = _device_table(
                    per_batch, seq_len, device
                )
                models[name].to("cpu")
    finally:
        torch.set_num_threads(previous)
    gpu_name = torch.cuda.get_device_name(0) if "cuda" in devices else None
    return {
        name: {
            "model_dir": str(model_dirs[name]),
            "model_type": model.config.model_type,
            "parameters": count_parameters(model),
            "size_mb": sizes[name],
            "seq_len": seq_len,
            "cpu": tables[name]["cpu"],
            "gpu": tables[name].get("gpu"),
            "cpu_threads": settings.threads,
            "rounds": settings.repeats,
            "warmup": settings.warmup,
            "interleaved_with": sorted(models),
            "torch": torch.__version__,
            "device_names": {"cpu": cpu_name(), "gpu": gpu_name},
        }
        for name, model in models.items()
    }
