"""Get a corpus source onto disk and say which files to read and how.

Four source types: `url` (resumable HTTP download that follows only http(s) redirects, sha256 or
length check, safe and size-capped archive extraction), `hf` (a Hugging Face dataset streamed
into zstd JSON lines), `local` (globs under the data root) and `package` (a data file shipped
inside an installed Python package). Downloads end with a `manifest.json` written last, so its
presence means the source is complete.
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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import zstandard

from wwmdistill.arrow_io import atomic_path, fingerprint, write_json
from wwmdistill.corpus_readers import FORMATS
from wwmdistill.progress import tqdm
from wwmdistill.settings import DEFAULT_MAX_EXTRACT_BYTES, DEFAULT_MAX_EXTRACT_MEMBERS

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_CHUNK = 1 << 16
# Statuses worth retrying: the server or a proxy may recover.
_RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# As many hops as urllib itself would follow.
MAX_REDIRECTS = 10


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


def _check_url(url: str, chain: list[str] | None = None) -> None:
    """Refuse `url` unless it is http(s); `chain` is the redirects that led to it, if any."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return
    got = f"got {scheme or 'no'} scheme"
    if chain:
        raise DownloadError(
            f"{chain[0]}: redirected to {url}, but only http:// and https:// URLs can be "
            f"downloaded ({got}; redirects: {' -> '.join([*chain, url])})"
        )
    raise DownloadError(
        f"{url}: only http:// and https:// URLs can be downloaded ({got}); "
        "use a `local` source for files already on disk"
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hands every redirect back as an HTTPError, so `_open` checks each hop before taking it."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> None:
        return None


def _open(url: str, headers: dict[str, str], timeout: float) -> http.client.HTTPResponse:
    """GET `url`, following at most MAX_REDIRECTS redirects and only to http(s) URLs.

    urllib's own redirect handling would follow a 302 to ftp:// or file://, so hops are taken
    here, each checked like the first URL.
    """
    opener = urllib.request.build_opener(_NoRedirects)
    chain = [url]
    while True:
        try:
            return opener.open(urllib.request.Request(chain[-1], headers=headers), timeout=timeout)
        except urllib.error.HTTPError as err:
            location = err.headers.get("Location")
            if err.code not in _REDIRECT_STATUSES or not location:
                raise
            err.close()  # it holds the connection open
        next_url = urllib.parse.urljoin(chain[-1], location)
        if len(chain) > MAX_REDIRECTS:
            raise DownloadError(
                f"{url}: more than {MAX_REDIRECTS} redirects, the most followed: "
                f"{' -> '.join([*chain, next_url])}"
            )
        _check_url(next_url, chain)
        chain.append(next_url)


def _fetch_once(url: str, part: Path, timeout: float) -> int | None:
    """Append what is missing of `url` to `part` (HTTP Range); raise _Incomplete if cut short.

    Returns the whole file's size as the server announced it, or None when it did not.
    """
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "wwmdistill", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = _open(url, headers, timeout)
    except urllib.error.HTTPError as err:
        err.close()  # it holds the connection open
        if err.code == 416 and have:
            # The range starts at or past the end: either `part` is already whole or it is
            # longer than the file now on the server. Content-Range says which.
            match = re.fullmatch(r"bytes \*/(\d+)", err.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == have:
                return have
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
    return total


@dataclass(frozen=True)
class Fetched:
    """A downloaded file, whether it is known to be whole, and how (or why not)."""

    path: Path
    verified: bool
    check: str


def _check_record(dest: Path) -> Path:
    """Where `fetch_url` keeps how `dest` was checked, for reruns that reuse the file."""
    return dest.with_name(dest.name + ".check.json")


def _reuse(dest: Path, expected: str | None) -> Fetched | None:
    """`dest` as it is on disk, when it needs no download; None when it does."""
    if not dest.exists():
        return None
    if expected is not None:
        if sha256_file(dest) != expected:
            return None
        return Fetched(dest, True, f"sha256 {expected} matches")
    # Without its record (as an older version left it) nobody knows if the file was whole.
    record = _read_manifest(_check_record(dest))
    return None if record is None else Fetched(dest, record["verified"], record["check"])


def _fetch_new(
    url: str, dest: Path, expected: str | None, retries: int, backoff: float, timeout: float
) -> Fetched:
    """Download `url` to `dest` through `dest.part`, resuming and retrying; check it whole."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            total = _fetch_once(url, part, timeout)
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
        fetched = Fetched(dest, True, f"sha256 {expected} matches")
    elif total is not None:
        fetched = Fetched(dest, True, f"all {total} bytes the server announced arrived")
    else:
        fetched = Fetched(
            dest,
            False,
            "no sha256 is configured and the server sent no Content-Length, so a download cut "
            f"short would look complete; set sha256 to check it (what arrived has sha256 "
            f"{sha256_file(part)})",
        )
    # The record goes first: a `dest` without one is downloaded again.
    write_json(_check_record(dest), {"verified": fetched.verified, "check": fetched.check})
    os.replace(part, dest)
    return fetched


def fetch_url(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    retries: int = 5,
    backoff: float = 0.5,
    timeout: float = 60.0,
) -> Fetched:
    """Download `url` to `dest`, resuming `dest.part` after a dropped connection or a restart.

    Transient failures are retried with exponential backoff (`retries` attempts in a row without
    progress). The sha256, when given, is checked before the file is renamed onto `dest`, so
    `dest` only ever exists complete and verified; without one, the server's Content-Length is
    what shows the file whole, and a file with neither is returned unverified, with a warning.
    """
    _check_url(url)
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    fetched = _reuse(dest, expected) or _fetch_new(url, dest, expected, retries, backoff, timeout)
    if not fetched.verified:
        log.warning("%s: %s is unverified: %s", url, dest, fetched.check)
    return fetched


def _bad_member_name(name: str) -> str | None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in posix.parts:
        return "path escapes the destination"
    return None


def _size(n: int) -> str:
    """`n` bytes as a person reads them: 3.2 GiB."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@dataclass(frozen=True)
class ExtractLimits:
    """How far one archive may expand on disk; `where` is the config block that sets it."""

    where: str
    max_bytes: int = DEFAULT_MAX_EXTRACT_BYTES
    max_members: int = DEFAULT_MAX_EXTRACT_MEMBERS

    def __post_init__(self) -> None:
        for key, value in (("bytes", self.max_bytes), ("members", self.max_members)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SourceSpecError(
                    f"config {self.where}.max_extract_{key}: {value!r} is not a whole number >= 1"
                )

    @classmethod
    def of(cls, where: str, block: Mapping[str, Any]) -> ExtractLimits:
        """The limits a config block sets with `max_extract_bytes` and `max_extract_members`."""
        return cls(
            where,
            block.get("max_extract_bytes", DEFAULT_MAX_EXTRACT_BYTES),
            block.get("max_extract_members", DEFAULT_MAX_EXTRACT_MEMBERS),
        )

    def check_members(self, archive: Path, count: int, *, at_least: bool = False) -> None:
        if count > self.max_members:
            raise DownloadError(
                f"{archive}: {'at least ' if at_least else ''}{count} members, over the limit of "
                f"{self.max_members} ({self.where}.max_extract_members); increase it if you "
                "trust the archive"
            )

    def too_big(self, archive: Path, expanded: str) -> DownloadError:
        """The error for an archive whose members expand to `expanded`, past max_bytes."""
        return DownloadError(
            f"{archive}: members expand to {expanded}, over the limit of {_size(self.max_bytes)} "
            f"({self.where}.max_extract_bytes: {self.max_bytes}); increase it if you trust the "
            "archive"
        )


@dataclass
class _Written:
    """The bytes one extraction has written so far, counted as they stream."""

    archive: Path
    limits: ExtractLimits
    declared: int
    total: int = 0

    def copy(self, source: IO[bytes], target: Path, name: str) -> None:
        # Headers may understate what a member decompresses to: the bytes written are what count.
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while chunk := source.read(_CHUNK):
                self.total += len(chunk)
                if self.total > self.limits.max_bytes:
                    raise self.limits.too_big(
                        self.archive,
                        f"more than {_size(self.limits.max_bytes)} at member {name!r} (their "
                        f"headers declare {_size(self.declared)})",
                    )
                out.write(chunk)


def _extract_zip(archive: Path, dest_dir: Path, limits: ExtractLimits) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        limits.check_members(archive, len(members))
        declared = sum(info.file_size for info in members)
        if declared > limits.max_bytes:
            raise limits.too_big(archive, _size(declared))
        for info in members:
            problem = _bad_member_name(info.filename)
            if problem:
                raise DownloadError(f"{archive}: refusing member {info.filename!r} ({problem})")
        written = _Written(archive, limits, declared)
        for info in members:
            if info.is_dir():
                (dest_dir / info.filename).mkdir(parents=True, exist_ok=True)
                continue
            # Symlink entries are written as small regular files, so they cannot point anywhere.
            with zf.open(info) as source:
                written.copy(source, dest_dir / info.filename, info.filename)
    return [dest_dir / info.filename for info in members if not info.is_dir()]


def _tar_safe(archive: Path, member: tarfile.TarInfo, dest_dir: Path) -> tarfile.TarInfo:
    """`member` as the stdlib's "data" filter lets it be extracted, or a DownloadError."""
    try:
        return tarfile.data_filter(member, str(dest_dir))
    except tarfile.FilterError as err:
        raise DownloadError(f"{archive}: refusing member {member.name!r} ({err})") from err


def _extract_tar(archive: Path, dest_dir: Path, limits: ExtractLimits) -> list[Path]:
    with tarfile.open(archive, "r:*") as tf:
        members: list[tarfile.TarInfo] = []
        for member in tf:
            members.append(member)
            # Stop reading headers at the limit: millions of empty members compress to little.
            limits.check_members(archive, len(members), at_least=True)
        declared = sum(m.size for m in members if m.isreg())
        if declared > limits.max_bytes:
            raise limits.too_big(archive, _size(declared))
        # Check every member before writing anything, so a bad archive leaves nothing behind.
        for member in members:
            _tar_safe(archive, member, dest_dir)
        written = _Written(archive, limits, declared)
        files = []
        for member in members:
            # Checked again: links extracted before it may change where a path leads.
            safe = _tar_safe(archive, member, dest_dir)
            if not safe.isreg():
                tf.extract(safe, dest_dir, filter="data")
                continue
            source = tf.extractfile(member)
            assert source is not None  # a regular member always has data
            with source:
                written.copy(source, dest_dir / safe.name, member.name)
            files.append(dest_dir / safe.name)
    return files


def is_archive(path: Path) -> bool:
    """Whether `path` is a zip or (possibly compressed) tar archive, judged by its content."""
    return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


def _extract(archive: Path, dest_dir: Path, limits: ExtractLimits) -> list[Path]:
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, dest_dir, limits)
        if tarfile.is_tarfile(archive):
            return _extract_tar(archive, dest_dir, limits)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise DownloadError(f"{archive}: corrupt archive ({err})") from err
    raise DownloadError(f"{archive}: not a zip or tar archive")


def extract_archive(archive: Path, dest_dir: Path, limits: ExtractLimits) -> list[Path]:
    """Unpack a zip or tar (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) into `dest_dir`.

    Members with absolute paths, `..` escapes, or links pointing outside `dest_dir` make the whole
    archive refused before anything is written, as do more members or declared bytes than
    `limits` allow. Bytes written past the limit (headers can lie) stop the extraction, and
    whatever it wrote is removed. Returns the extracted regular files, sorted.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    before = set(dest_dir.iterdir())
    try:
        files = _extract(archive, dest_dir, limits)
    except BaseException:
        # Nothing half extracted stays behind, whatever stopped it (a bomb, a full disk, ^C).
        for path in set(dest_dir.iterdir()) - before:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        raise
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
    download: dict[str, Any] = {}
    if kind == "hf":
        files = [download_hf(spec, out_dir / f"{name}.jsonl.zst")]
    else:
        url = _spec_value(name, spec, "url")
        limits = ExtractLimits.of(f"sources.{name}", spec)
        # One folder per URL, so a changed URL never resumes or reuses another URL's bytes.
        dest = out_dir / fingerprint(url)[:12] / _filename_from_url(url)
        fetched = fetch_url(url, dest, sha256=spec.get("sha256"))
        download = {"url": url, "verified": fetched.verified, "check": fetched.check}
        if is_archive(fetched.path):
            unpacked = dest.parent / "extracted"
            # A previous, interrupted extraction may have left files of an older archive.
            shutil.rmtree(unpacked, ignore_errors=True)
            files = extract_archive(fetched.path, unpacked, limits)
            root = unpacked
        else:
            files, root = [fetched.path], dest.parent
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
    if download:
        # Whether the file is known to be whole, and how; `verified: false` says why not.
        manifest["download"] = download
    write_json(manifest_path, manifest)
    return manifest


def source_files(
    name: str, spec: dict[str, Any], *, data_root: Path | None, download_dir: Path
) -> list[SourceFile]:
    """The files of a source with their format; url/hf sources must be downloaded already."""
    kind = _source_type(name, spec)
    if kind in ("url", "hf"):
        return input_files(name, spec, [Path(download_dir) / name / MANIFEST], data_root=None)
    _format(name, spec)  # a bad format is named before any file is looked for
    if kind == "package":
        relpath = _spec_value(name, spec, "path")
        found = [resolve_package_file(_spec_value(name, spec, "package"), relpath)]
    elif data_root is None:
        raise ValueError(f"source {name!r}: a local source is read from data_root, none given")
    else:
        found = resolve_local(_spec_value(name, spec, "paths"), Path(data_root))
    return input_files(name, spec, found, data_root=data_root)


def input_files(
    name: str, spec: dict[str, Any], inputs: list[Path], *, data_root: Path | None
) -> list[SourceFile]:
    """The files of a source, from what `source_inputs` listed (the corpus job's inputs).

    A download manifest stands for the files it lists; package and local files are themselves.
    Local files are labelled relative to `data_root`, so that doc ids (and hashes of them) stay
    machine-independent; nothing is looked for again.
    """
    kind = _source_type(name, spec)
    text_field = spec.get("text_field") or "text"
    if kind in ("url", "hf"):
        [manifest_path] = [Path(path) for path in inputs]
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
        relpath = _spec_value(name, spec, "path")
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
    if _source_type(name, spec) in ("url", "hf"):
        return [str(Path(download_dir) / name / MANIFEST)]
    return [
        str(f.path)
        for f in source_files(name, spec, data_root=data_root, download_dir=download_dir)
    ]
