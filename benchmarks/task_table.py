"""The table of benchmarks/RESULTS.md "Every task once": each task's eval JSON of a finished run,
every model's dev score next to the task's baseline, and the job time the task took (wall and CPU
seconds of its fine-tuning jobs: on a shared machine the CPU time is the steadier figure).

    python benchmarks/task_table.py RUN_DIR

RUN_DIR is the working directory of a finished `snakemake --configfile config.yaml
configs/all_tasks.yaml` run (results/eval/*.json and results/benchmarks/**.tsv under it).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def job_seconds(run: Path, task: str) -> tuple[float, float]:
    """(wall, CPU) seconds of the task's jobs that have a benchmark (fine-tunings), summed."""
    wall = cpu = 0.0
    for tsv in (run / "results/benchmarks").rglob("*.tsv"):
        if f"/{task}/" in tsv.as_posix() or tsv.stem == task:
            with tsv.open() as handle:
                last = list(csv.DictReader(handle, delimiter="\t"))[-1]
            wall += float(last["s"])
            cpu += float(last["cpu_time"])
    return wall, cpu


def main(run: Path) -> None:
    tables = [
        json.loads(p.read_text("utf-8")) for p in sorted((run / "results/eval").glob("*.json"))
    ]
    models = [row["model"] for row in tables[0]["rows"]]
    print(f"| task | metric | baseline | {' | '.join(models)} | fine-tuning jobs (wall, CPU) |")
    print("|---|---|---" + "|---:" * (len(models) + 1) + "|")
    for table in tables:
        metric, baseline = table["metric"], table["baseline"]
        cells = {
            row["model"]: f"{row['mean'][metric]:.1f} ({row['margin'][metric]:+.1f})"
            + (" ⚠ one class" if row.get("single_class") else "")
            for row in table["rows"]
        }
        method = baseline["method"].replace("_", " ")
        wall, cpu = job_seconds(run, table["task"])
        print(
            f"| {table['task']} | {metric} | {baseline['scores'][metric]:.1f} ({method}) | "
            + " | ".join(cells.get(model, "–") for model in models)
            + f" | {wall / 60:.1f} min, {cpu / 60:.1f} min |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
