"""Append-only JSONL checkpoints: long runs lose no finished unit of work.

Each finished unit (a chunk of scored pool examples, a rationale, a chunk of
predictions) is appended and fsynced at once. A file cut short by a kill has at most
one torn last line, which readers skip; rereading never duplicates a unit because
units are keyed (by example or question id) and later copies are ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_selfamplify.errors import SelfAmplifyError

logger = logging.getLogger(__name__)

def content_key(payload: Mapping[str, Any]) -> str:
    """A checkpoint record's key: the sha256 of ``payload`` as sorted JSON (values JSON
    cannot hold as strings), so the same work under the same settings finds its record
    and any other setting misses it."""
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def append_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> None:
    """Append records as JSON lines and flush them to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn or corrupt line is skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s, line %d: torn or corrupt record skipped", path, number)
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def guard_resume(out: Path, marker: Path, settings: Mapping[str, Any], *,
                 outputs: Sequence[str], started: bool,
                 read: Callable[[str], Mapping[str, Any]] = json.loads,
                 overwrite: bool = False, what: str = "a run") -> None:
    """Let ``out`` be resumed only with the settings it was started with.

    The one resume rule of ``selfamplify run`` and ``selfamplify evaluate``: when ``out``
    holds finished work (``started``) whose ``marker`` records other ``settings`` (or no
    readable marker), resuming would mix two settings, so it is refused; with
    ``overwrite`` that work is moved aside (into ``out/previous-<timestamp>/``, never
    deleted) instead. Nothing is written otherwise; the caller writes the marker.

    Args:
        out: The output directory.
        marker: The file holding the settings of the work in ``out``.
        settings: This run's settings, as the marker's reader returns them.
        outputs: Names in ``out`` that belong to the run (moved aside together).
        started: Whether ``out`` holds work of an earlier run.
        read: Parses the marker's text into comparable settings. Defaults to JSON.
        overwrite: Move other work aside instead of refusing it.
        what: What ``out`` holds, for the message (``"a grid run"``).

    Raises:
        SelfAmplifyError: ``out`` holds work with other settings, and no ``overwrite``.
    """
    if not started or _marked(marker, read) == dict(settings):
        return
    if not overwrite:
        raise SelfAmplifyError(
            f"{out} holds {what} with other settings; resuming it would mix them. Use "
            "another output directory, or --overwrite to move that run aside (it is "
            "kept, under previous-<timestamp>/) and start afresh.")
    aside = out / f"previous-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(parents=True, exist_ok=False)
    for name in outputs:
        if (out / name).exists():
            (out / name).rename(aside / name)
    logger.warning("%s held %s with other settings; moved it to %s", out, what, aside)


def _marked(marker: Path, read: Callable[[str], Mapping[str, Any]]) -> dict[str, Any] | None:
    """The settings a marker records; ``None`` when it is missing or unreadable."""
    try:
        return dict(read(marker.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
