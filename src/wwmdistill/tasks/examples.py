"""The examples a task's readers produce, one type per task kind."""

from __future__ import annotations

from dataclasses import dataclass


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
