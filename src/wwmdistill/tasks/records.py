"""One task record -> one checked example: the fields each layout needs, labels in the task's
fixed order, answers that are spans of their context (moved where the file's start is off),
C3's options. A check that fails raises `TaskDataError` for the split's error policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wwmdistill.kinds.multiple_choice import MAX_CHOICES
from wwmdistill.tasks.error_policy import SplitLog, TaskDataError
from wwmdistill.tasks.examples import ClassificationExample, MultipleChoiceExample, QAExample
from wwmdistill.tasks.registry import NLI_LABELS, TaskSpec

_NO_GOLD = "-"  # CMNLI/OCNLI: annotators did not agree


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


def string_field(record: Mapping[str, Any], key: str, where: str) -> str:
    """The record's string field `key`; a TaskDataError when it is missing or not a string."""
    value = record.get(key)
    if not isinstance(value, str):
        raise TaskDataError(where, f"no string field {key!r}", reason="missing_field")
    return value


def _marked_wsc_text(record: Mapping[str, Any], where: str) -> str:
    """CLUEWSC text with "_" around the candidate (span1) and "[" "]" around the pronoun."""
    text = string_field(record, "text", where)
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


def classification_example(
    spec: TaskSpec,
    layout: str,
    record: Mapping[str, Any],
    index: int,
    where: str,
    split_log: SplitLog,
    simplify: Callable[[str], str],
) -> ClassificationExample | None:
    """One record (already a dict) in `layout` as an example; None when it has no gold label.

    Layouts: "pair" (sentence1, sentence2), "sentence", "csl", "wsc" (CLUE JSON names) and
    "tsv" (text_a, text_b).
    """
    if layout == "pair":
        text_a, text_b = (
            string_field(record, "sentence1", where),
            string_field(record, "sentence2", where),
        )
    elif layout == "sentence":
        text_a, text_b = string_field(record, "sentence", where), None  # TNEWS keywords are ignored
    elif layout == "csl":
        keywords = record.get("keyword")
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise TaskDataError(where, "no list-of-strings field 'keyword'", reason="missing_field")
        text_a, text_b = "；".join(keywords), string_field(record, "abst", where)
    elif layout == "wsc":
        text_a, text_b = _marked_wsc_text(record, where), None
    elif layout == "tsv":
        text_a = string_field(record, "text_a", where)
        text_b = string_field(record, "text_b", where) if spec.pair else None
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


def qa_example(
    qid: str,
    question: str,
    context: str,
    answers: list[tuple[Any, Any]],
    where: str,
    split_log: SplitLog,
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


def answer_pairs(answers: Any, where: str) -> list[tuple[Any, Any]]:
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


def c3_question(
    doc_id: str,
    k: int,
    document: list[Any],
    question: Any,
    where: str,
    split_log: SplitLog,
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
        question=simplify(string_field(question, "question", where)),
        choices=tuple(simplify(c) for c in choices),
        label=-1 if answer is None else choices.index(answer),
    )
