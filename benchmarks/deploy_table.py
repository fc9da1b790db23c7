"""The deploy targets of benchmarks/RESULTS.md (issue 15), from a finished run's eval JSONs.

Per task and row: int8 onnxruntime throughput at batch 16 over PyTorch fp32's (at the task's
length and at the bench length), the dev score int8 loses, and one request's end-to-end latency
over the model alone's; each as the median ratio of the timings taken in the same interleaved
rounds, with "(unsteady)" where either timing's spread is over the run's `max_spread`.

    python benchmarks/deploy_table.py RUN_DIR

RUN_DIR is the working directory of a finished run (results/eval/*.json under it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wwmdistill.eval_fields import request_timing, timing  # noqa: E402
from wwmdistill.report.formatting import fmt_ms_iqr  # noqa: E402


def speedup(row: dict, length: int, batch: int = 16) -> str:
    """PyTorch fp32's median time over int8's: how many times faster int8 is."""
    pytorch, int8 = timing(row, "pytorch", batch, length), timing(row, "int8", batch, length)
    if not pytorch or not int8:
        return "–"
    mark = " (unsteady)" if pytorch["unsteady"] or int8["unsteady"] else ""
    return f"{pytorch['median_ms'] / int8['median_ms']:.2f}x{mark}"


def main(run: Path) -> None:
    print(
        "| task | row | params (M) | PyTorch b16 ms (len) | int8 b16 ms (len) | int8 / PyTorch "
        "b16 (len) | int8 / PyTorch b16 (512) | dev score PyTorch → int8 | int8 request ms "
        "end to end | model alone | end to end / model |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in sorted((run / "results/eval").glob("*.json")):
        table = json.loads(path.read_text("utf-8"))
        length = table["seq_len"]
        for row in table["rows"]:
            deploy = row["deploy"]
            request = row["speed"]["request"]["int8"]
            overhead = request["overhead"]
            mark = " (unsteady)" if overhead["unsteady"] else ""
            print(
                f"| {table['task']} | {row['model']} | {row['parameters'] / 1e6:.2f} "
                f"| {fmt_ms_iqr(timing(row, 'pytorch', 16, length))} "
                f"| {fmt_ms_iqr(timing(row, 'int8', 16, length))} | {speedup(row, length)} "
                f"| {speedup(row, 512)} "
                f"| {deploy['pytorch']['score']:.2f} → {deploy['int8']['score']:.2f} "
                f"| {fmt_ms_iqr(request_timing(row, 'int8'))} "
                f"| {fmt_ms_iqr(request['model_only'])} "
                f"| {overhead['value']:.2f}x{mark} |"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
