"""Shared helpers of the benchmark scripts: data location, timing, writing results.

Every benchmark writes ``docs/results/<name>.json`` (all numbers, the settings, the
machine) and ``docs/results/<name>.md`` (the table the README links), and prints the
table. Numbers are never typed by hand.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def shared_datasets() -> Path:
    """The local copies of the paper's datasets (``../shared/datasets`` by default)."""
    path = Path(os.environ.get("SELFAMPLIFY_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    if not path.is_dir():
        raise SystemExit(f"datasets not found at {path}; set SELFAMPLIFY_DATA_DIR")
    return path


@contextmanager
def timed(into: dict[str, float], key: str) -> Iterator[None]:
    """Add the wall time of the block, in seconds, to ``into[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - start


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine()}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; floats get 3 decimals."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, payload: dict[str, Any], markdown: str) -> None:
    """Write ``<name>.json`` and ``<name>.md`` under ``docs/results`` and print the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "machine": machine(),
               "command": f"python benchmarks/{name}.py"}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n",
                                         encoding="utf-8")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n", encoding="utf-8")
    print(markdown)
