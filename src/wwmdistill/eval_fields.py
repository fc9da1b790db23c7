"""Where an eval row keeps its timings: lenient accessors of a results/eval/{task}.json row.

evaluation.py writes the rows and reads their timings back for the ratios; the report and the
model cards render them. Both read through here, so a timing's place in a row is written down
once. Every accessor returns None where a level is missing, since a partial run's rows still
render; and the module imports nothing heavy, so the report never pulls in torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def lookup(data: Any, *keys: str) -> Any:
    """data[k1][k2]... or None where a level is missing or null."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def timing(row: Any, fmt: str, batch: int, seq_len: Any) -> Mapping[str, Any] | None:
    """A row's model-only timing (median_ms, q1_ms, q3_ms, per_second, unsteady) of one format
    (pytorch, fp32, int8), batch and length."""
    stats = lookup(row, "speed", "model", fmt, str(seq_len), str(batch))
    return stats if isinstance(stats, Mapping) else None


def request_timing(row: Any, fmt: str) -> Mapping[str, Any] | None:
    """A row's end-to-end timing of one dev request at a time through an ONNX format."""
    stats = lookup(row, "speed", "request", fmt, "end_to_end")
    return stats if isinstance(stats, Mapping) else None


def request_overhead(row: Any, fmt: str) -> Mapping[str, Any] | None:
    """A row's end-to-end time of a request over the model alone's (value, unsteady) through
    an ONNX format."""
    stats = lookup(row, "speed", "request", fmt, "overhead")
    return stats if isinstance(stats, Mapping) else None
