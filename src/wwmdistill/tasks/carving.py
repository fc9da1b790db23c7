"""Carving splits out of a file the config names for several of them (`splits: {train: dev.json}`
beside the default `dev: dev.json`): seeded, stratified by label (by document for span QA and
multiple choice), never a row in two.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from wwmdistill.kinds import TaskKind, kind_of
from wwmdistill.tasks.examples import Example
from wwmdistill.tasks.registry import SPLITS, TaskSettings, TaskSpec


def carve_groups(names: Mapping[str, str]) -> dict[str, list[str]]:
    """File (or HF split) -> the splits carved from it, for those named by more than one split."""
    by_name: dict[str, list[str]] = {}
    for split, name in names.items():
        by_name.setdefault(name, []).append(split)
    return {name: splits for name, splits in by_name.items() if len(splits) > 1}


def check_carves(spec: TaskSpec, names: Mapping[str, str]) -> None:
    """Refuse a file named by several splits unless train is one of them."""
    for name, splits in carve_groups(names).items():
        if "train" not in splits:
            raise ValueError(
                f"config tasks.{spec.name}.splits: {' and '.join(splits)} all name {name}; a "
                f"file named by several splits is carved into train and held-out splits, so "
                f"train must name it too (or give each split its own file)"
            )


def carve_text(names: Mapping[str, str]) -> str:
    """What is carved from what, as the end of a sentence (empty when nothing is)."""
    groups = carve_groups(names)
    return "".join(f"; {', '.join(splits)} carved from {name}" for name, splits in groups.items())


def carve(
    pool: Sequence[Example],
    splits: Sequence[str],
    settings: TaskSettings,
    seed: int,
    task: str,
    kind: TaskKind,
) -> dict[str, list[Example]]:
    """Seeded, stratified carve-out of `splits` from one pool of labelled examples.

    Each held-out split in `splits` takes round(share x groups) of every stratum (test
    `test_fraction`, then dev `dev_fraction`), train the rest. The kind says the strata and the
    groups that never straddle two splits (`TaskKind.carve_key`): classification is stratified
    by label and groups identical texts; span QA and multiple choice group the questions of one
    document. The same pool, splits, fractions and seed give the same rows
    in the same order.
    """
    shares = {
        "test": settings.test_fraction if "test" in splits else 0.0,
        "dev": settings.dev_fraction if "dev" in splits else 0.0,
    }
    strata: dict[int, dict[Any, list[Example]]] = {}
    for example in pool:
        stratum, group = kind.carve_key(example)
        strata.setdefault(stratum, {}).setdefault(group, []).append(example)
    rng = random.Random(f"{seed}/{task}/split")
    out: dict[str, list[Example]] = {split: [] for split in SPLITS}
    for stratum in sorted(strata):
        groups = list(strata[stratum].values())
        rng.shuffle(groups)
        n_test = round(len(groups) * shares["test"])
        n_dev = round(len(groups) * shares["dev"])
        for split, part in (
            ("test", groups[:n_test]),
            ("dev", groups[n_test : n_test + n_dev]),
            ("train", groups[n_test + n_dev :]),
        ):
            out[split] += [example for group in part for example in group]
    for examples in out.values():
        rng.shuffle(examples)  # interleave the strata
    return {split: out[split] for split in splits}


def carve_info(
    splits: Sequence[str], settings: TaskSettings, spec: TaskSpec, source: str, seed: int
) -> dict[str, Any]:
    """How `splits` were carved from `source`, as each split's stats and metadata record it."""
    return {
        "from": source,
        "splits": list(splits),
        "shares": {s: getattr(settings, f"{s}_fraction") for s in splits if s != "train"},
        "by": kind_of(spec.kind).carved_by,
        "seed": seed,
    }
