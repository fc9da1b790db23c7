"""Content digests: the same bytes give the same digest whatever the clock; the cache is used."""

from __future__ import annotations

import os
from pathlib import Path

from wwmdistill.content import ContentDigests


def test_a_digest_follows_bytes_not_mtimes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("一二三\n", encoding="utf-8")
    (data / "b.txt").write_text("四五六\n", encoding="utf-8")
    digests = ContentDigests(tmp_path / "cache.json")
    files = [data / "a.txt", data / "b.txt"]
    before = digests.of(files)
    assert digests.of(reversed(files)) == before  # the order given does not matter
    os.utime(data / "a.txt", (1, 1))
    assert ContentDigests(tmp_path / "cache.json").of(files) == before
    (data / "a.txt").write_text("一二四\n", encoding="utf-8")
    assert ContentDigests(tmp_path / "cache.json").of(files) != before
    # A directory counts with its files' names: a rename changes it.
    tree = digests.of([data])
    (data / "b.txt").rename(data / "c.txt")
    assert digests.of([data]) != tree
    assert digests.of([data / "gone.txt"]) != digests.of([data / "a.txt"])


def test_a_file_is_hashed_again_only_when_its_size_or_mtime_moves(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"x" * 1000)
    cache = tmp_path / "cache.json"
    first = ContentDigests(cache).of([path])
    # Same size and mtime: the cached digest stands (that is the cache's contract).
    stat = path.stat()
    path.write_bytes(b"y" * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert ContentDigests(cache).of([path]) == first
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert ContentDigests(cache).of([path]) != first


def test_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("a", encoding="utf-8")
    cache = tmp_path / "cache.json"
    expected = ContentDigests(cache).of([path])
    cache.write_text("{not json", encoding="utf-8")
    assert ContentDigests(cache).of([path]) == expected
