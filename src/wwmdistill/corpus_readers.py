"""Stream documents out of corpus files: plain lines, blank-line-separated documents, JSON lines,
Parquet and POS-tagged gold segmentation (People's Daily 1998 style).

Files are read a line (or a Parquet batch) at a time and decompressed on the fly by suffix, so a
corpus of any size streams through in constant memory. A bad record either stops the run with
the file, line and (for encoding errors) byte offset, or is skipped and counted by reason.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

FORMATS = ("lines", "documents", "jsonl", "pos_tagged", "parquet")
SKIP_REASONS = ("invalid_utf8", "malformed_json", "missing_text_field", "malformed_pos_tag")
OnError = Literal["raise", "skip"]

_OPENERS = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
    ".zst": zstandard.open,
}
# Errors a truncated or corrupt compressed stream raises while being read.
_STREAM_ERRORS = (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError)
# People's Daily closes a bracketed compound with its own tag: `[中国/ns 政府/n]nt`.
_COMPOUND_END = re.compile(r"^(.+)\][A-Za-z]+$")


@dataclass(frozen=True)
class RawDocument:
    """One document; `gold_word_ends` are exclusive char offsets of gold word ends, if known."""

    doc_id: str
    text: str
    gold_word_ends: list[int] | None = None


class CorpusFormatError(ValueError):
    """A corpus record cannot be read; the message names the file, line (or Parquet row) and,
    for undecodable bytes, the byte offset in the (decompressed) stream."""

    def __init__(
        self,
        path: Path,
        problem: str,
        *,
        reason: str,
        line: int | None = None,
        row: int | None = None,
        byte_offset: int | None = None,
    ) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if row is not None:
            where += f", row {row}"
        if byte_offset is not None:
            where += f", byte offset {byte_offset}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.reason = reason
        self.line = line
        self.row = row
        self.byte_offset = byte_offset


@dataclass
class _Line:
    number: int  # 1-based
    text: str | None  # None when the bytes are not valid UTF-8
    error: CorpusFormatError | None = None


class _ErrorPolicy:
    """Raise or count a bad record, as the caller asked."""

    def __init__(self, on_error: OnError, skipped: Counter[str] | None) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.skipped = skipped

    def handle(self, error: CorpusFormatError) -> None:
        if self.on_error == "raise":
            raise error
        if self.skipped is not None:
            self.skipped[error.reason] += 1


@contextmanager
def _open_binary(path: Path) -> Iterator[BinaryIO]:
    opener = _OPENERS.get(path.suffix.lower())
    if opener is None:
        stream: BinaryIO = open(path, "rb")  # noqa: SIM115
    elif opener is zstandard.open:
        # zstandard's reader cannot iterate lines itself; buffering adds readline.
        stream = io.BufferedReader(zstandard.open(path, "rb"))
    else:
        stream = opener(path, "rb")
    try:
        yield stream
    finally:
        stream.close()


def _iter_lines(path: Path) -> Iterator[_Line]:
    """Yield decoded lines without their terminator; decoding errors are attached, not raised."""
    offset = 0  # byte offset of the current line in the decompressed stream
    number = 0
    with _open_binary(path) as stream:
        try:
            for raw in stream:
                number += 1
                body = raw.rstrip(b"\r\n")
                bom = 3 if number == 1 and body.startswith(b"\xef\xbb\xbf") else 0
                try:
                    line = _Line(number, body[bom:].decode("utf-8"))
                except UnicodeDecodeError as err:
                    error = CorpusFormatError(
                        path,
                        f"invalid UTF-8 ({err.reason})",
                        reason="invalid_utf8",
                        line=number,
                        byte_offset=offset + bom + err.start,
                    )
                    line = _Line(number, None, error)
                yield line
                offset += len(raw)
        except _STREAM_ERRORS as err:
            # Not skippable: the rest of a corrupt compressed stream is unreadable.
            raise CorpusFormatError(
                path, f"cannot decompress or read ({err})", reason="corrupt_stream", line=number + 1
            ) from err


def _read_lines(path: Path, label: str, policy: _ErrorPolicy) -> Iterator[RawDocument]:
    for line in _iter_lines(path):
        if line.error is not None:
            policy.handle(line.error)
            continue
        assert line.text is not None
        text = line.text.strip()
        if text:
            yield RawDocument(f"{label}:{line.number}", text)


def _read_documents(path: Path, label: str, policy: _ErrorPolicy) -> Iterator[RawDocument]:
    start: int | None = None
    parts: list[str] = []
    broken = False  # a line of the current document was undecodable: drop the whole document
    for line in _iter_lines(path):
        stripped = line.text.strip() if line.text is not None else None
        if stripped == "":
            if start is not None and not broken:
                yield RawDocument(f"{label}:{start}", "".join(parts))
            start, parts, broken = None, [], False
            continue
        if start is None:
            start = line.number
        if line.error is not None:
            if not broken:
                policy.handle(line.error)
            broken = True
        elif stripped:
            # Chinese text wraps without spaces, so lines are joined with no separator.
            parts.append(stripped)
    if start is not None and not broken:
        yield RawDocument(f"{label}:{start}", "".join(parts))


def _read_jsonl(
    path: Path, label: str, text_field: str, policy: _ErrorPolicy
) -> Iterator[RawDocument]:
    for line in _iter_lines(path):
        if line.error is not None:
            policy.handle(line.error)
            continue
        assert line.text is not None
        if not line.text.strip():
            continue
        try:
            record = json.loads(line.text)
        except json.JSONDecodeError as err:
            policy.handle(
                CorpusFormatError(
                    path, f"malformed JSON ({err.msg})", reason="malformed_json", line=line.number
                )
            )
            continue
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            problem = (
                f"no string field {text_field!r}"
                if isinstance(record, dict)
                else f"expected a JSON object with field {text_field!r}"
            )
            policy.handle(
                CorpusFormatError(path, problem, reason="missing_text_field", line=line.number)
            )
            continue
        if text.strip():
            yield RawDocument(f"{label}:{line.number}", text)


def parse_pos_tagged(paragraph: str) -> tuple[list[str], list[str]]:
    """Split `迈向/v  充满/v` into words and tags; bracketed compounds keep their inner words.

    Raises ValueError for a token without a word or a tag. A word may itself contain '/'
    (`1/2/m`), so tokens split at the last '/'.
    """
    words: list[str] = []
    tags: list[str] = []
    for token in paragraph.split():
        # `[中国/ns` opens a compound (but `[/w` is the bracket itself); `政府/n]nt` closes one.
        if token.startswith("[") and "/" in token[1:] and not token[1:].startswith("/"):
            token = token[1:]
        end = _COMPOUND_END.match(token)
        if end and "/" in end.group(1):
            token = end.group(1)
        word, sep, tag = token.rpartition("/")
        if not sep or not word or not tag:
            raise ValueError(f"token {token!r} is not word/tag")
        words.append(word)
        tags.append(tag)
    return words, tags


def _read_pos_tagged(path: Path, label: str, policy: _ErrorPolicy) -> Iterator[RawDocument]:
    for line in _iter_lines(path):
        if line.error is not None:
            policy.handle(line.error)
            continue
        assert line.text is not None
        try:
            words, _ = parse_pos_tagged(line.text)
        except ValueError as err:
            policy.handle(
                CorpusFormatError(path, str(err), reason="malformed_pos_tag", line=line.number)
            )
            continue
        if not words:
            continue
        ends: list[int] = []
        total = 0
        for word in words:
            total += len(word)
            ends.append(total)
        yield RawDocument(f"{label}:{line.number}", "".join(words), ends)


def _read_parquet(
    path: Path, label: str, text_field: str, policy: _ErrorPolicy
) -> Iterator[RawDocument]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise CorpusFormatError(
            path, f"not a Parquet file ({err})", reason="corrupt_stream"
        ) from err
    with parquet:
        schema = parquet.schema_arrow
        # A missing or non-string column is a config mistake for the whole file, not a bad record.
        if text_field not in schema.names:
            raise CorpusFormatError(
                path, f"no column {text_field!r} (columns: {schema.names})", reason="config"
            )
        column_type = schema.field(text_field).type
        if not (pa.types.is_string(column_type) or pa.types.is_large_string(column_type)):
            raise CorpusFormatError(
                path, f"column {text_field!r} is {column_type}, not a string", reason="config"
            )
        row = 0
        for batch in parquet.iter_batches(columns=[text_field]):
            for text in batch.column(0).to_pylist():
                if text is None:
                    policy.handle(
                        CorpusFormatError(
                            path, f"{text_field!r} is null", reason="missing_text_field", row=row
                        )
                    )
                elif text.strip():
                    yield RawDocument(f"{label}:{row}", text)
                row += 1


def read_documents(
    path: str | Path,
    fmt: str,
    *,
    text_field: str = "text",
    label: str | None = None,
    on_error: OnError = "raise",
    skipped: Counter[str] | None = None,
) -> Iterator[RawDocument]:
    """Stream the documents of one corpus file.

    `doc_id` is `{label or file name}:{line}` with the line where the document starts (Parquet:
    the 0-based row index). With `on_error="skip"` bad records are dropped and counted in
    `skipped` under one of SKIP_REASONS; otherwise the first one raises CorpusFormatError.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unknown corpus format {fmt!r}; expected one of {FORMATS}")
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    policy = _ErrorPolicy(on_error, skipped)
    name = label or path.name
    if fmt == "lines":
        yield from _read_lines(path, name, policy)
    elif fmt == "documents":
        yield from _read_documents(path, name, policy)
    elif fmt == "jsonl":
        yield from _read_jsonl(path, name, text_field, policy)
    elif fmt == "pos_tagged":
        yield from _read_pos_tagged(path, name, policy)
    else:
        yield from _read_parquet(path, name, text_field, policy)
