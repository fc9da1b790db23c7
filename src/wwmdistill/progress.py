"""A heartbeat of long loops on the console, while their full progress goes to the job's log.

`wwmdistill.job.job` points a job's stdout and stderr at the rule's log, so tqdm bars and the
Trainer's logs stay there in full; Snakemake's console would hear nothing for the length of a
training run. A `Heartbeat` writes one line to the console the job started with, at most every
`interval` seconds (60 by default, WWMDISTILL_HEARTBEAT_SECONDS to change it):

    [teacher] step 120/400 (30%), 1.9 steps/s, about 2m27s left

Training loops beat through `heartbeat_callback()` (a Trainer callback), other long loops through
this module's `tqdm`. Only rank 0 of a torchrun job beats; its ranks write the line to their
stderr, which wwmdistill.launch relays to the console. The heartbeat only reads counts.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

from tqdm import tqdm as _tqdm

DEFAULT_SECONDS = 60.0
# How a job hands its label and interval to the torchrun ranks it starts (they have no job()).
LABEL_VARIABLE = "WWMDISTILL_HEARTBEAT_LABEL"
SECONDS_VARIABLE = "WWMDISTILL_HEARTBEAT_SECONDS"


@dataclass(frozen=True)
class Console:
    """Where heartbeat lines go, the `[label]` they start with and how often at most."""

    stream: TextIO
    label: str
    interval: float

    @property
    def tag(self) -> str:
        return f"[{self.label}] "

    def say(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a console gone (closed pipe or stream) stops no job
            pass

    def environment(self) -> dict[str, str]:
        """The variables that give a child process (a torchrun rank) this label and interval."""
        return {LABEL_VARIABLE: self.label, SECONDS_VARIABLE: repr(self.interval)}


# Set by job() for its body; a context variable rather than a module global, so it ends with it.
_CONSOLE: ContextVar[Console | None] = ContextVar("wwmdistill_console", default=None)


def interval_seconds(seconds: float | None = None) -> float:
    """`seconds`, else WWMDISTILL_HEARTBEAT_SECONDS, else one minute."""
    if seconds is None:
        seconds = float(os.environ.get(SECONDS_VARIABLE, DEFAULT_SECONDS))
    if not seconds >= 0:
        raise ValueError(f"{SECONDS_VARIABLE}: {seconds} is not a number of seconds >= 0")
    return seconds


def current_console() -> Console:
    """job()'s console; outside a job (a torchrun rank, a test) this process's stderr."""
    console = _CONSOLE.get()
    if console is not None:
        return console
    return Console(sys.stderr, os.environ.get(LABEL_VARIABLE, "wwmdistill"), interval_seconds())


@contextlib.contextmanager
def console(stream: TextIO, label: str, interval: float | None = None) -> Iterator[Console]:
    """Heartbeats inside the block go to `stream`, tagged `[label]`."""
    token = _CONSOLE.set(Console(stream, label, interval_seconds(interval)))
    try:
        yield _CONSOLE.get()
    finally:
        _CONSOLE.reset(token)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _is_rank_zero() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class Heartbeat:
    """Says how far a loop is, at most once per interval: `update(done, total)` as it goes.

    The rate is measured from the first update, so a resumed run reports its own pace.
    """

    def __init__(
        self,
        what: str,
        unit: str,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        number: Callable[[float], str] = "{:g}".format,
    ) -> None:
        self.what, self.unit = what, unit
        self.console = console or current_console()
        self.clock = clock
        self.number = number
        self._start: tuple[float, float] | None = None
        self._last = 0.0

    def update(self, done: float, total: float | None) -> None:
        now = self.clock()
        if self._start is None:
            self._start, self._last = (now, done), now
            return
        if now - self._last < self.console.interval or not _is_rank_zero():
            return
        self._last = now
        self.console.say(self.line(done, total, now))

    def line(self, done: float, total: float | None, now: float) -> str:
        started, first = self._start or (now, done)
        elapsed = now - started
        rate = (done - first) / elapsed if elapsed > 0 else 0.0
        number = self.number
        text = f"{self.console.tag}{self.what} {number(done)}"
        if total:
            text += f"/{number(total)} ({100 * done / total:.0f}%)"
        text += f", {number(float(f'{rate:.3g}'))} {self.unit}/s"
        if total and rate > 0 and math.isfinite(rate):
            text += f", about {_duration(max(total - done, 0) / rate)} left"
        return text


def heartbeat_callback(console: Console | None = None) -> Any:
    """A Trainer callback that beats with the optimizer steps against max_steps, on rank 0."""
    return _callback_class()(console)


@functools.cache
def _callback_class() -> type:
    # Defined on first use: the loops that only need tqdm never import transformers.
    from transformers import TrainerCallback

    class HeartbeatCallback(TrainerCallback):
        def __init__(self, console: Console | None) -> None:
            self._console = console
            self._beat: Heartbeat | None = None

        def on_train_begin(self, args, state, control, **kwargs: Any) -> None:
            self._beat = Heartbeat("step", "steps", console=self._console)

        def on_step_end(self, args, state, control, **kwargs: Any) -> None:
            if self._beat is not None and state.is_world_process_zero:
                self._beat.update(state.global_step, state.max_steps)

    return HeartbeatCallback


class tqdm(_tqdm):  # noqa: N801 - a drop-in for tqdm.tqdm
    """tqdm whose bar goes where it always did (the job's log) and which also beats."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A disabled bar never calls update (nor sets desc and unit).
        if self.disable:
            self._beat = None
            return
        # Bytes and the like read as tqdm shows them (12.3M), with unit_scale.
        divisor = self.unit_divisor
        number = (lambda x: self.format_sizeof(x, divisor=divisor)) if self.unit_scale else None
        self._beat = Heartbeat(
            self.desc or "progress", self.unit, **({"number": number} if number else {})
        )

    def update(self, n: float | None = 1) -> bool | None:
        displayed = super().update(n)
        # Iterating calls update at most every mininterval, so this costs nothing per item.
        if self._beat is not None:
            self._beat.update(self.n, self.total)
        return displayed
