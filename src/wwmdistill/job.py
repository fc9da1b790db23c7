"""The frame of every workflow script: thread limits, and all output into the rule's `log:`."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from wwmdistill.progress import console

# Libraries size their thread pools from these when first imported (rayon in ltp_extension and
# tokenizers, OpenMP in torch), so they are set before any of them loads.
_THREAD_VARIABLES = ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def log_label(log_path: str | os.PathLike[str]) -> str:
    """What a job's heartbeat calls it: results/logs/general/s.log is general/s."""
    parts = Path(log_path).with_suffix("").parts
    if "logs" not in parts:
        return parts[-1]
    return "/".join(parts[len(parts) - parts[::-1].index("logs") :])


@contextlib.contextmanager
def job(
    log_path: str | os.PathLike[str],
    threads: int | None = None,
    heartbeat_seconds: float | None = None,
) -> Iterator[logging.Logger]:
    """Run a job's body with `threads` cores and its output in `log_path`.

    Python logging, tqdm bars and what native code prints (LTP's trainer reports from Rust)
    all land in the log: file descriptors 1 and 2 point at it for the duration. An exception
    is logged with its traceback before it propagates, so the log says why the job failed.
    The stderr the job started with (Snakemake's console) hears the heartbeat of long loops,
    at most every `heartbeat_seconds` (wwmdistill.progress).
    """
    if threads is not None:
        for name in _THREAD_VARIABLES:
            os.environ[name] = str(threads)
        if "torch" in sys.modules:  # already sized its pool from the environment at import
            sys.modules["torch"].set_num_threads(threads)
    logger = logging.getLogger("wwmdistill")
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
        old_streams = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = stream
        terminal = open(saved[1], "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        try:
            with console(terminal, log_label(log_path), heartbeat_seconds):
                yield logger
        except BaseException:
            logger.exception("job failed")
            raise
        finally:
            stream.flush()
            terminal.close()
            sys.stdout, sys.stderr = old_streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            root.removeHandler(handler)
