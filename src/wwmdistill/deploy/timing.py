"""Speed as a user sees it: every model of a task table, in every format, timed in one run.

Formats: the PyTorch model (fp32), the ONNX fp32 export and the int8 one, on random ids at each
batch size and length (model only), and one request at a time end to end (raw dev text in,
answer out: tokenisation, padding, the session and decoding) beside the session alone on the
same request's features. Every timed call is made once per round, in rotated order
(`speed.interleaved`); the figures are the median over rounds and the interquartile range
(`speed.summarise`), marked unsteady when the spread is too wide to trust.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from wwmdistill.deploy.runtime import (
    FP32_FILE,
    INT8_FILE,
    Deployed,
    batches,
    open_deployed,
    session_runner,
)
from wwmdistill.kinds import MODEL_INPUTS, TaskKind
from wwmdistill.settings import SpeedSettings
from wwmdistill.speed import (
    cpu_name,
    first_plain_id,
    interleaved,
    max_length,
    model_size_mb,
    random_inputs,
    ratio,
    summarise,
)

FORMATS = ("pytorch", "fp32", "int8")
ONNX_FORMATS = {"fp32": FP32_FILE, "int8": INT8_FILE}


def random_batch(
    kind: TaskKind, vocab_size: int, low: int, batch: int, seq_len: int
) -> dict[str, np.ndarray]:
    """Seed 004's random ids (`speed.random_inputs`) in the kind's input shape (multiple
    choice: its options per example), no padding, as numpy arrays."""
    shape = (batch, *kind.onnx_input_shape[1:-1], seq_len)
    inputs = random_inputs(vocab_size, math.prod(shape[:-1]), seq_len, low=low)
    ids = inputs["input_ids"].numpy().reshape(shape)
    return {
        "input_ids": ids,
        "token_type_ids": np.zeros(shape, dtype=np.int64),
        "attention_mask": np.ones(shape, dtype=np.int64),
    }


@dataclass
class Contender:
    """One row of a task table, ready to time: its PyTorch model and both deployed formats."""

    name: str
    torch_model: Any
    deployed: dict[str, Deployed]
    sizes_mb: dict[str, float]
    parameters: int
    max_positions: int | None


def load_contender(
    name: str, model_dir: Path, deploy_dir: Path, task_labels: Sequence[str], threads: int
) -> Contender:
    from wwmdistill.models import count_parameters

    deployed = {
        fmt: open_deployed(deploy_dir, int8=fmt == "int8", threads=threads) for fmt in ONNX_FORMATS
    }
    kind = deployed["fp32"].kind
    model = kind.load_model(Path(model_dir), list(task_labels)).float().eval()
    sizes = {"pytorch": model_size_mb(model_dir)}
    sizes |= {fmt: (Path(deploy_dir) / f).stat().st_size / 2**20 for fmt, f in ONNX_FORMATS.items()}
    return Contender(
        name, model, deployed, sizes, count_parameters(model), max_length(model.config)
    )


def _model_calls(
    contender: Contender, kind: TaskKind, low: int, batch: int, seq_len: int
) -> dict[str, Callable[[], object]]:
    import torch

    inputs = random_batch(kind, contender.torch_model.config.vocab_size, low, batch, seq_len)
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items() if k in MODEL_INPUTS}
    model = contender.torch_model

    def pytorch() -> object:
        with torch.inference_mode():
            return model(**tensors)

    calls: dict[str, Callable[[], object]] = {"pytorch": pytorch}
    for fmt, deployed in contender.deployed.items():
        run = session_runner(deployed.session, kind)
        calls[fmt] = lambda run=run: run(inputs)
    return calls


def _request_calls(
    contender: Contender, requests: Sequence[Mapping[str, Any]]
) -> dict[str, Callable[[], object]]:
    """Per ONNX format: every request end to end, and the session alone on the same features."""
    calls: dict[str, Callable[[], object]] = {}
    for fmt, deployed in contender.deployed.items():
        prepared = []
        for request in requests:
            table = deployed.rows([request])
            features = deployed.kind.eval_features(table, deployed.tokenizer, deployed.settings)
            prepared.append(list(batches(deployed.kind, deployed.tokenizer, features, 1 << 30)))
        run = session_runner(deployed.session, deployed.kind)

        def end_to_end(deployed: Deployed = deployed) -> object:
            return [deployed.predict([request]) for request in requests]

        def model_only(prepared: list = prepared, run: Callable = run) -> object:
            return [run(batch) for request in prepared for batch in request]

        calls[f"{fmt}/end_to_end"] = end_to_end
        calls[f"{fmt}/model_only"] = model_only
    return calls


def dev_requests(table: pa.Table, kind: TaskKind, count: int) -> list[dict[str, Any]]:
    """The first `count` dev rows as a user would send them: the kind's input fields only."""
    rows = table.slice(0, count).select(list(kind.input_fields)).to_pylist()
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def time_contenders(
    contenders: Sequence[Contender],
    kind: TaskKind,
    requests: Sequence[Mapping[str, Any]],
    seq_lens: Sequence[int],
    settings: SpeedSettings,
    batch_sizes: Sequence[int] = (1, 16),
) -> dict[str, Any]:
    """Every contender's timings (see the module docstring), keyed by row name; lengths a model's
    positions cannot hold are left out (null)."""
    import torch

    torch.set_num_threads(settings.threads)
    first = contenders[0]
    low = first_plain_id(first.torch_model.config, first.deployed["fp32"].tokenizer.all_special_ids)
    calls: dict[tuple[str, ...], Callable[[], object]] = {}
    for contender in contenders:
        for seq_len in seq_lens:
            if contender.max_positions is not None and seq_len > contender.max_positions:
                continue
            for batch in batch_sizes:
                for fmt, call in _model_calls(contender, kind, low, batch, seq_len).items():
                    calls[(contender.name, "model", fmt, str(seq_len), str(batch))] = call
        for key, call in _request_calls(contender, requests).items():
            calls[(contender.name, "request", key)] = call
    seconds = interleaved(
        {"\0".join(key): call for key, call in calls.items()}, settings.repeats, settings.warmup
    )
    rows: dict[str, Any] = {}
    for contender in contenders:
        model: dict[str, Any] = {
            fmt: {str(n): dict.fromkeys(map(str, batch_sizes)) for n in seq_lens} for fmt in FORMATS
        }
        request: dict[str, Any] = {}
        for key, runs in seconds.items():
            name, what, *rest = key.split("\0")
            if name != contender.name:
                continue
            if what == "model":
                fmt, seq_len, batch = rest
                model[fmt][seq_len][batch] = summarise(runs, int(batch), settings.max_spread)
            else:
                fmt, measure = rest[0].split("/")
                request.setdefault(fmt, {})[measure] = summarise(
                    [s / len(requests) for s in runs], 1, settings.max_spread
                )
        for measures in request.values():
            measures["overhead"] = ratio(measures["end_to_end"], measures["model_only"])
        rows[contender.name] = {
            "parameters": contender.parameters,
            "size_mb": contender.sizes_mb,
            "model": model,
            "request": request,
        }
    return rows


def speed_table(
    names_and_dirs: Sequence[tuple[str, Path, Path]],
    task_labels: Sequence[str],
    dev: pa.Table,
    seq_len: int,
    settings: SpeedSettings,
) -> dict[str, Any]:
    """results/deploy/{task}/speed.json: each (row name, model dir, deploy dir) timed against
    the others at the task's length and at `settings.bench_seq_len`."""
    import onnxruntime
    import torch

    contenders = [
        load_contender(name, model_dir, deploy_dir, task_labels, settings.threads)
        for name, model_dir, deploy_dir in names_and_dirs
    ]
    kind = contenders[0].deployed["fp32"].kind
    requests = dev_requests(dev, kind, settings.requests)
    seq_lens = sorted({seq_len, settings.bench_seq_len})
    rows = time_contenders(contenders, kind, requests, seq_lens, settings)
    return {
        "seq_lens": seq_lens,
        "task_seq_len": seq_len,
        "batch_sizes": [1, 16],
        "requests": len(requests),
        "settings": settings.as_dict(),
        "threads": {"torch": settings.threads, "onnxruntime_intra_op": settings.threads},
        "machine": {
            "cpu": cpu_name(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "rows": rows,
    }
