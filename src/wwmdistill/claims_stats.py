"""Paired t intervals over fine-tuning seeds and the verdict rules of wwmdistill.claims.

A comparison's verdict against a margin m (superiority: m = 0): reproduced when the interval's
lower bound > -m, not reproduced when its upper bound < -m, else inconclusive; with one seed
there is no interval (inconclusive). The module docstring of wwmdistill.claims has the rest.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from scipy import stats

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
INCONCLUSIVE, NOT_REPLAYED = "inconclusive", "not replayed"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_REPLAYED)


def paired_interval(differences: Sequence[float], confidence: float) -> dict[str, Any]:
    """n, mean and std (n - 1) of the differences and the paired t interval of their mean
    (low and high None with one seed)."""
    n, mean = len(differences), statistics.fmean(differences)
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "low": None, "high": None}
    std = statistics.stdev(differences)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "low": mean - half, "high": mean + half}


def decide(interval: Mapping[str, Any], margin: float = 0.0) -> tuple[str, str]:
    """The verdict of an interval against -margin (see the module docstring), and why."""
    low, high = interval["low"], interval["high"]
    if low is None or high is None:
        return INCONCLUSIVE, "one seed: no interval"
    bound = f"{-margin:+g}" if margin else "0"
    if low > -margin:
        return REPRODUCED, f"lower bound {low:+.2f} > {bound}"
    if high < -margin:
        return NOT_REPRODUCED, f"upper bound {high:+.2f} < {bound}"
    return INCONCLUSIVE, f"interval [{low:+.2f}, {high:+.2f}] holds {bound}"


def all_of(verdicts: Sequence[str]) -> str:
    """Reproduced when every verdict is, not reproduced when any is not, else inconclusive."""
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    if verdicts and all(verdict == REPRODUCED for verdict in verdicts):
        return REPRODUCED
    return INCONCLUSIVE


def at_least(verdicts: Sequence[str], count: int) -> str:
    """Reproduced when >= count verdicts are; not reproduced when fewer than count still could
    be (the inconclusive ones); else inconclusive. Tasks not replayed count for nothing."""
    reproduced = verdicts.count(REPRODUCED)
    if reproduced >= count:
        return REPRODUCED
    if reproduced + verdicts.count(INCONCLUSIVE) < count:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def threshold(
    name: str,
    value: float | None,
    bound: float,
    *,
    at_most: bool,
    unsteady: bool,
    quartile_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """A check of a ratio against its bound (<= bound when at_most, else >=). A ratio from an
    unsteady timing decides by `quartile_range` (the ratio at the two sides' opposite quartiles,
    low to high) where given: it holds or fails only when the whole range does."""
    sign = "<=" if at_most else ">="
    if value is None:
        verdict, reason = INCONCLUSIVE, "not measured"
    elif unsteady and quartile_range is None:
        verdict, reason = INCONCLUSIVE, f"{value:.3g} from an unsteady timing"
    elif unsteady:
        low, high = quartile_range
        spread = f"{value:.3g} from an unsteady timing, {low:.3g} to {high:.3g} over its quartiles"
        if (high <= bound) if at_most else (low >= bound):
            verdict, reason = REPRODUCED, f"{spread} {sign} {bound:g}"
        elif (low > bound) if at_most else (high < bound):
            verdict, reason = NOT_REPRODUCED, f"{spread} {'>' if at_most else '<'} {bound:g}"
        else:
            verdict, reason = INCONCLUSIVE, f"{spread}: the range holds {bound:g}"
    else:
        holds = value <= bound if at_most else value >= bound
        verdict = REPRODUCED if holds else NOT_REPRODUCED
        reason = f"{value:.3g} {sign if holds else ('>' if at_most else '<')} {bound:g}"
    return {
        "check": name,
        "value": value,
        "bound": bound,
        "sign": sign,
        "verdict": verdict,
        "reason": reason,
    }
