"""Downstream tasks: read the official files of a task, check every record, write Arrow splits.

- `registry`: the task specs, their fixed label orders, and a task's config block;
- `readers`: official files (or HF rows) -> checked examples;
- `sources`: where a task's data comes from (data root, download, HF) and reading its splits;
- `build`: the Arrow splits and `stats.json`.
"""

from wwmdistill.tasks.build import CLASSIFICATION_SCHEMA, build_task, open_task
from wwmdistill.tasks.registry import (
    IFLYTEK_LABELS,
    NLI_LABELS,
    TASKS,
    TNEWS_LABELS,
    TaskSettings,
)
from wwmdistill.tasks.sources import task_input_files

__all__ = [
    "CLASSIFICATION_SCHEMA",
    "IFLYTEK_LABELS",
    "NLI_LABELS",
    "TASKS",
    "TNEWS_LABELS",
    "TaskSettings",
    "build_task",
    "open_task",
    "task_input_files",
]
