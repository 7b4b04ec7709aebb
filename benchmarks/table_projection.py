"""The capable-model table's plan and its projection from the cells run so far.

The table (``benchmarks/qwen_table.sh``) is :data:`TABLE`: each row at every dataset and
seed. A row's cost is projected from its own measured cells, or, until it has run, at a
measured row that costs alike (:data:`STAND_IN`). ``benchmarks/qwen_table_cost.py``
measures the cells and writes the report.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from harness import RESULTS

TABLE: dict[str, Any] = {"datasets": 3, "seeds": 3, "questions": 200,
         "rows": ["io", "ph_cot", "self_topk", "deeplift", "amplify", "dspy_bootstrap",
                  "auto_cot", "kernelshap", "ph_cot/error", "self_topk/error",
                  "deeplift/error", "kernelshap/error"]}
"""The capable-model table (``benchmarks/qwen_table.sh``): a row is a method, with
``/error`` for the error strategy (success otherwise)."""
STAND_IN = {"dspy_bootstrap": "ph_cot", "auto_cot": "ph_cot", "self_topk": "io",
            "deeplift": "io", "amplify": "io", "kernelshap": "deeplift"}
"""The measured row a row not measured yet is projected at: Ph-CoT for a chain of
thought as long, IO (a lower bound) for a sentence of keywords, DeepLift for KernelShap's
answers (its prompt building, 200 model passes per demonstration, has no stand-in: see
:func:`build_seconds`); an error row at its success row."""


def row_of(method: str, strategy: str) -> str:
    """The :data:`TABLE` row of a cell's method and strategy."""
    return f"{method}/error" if strategy == "error" else method


def stand_in_of(row: str) -> str:
    """The row a row not measured yet is projected at (see :data:`STAND_IN`)."""
    method = row.split("/")[0]
    return method if row.endswith("/error") else STAND_IN.get(method, "ph_cot")


def measured_stand_in(row: str, measured: Collection[str]) -> str:
    """``row`` if ``measured``, else the first measured row of its chain of stand-ins
    (an error row's success row, then that row's stand-in...), else the chain's end."""
    while row not in measured and row != stand_in_of(row):
        row = stand_in_of(row)
    return row


def build_seconds(row: str, stand_in: str, measured: dict[str, float],
                  kernelshap_explaining: float | None = None) -> float | None:
    """A row's prompt-building seconds: measured on the row or on its method's other
    strategy, else its stand-in's. No other method's prompt costs what KernelShap's 200
    passes per demonstration do, so until its cells run, its prompt is its stand-in's
    (DeepLift's: the same pool scoring, and gradients that cost little) plus
    ``kernelshap_explaining``, its demonstrations' seconds measured on their own
    (``benchmarks/kernelshap_cost.py``); ``None`` when that was not measured either."""
    method = row.split("/")[0]
    for source in (row, method, f"{method}/error"):
        if source in measured:
            return measured[source]
    if method != "kernelshap":
        return measured.get(stand_in, 0.0)
    if kernelshap_explaining is None:
        return None
    return measured.get(stand_in, 0.0) + kernelshap_explaining


def kernelshap_explaining() -> float | None:
    """Seconds to explain one prompt's demonstrations with KernelShap at the paper's
    coalitions, as ``benchmarks/kernelshap_cost.py`` measured them; ``None`` if not."""
    path = RESULTS / "kernelshap_cost.json"
    if not path.is_file():
        return None
    return float(json.loads(path.read_text(encoding="utf-8"))["prompt_seconds"])


TARGET_HOURS = 3
"""The speed issue's target for the whole table on two cores."""

FULL_CHUNK = 100
"""Questions in a chunk the size the rest of the table runs with (100 or 200)."""


def quiet_rate(chunks: list[tuple[float, int]]) -> float:
    """A row's seconds per question on the quiet machine, from its chunks' ``(seconds
    per question, questions)``: the least among chunks of at least :data:`FULL_CHUNK`
    questions (contention only slows a chunk; a short chunk decodes few rows per step
    and costs more), else the largest chunk's."""
    full = [rate for rate, questions in chunks if questions >= FULL_CHUNK]
    return min(full) if full else max(chunks, key=lambda chunk: chunk[1])[0]


def project_table(cells: list[dict[str, Any]],
                  explaining: float | None = None) -> dict[str, dict[str, Any]]:
    """Each :data:`TABLE` row's seconds per question, prompt-building seconds and hours
    over the whole table: measured on the row's own cells, else at its stand-in's
    (KernelShap's prompt with ``explaining``, see :func:`build_seconds`)."""
    per_row = {row: quiet_rate([chunk for c in cells if c["row"] == row
                                for chunk in c["chunk_seconds_per_question"]])
               for row in TABLE["rows"] if any(c["row"] == row for c in cells)}
    # A prompt is built once per cell; the least build is the closest to the quiet
    # machine's, as for answering.
    build_per_row = {row: min(c["build_seconds"] for c in cells if c["row"] == row)
                     for row in per_row}
    projected = {}
    for row in TABLE["rows"]:
        stand_in = measured_stand_in(row, per_row)
        per_question = per_row.get(stand_in, 0.0)
        build = build_seconds(row, stand_in, build_per_row, explaining)
        projected[row] = {"seconds_per_question": per_question,
                          "measured": row in per_row, "stand_in": stand_in,
                          "build_seconds": build,
                          "hours": (per_question * TABLE["questions"] + (build or 0.0))
                          * prompts_per_row() / 3600}
    return projected


def prompts_per_row() -> int:
    """Cells (one prompt each) of a :data:`TABLE` row: one per dataset and seed."""
    return int(TABLE["seeds"] * TABLE["datasets"])


def finished_per_row(cells: list[dict[str, Any]]) -> dict[str, int]:
    """Each :data:`TABLE` row's finished cells."""
    return {row: sum(c["finished"] and c["row"] == row for c in cells)
            for row in TABLE["rows"]}


def hours_left(projected: dict[str, dict[str, Any]], done: dict[str, int]) -> float:
    """The projected hours of the cells not finished yet."""
    prompts = prompts_per_row()
    return sum(p["hours"] * (1 - min(done[row], prompts) / prompts)
               for row, p in projected.items())


def table_flop_limit_hours(cells: list[dict[str, Any]], projected: dict[str, dict[str, Any]],
                           params: int, gflops: float) -> float:
    """The FLOP limit of the whole table's tokens, from each row's tokens per question
    (a row not run yet at its stand-in's)."""
    tokens_per_question = {c["row"]: (c["tokens"] - c["prefix_tokens"]) / c["questions"]
                           for c in cells}
    table_tokens = sum(tokens_per_question.get(m, tokens_per_question.get(p["stand_in"], 0.0))
                       for m, p in projected.items()) * TABLE["questions"] * TABLE["seeds"] \
        * TABLE["datasets"]
    return 2 * params * table_tokens / (gflops * 1e9) / 3600
