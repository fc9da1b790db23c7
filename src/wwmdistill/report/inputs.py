"""Reading the report's inputs: the eval JSONs of the tasks, the bench JSONs of the models."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def load_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"report: {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"report: {path}:{err.lineno}: not JSON: {err.msg}") from err


def load_evals(eval_paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The eval JSONs in the given order; each must name its task and primary metric."""
    evals = []
    for path in eval_paths:
        data = load_json(path)
        for key in ("task", "metric"):
            if key not in data:
                raise ValueError(f"report: {path}: eval JSON lacks the key {key!r}")
        data.setdefault("metrics", [data["metric"]])
        data.setdefault("rows", [])
        evals.append(data)
    return evals


def load_benches(
    bench_paths: Mapping[str, str | Path] | Sequence[str | Path],
) -> dict[str, dict[str, Any]]:
    """Bench JSONs by model name: the mapping's key, else the JSON's `model`, else the file stem."""
    if isinstance(bench_paths, Mapping):
        return {str(name): load_json(path) for name, path in bench_paths.items()}
    benches = {}
    for path in bench_paths:
        data = load_json(path)
        benches[str(data.get("model") or Path(path).stem)] = data
    return benches
