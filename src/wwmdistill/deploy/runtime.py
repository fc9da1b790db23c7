"""onnxruntime sessions and batched runs of a kind's features: what serving and the agreement
check share. Imports neither torch nor anything that does, so a deployed model serves without it.

A deploy directory (`bundle.py` writes it) holds `model.onnx`, `model.int8.onnx`, the tokenizer
files, `labels.json` and `deploy.json` (kind, feature settings, figures).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from wwmdistill.arrow_io import ArtifactError
from wwmdistill.kinds import MODEL_INPUTS, TaskKind, kind_of
from wwmdistill.settings import FinetuneSettings

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
LABELS_FILE = "labels.json"
DEPLOY_FILE = "deploy.json"
# Where logit rows of different batches differ in length (span QA's tokens), shorter ones are
# padded with this; decoding reads only a feature's own tokens.
PAD_VALUE = -1e4

# A model's outputs on one batch, in the kind's `output_names` order.
Runner = Callable[[dict[str, np.ndarray]], tuple[np.ndarray, ...]]


def session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session on `threads` intra-op threads and one inter-op thread.

    Pinned explicitly: onnxruntime's default takes every core, which oversubscribes a machine
    that runs several jobs and makes timings incomparable.
    """
    import onnxruntime as ort

    if not Path(path).is_file():
        raise ArtifactError(f"{path}: missing (no ONNX model)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def session_runner(sess: Any, kind: TaskKind) -> Runner:
    names = {i.name for i in sess.get_inputs()}

    def run(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        feed = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in names}
        return tuple(sess.run(list(kind.output_names), feed))

    return run


def batches(
    kind: TaskKind, tokenizer: Any, features: Mapping[str, list], batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
    """The features' model inputs, padded by the kind's own collator into numpy batches."""
    collate = kind.collator(tokenizer, return_tensors="np")
    names = [k for k in MODEL_INPUTS if k in features]
    count = len(features["input_ids"])
    for start in range(0, count, batch_size):
        rows = range(start, min(start + batch_size, count))
        yield dict(collate([{k: features[k][i] for k in names} for i in rows]))


def stack(parts: list[np.ndarray]) -> np.ndarray:
    """Batches' outputs as one array, rows padded with PAD_VALUE along the last axis."""
    if len(parts) == 1:  # one request served alone: nothing to pad (a tenth of its latency)
        return parts[0]
    width = max(p.shape[-1] for p in parts)
    padded = [
        np.pad(p, [(0, 0)] * (p.ndim - 1) + [(0, width - p.shape[-1])], constant_values=PAD_VALUE)
        if p.shape[-1] < width
        else p
        for p in parts
    ]
    return np.concatenate(padded)


def run_features(
    runners: Mapping[str, Runner],
    kind: TaskKind,
    tokenizer: Any,
    features: Mapping[str, list],
    batch_size: int,
) -> tuple[dict[str, tuple[np.ndarray, ...]], dict[str, float]]:
    """Each runner's raw outputs on every feature (as `kind.decode` takes them), the runners fed
    the very same batches, and each runner's seconds."""
    parts: dict[str, list[tuple[np.ndarray, ...]]] = {name: [] for name in runners}
    seconds = dict.fromkeys(runners, 0.0)
    for batch in batches(kind, tokenizer, features, batch_size):
        for name, run in runners.items():
            start = time.perf_counter()
            parts[name].append(run(batch))
            seconds[name] += time.perf_counter() - start
    raw = {
        name: tuple(stack([p[k] for p in got]) for k in range(len(kind.output_names)))
        for name, got in parts.items()
    }
    return raw, seconds


@dataclass(frozen=True)
class Deployed:
    """A deploy directory opened for serving."""

    kind: TaskKind
    labels: list[str]
    settings: FinetuneSettings
    tokenizer: Any
    session: Any
    batch_size: int

    def rows(self, inputs: list[Mapping[str, Any]]) -> pa.Table:
        """Unlabelled rows of the kind from the user's fields (named as `kind.input_fields`)."""
        rows, optional = [], self.kind.optional_fields
        for n, given in enumerate(inputs):
            unknown = set(given) - set(self.kind.input_fields) - {"id"}
            if unknown:
                raise ValueError(
                    f"unknown fields {sorted(unknown)}; a {self.kind.name} model takes "
                    f"{list(self.kind.input_fields)}"
                )
            fields = {name: given.get(name) for name in self.kind.input_fields}
            missing = [k for k, v in fields.items() if v in (None, []) and k not in optional]
            if missing:
                raise ValueError(f"example {n + 1}: no {', '.join(missing)}")
            rows.append({"id": str(given.get("id", n))} | self.kind.unlabelled | fields)
        return pa.Table.from_pylist(rows, schema=self.kind.row_schema)

    def predict(self, inputs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One answer per input, as the kind serves it (`TaskKind.served`)."""
        table = self.rows(inputs)
        features = self.kind.eval_features(table, self.tokenizer, self.settings)
        runner = {"onnx": session_runner(self.session, self.kind)}
        raw, _ = run_features(runner, self.kind, self.tokenizer, features, self.batch_size)
        raw = raw["onnx"]
        predicted = self.kind.decode(raw, table, features, self.settings)
        return self.kind.served(table, self.labels, predicted, raw)


def open_deployed(deploy_dir: Path, *, int8: bool = False, threads: int = 1) -> Deployed:
    """The model of a deploy directory (fp32, or int8), its tokenizer, kind and labels."""
    from transformers import PreTrainedTokenizerFast

    deploy_dir = Path(deploy_dir)
    for name in (DEPLOY_FILE, LABELS_FILE, "tokenizer.json", INT8_FILE if int8 else FP32_FILE):
        if not (deploy_dir / name).is_file():
            raise ArtifactError(f"{deploy_dir}: missing {name} (not a complete deploy directory)")
    info = json.loads((deploy_dir / DEPLOY_FILE).read_text(encoding="utf-8"))
    # The generic fast tokenizer reads tokenizer.json as the model's tokenizer wrote it, without
    # AutoTokenizer, whose class lookup imports torch; told the inputs, as it returns no
    # token_type_ids otherwise.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(
        str(deploy_dir), local_files_only=True, model_input_names=list(MODEL_INPUTS)
    )
    return Deployed(
        kind=kind_of(info["kind"], str(deploy_dir / DEPLOY_FILE)),
        labels=json.loads((deploy_dir / LABELS_FILE).read_text(encoding="utf-8")),
        settings=FinetuneSettings.from_config(info["settings"], f"{deploy_dir} settings"),
        tokenizer=tokenizer,
        session=session(deploy_dir / (INT8_FILE if int8 else FP32_FILE), threads),
        batch_size=int(info["batch_size"]),
    )
