"""A text's replaceable words and their candidates, and how slot choices edit the text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """A replaceable word: characters [start, end) of its text and what may replace it."""

    start: int
    end: int
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class TextPlan:
    """A text's slots, in text order; everything outside them is never changed."""

    text: str
    slots: tuple[Slot, ...]


def apply_choices(plan: TextPlan, choices: Sequence[int]) -> str:
    """The text with slot i replaced by its candidate `choices[i]` (-1 keeps the word)."""
    if len(choices) != len(plan.slots):
        raise ValueError(f"{len(choices)} choices for {len(plan.slots)} slots")
    pieces, cursor = [], 0
    for slot, choice in zip(plan.slots, choices, strict=True):
        if choice < 0:
            continue
        pieces.append(plan.text[cursor : slot.start])
        pieces.append(slot.candidates[choice])
        cursor = slot.end
    pieces.append(plan.text[cursor:])
    return "".join(pieces)


def align(plan: TextPlan, text: str) -> tuple[int, ...] | None:
    """The choices that turn the plan's text into `text`, or None when no choices can.

    Depth-first over the slots (a synonym may differ in length, so a slot may match more than
    one way); everything between slots must be the original's.
    """
    slots = plan.slots
    # A stack of (next slot, position reached in `text`, choices so far).
    stack: list[tuple[int, int, tuple[int, ...]]] = [(0, 0, ())]
    while stack:
        i, pos, chosen = stack.pop()
        fixed_from = slots[i - 1].end if i else 0
        fixed_to = slots[i].start if i < len(slots) else len(plan.text)
        fixed = plan.text[fixed_from:fixed_to]
        if not text.startswith(fixed, pos):
            continue
        pos += len(fixed)
        if i == len(slots):
            if pos == len(text):
                return chosen
            continue
        slot = slots[i]
        options = [(-1, plan.text[slot.start : slot.end]), *enumerate(slot.candidates)]
        # Pushed in reverse so the original word is tried first.
        for choice, word in reversed(options):
            if text.startswith(word, pos):
                stack.append((i + 1, pos + len(word), (*chosen, choice)))
    return None
