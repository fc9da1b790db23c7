"""One http(s) file onto disk: resumed after a dropped connection or a restart, retried with
backoff, redirects followed only to http(s) URLs, and checked whole by sha256 or by the length
the server announced."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from wwmdistill.arrow_io import write_json
from wwmdistill.download import ChecksumError, DownloadError
from wwmdistill.download.records import check_record, read_record
from wwmdistill.progress import tqdm

# Named for the package, not this module, so log lines read as they did before the split.
log = logging.getLogger("wwmdistill.download")

_CHUNK = 1 << 16
# Statuses worth retrying: the server or a proxy may recover.
_RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# As many hops as urllib itself would follow.
MAX_REDIRECTS = 10


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


def _reuse(dest: Path, expected: str | None) -> Fetched | None:
    """`dest` as it is on disk, when it needs no download; None when it does."""
    if not dest.exists():
        return None
    if expected is not None:
        if sha256_file(dest) != expected:
            return None
        return Fetched(dest, True, f"sha256 {expected} matches")
    # Without its record (as an older version left it) nobody knows if the file was whole.
    record = read_record(check_record(dest))
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
    write_json(check_record(dest), {"verified": fetched.verified, "check": fetched.check})
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


def filename_from_url(url: str) -> str:
    """The last segment of `url`'s path, unquoted: the name a downloaded file is saved under."""
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return name or "download"
