"""TinyBERT's sampling of augmented copies, example by example, over a task split.

Rows are processed in groups of `batch_size` examples at absolute positions of the train split
(group g holds rows [g * batch_size, (g + 1) * batch_size)), and each example's random generator
is seeded from (seed, row), so an example's teacher batches and random draws never depend on how
the split was sliced (see `slices`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from wwmdistill.augment.filler import Augmenter
from wwmdistill.augment.slots import TextPlan, apply_choices
from wwmdistill.kinds import TaskKind
from wwmdistill.progress import tqdm


def default_n(train_rows: int) -> int:
    """TinyBERT's augmented examples per original: 30, 20 from 50k rows, 10 from 300k rows."""
    if train_rows >= 300_000:
        return 10
    if train_rows >= 50_000:
        return 20
    return 30


@dataclass(frozen=True)
class Variant:
    """An augmented copy: its texts per augmented column and each plan's slot choices."""

    texts: tuple[str | None, ...]
    choices: tuple[tuple[int, ...] | None, ...]


@dataclass(frozen=True)
class AugmentedExample:
    """An original row (as a dict), its plans (None for a null column) and its variants."""

    origin: int
    row: dict[str, Any]
    plans: tuple[TextPlan | None, ...]
    variants: tuple[Variant, ...]


def example_rng(seed: int, origin: int) -> np.random.Generator:
    """The generator of one original: depends on (seed, row) only, never on slicing."""
    return np.random.default_rng([seed, origin])


def sample_variants(
    plans: Sequence[TextPlan | None], rng: np.random.Generator, n: int, p: float
) -> list[Variant]:
    """TinyBERT's sampling: n draws, each slot replaced with probability p by a uniform pick.

    Draws equal to the original or to an earlier draw are dropped, so at most n come back.
    """
    live = [
        (side, s, len(slot.candidates))
        for side, plan in enumerate(plans)
        if plan is not None
        for s, slot in enumerate(plan.slots)
        if slot.candidates
    ]
    if not live:
        return []
    counts = np.array([c for _, _, c in live])
    replaced = rng.random((n, len(live))) < p
    picks = rng.integers(0, counts, size=(n, len(live)))
    original = tuple(None if plan is None else plan.text for plan in plans)
    seen = {original}
    variants = []
    for draw in range(n):
        choices = [None if plan is None else [-1] * len(plan.slots) for plan in plans]
        for j, (side, s, _) in enumerate(live):
            if replaced[draw, j]:
                choices[side][s] = int(picks[draw, j])
        texts = tuple(
            None if plan is None else apply_choices(plan, ch)
            for plan, ch in zip(plans, choices, strict=True)
        )
        if texts in seen:
            continue
        seen.add(texts)
        variants.append(Variant(texts, tuple(None if ch is None else tuple(ch) for ch in choices)))
    return variants


def iter_augmented(
    table: pa.Table,
    kind: TaskKind,
    augmenter: Augmenter,
    *,
    n: int,
    seed: int,
    start: int = 0,
    end: int | None = None,
    progress: tqdm | None = None,
) -> Iterator[AugmentedExample]:
    """Augment rows [start, end) of a task split, group by group (see the module docstring).

    `start` must begin a group, so that the teacher batches are those of any other slicing.
    """
    group = augmenter.settings.batch_size
    end = table.num_rows if end is None else end
    if start % group:
        raise ValueError(f"start row {start} does not begin a group of {group} rows")
    columns = kind.augmented_columns
    for first in range(start, end, group):
        part = table.slice(first, min(group, end - first))
        records = part.to_pylist()
        values = [[record[c] for record in records] for c in columns]
        texts = [t for column in values for t in column if t is not None]
        plans = iter(augmenter.plan(texts))
        row_plans = [[None if t is None else next(plans) for t in column] for column in values]
        for r in range(part.num_rows):
            origin = first + r
            example_plans = tuple(column[r] for column in row_plans)
            variants = sample_variants(
                example_plans, example_rng(seed, origin), n, augmenter.settings.p
            )
            yield AugmentedExample(origin, records[r], example_plans, tuple(variants))
        if progress is not None:
            progress.update(part.num_rows)
