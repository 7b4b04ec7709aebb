"""Where an evaluation's time goes: named stages, timed only when someone is measuring.

The grid's work falls into five stages, marked where it happens:

* ``pool_scoring``: the zero-shot scores of the selection pool;
* ``demo_rationales``: the demonstrations' rationales (Self-AMPLIFY rows);
* ``baseline_setup``: building the Auto-CoT and AMPLIFY prompts;
* ``test_rationales``: the rationales the model writes before each test answer;
* ``answer_scoring``: reading the answers (label or choice scores, or parsing).

:func:`measure_stages` turns the marks on for a block and returns a :class:`StageLog`;
outside it :func:`stage` costs nothing. Time is exclusive: a stage entered inside
another (pool scoring inside AMPLIFY's set-up) is charged to the inner one only. An
optional counter (e.g. the tokens the model has run) is split the same way. Blocks
nest: a grid logs each cell's stages while a benchmark logs the whole run's, and every
active log sees every mark.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

STAGES = ("pool_scoring", "demo_rationales", "baseline_setup", "test_rationales",
          "answer_scoring")
"""The stage names, in pipeline order."""
LOGGED = (*STAGES, "other")
"""Every name a :class:`StageLog` charges time to: the stages, then the rest."""


@dataclass
class StageLog:
    """Seconds (and counter units) spent in each stage; ``"other"`` holds the rest."""

    seconds: dict[str, float] = field(default_factory=dict)
    """Exclusive wall time per stage."""
    counts: dict[str, int] = field(default_factory=dict)
    """Exclusive counter units per stage (tokens run, when a counter is given)."""
    counter: Callable[[], int] | None = None
    """Reads a running total (e.g. tokens run so far); ``None`` for time only."""
    _stack: list[str] = field(default_factory=lambda: ["other"])
    _mark: tuple[float, int] = (0.0, 0)

    def _charge(self) -> None:
        now = (time.perf_counter(), self.counter() if self.counter else 0)
        top = self._stack[-1]
        self.seconds[top] = self.seconds.get(top, 0.0) + now[0] - self._mark[0]
        self.counts[top] = self.counts.get(top, 0) + now[1] - self._mark[1]
        self._mark = now

    def totals(self) -> dict[str, float]:
        """Seconds per stage entered (``"other"`` too), to the millisecond, in
        pipeline order: what a record keeps."""
        return {name: round(self.seconds[name], 3) for name in LOGGED
                if name in self.seconds}

    def enter(self, name: str) -> None:
        self._charge()
        self._stack.append(name)

    def leave(self) -> None:
        self._charge()
        self._stack.pop()


_ACTIVE: contextvars.ContextVar[tuple[StageLog, ...]] = contextvars.ContextVar(
    "stage_logs", default=())


@contextmanager
def measure_stages(counter: Callable[[], int] | None = None) -> Iterator[StageLog]:
    """Time the stages marked inside the block; the log is complete when it ends.

    Args:
        counter: Reads a running total to split by stage, e.g. tokens run so far.
    """
    log = StageLog(counter=counter)
    outer = _ACTIVE.get()
    if outer:  # the block opens inside the outer logs' current stage
        log._stack.append(outer[-1]._stack[-1])
    log._mark = (time.perf_counter(), counter() if counter else 0)
    token = _ACTIVE.set((*outer, log))
    try:
        yield log
    finally:
        log._charge()
        _ACTIVE.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark the block as stage ``name`` (a no-op unless :func:`measure_stages` is on)."""
    logs = _ACTIVE.get()
    if not logs:
        yield
        return
    for log in logs:
        log.enter(name)
    try:
        yield
    finally:
        for log in logs:
            log.leave()


def peak_rss_mib() -> float | None:
    """Peak resident memory of this process so far, in MiB (``None`` where the platform
    does not say). It counts the model file's mapped pages while they are resident."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def cpu_capability() -> str:
    """The vector instructions PyTorch's CPU kernels use on this machine (``"AVX2"``,
    ``"AVX512"``, ...): machines that look alike can differ by several times in speed,
    and in which dtype is the faster (``benchmarks/dtype_speed.py``)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def process_facts() -> dict[str, Any]:
    """What a finished grid cell records of the process that ran it: its peak memory
    so far and its CPU's vector instructions (a Ray worker's, not the driver's)."""
    return {"peak_rss_mib": peak_rss_mib(), "cpu_capability": cpu_capability()}
