"""The claims target: paired t intervals, verdicts and aggregation on hand-written eval tables.

Three seeds give 2 degrees of freedom, where Student's t has a closed form: the 97.5% quantile
is (2p - 1) / sqrt(2p(1 - p)) at p = 0.975, i.e. 0.95 / sqrt(0.04875) = 4.3026527297. With
differences whose sample std is s, the 95% interval is mean +/- 4.3026527297 * s / sqrt(3):
- d = (2, 3, 4): mean 3, s = 1, half width 2.4841377118: [0.5158622882, 5.4841377118];
- d = (-1, 1, 3): mean 1, s = 2, half width 4.9682754235: [-3.9682754235, 5.9682754235];
- d = (-0.5, 0, 0.5): mean 0, s = 0.5, half width 1.2420688559.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate
from tiny_workflow import SHARED_DATA, merged_config, planned_jobs

from wwmdistill.claims import (
    augmentation_claim,
    cache_claim,
    init_claim,
    replay_claims,
    small_fast_claim,
    wwm_vs_char_claim,
)
from wwmdistill.claims_report import render_claims, write_claims
from wwmdistill.claims_stats import (
    INCONCLUSIVE,
    NOT_REPLAYED,
    NOT_REPRODUCED,
    REPRODUCED,
    all_of,
    at_least,
    decide,
    paired_interval,
)
from wwmdistill.settings import ClaimsSettings, Config, check_config, config_schema

REPO = Path(__file__).resolve().parents[1]
T975_2 = 0.95 / 0.04875**0.5  # 4.3026527297, t.ppf(0.975, 2) in closed form
SQRT3 = 3**0.5
TASKS = ("afqmc", "chnsenticorp", "tnews")
STUDENTS = {
    "first2": {"init": "first_n", "first_n": 2, "mode": "cached", "training": {"max_steps": 300}},
    "first2_online": {
        "init": "first_n",
        "first_n": 2,
        "mode": "online",
        "training": {"max_steps": 300},
    },
    "random2": {"init": "scratch", "mode": "cached", "training": {"max_steps": 300}},
    "narrow": {"init": "scratch", "mode": "cached", "training": {"max_steps": 300}},
}


def row(model: str, scores: Sequence[float], parameters: int = 4_000_000, **relative) -> dict:
    """An eval row as evaluation.py writes it: per-seed scores and ratios to the teacher."""
    return {
        "model": model,
        "scores": {str(seed): {"accuracy": value} for seed, value in enumerate(scores, 1)},
        "mean": {"accuracy": sum(scores) / len(scores)},
        "parameters": parameters,
        "relative": {"parameters": parameters / 20_000_000, "unsteady": []} | relative,
    }


def table(task: str, *rows: dict, seeds: Sequence[int] = (1, 2, 3)) -> dict:
    teacher = row("teacher", [80.0] * len(seeds), 20_000_000, throughput=1.0)
    return {"task": task, "metric": "accuracy", "seeds": list(seeds), "rows": [teacher, *rows]}


def shifted(scores: Sequence[float], by: Sequence[float]) -> list[float]:
    return [a - b for a, b in zip(scores, by, strict=True)]


BASE = [70.0, 72.0, 74.0]
UP = (2.0, 3.0, 4.0)  # clearly positive
DOWN = (-2.0, -3.0, -4.0)  # clearly negative
STRADDLE = (-1.0, 1.0, 3.0)  # straddles 0


def pair(task: str, left: str, right: str, differences: Sequence[float]) -> dict:
    """A table where left - right is `differences`, seed by seed."""
    return table(task, row(left, BASE), row(right, shifted(BASE, differences)))


# --- statistics ------------------------------------------------------------------------------


def test_paired_interval_by_hand() -> None:
    interval = paired_interval(UP, 0.95)
    assert interval["n"] == 3 and interval["mean"] == 3.0 and interval["std"] == 1.0
    assert interval["low"] == pytest.approx(3 - T975_2 / SQRT3, abs=1e-9)
    assert interval["low"] == pytest.approx(0.5158622882, abs=1e-9)
    assert interval["high"] == pytest.approx(5.4841377118, abs=1e-9)
    straddle = paired_interval(STRADDLE, 0.95)
    assert (straddle["low"], straddle["high"]) == pytest.approx((-3.9682754235, 5.9682754235))
    assert paired_interval([1.5], 0.95) == {
        "n": 1,
        "mean": 1.5,
        "std": None,
        "low": None,
        "high": None,
    }


def test_superiority_verdicts() -> None:
    assert decide(paired_interval(UP, 0.95)) == (REPRODUCED, "lower bound +0.52 > 0")
    assert decide(paired_interval(DOWN, 0.95)) == (NOT_REPRODUCED, "upper bound -0.52 < 0")
    assert decide(paired_interval(STRADDLE, 0.95)) == (
        INCONCLUSIVE,
        "interval [-3.97, +5.97] holds 0",
    )
    assert decide(paired_interval([4.0], 0.95)) == (INCONCLUSIVE, "one seed: no interval")


def test_non_inferiority_verdicts() -> None:
    level = paired_interval([-0.5, 0.0, 0.5], 0.95)  # [-1.24, +1.24]
    assert decide(level, margin=2.0) == (REPRODUCED, "lower bound -1.24 > -2")
    assert decide(level, margin=1.0) == (INCONCLUSIVE, "interval [-1.24, +1.24] holds -1")
    # d = (-3, -4, -5): [-6.48, -1.52], wholly below -1.
    worse = paired_interval([-3.0, -4.0, -5.0], 0.95)
    assert decide(worse, margin=1.0) == (NOT_REPRODUCED, "upper bound -1.52 < -1")
    # A wider interval at 99%: t.ppf(0.995, 2) = 0.99 / sqrt(2 * 0.995 * 0.005) = 9.9249.
    assert paired_interval(UP, 0.99)["low"] == pytest.approx(3 - 9.924843 / SQRT3, abs=1e-5)


def test_all_of_and_at_least() -> None:
    assert all_of([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert all_of([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert all_of([INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED]) == NOT_REPRODUCED
    assert all_of([]) == INCONCLUSIVE
    r, i, n, x = REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED, NOT_REPLAYED
    assert at_least([r, r, r, n], 3) == REPRODUCED
    assert at_least([r, r, i, n], 3) == INCONCLUSIVE  # the inconclusive one could make 3
    assert at_least([r, r, n, n], 3) == NOT_REPRODUCED  # at most 2 can be
    assert at_least([r, r, i, x], 3) == INCONCLUSIVE
    assert at_least([r, i, x, x], 3) == NOT_REPRODUCED  # tasks not replayed count for nothing


# --- the claims on eval tables -----------------------------------------------------------------


def test_cache_is_non_inferiority_over_every_task() -> None:
    settings = ClaimsSettings()
    tables = [
        pair("afqmc", "first2", "first2_online", UP),
        pair("chnsenticorp", "first2", "first2_online", [-0.5, 0.0, 0.5]),  # [-1.24, 1.24]
        pair("tnews", "first2", "first2_online", STRADDLE),
    ]
    result = cache_claim(tables, settings, STUDENTS)
    assert [task["verdict"] for task in result["tasks"]] == [REPRODUCED, INCONCLUSIVE, INCONCLUSIVE]
    assert result["verdict"] == INCONCLUSIVE
    assert result["reason"] == "1 of 3 tasks reproduced; every one must be"
    first = result["tasks"][0]["comparisons"][0]
    assert first["test"] == "non-inferiority" and first["margin"] == 1.0
    assert first["left"]["scores"] == {"1": 70.0, "2": 72.0, "3": 74.0}
    assert first["right"]["scores"] == {"1": 68.0, "2": 69.0, "3": 70.0}
    assert first["differences"] == {"1": 2.0, "2": 3.0, "3": 4.0}
    assert (first["left"]["mean"], first["left"]["std"]) == (72.0, 2.0)
    assert (first["right"]["mean"], first["right"]["std"]) == (69.0, 1.0)
    tables[2] = pair("tnews", "first2", "first2_online", [-3.0, -4.0, -5.0])
    assert cache_claim(tables, settings, STUDENTS)["verdict"] == NOT_REPRODUCED
    tables[1:] = [pair(task, "first2", "first2_online", UP) for task in TASKS[1:]]
    assert cache_claim(tables, settings, STUDENTS)["verdict"] == REPRODUCED


def test_init_is_superiority_over_every_task() -> None:
    settings = ClaimsSettings()
    tables = [pair(task, "first2", "random2", UP) for task in TASKS]
    assert init_claim(tables, settings, STUDENTS)["verdict"] == REPRODUCED
    tables[0] = pair("afqmc", "first2", "random2", DOWN)
    result = init_claim(tables, settings, STUDENTS)
    assert result["verdict"] == NOT_REPRODUCED
    assert result["tasks"][0]["comparisons"][0]["reason"] == "upper bound -0.52 < 0"


def augmentation_table(task: str, td: Sequence[float], noaug: Sequence[float]) -> dict:
    """narrow.td - narrow.td_noaug = td and narrow.td_noaug - narrow = noaug, seed by seed."""
    plain = [60.0, 61.0, 62.0]
    middle = [p + d for p, d in zip(plain, noaug, strict=True)]
    top = [m + d for m, d in zip(middle, td, strict=True)]
    return table(task, row("narrow", plain), row("narrow.td_noaug", middle), row("narrow.td", top))


def test_augmentation_counts_tasks_where_both_steps_hold() -> None:
    settings = ClaimsSettings()
    tables = [
        augmentation_table("afqmc", UP, UP),
        augmentation_table("chnsenticorp", UP, UP),
        augmentation_table("tnews", UP, STRADDLE),  # the second step is within the noise
    ]
    result = augmentation_claim(tables, settings, STUDENTS)
    assert [task["verdict"] for task in result["tasks"]] == [REPRODUCED, REPRODUCED, INCONCLUSIVE]
    assert result["verdict"] == INCONCLUSIVE
    assert result["reason"] == "2 of 3 tasks reproduced, 1 inconclusive; at least 3 must be"
    compared = [(c["left"]["row"], c["right"]["row"]) for c in result["tasks"][0]["comparisons"]]
    assert compared == [("narrow.td", "narrow.td_noaug"), ("narrow.td_noaug", "narrow")]
    tables[2] = augmentation_table("tnews", DOWN, UP)
    assert augmentation_claim(tables, settings, STUDENTS)["verdict"] == NOT_REPRODUCED
    two = ClaimsSettings.from_config({"augmentation": {"min_tasks": 2}})
    assert augmentation_claim(tables, two, STUDENTS)["verdict"] == REPRODUCED


def test_augmentation_without_the_rows_is_not_replayed() -> None:
    tables = [augmentation_table("afqmc", UP, UP), augmentation_table("tnews", UP, UP)]
    tables.append(table("chnsenticorp", row("narrow", BASE)))
    result = augmentation_claim(tables, ClaimsSettings(), STUDENTS)
    assert result["verdict"] == NOT_REPLAYED
    assert result["reason"] == "only 2 of the claims' tasks have its rows; it needs 3"
    assert result["tasks"][2] == {
        "task": "chnsenticorp",
        "verdict": NOT_REPLAYED,
        "reason": "no rows narrow.td, narrow.td_noaug: no task distillation with ablation",
        "comparisons": [],
        "checks": [],
    }


def small_fast_table(task: str, differences: Sequence[float], **relative) -> dict:
    """narrow - 0.95 x teacher (76) = differences; a fifth of the teacher's parameters."""
    scores = [76.0 + d for d in differences]
    return table(task, row("narrow", scores, 4_000_000, **({"throughput": 5.0} | relative)))


def with_timings(table: dict, **quartiles: tuple[float, float, float]) -> None:
    """Give rows PyTorch batch-16 timings (q1, median, q3 ms) at the table's length, 64."""
    table["seq_len"] = 64
    for item in table["rows"]:
        if item["model"] in quartiles:
            q1, median, q3 = quartiles[item["model"]]
            stats = {"q1_ms": q1, "median_ms": median, "q3_ms": q3, "unsteady": True}
            item["speed"] = {"model": {"pytorch": {"64": {"16": stats}}}}


def test_small_fast_needs_size_score_and_speed() -> None:
    settings = ClaimsSettings()
    tables = [small_fast_table(task, UP) for task in TASKS]
    result = small_fast_claim(tables, settings, STUDENTS)
    assert result["verdict"] == REPRODUCED
    task = result["tasks"][0]
    assert [check["reason"] for check in task["checks"]] == ["0.2 <= 0.25", "5 >= 4"]
    score = task["comparisons"][0]
    assert score["right"]["label"] == "0.95 × teacher"
    assert score["right"]["scores"] == pytest.approx({"1": 76.0, "2": 76.0, "3": 76.0})
    assert score["interval"]["low"] == pytest.approx(0.5158622882, abs=1e-9)
    # An unsteady throughput leaves its task inconclusive; a slow one fails it.
    tables[1] = small_fast_table("chnsenticorp", UP, unsteady=["throughput"])
    result = small_fast_claim(tables, settings, STUDENTS)
    assert result["tasks"][1]["checks"][1]["reason"] == "5 from an unsteady timing"
    assert result["verdict"] == INCONCLUSIVE
    # With the timings, an unsteady ratio decides by its range over their quartiles: TNEWS's in
    # the claims run, teacher 76.0 / 79.0 / 106.8 ms and narrow 10.6 / 11.2 / 15.9 ms (q1 /
    # median / q3), is 4.78 to 10.1, all of it >= 4.
    with_timings(tables[1], teacher=(76.0, 79.0, 106.8), narrow=(10.6, 11.2, 15.9))
    check = small_fast_claim(tables, settings, STUDENTS)["tasks"][1]["checks"][1]
    assert check["reason"] == "5 from an unsteady timing, 4.78 to 10.1 over its quartiles >= 4"
    assert check["verdict"] == REPRODUCED
    with_timings(tables[1], teacher=(50.0, 79.0, 106.8), narrow=(10.6, 11.2, 15.9))
    check = small_fast_claim(tables, settings, STUDENTS)["tasks"][1]["checks"][1]
    assert check["reason"].endswith("3.14 to 10.1 over its quartiles: the range holds 4")
    assert check["verdict"] == INCONCLUSIVE
    with_timings(tables[1], teacher=(30.0, 32.0, 40.0), narrow=(10.6, 11.2, 15.9))
    check = small_fast_claim(tables, settings, STUDENTS)["tasks"][1]["checks"][1]
    assert check["reason"].endswith("1.89 to 3.77 over its quartiles < 4")
    assert check["verdict"] == NOT_REPRODUCED
    tables[2] = small_fast_table("tnews", UP, throughput=3.0)
    result = small_fast_claim(tables, settings, STUDENTS)
    assert result["tasks"][2]["checks"][1]["reason"] == "3 < 4"
    assert result["verdict"] == NOT_REPRODUCED


def test_two_rows_answering_one_class_are_no_evidence() -> None:
    # AFQMC at CPU size: teacher and students all answer the majority class (70.40 on every
    # seed), so every difference is 0. Non-inferiority would read "reproduced"; it is not.
    tables = [pair(task, "first2", "first2_online", (0.0, 0.0, 0.0)) for task in TASKS]
    for student in tables[0]["rows"][1:]:  # first2 and first2_online
        student["predicted_classes"] = {"1": 1, "2": 1, "3": 1}
    result = cache_claim(tables, ClaimsSettings(), STUDENTS)
    afqmc, chnsenticorp = result["tasks"][0], result["tasks"][1]
    assert afqmc["comparisons"][0]["reason"] == "both predict one class on every seed: no evidence"
    assert afqmc["verdict"] == INCONCLUSIVE and chnsenticorp["verdict"] == REPRODUCED
    # One side telling classes apart on one seed is a real comparison again.
    tables[0]["rows"][1]["predicted_classes"]["2"] = 2
    assert cache_claim(tables, ClaimsSettings(), STUDENTS)["tasks"][0]["verdict"] == REPRODUCED


def test_claims_without_their_students_are_not_replayed() -> None:
    tables = [pair(task, "first2", "random2", UP) for task in TASKS]
    result = replay_claims(tables, ClaimsSettings(), {"first2": STUDENTS["first2"]}, [1, 2, 3])
    verdicts = {claim["claim"]: (claim["verdict"], claim["reason"]) for claim in result["claims"]}
    assert verdicts == {
        "cache": (NOT_REPLAYED, "student(s) first2_online not in the config's students"),
        "augmentation": (NOT_REPLAYED, "student(s) narrow not in the config's students"),
        "init": (NOT_REPLAYED, "student(s) random2 not in the config's students"),
        "wwm_vs_char": (
            NOT_REPLAYED,
            "claims.wwm_vs_char.enabled is false: no character-masked teacher",
        ),
        "small_fast": (NOT_REPLAYED, "student(s) narrow not in the config's students"),
    }


def test_pairs_that_differ_beyond_the_claim_are_not_replayed() -> None:
    students = copy.deepcopy(STUDENTS)
    students["first2_online"]["training"] = {"max_steps": 600}
    tables = [pair(task, "first2", "first2_online", UP) for task in TASKS]
    result = cache_claim(tables, ClaimsSettings(), students)
    assert (result["verdict"], result["reason"]) == (
        NOT_REPLAYED,
        "first2 and first2_online also differ in ['training']",
    )
    students["first2_online"] = dict(STUDENTS["first2_online"], mode="cached")
    assert cache_claim(tables, ClaimsSettings(), students)["reason"] == (
        "modes are cached and cached, not cached and online"
    )
    shapes = [pair(task, "first2", "random2", UP) for task in TASKS]
    shapes[1]["rows"][2]["parameters"] = 3_000_000
    assert init_claim(shapes, ClaimsSettings(), STUDENTS)["reason"] == (
        "on chnsenticorp first2 has 4000000 parameters and random2 3000000: not the same shape"
    )


def teacher_info(accuracy: float, **changes) -> dict:
    """teacher.json as the teacher stage writes it, less what the claim does not read."""
    return {
        "settings": {"source": "scratch", "training": {"max_steps": 2700}},
        "steps": 2700,
        "heldout_shard": "results/masked/00007.arrow",
        "heldout": {"accuracy": accuracy, "perplexity": 150.0, "tokens": 60_000},
    } | changes


CHAR_ON = ClaimsSettings(wwm_vs_char={"enabled": True})
TEACHERS = {"teacher": teacher_info(0.27), "teacher_char": teacher_info(0.21)}


def test_wwm_vs_char_compares_the_two_teachers_downstream() -> None:
    # teacher 80 on every seed; teacher_char 2, 3, 4 below it on two tasks, within noise on one.
    tables = [
        table(task, row("teacher_char", shifted([80.0] * 3, by)))
        for task, by in zip(TASKS, (UP, UP, STRADDLE), strict=True)
    ]
    result = wwm_vs_char_claim(tables, CHAR_ON, TEACHERS)
    assert [t["verdict"] for t in result["tasks"]] == [REPRODUCED, REPRODUCED, INCONCLUSIVE]
    assert (result["verdict"], result["reason"]) == (
        INCONCLUSIVE,
        "2 of 3 tasks reproduced; every one must be",
    )
    assert result["heldout"]["teacher_char"] == {
        "shard": "results/masked/00007.arrow",
        "accuracy": 0.21,
        "perplexity": 150.0,
        "tokens": 60_000,
    }
    # Not an equal budget, or no second teacher: not replayed, saying why.
    unequal = TEACHERS | {"teacher_char": teacher_info(0.21, steps=1000)}
    assert wwm_vs_char_claim(tables, CHAR_ON, unequal)["reason"] == (
        "the two teachers differ in steps: not an equal budget"
    )
    assert wwm_vs_char_claim(tables, CHAR_ON, {})["reason"] == (
        "the teacher is not pretrained here: a character-masked twin needs a scratch one"
    )


def test_one_seed_is_inconclusive() -> None:
    tables = [
        table(task, row("first2", [75.0]), row("random2", [70.0]), seeds=[1]) for task in TASKS
    ]
    result = init_claim(tables, ClaimsSettings(), STUDENTS)
    assert result["verdict"] == INCONCLUSIVE
    assert {t["comparisons"][0]["reason"] for t in result["tasks"]} == {"one seed: no interval"}


def test_tables_must_hold_the_configs_seeds() -> None:
    with pytest.raises(ValueError, match=r"afqmc: seeds \[1, 2, 3\], but evaluation.seeds is"):
        replay_claims([pair("afqmc", "first2", "random2", UP)], ClaimsSettings(), STUDENTS, [1, 2])


# --- results/claims.md -------------------------------------------------------------------------


def full_tables() -> list[dict]:
    """Every claim's rows on every task: cache reproduced, init within the noise, narrow 2, 3, 4
    points above 0.95 x teacher and each step of augmentation 2, 3, 4 points up."""
    narrow = [78.0, 79.0, 80.0]
    noaug, td = [80.0, 82.0, 84.0], [82.0, 85.0, 88.0]
    return [
        table(
            task,
            row("first2", BASE),
            row("first2_online", shifted(BASE, UP)),
            row("random2", shifted(BASE, STRADDLE)),
            row("narrow", narrow, 4_000_000, throughput=5.0),
            row("narrow.td", td, 4_000_000, throughput=5.0),
            row("narrow.td_noaug", noaug, 4_000_000, throughput=5.0),
            row("teacher_char", shifted([80.0] * 3, UP), 20_000_000),
        )
        for task in TASKS
    ]


def test_markdown_lines(tmp_path: Path) -> None:
    run = {"teacher": {"source": "scratch"}, "students": STUDENTS}
    result = replay_claims(full_tables(), CHAR_ON, STUDENTS, [1, 2, 3], TEACHERS, run)
    verdicts = {claim["claim"]: claim["verdict"] for claim in result["claims"]}
    assert verdicts == {
        "cache": REPRODUCED,
        "augmentation": REPRODUCED,
        "init": INCONCLUSIVE,
        "wwm_vs_char": REPRODUCED,
        "small_fast": REPRODUCED,
    }
    text = render_claims(result)
    lines = text.splitlines()
    assert lines[0] == "# The seeds' claims, replayed"
    assert (
        "| claim | seed | tasks | compared | mean ± std per side | difference [95% CI] | verdict |"
        in lines
    )
    assert (
        "| cache | 000 | afqmc | first2 vs first2_online (accuracy; non-inferiority, margin 1) "
        "| 72.00 ± 2.00 vs 69.00 ± 1.00 | +3.00 [+0.52, +5.48] | reproduced: lower bound +0.52 "
        "> -1 |"
    ) in lines
    assert (
        "| init | 002, 003 | tnews | first2 vs random2 (accuracy; superiority) | 72.00 ± 2.00 vs "
        "71.00 ± 0.00 | +1.00 [-3.97, +5.97] | inconclusive: interval [-3.97, +5.97] holds 0 |"
    ) in lines
    assert (
        "| **init** | 002, 003 | 3 tasks | superiority of first2 over random2: the paired t "
        "interval's lower bound > 0 on every task | – | – | **inconclusive**: 0 of 3 tasks "
        "reproduced; every one must be |"
    ) in lines
    assert (
        "| small_fast | 004 | afqmc | parameters / teacher's <= 0.25 | – | 0.2 | reproduced: 0.2 "
        "<= 0.25 |"
    ) in lines
    assert "| augmentation | 001 | afqmc | all of the above | – | – | reproduced |" in lines
    assert lines[lines.index("## Per-seed numbers") + 4] == (
        "| claim | task | row | seed 1 | seed 2 | seed 3 |"
    )
    assert "| cache | afqmc | first2 - first2_online | 2.00 | 3.00 | 4.00 |" in lines
    assert "| small_fast | tnews | 0.95 × teacher | 76.00 | 76.00 | 76.00 |" in lines
    assert "| wwm_vs_char | afqmc | teacher - teacher_char | 2.00 | 3.00 | 4.00 |" in lines
    assert ("| wwm_vs_char | teacher_char | 21.00 | 150.0 | results/masked/00007.arrow |") in lines[
        lines.index("## Held-out masked-LM accuracy") :
    ]
    config = yaml.safe_load(text.split("```yaml\n")[1].split("```")[0])
    assert config["evaluation"] == {"seeds": [1, 2, 3]}
    assert config["teacher"] == {"source": "scratch"} and config["students"] == STUDENTS
    assert config["claims"]["cache"] == {
        "cached": "first2",
        "online": "first2_online",
        "margin": 1.0,
    }
    write_claims(result, tmp_path / "c.json", tmp_path / "c.md", tmp_path / "c.html")
    assert (tmp_path / "c.md").read_text(encoding="utf-8") == text
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))["claims"][0][
        "verdict"
    ] == (REPRODUCED)
    assert "<table>" in (tmp_path / "c.html").read_text(encoding="utf-8")


# --- settings and the preset -------------------------------------------------------------------


def test_the_claims_block_is_optional_and_unfilled() -> None:
    assert "default" not in config_schema()["properties"]["claims"]
    base = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    assert check_config(copy.deepcopy(base)).claims is None
    validate(base, str(REPO / "schemas" / "config.schema.yaml"))
    assert "claims" not in base
    assert ClaimsSettings.from_config(None) == ClaimsSettings()
    assert Config.model_fields["claims"].description


def test_the_preset_makes_every_pair_comparable() -> None:
    # configs/claims.yaml over the embedded default, defaults filled as Snakemake fills them:
    # its students are the pairs the claims name.
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    preset = yaml.safe_load((REPO / "configs" / "claims.yaml").read_text(encoding="utf-8"))
    merged_config(config, preset)
    validate(config, str(REPO / "schemas" / "config.schema.yaml"))
    settings = check_config(copy.deepcopy(config)).claims
    assert settings is not None and settings.tasks == TASKS
    tables = full_tables()
    seeds = config["evaluation"]["seeds"]
    result = replay_claims(tables, settings, config["students"], seeds, TEACHERS)
    assert [claim["claim"] for claim in result["claims"] if claim["verdict"] == NOT_REPLAYED] == []


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data (the CLUE tasks)")
def test_the_preset_plans_both_teachers_and_every_row(tmp_path: Path) -> None:
    jobs = planned_jobs(
        tmp_path,
        "results/claims.md",
        "--configfile",
        str(REPO / "config.yaml"),
        str(REPO / "configs" / "claims.yaml"),
        "--config",
        f"data_root={SHARED_DATA}",
    )
    # The character-masked twin: the training shards masked again, one more pretraining.
    assert (jobs["mask"], jobs["mask_char"], jobs["teacher"], jobs["teacher_char"]) == (4, 3, 1, 1)
    # 2 teachers and 4 students, 3 tasks, 3 seeds; narrow.td and narrow.td_noaug on each task.
    assert jobs["finetune"] == 6 * 3 * 3
    assert jobs["task_distill_stage2"] == 2 * 3 * 3
    assert jobs["deploy"] == 8 * 3
    assert jobs["claims"] == 1
