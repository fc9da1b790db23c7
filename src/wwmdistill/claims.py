"""The seeds' claims replayed on one run's eval tables (results/eval/{task}.json), with verdicts.

Every row of a task's table is fine-tuned with the same seeds, so two rows pair seed by seed. A
comparison of row L with row R takes the differences d_s = L_s - R_s and the paired t interval
of their mean at `confidence` c over the n seeds (wwmdistill.claims_stats, scipy.stats.t):

    mean(d) +/- t.ppf((1 + c) / 2, n - 1) * std(d) / sqrt(n)       (std with n - 1)

Verdict of a comparison against a margin m (superiority: m = 0; non-inferiority: m = margin):
- reproduced when the interval's lower bound > -m;
- not reproduced when its upper bound < -m;
- inconclusive otherwise (the interval holds -m), with one seed ("one seed: no interval"), and
  when both rows predict a single class on every seed: two models that answer the majority class
  tie on every seed, and the tie says nothing about the claim.
A threshold (a parameter ratio, a throughput ratio) decides by its value alone; a missing one
is inconclusive. A throughput ratio taken from an unsteady timing (listed in the row's
relative.unsteady) decides by its range over the two timings' quartiles (the teacher's first
quartile over the student's third, to the teacher's third over the student's first): it holds
or fails when the whole range does, else it is inconclusive.

Several verdicts that must all hold (both comparisons of augmentation on a task; parameters,
score and speed of small_fast on a task; cache and init over every task): reproduced when every
one is, not reproduced when any one is not, else inconclusive. "On at least N tasks": reproduced
when >= N tasks are reproduced, not reproduced when fewer than N still could be (reproduced plus
inconclusive < N), else inconclusive.

A claim is "not replayed", with the reason, when the run lacks what it needs: its students are
not in the config or are not the pair the claim names, fewer tasks than it needs have its rows,
or (wwm_vs_char) the run has no character-masked teacher (`claims.wwm_vs_char.enabled`).
wwmdistill.claims_report renders the result as results/claims.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from wwmdistill.claims_stats import (
    INCONCLUSIVE,
    NOT_REPLAYED,
    REPRODUCED,
    all_of,
    at_least,
    decide,
    paired_interval,
    threshold,
)
from wwmdistill.eval_fields import timing
from wwmdistill.settings.claims import CHAR_TEACHER, ClaimsSettings

Table = Mapping[str, Any]
Students = Mapping[str, Mapping[str, Any]]
Result = dict[str, Any]


# --- rows of the eval tables ---------------------------------------------------------------


def find_row(table: Table, name: str) -> Mapping[str, Any] | None:
    return next((row for row in table["rows"] if row["model"] == name), None)


def side(table: Table, name: str, scale: float = 1.0) -> dict[str, Any]:
    """A row's primary scores per seed (times scale), their mean and std (None with one seed)."""
    row = find_row(table, name)
    if row is None:
        raise ValueError(f"eval table of {table['task']}: no row {name!r}")
    metric = table["metric"]
    ordered = sorted(row["scores"].items(), key=lambda item: int(item[0]))
    scores = {seed: scale * values[metric] for seed, values in ordered}
    values = list(scores.values())
    label = name if scale == 1 else f"{scale:g} × {name}"
    return {
        "row": name,
        "label": label,
        "scale": scale,
        "scores": scores,
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
    }


def one_class_throughout(table: Table, name: str) -> bool:
    """Whether a row predicted a single class on dev with every seed (never for span QA)."""
    classes = (find_row(table, name) or {}).get("predicted_classes") or {}
    return bool(classes) and all(count == 1 for count in classes.values())


def compare(
    table: Table,
    left: str,
    right: str,
    confidence: float,
    *,
    margin: float = 0.0,
    right_scale: float = 1.0,
) -> dict[str, Any]:
    """Row `left` against row `right` (times right_scale) on one task, paired by seed."""
    sides = side(table, left), side(table, right, right_scale)
    if sides[0]["scores"].keys() != sides[1]["scores"].keys():
        raise ValueError(
            f"eval table of {table['task']}: {left} has seeds {sorted(sides[0]['scores'])}, "
            f"{right} {sorted(sides[1]['scores'])}; rerun its evaluation"
        )
    differences = {
        seed: sides[0]["scores"][seed] - sides[1]["scores"][seed] for seed in sides[0]["scores"]
    }
    interval = paired_interval(list(differences.values()), confidence) | {"confidence": confidence}
    verdict, reason = decide(interval, margin)
    if one_class_throughout(table, left) and one_class_throughout(table, right):
        verdict, reason = INCONCLUSIVE, "both predict one class on every seed: no evidence"
    return {
        "task": table["task"],
        "metric": table["metric"],
        "test": "non-inferiority" if margin else "superiority",
        "margin": margin,
        "left": sides[0],
        "right": sides[1],
        "differences": differences,
        "interval": interval,
        "verdict": verdict,
        "reason": reason,
    }


def task_entry(task: str, comparisons: list, checks: list | None = None) -> dict[str, Any]:
    """One task of a claim: its comparisons and checks, which must all hold."""
    checks = checks or []
    verdicts = [item["verdict"] for item in comparisons + checks]
    return {"task": task, "verdict": all_of(verdicts), "comparisons": comparisons, "checks": checks}


def skipped_task(task: str, reason: str) -> dict[str, Any]:
    return {
        "task": task,
        "verdict": NOT_REPLAYED,
        "reason": reason,
        "comparisons": [],
        "checks": [],
    }


# --- the claims ------------------------------------------------------------------------------


def claim(name: str, seed: str, statement: str, test: str, **rest: Any) -> dict[str, Any]:
    return {"claim": name, "seed": seed, "statement": statement, "test": test} | rest


def not_replayed(base: dict[str, Any], reason: str) -> dict[str, Any]:
    return base | {"verdict": NOT_REPLAYED, "reason": reason, "tasks": []}


def missing_students(students: Students, *names: str) -> str | None:
    missing = sorted({name for name in names if name not in students})
    if not missing:
        return None
    return f"student(s) {', '.join(missing)} not in the config's students"


def differing_keys(students: Students, a: str, b: str, allowed: set[str]) -> list[str]:
    keys = set(students[a]) | set(students[b])
    return sorted(k for k in keys - allowed if students[a].get(k) != students[b].get(k))


def over_every_task(base: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    verdicts = [task["verdict"] for task in tasks]
    reason = f"{verdicts.count(REPRODUCED)} of {len(tasks)} tasks reproduced; every one must be"
    return base | {"verdict": all_of(verdicts), "reason": reason, "tasks": tasks}


def over_min_tasks(base: dict[str, Any], tasks: list[dict[str, Any]], need: int) -> Result:
    replayed = [task for task in tasks if task["verdict"] != NOT_REPLAYED]
    if len(replayed) < need:
        reason = f"only {len(replayed)} of the claims' tasks have its rows; it needs {need}"
        return base | {"verdict": NOT_REPLAYED, "reason": reason, "tasks": tasks}
    verdicts = [task["verdict"] for task in tasks]
    reason = (
        f"{verdicts.count(REPRODUCED)} of {len(tasks)} tasks reproduced, "
        f"{verdicts.count(INCONCLUSIVE)} inconclusive; at least {need} must be"
    )
    return base | {"verdict": at_least(verdicts, need), "reason": reason, "tasks": tasks}


def cache_claim(tables: Sequence[Table], settings: ClaimsSettings, students: Students) -> Result:
    cfg, conf = settings.cache, settings.confidence
    base = claim(
        "cache",
        "000",
        "the top-k logit cache loses nothing downstream",
        f"non-inferiority of {cfg.cached} against {cfg.online} within a margin of "
        f"{cfg.margin:g} (metric points): the paired t interval's lower bound > -{cfg.margin:g} "
        "on every task",
    )
    if reason := missing_students(students, cfg.cached, cfg.online):
        return not_replayed(base, reason)
    modes = (students[cfg.cached].get("mode"), students[cfg.online].get("mode"))
    if modes != ("cached", "online"):
        return not_replayed(base, f"modes are {modes[0]} and {modes[1]}, not cached and online")
    if keys := differing_keys(students, cfg.cached, cfg.online, {"mode"}):
        return not_replayed(base, f"{cfg.cached} and {cfg.online} also differ in {keys}")
    tasks = [
        task_entry(t["task"], [compare(t, cfg.cached, cfg.online, conf, margin=cfg.margin)])
        for t in tables
    ]
    return over_every_task(base, tasks)


INIT_KEYS = {"init", "teacher_layers", "first_n", "path", "scratch"}


def init_claim(tables: Sequence[Table], settings: ClaimsSettings, students: Students) -> Result:
    cfg = settings.init
    base = claim(
        "init",
        "002, 003",
        "initialising the student from the teacher's layers beats a random start",
        f"superiority of {cfg.from_teacher} over {cfg.random}: the paired t interval's lower "
        "bound > 0 on every task",
    )
    if reason := missing_students(students, cfg.from_teacher, cfg.random):
        return not_replayed(base, reason)
    inits = (students[cfg.from_teacher].get("init"), students[cfg.random].get("init"))
    if inits[0] not in ("teacher_layers", "first_n") or inits[1] != "scratch":
        return not_replayed(base, f"inits are {inits[0]} and {inits[1]}, not teacher's and scratch")
    if keys := differing_keys(students, cfg.from_teacher, cfg.random, INIT_KEYS):
        return not_replayed(base, f"{cfg.from_teacher} and {cfg.random} also differ in {keys}")
    for table in tables:
        sizes = [
            (find_row(table, name) or {}).get("parameters")
            for name in (cfg.from_teacher, cfg.random)
        ]
        if sizes[0] != sizes[1]:
            return not_replayed(
                base,
                f"on {table['task']} {cfg.from_teacher} has {sizes[0]} parameters and "
                f"{cfg.random} {sizes[1]}: not the same shape",
            )
    tasks = [
        task_entry(t["task"], [compare(t, cfg.from_teacher, cfg.random, settings.confidence)])
        for t in tables
    ]
    return over_every_task(base, tasks)


def augmentation_claim(
    tables: Sequence[Table], settings: ClaimsSettings, students: Students
) -> Result:
    cfg, name = settings.augmentation, settings.augmentation.student
    rows = [f"{name}.td", f"{name}.td_noaug", name]
    base = claim(
        "augmentation",
        "001",
        "task distillation with augmentation beats it without, which beats plain fine-tuning",
        f"superiority of {rows[0]} over {rows[1]} and of {rows[1]} over {rows[2]} (both lower "
        f"bounds > 0 on a task), on at least {cfg.min_tasks} tasks",
    )
    if reason := missing_students(students, name):
        return not_replayed(base, reason)
    tasks = []
    for table in tables:
        absent = [row for row in rows if find_row(table, row) is None]
        if absent:
            tasks.append(
                skipped_task(
                    table["task"],
                    f"no rows {', '.join(absent)}: no task distillation with ablation",
                )
            )
            continue
        pairs = [(rows[0], rows[1]), (rows[1], rows[2])]
        tasks.append(
            task_entry(table["task"], [compare(table, a, b, settings.confidence) for a, b in pairs])
        )
    return over_min_tasks(base, tasks, cfg.min_tasks)


def throughput_quartile_range(table: Table, student: str) -> tuple[float, float] | None:
    """How many times the teacher's PyTorch batch-16 time the student's is, at the timings'
    opposite quartiles (low, high); None where either timing is missing."""
    times = [
        timing(find_row(table, name) or {}, "pytorch", 16, table.get("seq_len"))
        for name in ("teacher", student)
    ]
    if any(t is None for t in times):
        return None
    teacher, mine = times
    return teacher["q1_ms"] / mine["q3_ms"], teacher["q3_ms"] / mine["q1_ms"]


def small_fast_task(table: Table, settings: ClaimsSettings) -> dict[str, Any]:
    cfg = settings.small_fast
    row = find_row(table, cfg.student)
    if row is None:
        return skipped_task(table["task"], f"no row {cfg.student}")
    relative = row.get("relative") or {}
    unsteady = set(relative.get("unsteady") or [])
    checks = [
        threshold(
            "parameters",
            relative.get("parameters"),
            cfg.max_parameters,
            at_most=True,
            unsteady=False,
        ),
        threshold(
            "throughput",
            relative.get("throughput"),
            cfg.min_speedup,
            at_most=False,
            unsteady="throughput" in unsteady,
            quartile_range=throughput_quartile_range(table, cfg.student),
        ),
    ]
    score = compare(table, cfg.student, "teacher", settings.confidence, right_scale=cfg.min_score)
    return task_entry(table["task"], [score], checks)


def small_fast_claim(
    tables: Sequence[Table], settings: ClaimsSettings, students: Students
) -> Result:
    cfg = settings.small_fast
    base = claim(
        "small_fast",
        "004",
        f"a student at <= {cfg.max_parameters:.0%} of the teacher's parameters keeps "
        f">= {cfg.min_score:.0%} of its score at >= {cfg.min_speedup:g}x its CPU throughput",
        f"per task: {cfg.student}'s parameters over the teacher's <= {cfg.max_parameters:g}; the "
        f"paired t interval of {cfg.student} - {cfg.min_score:g} × teacher has lower bound > 0; "
        f"its PyTorch b16 throughput over the teacher's >= {cfg.min_speedup:g} (unsteady: over "
        f"the timings' quartiles); all three on at least {cfg.min_tasks} tasks",
    )
    if reason := missing_students(students, cfg.student.split(".")[0]):
        return not_replayed(base, reason)
    return over_min_tasks(base, [small_fast_task(t, settings) for t in tables], cfg.min_tasks)


def wwm_vs_char_claim(
    tables: Sequence[Table], settings: ClaimsSettings, teachers: Mapping[str, Mapping[str, Any]]
) -> Result:
    """`teachers`: teacher.json of the teacher and of teacher_char, by name (empty when the run
    has no character-masked teacher)."""
    base = claim(
        "wwm_vs_char",
        "003",
        "whole-word masking beats character masking for pretraining",
        f"superiority of teacher over {CHAR_TEACHER} (the same pretraining, each token masked "
        "alone): the paired t interval's lower bound > 0 on every task; beside it, both "
        "teachers' masked-LM accuracy on the teacher's held-out whole words",
    )
    if not settings.wwm_vs_char.enabled:
        return not_replayed(
            base, "claims.wwm_vs_char.enabled is false: no character-masked teacher"
        )
    if CHAR_TEACHER not in teachers:
        return not_replayed(
            base, "the teacher is not pretrained here: a character-masked twin needs a scratch one"
        )
    wwm, char = teachers["teacher"], teachers[CHAR_TEACHER]
    for key in ("settings", "steps", "heldout_shard"):
        if wwm.get(key) != char.get(key):
            return not_replayed(base, f"the two teachers differ in {key}: not an equal budget")
    heldout = {
        name: {"shard": info["heldout_shard"]} | (info["heldout"] or {})
        for name, info in (("teacher", wwm), (CHAR_TEACHER, char))
    }
    tasks = [
        task_entry(t["task"], [compare(t, "teacher", CHAR_TEACHER, settings.confidence)])
        for t in tables
    ]
    return over_every_task(base, tasks) | {"heldout": heldout}


def check_tables(tables: Sequence[Table], seeds: Sequence[int]) -> None:
    """Each table has a teacher row and was evaluated with the config's seeds."""
    for table in tables:
        if sorted(table.get("seeds", [])) != sorted(seeds):
            raise ValueError(
                f"eval table of {table['task']}: seeds {table.get('seeds')}, but "
                f"evaluation.seeds is {list(seeds)}; rerun its evaluation"
            )
        if find_row(table, "teacher") is None:
            raise ValueError(f"eval table of {table['task']}: no teacher row")


def replay_claims(
    tables: Sequence[Table],
    settings: ClaimsSettings,
    students: Students,
    seeds: Sequence[int],
    teachers: Mapping[str, Mapping[str, Any]] | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every claim replayed on the tasks' eval tables (the claims tasks, in order); JSON-able.

    `students` are the config's student blocks; `seeds` the config's evaluation.seeds;
    `teachers` the teacher.json of each teacher, where the run has the character-masked one;
    `run` the config blocks the compared models came from, kept with the result."""
    check_tables(tables, seeds)
    return {
        "tasks": [table["task"] for table in tables],
        "seeds": list(seeds),
        "confidence": settings.confidence,
        "config": settings.model_dump(mode="json"),
        "run": dict(run or {}),
        "claims": [
            cache_claim(tables, settings, students),
            augmentation_claim(tables, settings, students),
            init_claim(tables, settings, students),
            wwm_vs_char_claim(tables, settings, teachers or {}),
            small_fast_claim(tables, settings, students),
        ],
    }
