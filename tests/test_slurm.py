"""The workflow on a real Slurm cluster through profiles/slurm: the jobs are Slurm's, the results
are a local run's, byte for byte.

The cluster (tests/slurm_cluster.py) is two nodes on 127.0.0.1 without accounting. Starting it
installs slurm-wlm and munge when missing and needs root; where it cannot start, these tests skip
and say why.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.ipc as ipc
import pytest
import yaml
from slurm_cluster import Cluster, ClusterUnavailable, slurm
from tiny_workflow import REPO, planned_jobs, prepare_workdir, snakemake, tiny_config

pytestmark = pytest.mark.slurm

PROFILE = REPO / "profiles" / "slurm"
# Jobs here take seconds, not hours: poll Slurm every 2 s instead of the profile's 40 s and up.
FAST_POLLING = (
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--seconds-between-status-checks",
    "2",
)
# Two runs of the tiny DAG share 2 cores here; each takes minutes.
RUN_TIMEOUT = 3600
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/")

# What differs between two runs of the same config, and why; everything else under results/ must
# be the same bytes. Speed is measured, so bench/, each task's deploy speed.json and the report
# and model cards that show it differ, and so do logs/, benchmarks/ (wall times, pids, dates) and
# checkpoints/ (the Trainer's scratch: tensorboard files named by time and pid, runtimes in its
# state; the kept models are compared in the stage outputs).
NOT_COMPARED = re.compile(
    r"^(logs|benchmarks|checkpoints|bench)/|^report\.md$|^report/(tables\.html|score_vs_speed\.png)$"
    r"|^models/[^/]+/README\.md$|^deploy/[^/]+/speed\.json$"
)
# JSON results, and the stats in some Arrow files' metadata, carry measured times (and ratios of
# them) beside what was computed: those keys are left out.
MEASURED = re.compile(
    r"seconds|runtime|_per_s(econd)?$|latency|throughput|speed|^bench$|runs_ms|end_to_end|unsteady"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.up()
    except ClusterUnavailable as error:
        pytest.skip(f"no Slurm test cluster: {error}")
    try:
        yield cluster
    finally:
        cluster.down()


def slurm_jobs(run_output: str) -> dict[str, tuple[str, str]]:
    """Slurm job id -> (state, memory asked) of every job of the run that printed this output."""
    run_id = re.search(r"SLURM run ID: (\S+)", run_output)[1]
    listing = slurm("squeue", "--states=all", "--noheader", "--format=%i|%T|%m|%j").stdout
    rows = (line.split("|") for line in listing.splitlines())
    return {job: (state, memory) for job, state, memory, name in rows if name == run_id}


def without_measurements(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_measurements(v) for k, v in value.items() if not MEASURED.search(k)}
    if isinstance(value, list):
        return [without_measurements(item) for item in value]
    return value


def metadata_value(raw: bytes) -> object:
    try:
        return without_measurements(json.loads(raw))
    except json.JSONDecodeError:
        return raw


def same_content(a: Path, b: Path) -> bool:
    """Byte for byte, or the same once measured times are left out (JSON, Arrow metadata)."""
    if a.read_bytes() == b.read_bytes():
        return True
    if a.suffix == ".json":
        return without_measurements(json.loads(a.read_bytes())) == without_measurements(
            json.loads(b.read_bytes())
        )
    if a.suffix == ".arrow":
        tables = [ipc.open_file(path).read_all() for path in (a, b)]
        metadata = [
            {key: metadata_value(value) for key, value in (table.schema.metadata or {}).items()}
            for table in tables
        ]
        bare = [table.replace_schema_metadata(None) for table in tables]
        return metadata[0] == metadata[1] and bare[0].equals(bare[1])
    return False


def differences(ours: Path, theirs: Path) -> tuple[list[str], list[str]]:
    """(files compared, files that differ) between two results/ trees."""
    files = sorted(
        str(path.relative_to(ours))
        for path in ours.rglob("*")
        if path.is_file() and not NOT_COMPARED.search(str(path.relative_to(ours)))
    )
    differ = [
        name
        for name in files
        if not (theirs / name).is_file() or not same_content(ours / name, theirs / name)
    ]
    return files, differ


def test_tiny_dag_runs_as_slurm_jobs_and_matches_a_local_run(
    cluster: Cluster, tmp_path: Path
) -> None:
    pinned = prepare_workdir(tmp_path / "pinned")
    snakemake(pinned, "--cores", "2", "results/segmenter/model")
    # Both runs read the same data_root (it is in the corpus stage's fingerprint) and use one
    # segmenter model: the LTP perceptron trainer writes different bytes on every run (Rust
    # hash-map order), which no executor can fix. Everything else is deterministic.
    config = tiny_config(pinned / "data")
    config["segmentation"]["ltp"]["model"] = str(pinned / "results/segmenter/model")
    # The Slurm executor is under test, not the task kinds: one classification and one QA task.
    del config["tasks"]["c3"]
    on_slurm = prepare_workdir(tmp_path / "slurm", config)
    local = prepare_workdir(tmp_path / "local", config)
    planned = planned_jobs(on_slurm)

    # The local run goes alongside: Slurm leaves cores idle between its jobs.
    with ThreadPoolExecutor(1) as pool:
        local_run = pool.submit(snakemake, local, "--cores", "2", timeout=RUN_TIMEOUT)
        run = snakemake(on_slurm, "--profile", str(PROFILE), *FAST_POLLING, timeout=RUN_TIMEOUT)
        local_run.result()
    output = run.stdout + run.stderr

    # Every job but the `all` target went through sbatch, and Slurm ran it to completion.
    submitted = dict(SUBMITTED.findall(output))
    expected = {rule: count for rule, count in planned.items() if rule not in ("all", "total")}
    assert Counter(submitted.values()) == expected
    jobs = slurm_jobs(output)
    assert set(jobs) == set(submitted)
    assert {state for state, _ in jobs.values()} == {"COMPLETED"}

    files, differ = differences(on_slurm / "results", local / "results")
    assert differ == []
    assert len(files) > 100


def test_a_failed_job_is_resubmitted_with_more_memory(cluster: Cluster, tmp_path: Path) -> None:
    # A job that fails once. The profile retries it, with the memory its rule grows per attempt
    # as the workflow's rules do, and squeue (there is no accounting here) reports both.
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            """\
            rule flaky:
                output: "done.txt"
                resources: mem_mb=lambda wildcards, attempt: 100 * attempt, runtime=5
                shell: "test -e once || {{ touch once; exit 3; }}; echo $SLURM_JOB_ID > {output}"
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), *FAST_POLLING],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    jobs = slurm_jobs(output)
    assert sorted(jobs.values()) == [("COMPLETED", "200M"), ("FAILED", "100M")]
    assert jobs[(tmp_path / "done.txt").read_text().strip()] == ("COMPLETED", "200M")


def test_the_slurm_profile_keeps_each_jobs_gpus(tmp_path: Path) -> None:
    # profiles/default is read with --profile too and wins key by key: a gpu cap there would
    # silently lower every Slurm job's gpu to it.
    config = tiny_config(tmp_path / "data")
    config["students"]["tiny"]["training"]["gpus"] = 2
    prepare_workdir(tmp_path, config)
    out = snakemake(tmp_path, "--profile", str(PROFILE), "--dry-run").stdout
    general = re.search(r"rule general:\n(?:    .*\n)*?    resources: (.*)", out)[1]
    assert re.search(r"\bgpu=2\b", general)


def test_a_two_node_job_trains_like_two_local_processes(cluster: Cluster, tmp_path: Path) -> None:
    """General distillation on 2 Slurm nodes, one CPU rank each: srun starts a torchrun per node,
    they meet at the c10d rendezvous, and gloo trains one world of 2 ranks: the same run, rank
    for rank, as `processes: 2` on one machine, so the student comes out the same bytes."""
    workdir = tmp_path / "work"
    config = tiny_config(workdir / "data")
    training = config["students"]["tiny"]["training"]
    training["processes"] = 2
    prepare_workdir(workdir, config)
    snakemake(workdir, "--cores", "2", "results/general/tiny", timeout=RUN_TIMEOUT)
    student = workdir / "results/general/tiny"
    local = {name: (student / name).read_bytes() for name in ("model.safetensors", "config.json")}
    local_metrics = json.loads((student / "metrics.json").read_text())

    training |= {"processes": 1, "nodes": 2}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    assert planned_jobs(workdir, "results/general/tiny") == {"general": 1, "total": 1}
    run = snakemake(
        workdir,
        "--profile",
        str(PROFILE),
        *FAST_POLLING,
        "results/general/tiny",
        timeout=RUN_TIMEOUT,
    )
    output = run.stdout + run.stderr
    ((job, rule),) = SUBMITTED.findall(output)
    assert rule == "general"
    assert slurm_jobs(output) == {job: ("COMPLETED", "16000M")}
    nodes = slurm("squeue", "--states=all", "--noheader", "--format=%D|%N", f"--jobs={job}")
    assert nodes.stdout.split() == ["2|node[1-2]"]
    # srun forwards each rank's stdout and stderr in chunks of its own: a chunk of a progress bar
    # (no newline) can end inside a character when the other stream's chunk comes between.
    log = (workdir / "results/logs/general/tiny.log").read_text(errors="replace")
    assert "--nnodes=2" in log and "--rdzv-backend=c10d" in log

    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["processes"] == local_metrics["processes"] == 2
    assert without_measurements(metrics["log_history"]) == without_measurements(
        local_metrics["log_history"]
    )
    assert {name: (student / name).read_bytes() for name in local} == local
