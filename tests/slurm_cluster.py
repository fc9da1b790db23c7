"""A real Slurm cluster on 127.0.0.1, for the Slurm tests: two nodes, both this machine.

Debian bookworm's `slurm-wlm` (22.05) and `munge`, installed with apt-get when missing. What the
daemons write (munge key and socket, slurm.conf, state, spool, logs, pid files) lives in one state
directory and the ports are free ones picked at start, so a cluster a killed run left behind never
collides with a new one. No cgroups and no accounting (no slurmdbd), as on many small clusters.
Each node is one slurmd of its own (its port, spool, pid and log named by the node) that offers
this machine's CPUs and memory, so a job may hold both nodes: a multi-node job runs for real.

One path is system-wide: /etc/slurm/slurm.conf links to the cluster's slurm.conf while it is up.
The executor plugin's job step drops SLURM_CONF from the environment of the `srun` it runs inside
each job, so that `srun` only finds a cluster at the default path. A machine with a slurm.conf of
its own there is left alone (ClusterUnavailable); `down` removes the link.

    python tests/slurm_cluster.py up DIR
    python tests/slurm_cluster.py down DIR
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")
# Daemons live in sbin, which a non-login PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
SITE_CONF = Path("/etc/slurm/slurm.conf")
CLUSTER_NAME = "wwmdistill-test"
NODES = ("node1", "node2")
PARTITION = "local"
DAEMONS = ("munged", "slurmctld", *(f"slurmd-{node}" for node in NODES))


class ClusterUnavailable(RuntimeError):
    """Slurm cannot be installed or run on this machine; the message says why."""


def program(name: str) -> str:
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        raise ClusterUnavailable(f"{name} is not installed")
    return path


def ensure_installed() -> None:
    """apt-get install slurm-wlm and munge unless every program is already there."""
    missing = [name for name in PROGRAMS if shutil.which(name, path=SEARCH_PATH) is None]
    if not missing:
        return
    why = f"{', '.join(missing)} missing"
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable(f"{why}, and there is no apt-get to install {PACKAGES}")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    for cmd in (["apt-get", "update", "-q"], install):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_hardware() -> str:
    """This machine's CPUs, sockets, cores, threads and memory as slurmd detects them."""
    line = subprocess.run(
        [program("slurmd"), "-C"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    return " ".join(field for field in line.split() if not field.startswith("NodeName="))


def slurm(command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a Slurm client command (sinfo, squeue, ...); it finds the cluster at SITE_CONF."""
    return subprocess.run(
        [program(command), *args], capture_output=True, text=True, timeout=60, check=check
    )


class Cluster:
    """munged, slurmctld and a slurmd per node, configured and run from `root`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.conf = self.root / "slurm.conf"

    def pid_file(self, daemon: str) -> Path:
        return self.root / "run" / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        return self.root / "log" / f"{daemon}.log"

    def up(self, timeout: float = 120) -> None:
        """Install if needed, start the daemons, return once the node is idle (else clean up)."""
        # slurmd starts each job as its submitter, which only root can do.
        if os.geteuid() != 0:
            raise ClusterUnavailable("a Slurm cluster (slurmd, munged, apt-get) needs root")
        ensure_installed()
        self.down()  # whatever an earlier run left behind in this directory
        self._claim_site_conf()
        try:
            self._configure()
            self._start()
            self._wait_idle(timeout)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Cancel jobs, stop the daemons this directory's pid files name; safe to repeat."""
        ours = SITE_CONF.is_symlink() and Path(os.readlink(SITE_CONF)) == self.conf
        if ours and self._pid("slurmctld") is not None:
            self._cancel_jobs()
        for daemon in reversed(DAEMONS):
            self._stop(daemon)
        if ours:
            SITE_CONF.unlink()

    def _cancel_jobs(self, timeout: float = 60) -> None:
        """Cancel every job and wait until none runs: slurmd relays the kill to their steps."""
        deadline = time.monotonic() + timeout
        while jobs := slurm("squeue", "--noheader", "--format=%i", check=False).stdout.split():
            if time.monotonic() > deadline:
                break
            slurm("scancel", *jobs, check=False)
            time.sleep(0.5)

    def _claim_site_conf(self) -> None:
        """Link SITE_CONF here, replacing only a dangling link or a stopped test cluster's."""
        if SITE_CONF.is_symlink():
            target = Path(os.readlink(SITE_CONF))
            other = Cluster(target.parent)
            if not target.exists() or (
                f"ClusterName={CLUSTER_NAME}\n" in target.read_text(errors="replace")
                and other._pid("slurmctld") is None
            ):
                SITE_CONF.unlink()
        if SITE_CONF.exists():
            raise ClusterUnavailable(
                f"{SITE_CONF} belongs to another Slurm cluster; the test cluster needs that path"
            )
        SITE_CONF.parent.mkdir(parents=True, exist_ok=True)
        SITE_CONF.symlink_to(self.conf)

    def _configure(self) -> None:
        for name in ("munge", "run", "log", "state", "spool"):
            path = self.root / name
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True, mode=0o700)
        key = self.root / "munge" / "munge.key"
        with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(os.urandom(1024))
        settings = [
            f"ClusterName={CLUSTER_NAME}",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.root / 'munge' / 'munge.socket'}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool' / '%n'}",
            f"SlurmctldPidFile={self.pid_file('slurmctld')}",
            f"SlurmdPidFile={self.pid_file('slurmd-%n')}",
            f"SlurmctldLogFile={self.log_file('slurmctld')}",
            f"SlurmdLogFile={self.log_file('slurmd-%n')}",
            # No cgroups: processes are tracked through /proc and tasks are not bound.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            # No slurmdbd: job states come from slurmctld (squeue) only.
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            # Cores and memory are both consumable, as on a real cluster.
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "ReturnToService=2",
            # Finished jobs stay visible to squeue for an hour: the executor plugin reads their
            # final state there, and a test can list every job a run submitted.
            "MinJobAge=3600",
            *(
                f"NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 Port={free_port()} "
                f"{node_hardware()} State=UNKNOWN"
                for node in NODES
            ),
            f"PartitionName={PARTITION} Nodes={','.join(NODES)} Default=YES MaxTime=INFINITE "
            "State=UP",
        ]
        self.conf.write_text("\n".join(settings) + "\n")

    def _start(self) -> None:
        munge = self.root / "munge"
        self._daemon(
            "munged",
            # munged wants every directory above its socket open to all, for non-root clients;
            # only root talks to this one, and the state directory may sit in a private tmp.
            "--force",
            f"--socket={munge / 'munge.socket'}",
            f"--key-file={munge / 'munge.key'}",
            f"--seed-file={munge / 'munged.seed'}",
            f"--pid-file={self.pid_file('munged')}",
            f"--log-file={self.log_file('munged')}",
        )
        self._daemon("slurmctld", "-f", str(self.conf))
        for node in NODES:
            self._daemon(f"slurmd-{node}", "-f", str(self.conf), "-N", node)

    def _daemon(self, name: str, *args: str) -> None:
        """Start a daemon that forks into the background and wait for its pid file."""
        binary = program(name.split("-")[0])
        done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{name} did not start:\n{done.stderr}{self._log_tail(name)}")
        deadline = time.monotonic() + 30
        while self._pid(name) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} wrote no pid file or died:{self._log_tail(name)}")
            time.sleep(0.2)

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for daemon in DAEMONS:
                if self._pid(daemon) is None:
                    raise RuntimeError(f"{daemon} died during start:{self._log_tail(daemon)}")
            shown = slurm("sinfo", "--noheader", "--Node", "--format=%N %t", check=False)
            state = shown.stdout.strip() or shown.stderr.strip()
            if state.splitlines() == [f"{node} idle" for node in NODES]:
                return
            time.sleep(0.5)
        logs = "".join(self._log_tail(daemon) for daemon in DAEMONS[1:])
        raise RuntimeError(f"nodes not idle after {timeout:.0f} s (state: {state}):{logs}")

    def _pid(self, daemon: str) -> int | None:
        """The pid in the daemon's pid file if that process is running and is ours."""
        try:
            pid = int(self.pid_file(daemon).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if self._running(pid) else None

    def _running(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        # Exited daemons may linger as zombies (nothing reaps them in a container), and a reused
        # pid belongs to some other process: ours name this state directory.
        return state != "Z" and str(self.root) in cmdline.replace("\0", " ")

    def _stop(self, daemon: str, grace: float = 30) -> None:
        pid = self._pid(daemon)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            # Watch the process, not its pid file: slurmctld removes that before it exits.
            deadline = time.monotonic() + grace
            while self._running(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._running(pid):
                os.kill(pid, signal.SIGKILL)
        self.pid_file(daemon).unlink(missing_ok=True)

    def _log_tail(self, daemon: str, lines: int = 20) -> str:
        try:
            tail = self.log_file(daemon).read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"\n(no {daemon} log)"
        return f"\n--- {self.log_file(daemon)}\n" + "\n".join(tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("directory", type=Path, help="state directory (created if missing)")
    args = parser.parse_args(argv)
    cluster = Cluster(args.directory)
    try:
        if args.action == "up":
            cluster.root.mkdir(parents=True, exist_ok=True)
            cluster.up()
        else:
            cluster.down()
    except (ClusterUnavailable, RuntimeError) as error:
        print(f"slurm_cluster {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
