"""Unpack zip and tar archives safely: members that would land outside the destination are
refused before anything is written, and what one archive may expand to is capped in bytes and
members (`ExtractLimits`), counting the bytes actually written, not what headers declare."""

from __future__ import annotations

import re
import shutil
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from wwmdistill.download import DownloadError, SourceSpecError
from wwmdistill.settings import DEFAULT_MAX_EXTRACT_BYTES, DEFAULT_MAX_EXTRACT_MEMBERS

_CHUNK = 1 << 16


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
