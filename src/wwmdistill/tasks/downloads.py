"""Getting a task's files from a download source: the official (or configured) URL's archive
(unpacked, the split files found in it) or one URL per file, or a split of a Hugging Face dataset.
A source that cannot deliver raises `Unreachable`, so the next one is tried; a host that does
not resolve is told at once (`unresolvable`), before any retries.
"""

from __future__ import annotations

import logging
import socket
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wwmdistill.arrow_io import atomic_dir, fingerprint
from wwmdistill.download import ChecksumError, DownloadError
from wwmdistill.download.archives import extract_archive, is_archive
from wwmdistill.download.http_fetch import fetch_url, filename_from_url
from wwmdistill.tasks.plan import Download
from wwmdistill.tasks.registry import TaskSettings, TaskSpec

# Named for the package, not this module, so log lines read as they did before the split.
log = logging.getLogger("wwmdistill.tasks")


class Unreachable(Exception):
    """A download source did not deliver (offline, HTTP error, no such dataset): try the next."""


def _fetch(url: str, dest: Path, sha256: str | None) -> Path:
    try:
        return fetch_url(url, dest, sha256=sha256).path
    except ChecksumError:
        raise  # the official file changed: never swap in another copy unasked
    except (DownloadError, OSError) as err:
        raise Unreachable(str(err)) from err


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


def unresolvable(url: str) -> str | None:
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


def download_files(
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
    archive_name = filename_from_url(url)
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


def load_hf_split(
    spec: TaskSpec, source: Download, split_name: str, download_dir: Path
) -> tuple[Any, str]:
    """One split of the source's HF dataset (cached under download_dir/<task>/hf), its label."""
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
        raise Unreachable(f"{type(err).__name__}: {err}") from err
    return dataset, label


def needs_hub(spec: TaskSpec, source: Download, download_dir: Path) -> bool:
    """Whether loading `source` must reach the hub: not for a local dataset or a cached one."""
    cache = Path(download_dir) / spec.name / "hf"
    return not Path(source.dataset).exists() and not (cache.is_dir() and any(cache.iterdir()))


def hf_endpoint() -> str:
    """The hub's URL as huggingface_hub would reach it (HF_ENDPOINT honoured)."""
    from huggingface_hub import constants

    return constants.ENDPOINT
