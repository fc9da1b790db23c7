"""Content digests of the files a run reads from outside results/, cached by path, size and mtime.

Snakemake compares clocks: a touched input newer than its output reruns the chain (it compares
checksums only for files under 1 MB). Files that come from outside the workflow (corpora, task
files, word lists, local models) are therefore declared `ancient` and their content enters the
rule's params instead, so an unchanged file reruns nothing, whatever its size, and a changed one
reruns its consumers. Hashing a multi-GB corpus at every DAG build would be slow, so a digest is
kept in a small cache under .snakemake/ and recomputed only when the file's size or mtime moves.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from wwmdistill.arrow_io import fingerprint, write_json

DEFAULT_CACHE = Path(".snakemake/wwmdistill/content-digests.json")
_CHUNK = 1 << 20


class ContentDigests:
    """Digests of files and directory trees, remembered across DAG builds in `cache_path`."""

    def __init__(self, cache_path: str | os.PathLike[str] = DEFAULT_CACHE) -> None:
        self.cache_path = Path(cache_path)
        self._cache: dict[str, list] = self._load()
        self._dirty = False

    def _load(self) -> dict[str, list]:
        try:
            cache = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # no cache yet, or a damaged one: digests are simply recomputed
        return cache if isinstance(cache, dict) else {}

    def of(self, paths: Iterable[str | os.PathLike[str]]) -> str:
        """One digest of the contents of `paths` (files or directories, in sorted order).

        A directory counts with the relative names of its files; a missing path counts as
        missing (Snakemake reports it as a missing input).
        """
        entries = [self._entry(Path(path)) for path in sorted({str(p) for p in paths})]
        if self._dirty:
            self._save()
        return fingerprint(entries)

    def _entry(self, path: Path) -> object:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            return [[f.relative_to(path).as_posix(), self._file(f)] for f in files]
        if path.is_file():
            return self._file(path)
        return "missing"

    def _file(self, path: Path) -> str:
        real = os.path.realpath(path)
        stat = os.stat(real)
        key = [stat.st_size, stat.st_mtime_ns]
        cached = self._cache.get(real)
        if cached and cached[:2] == key:
            return cached[2]
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        self._cache[real] = [*key, digest.hexdigest()]
        self._dirty = True
        return digest.hexdigest()

    def _save(self) -> None:
        # Several Snakemake processes (cluster jobs re-parse the workflow) may write at once:
        # each replaces the file whole, so a reader never sees half of one.
        write_json(self.cache_path, self._cache)
        self._dirty = False
