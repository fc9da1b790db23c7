"""Inference speed and size of a model, as in seed 004's speed table.

Random token ids at a fixed length (512 by default), latency at batch 1 (median over repeats,
milliseconds) and throughput at batch 16 (sequences per second), on the CPU and, when there is
one, the GPU; size is the bytes of the stored weight files. The encoder alone is timed: the
students are compared on what the encoder costs, whatever head a task puts on top.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from wwmdistill.models import count_parameters, require_model_dir, weight_files

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


def measure_speed(
    model: PreTrainedModel,
    seq_len: int,
    *,
    device: str = "cpu",
    batch_sizes: Sequence[int] = (1, 16),
    repeats: int = 5,
    warmup: int = 2,
    seed: int = 4,
    low: int | None = None,
) -> dict[str, Any]:
    """Time forward passes of `model` on random ids of length `seq_len` at each batch size.

    Per batch size: `warmup` untimed runs, then `repeats` timed ones; the median is reported.
    `latency_ms_b1` is batch 1's median in ms and `throughput_b16` batch 16's sequences per
    second (None when that batch size is not measured). `low` is the smallest random id (by
    default the first id after the config's special tokens). The model is moved to `device`.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"speed: repeats {repeats} must be >= 1 and warmup {warmup} >= 0")
    limit = max_length(model.config)
    if limit is not None and seq_len > limit:
        raise ValueError(
            f"speed: seq_len {seq_len} is longer than the model allows ({limit} positions)"
        )
    low = first_plain_id(model.config) if low is None else low
    on_cuda = torch.device(device).type == "cuda"
    model = model.to(device).eval()
    per_batch: dict[str, dict[str, Any]] = {}
    with torch.inference_mode():
        for batch in batch_sizes:
            inputs = random_inputs(model.config.vocab_size, batch, seq_len, low=low, seed=seed)
            inputs = {key: value.to(device) for key, value in inputs.items()}
            runs = []
            for i in range(warmup + repeats):
                if on_cuda:
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                model(**inputs)
                if on_cuda:
                    # Kernels run asynchronously: wait for them before reading the clock.
                    torch.cuda.synchronize(device)
                if i >= warmup:
                    runs.append(time.perf_counter() - start)
            median = statistics.median(runs)
            per_batch[str(batch)] = {
                "latency_ms": median * 1000.0,
                "throughput": batch / median,
                "runs_ms": [r * 1000.0 for r in runs],
            }
    b1, b16 = per_batch.get("1"), per_batch.get("16")
    return {
        "seq_len": seq_len,
        "device": device,
        "latency_ms_b1": b1["latency_ms"] if b1 else None,
        "throughput_b16": b16["throughput"] if b16 else None,
        "batch_sizes": list(batch_sizes),
        "repeats": repeats,
        "warmup": warmup,
        "seed": seed,
        "per_batch": per_batch,
    }


def model_size_mb(model_dir: str | Path) -> float:
    """Bytes of the model directory's weight files, in MiB (2**20 bytes)."""
    return sum(path.stat().st_size for path in weight_files(Path(model_dir))) / 2**20


def _cpu_name() -> str:
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


def bench_model(
    model_dir: str | Path,
    *,
    seq_len: int = 512,
    repeats: int = 5,
    warmup: int = 2,
    threads: int | None = None,
    batch_sizes: Sequence[int] = (1, 16),
    seed: int = 4,
) -> dict[str, Any]:
    """Size, parameters and CPU (and GPU when available) speed of the encoder in `model_dir`.

    `threads` sets torch's intra-op threads for the CPU timing (restored afterwards). The
    caller writes the returned dict (JSON-able).
    """
    from transformers import AutoModel

    model_dir = require_model_dir(model_dir)
    size_mb = model_size_mb(model_dir)
    # float32 whatever the checkpoint's dtype: the table compares architectures, not storage.
    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32)
    low = first_plain_id(model.config, _tokenizer_special_ids(model_dir))
    kwargs = {
        "batch_sizes": batch_sizes,
        "repeats": repeats,
        "warmup": warmup,
        "seed": seed,
        "low": low,
    }
    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"speed: threads {threads} must be >= 1")
        torch.set_num_threads(threads)
    try:
        cpu_threads = torch.get_num_threads()
        cpu = measure_speed(model, seq_len, device="cpu", **kwargs)
    finally:
        torch.set_num_threads(previous)
    gpu = None
    gpu_name = None
    if torch.cuda.is_available():
        gpu = measure_speed(model, seq_len, device="cuda", **kwargs)
        gpu_name = torch.cuda.get_device_name(0)
        model.to("cpu")
    return {
        "model_dir": str(model_dir),
        "model_type": model.config.model_type,
        "parameters": count_parameters(model),
        "size_mb": size_mb,
        "seq_len": seq_len,
        "cpu": cpu,
        "gpu": gpu,
        "cpu_threads": cpu_threads,
        "torch": torch.__version__,
        "device_names": {"cpu": _cpu_name(), "gpu": gpu_name},
    }
