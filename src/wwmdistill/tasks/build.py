"""Write a task's splits as Arrow: capping, columns and schemas, `build_task` and `open_task`.

Every split becomes `out_dir/{split}.arrow` (stage "task") with the task's fixed label order in
its metadata, plus `out_dir/stats.json`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from wwmdistill.arrow_io import ArrowShardWriter, fingerprint, open_shard, write_json
from wwmdistill.tasks.readers import Example
from wwmdistill.tasks.registry import SPLITS, TaskSettings, get_spec
from wwmdistill.tasks.sources import load_splits, resolve_source

# Named for the package, not this module, so log lines read as they did before the split.
log = logging.getLogger("wwmdistill.tasks")

# Bumped when the artifacts this package writes change for the same inputs.
TASKS_VERSION = "1"
_WRITE_BATCH = 8192

CLASSIFICATION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text_a", pa.string()),
        ("text_b", pa.string()),
        ("label", pa.int32()),
    ]
)
QA_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("question", pa.string()),
        ("context", pa.string()),
        ("answers", pa.list_(pa.string())),
        ("answer_starts", pa.list_(pa.int32())),
    ]
)


def _cap(
    examples: list[Example], limit: int | None, seed: int, task: str, split: str
) -> list[Example]:
    """The first `limit` examples of a seeded shuffle, kept in their file order."""
    if limit is None or limit >= len(examples):
        return examples
    order = list(range(len(examples)))
    random.Random(f"{seed}/{task}/{split}/max_examples").shuffle(order)
    return [examples[i] for i in sorted(order[:limit])]


def _columns(kind: str, examples: list[Example]) -> dict[str, list[Any]]:
    if kind == "qa":
        return {
            "id": [e.id for e in examples],
            "question": [e.question for e in examples],
            "context": [e.context for e in examples],
            "answers": [list(e.answers) for e in examples],
            "answer_starts": [list(e.answer_starts) for e in examples],
        }
    return {
        "id": [e.id for e in examples],
        "text_a": [e.text_a for e in examples],
        "text_b": [e.text_b for e in examples],
        "label": [e.label for e in examples],
    }


def build_task(
    name: str,
    block: Mapping[str, Any] | None,
    data_root: str | Path,
    download_dir: str | Path,
    out_dir: str | Path,
    seed: int,
) -> dict[str, Any]:
    """Read (or download) a task and write `out_dir/{split}.arrow` and `out_dir/stats.json`."""
    spec = get_spec(name)
    settings = TaskSettings.from_config(name, block)
    data_root, download_dir, out_dir = Path(data_root), Path(download_dir), Path(out_dir)
    source = resolve_source(spec, settings, data_root)
    loaded = load_splits(spec, settings, source, data_root, download_dir, seed)
    all_digests = {k: v for split in loaded.values() for k, v in split.digests.items()}
    task_fp = fingerprint(
        "task", TASKS_VERSION, name, settings.for_fingerprint(), seed, source, all_digests
    )
    schema = QA_SCHEMA if spec.kind == "qa" else CLASSIFICATION_SCHEMA
    stats: dict[str, Any] = {}
    for split, part in loaded.items():
        examples = _cap(part.examples, settings.max_examples.get(split), seed, name, split)
        if not examples:
            raise ValueError(
                f"task {name} split {split}: no examples left from {part.files} "
                f"(dropped: {part.summary['dropped']}); check tasks.{name}.splits.{split} "
                f"and tasks.{name}.max_examples.{split}"
            )
        meta = {
            "task": name,
            "kind": spec.kind,
            "split": split,
            "labels": list(spec.labels),
            "pair": spec.pair,
            "files": part.files,
            "dropped": part.summary["dropped"],
            "repaired": part.summary["repaired"],
            "labelled": part.summary["labelled"],
            "source": source,
            "rows_before_cap": len(part.examples),
        }
        path = out_dir / f"{split}.arrow"
        with ArrowShardWriter(
            path, schema, stage="task", fingerprint=fingerprint(task_fp, split), meta=meta
        ) as writer:
            for start in range(0, len(examples), _WRITE_BATCH):
                writer.write(_columns(spec.kind, examples[start : start + _WRITE_BATCH]))
        stats[split] = {
            "rows": len(examples),
            "dropped": part.summary["dropped"],
            "repaired": part.summary["repaired"],
            "labelled": part.summary["labelled"],
            "files": part.files,
        }
        log.info(
            "%s %s: %d rows%s from %s (dropped %s)",
            name,
            split,
            len(examples),
            f" of {len(part.examples)}" if len(examples) < len(part.examples) else "",
            ", ".join(part.files),
            part.summary["dropped"] or "none",
        )
    # A split this config no longer builds must not linger looking current.
    for split in SPLITS:
        if split not in loaded:
            (out_dir / f"{split}.arrow").unlink(missing_ok=True)
    write_json(out_dir / "stats.json", stats)
    return stats


def open_task(path: str | Path) -> tuple[pa.Table, dict[str, Any]]:
    """A task split as a table, with its metadata (labels, kind, labelled, ...)."""
    shard = open_shard(path, stage="task")
    return shard.read_all(), shard.meta
