"""Wall time of the front half of the default DAG, and `snakemake -n` time with 1024 shards.

Usage: .venv/bin/python benchmarks/bench_dag.py [--cores 2] [--skip-run]
Each run happens in a fresh temporary working directory; per-rule seconds come from the rules'
`benchmark:` files.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str) -> float:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    start = time.perf_counter()
    subprocess.run([*cmd, *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def dry_run_seconds(shards: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = yaml.safe_load((REPO / "config.yaml").read_text())
        config["corpus"]["shards"] = shards
        (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
        return snakemake(Path(tmp), "--dry-run", "--cores", "8", "--quiet", "all")


def front_half(cores: int) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.yaml").write_text((REPO / "config.yaml").read_text())
        wall = snakemake(Path(tmp), "--cores", str(cores))
        per_rule: dict[str, float] = {}
        for tsv in sorted((Path(tmp) / "results" / "benchmarks").rglob("*.tsv")):
            rule = tsv.parent.name if tsv.parent.name != "benchmarks" else tsv.stem
            with tsv.open() as handle:
                row = next(csv.DictReader(handle, delimiter="\t"))
            per_rule[rule] = per_rule.get(rule, 0.0) + float(row["s"])
        return wall, per_rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--skip-run", action="store_true", help="only the dry-run timing")
    args = parser.parse_args()
    for shards in (4, 1024):
        print(f"snakemake -n, corpus.shards={shards}: {dry_run_seconds(shards):.1f} s")
    if not args.skip_run:
        wall, per_rule = front_half(args.cores)
        print(f"front half of the default DAG, --cores {args.cores}: {wall:.0f} s wall")
        for rule, seconds in per_rule.items():
            print(f"  {rule}: {seconds:.1f} s (sum over its jobs)")


if __name__ == "__main__":
    main()
