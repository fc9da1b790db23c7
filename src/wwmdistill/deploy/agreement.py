"""PyTorch against onnxruntime on one split: do the exports predict what the model predicts?

Every model sees the very same padded batches of the kind's own features, and its raw outputs
go through the kind's own decoding, so a disagreement is the export's and nothing else's.
Figures: the share of rows whose prediction (label, span text, choice) equals PyTorch's, the
largest absolute difference of any output logit, each model's score on the split (when it is
labelled) and its seconds on the split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from wwmdistill.deploy.runtime import Runner, run_features, session_runner
from wwmdistill.kinds import TaskKind


def torch_runner(model: Any, kind: TaskKind) -> Runner:
    import torch

    model.eval()

    def run(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        with torch.inference_mode():
            outputs = model(**{k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()})
        return tuple(outputs[name].float().numpy() for name in kind.output_names)

    return run


def agreement(
    model: Any,
    sessions: Mapping[str, Any],
    kind: TaskKind,
    tokenizer: Any,
    table: pa.Table,
    settings: Any,
    *,
    labelled: bool,
    batch_size: int,
) -> dict[str, Any]:
    """`model` (PyTorch) against each onnxruntime session of `sessions` ("fp32", "int8") on the
    rows of `table`."""
    features = kind.eval_features(table, tokenizer, settings)
    runners = {"pytorch": torch_runner(model, kind)} | {
        name: session_runner(sess, kind) for name, sess in sessions.items()
    }
    raw, seconds = run_features(runners, kind, tokenizer, features, batch_size)
    predicted = {name: kind.decode(r, table, features, settings) for name, r in raw.items()}
    reference = predicted["pytorch"]
    out: dict[str, Any] = {
        "rows": table.num_rows,
        "features": len(features["input_ids"]),
        "batch_size": batch_size,
    }
    for name in runners:
        figures: dict[str, Any] = {"seconds": round(seconds[name], 4)}
        if labelled:
            figures["scores"] = kind.score(table, predicted[name])
        if name != "pytorch":
            same = sum(predicted[name][i] == reference[i] for i in reference)
            figures["agreement"] = same / max(1, len(reference))
            figures["max_abs_logit_diff"] = max(
                float(np.abs(a - b).max()) for a, b in zip(raw[name], raw["pytorch"], strict=True)
            )
        out[name] = figures
    return out
