"""Append-only JSONL checkpoints: long runs lose no finished unit of work.

Each finished unit (a chunk of scored pool examples, a rationale, a chunk of
predictions) is appended and fsynced at once. A file cut short by a kill has at most
one torn last line, which readers skip; rereading never duplicates a unit because
units are keyed (by example or question id) and later copies are ignored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

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
