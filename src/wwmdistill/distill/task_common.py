"""TinyBERT's two-stage task distillation, from a fine-tuned teacher into a general student.

Stage 1 teaches the student's intermediate layers (embedding, hidden states through learned
projections, attention scores) on the (augmented) training set, with the fine-tuned teacher in
the loop. Stage 2 starts from stage 1 and teaches the prediction layer: soft cross-entropy against
the teacher's logits (cached once per task), plus an optional hard-label term, keeping the best
dev checkpoint as fine-tuning does. Span QA distils the start and end logits.

- `task_logits`: the fine-tuned teacher's logits on the augmented rows, cached once per task;
- `task_stage1`: stage 1, the intermediate layers;
- `task_stage2`: stage 2, the prediction layer;
- here, what they share: the augmented rows as task rows, and a launch's arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from wwmdistill.finetune import FinetuneSettings, TaskData
from wwmdistill.settings import TaskDistillSettings


def task_table(table: pa.Table, task: TaskData) -> pa.Table:
    """Augmented rows as the task's train rows: `origin` and `augmented` dropped."""
    names = task.splits["train"].column_names
    return table.select(names)


def parse_arguments(
    arguments: dict[str, Any],
) -> tuple[TaskDistillSettings, FinetuneSettings, dict[str, Path], int]:
    """A stage's settings, finetune settings, paths and seed from its JSON-able arguments.

    `task_distill` and `finetune` are the task's config blocks; paths are strings, None when
    absent. This is what the `--config` file of a torchrun launch holds.
    """
    task = arguments["task"]
    settings = TaskDistillSettings.from_config(
        arguments["task_distill"], f"tasks.{task}.task_distill"
    )
    finetune = FinetuneSettings.from_config(arguments["finetune"], f"tasks.{task}.finetune")
    paths = {key: Path(value) for key, value in arguments["paths"].items() if value is not None}
    seed = int(arguments["seed"])
    return settings, finetune, paths, seed
