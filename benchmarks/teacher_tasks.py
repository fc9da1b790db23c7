"""The fine-tuned teacher against each task's trivial baseline (benchmarks/RESULTS.md, issue 16).

    python benchmarks/teacher_tasks.py RUN_DIR TASK... [--model teacher]

Reads a run's fine-tuning predictions (results/eval/TASK/MODEL/seed*/scores.json) and scores
the same dev split's baseline, fit on train, as the eval table does
(`wwmdistill.evaluation.baseline_scores`). Needs only the model's fine-tuning jobs, not a
task's whole table: on CMRC2018 that saves the students' QA fine-tunings.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from wwmdistill.evaluation import baseline_scores
from wwmdistill.finetune import load_task


def task_row(run: Path, task: str, model: str) -> str:
    seeds = sorted((run / "results/eval" / task / model).glob("seed*/scores.json"))
    if not seeds:
        raise FileNotFoundError(f"{run}/results/eval/{task}/{model}: no seed*/scores.json")
    records = [json.loads(path.read_text("utf-8")) for path in seeds]
    metric = records[0]["metric"]
    scores = [record["dev"][metric] for record in records]
    baseline = baseline_scores(load_task(run / "results/tasks" / task))
    floor = baseline["scores"][metric]
    spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
    per_seed = " / ".join(f"{score:.1f}" for score in scores)
    method = baseline["method"].replace("_", " ")
    return (
        f"| {task} | {metric} | {floor:.1f} ({method}) | {statistics.mean(scores):.1f} ± "
        f"{spread:.1f} ({per_seed}) | {statistics.mean(scores) - floor:+.1f} | "
        f"{min(scores) - floor:+.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run's working directory")
    parser.add_argument("tasks", nargs="+")
    parser.add_argument("--model", default="teacher")
    arguments = parser.parse_args()
    model = arguments.model
    print(f"| task | metric | baseline | {model}: mean ± std (seeds) | margin | worst seed |")
    print("|---|---|---|---:|---:|---:|")
    for task in arguments.tasks:
        print(task_row(arguments.run, task, model))


if __name__ == "__main__":
    main()
