"""How many CPU threads torch uses: from the cores actually free, or as told.

PyTorch's CPU thread pool spins while it waits for work. With one of two cores busy
with another process, two spinning threads fight it for the core and a scoring pass
ran about 20 times slower (``benchmarks/threads.py`` measures it). So the CLI takes
``--threads``: a number, or ``auto`` (the default), which counts the cores this
process may run on (``os.sched_getaffinity``) less those other processes keep busy,
sampled from ``/proc/stat`` over a tenth of a second, and never below one.
"""

from __future__ import annotations

import os
import time

import torch

ENV_VAR = "SELFAMPLIFY_THREADS"
"""Environment variable read when ``--threads`` is not given (a number or ``auto``)."""


def available_cpus() -> int:
    """Cores this process may run on (its affinity mask; all cores where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot, from ``/proc/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(sample_seconds: float = 0.1) -> int:
    """Cores other processes keep busy now (this one is idle while sampling); the
    one-minute load average where ``/proc/stat`` is missing."""
    first = _cpu_times()
    if first is None:
        return round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    time.sleep(sample_seconds)
    second = _cpu_times()
    assert second is not None
    busy, total = second[0] - first[0], second[1] - first[1]
    cores = os.cpu_count() or 1
    return round(cores * busy / total) if total else 0


def auto_threads() -> int:
    """Free cores: :func:`available_cpus` less :func:`busy_cores`, at least one."""
    return max(1, available_cpus() - busy_cores())


def set_threads(threads: str | int | None = None) -> int:
    """Set torch's CPU thread count and return it.

    Args:
        threads: A count, ``"auto"`` (:func:`auto_threads`), or ``None`` to read
            :data:`ENV_VAR` (``auto`` when unset).

    Raises:
        ValueError: ``threads`` is neither a positive count nor ``"auto"``.
    """
    value = str(threads if threads is not None else os.environ.get(ENV_VAR, "auto")).strip()
    if value == "auto":
        count = auto_threads()
    else:
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(f"--threads must be a positive whole number or 'auto' (got "
                             f"{value!r})")
    torch.set_num_threads(count)
    return count
