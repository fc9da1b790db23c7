"""What reading a task file does about a bad record, and what it reports.

A bad record raises `TaskDataError`, naming the file and line (the question id for SQuAD-style
files). With `on_error: raise` that stops the read; with `on_error: skip` the record is dropped
and counted by reason. `SplitLog` keeps those counts for one split, with the repairs made and
whether the records carry gold labels; its summary goes into the split's metadata and stats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_REPAIRS_SHOWN = 5  # repairs quoted in the log; the rest are counted


class TaskDataError(ValueError):
    """A record of a task file is unusable; the message names the file and line or question."""

    def __init__(self, where: str, problem: str, *, reason: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.reason = reason


@dataclass
class SplitLog:
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


def split_summary(split_log: SplitLog) -> dict[str, Any]:
    """{dropped, repaired, labelled, repairs} of one read, as the split's metadata records it."""
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
