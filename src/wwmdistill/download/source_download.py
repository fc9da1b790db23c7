"""Fetch a `url` or `hf` source into its folder (a url's archive unpacked, its `members`
picked) and write the folder's `manifest.json` last, so a rerun with the same spec does nothing."""

from __future__ import annotations

import fnmatch
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from wwmdistill.arrow_io import fingerprint, write_json
from wwmdistill.download import SourceSpecError
from wwmdistill.download.archives import ExtractLimits, extract_archive, is_archive
from wwmdistill.download.hf import download_hf
from wwmdistill.download.http_fetch import fetch_url, filename_from_url
from wwmdistill.download.records import MANIFEST, read_record
from wwmdistill.download.sources import source_format, source_type, spec_value

# Named for the package, not this module, so log lines read as they did before the split.
log = logging.getLogger("wwmdistill.download")


def download_source(name: str, spec: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch a `url` or `hf` source into `out_dir` and write `out_dir/manifest.json` last.

    A rerun whose manifest is complete and records an equal spec does nothing.
    """
    out_dir = Path(out_dir)
    kind = source_type(name, spec)
    if kind not in ("url", "hf"):
        raise SourceSpecError(f"source {name!r}: type {kind} is read in place, not downloaded")
    # Compare specs as JSON would store them (tuples become lists, and so on).
    spec = json.loads(json.dumps(spec))
    manifest_path = out_dir / MANIFEST
    old = read_record(manifest_path)
    if (
        old is not None
        and old.get("spec") == spec
        and all((out_dir / f["path"]).is_file() for f in old.get("files", []))
    ):
        log.info("%s: already downloaded (%s)", name, manifest_path)
        return old
    fmt = source_format(name, spec)
    text_field = spec.get("text_field") or "text"
    download: dict[str, Any] = {}
    if kind == "hf":
        files = [download_hf(spec, out_dir / f"{name}.jsonl.zst")]
    else:
        url = spec_value(name, spec, "url")
        limits = ExtractLimits.of(f"sources.{name}", spec)
        # One folder per URL, so a changed URL never resumes or reuses another URL's bytes.
        dest = out_dir / fingerprint(url)[:12] / filename_from_url(url)
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
