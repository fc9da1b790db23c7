"""Arrow artifacts under faults: a killed writer, damaged files, a full disk."""

from __future__ import annotations

import contextlib
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from wwmdistill.arrow_io import (
    ArrowShardWriter,
    ArtifactError,
    atomic_dir,
    open_shard,
    rebatch,
    write_json,
)

SCHEMA = pa.schema([("doc_id", pa.string()), ("ids", pa.list_(pa.int32()))])


def write_shard(path: Path, batches: int = 8, rows: int = 50) -> pa.Table:
    with ArrowShardWriter(path, SCHEMA, stage="test", fingerprint="f") as writer:
        for b in range(batches):
            writer.write(
                {
                    "doc_id": [f"{b}-{i}" for i in range(rows)],
                    "ids": [list(range(i % 13)) for i in range(rows)],
                }
            )
    return open_shard(path).read_all()


def test_a_killed_writer_leaves_only_a_temporary_file_which_the_next_write_removes(
    tmp_path: Path,
) -> None:
    final = tmp_path / "00000.arrow"
    script = f"""
import sys, time, pyarrow as pa
from wwmdistill.arrow_io import ArrowShardWriter
schema = pa.schema([("doc_id", pa.string()), ("ids", pa.list_(pa.int32()))])
writer = ArrowShardWriter({str(final)!r}, schema, stage="test", fingerprint="f")
writer.write({{"doc_id": ["a"], "ids": [[1]]}})
print("writing", flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    proc.kill()
    proc.wait()
    assert [p.name for p in tmp_path.iterdir()] == [f".tmp-{proc.pid}-00000.arrow"]
    # Another output's temporary file and a live writer's are not the rerun's to remove.
    other = tmp_path / f".tmp-{proc.pid}-x-00000.arrow"
    live = tmp_path / f".tmp-{os.getppid()}-00000.arrow"
    other.touch()
    live.touch()
    table = write_shard(final)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["00000.arrow", other.name, live.name]
    )
    assert table.num_rows == 400


def test_a_truncated_shard_is_named(tmp_path: Path) -> None:
    path = tmp_path / "shard.arrow"
    write_shard(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArtifactError, match=f"{re.escape(str(path))}: not a complete Arrow IPC"):
        open_shard(path)


def test_no_flipped_byte_reads_back_as_different_rows(tmp_path: Path) -> None:
    path = tmp_path / "shard.arrow"
    table = write_shard(path, batches=3, rows=20)
    data = path.read_bytes()
    damaged = tmp_path / "damaged.arrow"
    caught = 0
    for offset in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[offset] ^= 0x5A
        damaged.write_bytes(bytes(flipped))
        try:
            assert open_shard(damaged).read_all().equals(table), f"byte {offset}"
        except ArtifactError as err:
            assert str(err).startswith(f"{damaged}: ")
            caught += 1
    # Most bytes are the zstd-compressed batches, whose frames carry no checksum of their own.
    assert caught > len(data) // 3 // 2


def rewrite(path: Path, old: bytes, new: bytes, occurrence: int | None = None) -> None:
    """Replace `old` with `new`, of the same length, everywhere or at one occurrence."""
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    if occurrence is None:
        data = data.replace(old, new)
    else:
        at = -1
        for _ in range(occurrence + 1):
            at = data.index(old, at + 1)
        data = data[:at] + new + data[at + len(old) :]
    path.write_bytes(data)


def test_a_batch_whose_checksum_key_is_damaged_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "shard.arrow"
    write_shard(path, batches=3, rows=20)
    # Two bytes of the key's name swapped: the batch decodes as before, but without its CRC.
    rewrite(path, b"wwmdistill.crc32", b"wwmdistill.rcc32", occurrence=1)
    shard = open_shard(path)
    message = f"{path}: record batch 1 is corrupted (its wwmdistill.crc32 checksum is missing)"
    with pytest.raises(ArtifactError, match=re.escape(message)):
        shard.read_all()


def test_metadata_damaged_alike_in_both_schema_copies_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "shard.arrow"
    write_shard(path)
    rewrite(path, b"wwmdistill.fingerprint", b"wwmdistilX.fingerprint")
    with pytest.raises(ArtifactError, match=f"{re.escape(str(path))}: no wwmdistill metadata"):
        open_shard(path)


def footer_blocks(path: Path) -> tuple[int, int]:
    """Where the footer's vector of record batch blocks (24 bytes each) starts, and its length."""
    data = path.read_bytes()
    source = pa.BufferReader(data)
    source.seek(8)  # the leading magic
    messages = ipc.MessageReader.open_stream(source)
    first = source.tell()
    while messages.read_next_message().type != "record batch":
        first = source.tell()
    footer = len(data) - 10 - struct.unpack("<i", data[-10:-6])[0]
    at = data.index(struct.pack("<q", first), footer)
    return at, struct.unpack("<I", data[at - 4 : at])[0]


@pytest.mark.parametrize("damage", ["drops the last batch", "lists a batch twice"])
def test_a_damaged_footer_index_never_hides_or_repeats_a_batch(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "shard.arrow"
    table = write_shard(path, batches=4, rows=20)
    data = bytearray(path.read_bytes())
    at, count = footer_blocks(path)
    if damage == "drops the last batch":
        data[at - 4 : at] = struct.pack("<I", count - 1)
    else:
        data[at : at + 24] = data[at + 24 : at + 48]
    path.write_bytes(bytes(data))
    shard = open_shard(path)
    if damage == "drops the last batch":
        message = "corrupted (its footer lists 3 record batches of 60 rows, it holds 4 of 80)"
        with pytest.raises(ArtifactError, match=re.escape(f"{path}: {message}")):
            shard.read_all()
    else:  # batches are read in sequence, so the footer's index is never followed
        assert shard.read_all().equals(table)


@contextlib.contextmanager
def full_disk(at: Path, size: str = "64k"):
    at.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(at)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root needed): {result.stderr.strip()}")
    try:
        yield at
    finally:
        subprocess.run(["umount", "--lazy", str(at)], check=True)


def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path: Path) -> None:
    with full_disk(tmp_path / "disk") as disk:
        shard = disk / "00000.arrow"
        schema = pa.schema([("x", pa.binary())])
        with (
            pytest.raises(OSError, match=rf"No space left on device: '{re.escape(str(shard))}'"),
            ArrowShardWriter(shard, schema, stage="t", fingerprint="f") as w,
        ):
            for _ in range(8):
                w.write({"x": [os.urandom(16384)]})
        big = {"text": "x" * 100_000}
        with pytest.raises(OSError, match=re.escape(str(disk / "stats.json"))):
            write_json(disk / "stats.json", big)
        model = disk / "model"
        with pytest.raises(OSError, match=re.escape(str(model))), atomic_dir(model) as tmp:
            (tmp / "model.safetensors").write_bytes(os.urandom(100_000))
        assert list(disk.iterdir()) == []


def test_rebatch_cuts_exact_sizes_and_keeps_every_row() -> None:
    rows = pa.record_batch({"x": list(range(23))})
    uneven = [rows.slice(0, 4), rows.slice(4, 11), rows.slice(15, 8)]
    out = list(rebatch(uneven, 5))
    assert [b.num_rows for b in out] == [5, 5, 5, 5, 3]
    assert [v for b in out for v in b.column("x").to_pylist()] == list(range(23))
