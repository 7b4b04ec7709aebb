"""``selfamplify`` with a pause after every checkpoint write, for the kill tests.

Usage: ``python tests/slow_checkpoint_cli.py SECONDS run|evaluate ...``. The pause
widens the window between two writes so a test can SIGKILL a run mid-way; the library
itself has no such hook.
"""

from __future__ import annotations

import sys
import time

from langchain_selfamplify import checkpoint
from langchain_selfamplify.cli import app

original = checkpoint.append_jsonl
delay = float(sys.argv.pop(1))


def slow_append_jsonl(*args: object, **kwargs: object) -> None:
    original(*args, **kwargs)  # type: ignore[arg-type]
    time.sleep(delay)


# Every module that imported the function by name gets the slow one.
for module in list(sys.modules.values()):
    if getattr(module, "append_jsonl", None) is original:
        module.append_jsonl = slow_append_jsonl  # type: ignore[attr-defined]

if __name__ == "__main__":
    app()
