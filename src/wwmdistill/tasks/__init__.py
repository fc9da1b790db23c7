"""Downstream tasks: read the official files of a task, check every record, write Arrow splits.

- `registry`: the task specs, their fixed label orders, and a task's config block;
- `readers`: official files (or HF rows) -> checked examples;
- `sources`: where a task's data comes from (data root, download, HF: one source per task),
  reading its splits, and carving splits out of one file;
- `build`: the Arrow splits and `stats.json` (with each split's `[UNK]` rate).
"""

from wwmdistill.artifacts.task_data import open_task
from wwmdistill.tasks.build import build_task, console_echo
from wwmdistill.tasks.registry import (
    IFLYTEK_LABELS,
    NLI_LABELS,
    TASKS,
    TNEWS_LABELS,
    TaskSettings,
)
from wwmdistill.tasks.sources import MissingTaskData, TaskPlan, plan_task

__all__ = [
    "IFLYTEK_LABELS",
    "MissingTaskData",
    "NLI_LABELS",
    "TASKS",
    "TNEWS_LABELS",
    "TaskPlan",
    "TaskSettings",
    "build_task",
    "console_echo",
    "open_task",
    "plan_task",
]
