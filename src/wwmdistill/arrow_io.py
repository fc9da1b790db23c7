"""Arrow IPC artifacts: written atomically in zstd record batches, read back a batch at a time.

Every artifact carries schema metadata (stage, format version, fingerprint of what produced it,
plus stage-specific keys) so a reader can refuse a file from another stage, another format
version or another producer, and a truncated or corrupted file is reported with its path.
Each record batch carries a CRC32 of its contents: zstd frames as Arrow writes them hold no
checksum, so without it a flipped byte could decode into different rows without an error. A batch
without one is damaged too: this code writes none, so no damage can switch the check off.
This layer knows no format: each artifact's columns and keys are its module's in
`wwmdistill.artifacts`.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import json
import os
import re
import shutil
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

FORMAT_VERSION = "1"
_META_PREFIX = "wwmdistill."
_CHECKSUM = b"wwmdistill.crc32"
_FILE_MAGIC = b"ARROW1\0\0"  # with its padding
# A damaged file keeps its mtime as often as not, so snakemake would not rebuild it unasked.
_REBUILD = "; delete it and rerun to rebuild it"
# What a damaged file makes pyarrow raise, besides its own errors: a short read, a bad length.
_READ_ERRORS = (pa.ArrowException, OSError, ValueError, UnicodeDecodeError)


class ArtifactError(RuntimeError):
    """An artifact is missing, truncated, corrupted or was produced by something else."""


def _checksum(batch: pa.RecordBatch) -> bytes:
    """CRC32 of the batch's uncompressed IPC form, which a sliced batch shares with its copy."""
    return f"{zlib.crc32(batch.serialize()):08x}".encode()


def _verify(batch: pa.RecordBatch, custom: pa.KeyValueMetadata | None) -> None:
    """Raise ValueError unless the batch carries its CRC32 and matches it."""
    expected = (custom or {}).get(_CHECKSUM)
    if expected is None:
        # Every batch written here carries one: a key damaged out of its name is damage too.
        raise ValueError(f"its {_CHECKSUM.decode()} checksum is missing")
    if expected != _checksum(batch):
        raise ValueError("its checksum does not match")


def fingerprint(*parts: Any) -> str:
    """A stable digest of JSON-serialisable parts (dict keys sorted), for provenance checks."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _temporary_sibling(final: Path) -> Path:
    """`.tmp-<pid>-<name>` beside `final`, once what killed writers of `final` left is removed.

    A SIGKILL skips every cleanup, so a rerun would otherwise pile up half-written shards and
    model directories. Only siblings whose process is gone are removed: ranks of one torchrun
    job may write the same small file at once.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".tmp-*-{glob.escape(final.name)}"):
        match = re.fullmatch(r"\.tmp-(\d+)-(.*)", stale.name, re.DOTALL)
        if match is None or match[2] != final.name:
            continue
        pid = int(match[1])
        if pid != os.getpid() and _alive(pid):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    return final.with_name(f".tmp-{os.getpid()}-{final.name}")


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """An OS error while writing `path` names it: a full disk or an I/O error names no file."""
    try:
        yield
    except OSError as err:
        if err.filename is not None or not err.errno:
            raise
        raise OSError(err.errno, os.strerror(err.errno), str(path)) from err


@contextlib.contextmanager
def _making(path: Path) -> Iterator[None]:
    """`writing(path)`, and any other error notes the output it stopped (safetensors' disk-full
    error names no file either)."""
    try:
        with writing(path):
            yield
    except Exception as err:
        note = f"while writing {path}"
        if note not in getattr(err, "__notes__", ()):  # nested writers see the same error
            err.add_note(note)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds.

    A killed job leaves at most a `.tmp-*` file behind, never a file that looks finished, and
    the next write of `path` removes it.
    """
    final = Path(path)
    tmp = _temporary_sibling(final)
    try:
        with _making(final):
            yield tmp
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary sibling directory; it replaces `path` if the block succeeds."""
    final = Path(path)
    tmp = _temporary_sibling(final)
    tmp.mkdir()
    try:
        with _making(final):
            yield tmp
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON atomically (sorted keys, UTF-8, trailing newline)."""
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """`batches` re-cut into record batches of exactly `size` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size).combine_chunks().to_batches()[0]
            rest = table.slice(size)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _encode_meta(stage: str, fp: str, meta: Mapping[str, Any] | None) -> dict[bytes, bytes]:
    out = {
        f"{_META_PREFIX}stage": stage,
        f"{_META_PREFIX}format_version": FORMAT_VERSION,
        f"{_META_PREFIX}fingerprint": fp,
    }
    for key, value in (meta or {}).items():
        out[f"{_META_PREFIX}{key}"] = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return {k.encode(): v.encode() for k, v in out.items()}


class ArrowShardWriter:
    """Write record batches into a temporary file; `close()` renames it into place."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: pa.Schema,
        *,
        stage: str,
        fingerprint: str,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.schema = schema.with_metadata(_encode_meta(stage, fingerprint, meta))
        self.rows = 0
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._open = True
        try:
            with writing(self.path):
                self._sink = pa.OSFile(str(self._tmp), "wb")
                self._writer = ipc.new_file(
                    self._sink, self.schema, options=ipc.IpcWriteOptions(compression="zstd")
                )
        except BaseException as err:
            self.abort(err)
            raise

    def write(self, batch: pa.RecordBatch | pa.Table | Mapping[str, Any]) -> None:
        if isinstance(batch, Mapping):
            batch = pa.RecordBatch.from_pydict(dict(batch), schema=self.schema)
        if batch.num_rows == 0:
            return
        batch = batch.cast(self.schema)
        parts = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        with writing(self.path):
            for part in parts:
                self._writer.write_batch(part, custom_metadata={_CHECKSUM: _checksum(part)})
        self.rows += batch.num_rows

    def close(self) -> None:
        try:
            with writing(self.path):
                self._writer.close()
                self._sink.close()
        except BaseException as err:
            self.abort(err)
            raise
        self._open = False
        self._ctx.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        """Drop the temporary file after `exc`; whatever was at the final path stays."""
        if not self._open:
            return
        self._open = False
        for handle in (getattr(self, "_writer", None), getattr(self, "_sink", None)):
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.close()
        with contextlib.suppress(BaseException):
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> ArrowShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


@dataclass
class ArrowShard:
    """An opened artifact: its metadata, row count and a batch iterator."""

    path: Path
    stage: str
    fingerprint: str
    meta: dict[str, Any]
    schema: pa.Schema
    num_rows: int
    _data: pa.Buffer  # the whole file, memory-mapped
    _batches: int  # as many as its footer lists

    def iter_batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The batches in the order they were written, each checked against its CRC32.

        They are read in sequence, not through the footer's index: a damaged footer could skip a
        batch, which no check would then see, or list one twice. The footer must then agree.
        """
        stream = ipc.open_stream(self._data.slice(len(_FILE_MAGIC)))
        rows = 0
        for i in itertools.count():
            try:
                batch, custom = stream.read_next_batch_with_custom_metadata()
                _verify(batch, custom)
            except StopIteration:
                break
            except _READ_ERRORS as err:
                raise ArtifactError(
                    f"{self.path}: record batch {i} is corrupted ({err}){_REBUILD}"
                ) from err
            rows += batch.num_rows
            yield batch.select(columns) if columns else batch
        if (i, rows) != (self._batches, self.num_rows):
            raise ArtifactError(
                f"{self.path}: corrupted (its footer lists {self._batches} record batches of "
                f"{self.num_rows} rows, it holds {i} of {rows}){_REBUILD}"
            )

    def read_all(self, columns: list[str] | None = None) -> pa.Table:
        table = pa.Table.from_batches(list(self.iter_batches()), schema=self.schema)
        return table.select(columns) if columns else table


def open_shard(
    path: str | os.PathLike[str],
    *,
    stage: str | None = None,
    columns: tuple[str, ...] = (),
) -> ArrowShard:
    """Open an artifact and check it is complete, of the expected stage, version and columns."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: missing")
    try:
        data = pa.memory_map(str(path), "r").read_buffer()
        reader = ipc.open_file(data)
        raw = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
        # The schema is stored twice, after the leading magic and in the footer, and no checksum
        # covers it: a damaged copy shows as a difference between the two.
        first = ipc.read_schema(ipc.read_message(data.slice(len(_FILE_MAGIC))))
        intact = first.equals(reader.schema, check_metadata=True)
    except _READ_ERRORS as err:
        raise ArtifactError(f"{path}: not a complete Arrow IPC file ({err}){_REBUILD}") from err
    if not intact:
        raise ArtifactError(f"{path}: corrupted (its two copies of the schema differ){_REBUILD}")
    got_stage = raw.get(f"{_META_PREFIX}stage")
    version = raw.get(f"{_META_PREFIX}format_version")
    got_fingerprint = raw.get(f"{_META_PREFIX}fingerprint")
    if got_stage is None or version is None or got_fingerprint is None:
        raise ArtifactError(f"{path}: no wwmdistill metadata; not written by this workflow")
    if stage is not None and got_stage != stage:
        raise ArtifactError(f"{path}: expected a {stage!r} artifact, found {got_stage!r}")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format version {version}, this code reads {FORMAT_VERSION}; rerun its stage"
        )
    missing = [c for c in columns if c not in reader.schema.names]
    if missing:
        raise ArtifactError(f"{path}: missing column(s) {missing}")
    try:
        meta = {
            k[len(_META_PREFIX) :]: json.loads(v)
            for k, v in raw.items()
            if k.startswith(_META_PREFIX)
            and k[len(_META_PREFIX) :] not in ("stage", "format_version", "fingerprint")
        }
        num_rows = reader.count_rows()
    except _READ_ERRORS as err:
        raise ArtifactError(f"{path}: corrupted ({err}){_REBUILD}") from err
    return ArrowShard(
        path=path,
        stage=got_stage,
        fingerprint=got_fingerprint,
        meta=meta,
        schema=reader.schema,
        num_rows=num_rows,
        _data=data,
        _batches=reader.num_record_batches,
    )
