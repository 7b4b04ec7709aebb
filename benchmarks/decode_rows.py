"""What one decoding step costs at each number of rows decoded together, on the capable
model with the table's own few-shot prefix: the figure that sizes ``decode_slots`` on a
CPU.

A decoding step passes every row's last token through every weight. If reading the
weights bounds it, a step costs about the same for few rows as for many, and more slots
are nearly free; if the arithmetic bounds it, a step's time grows with its rows and more
slots gain nothing. A table cell decodes until its longest rationale ends, so its late
steps run few rows: which of the two holds decides how much that tail costs, and whether
more slots (or longer queues than slots) would shorten the table.

For each ``--rows`` value, this answers that many of the cell's test questions at once
(``decode_slots`` = rows) for ``--steps`` new tokens, and reads each step's wall time
from ``ModelCore.decode_stats``. The rows' own tokens are the real questions', so the
cache each step reads and extends is the table's. Reports seconds per step, per row-
step, and the share of the arithmetic limit (two FLOPs per weight per row at the
measured matmul peak), beside the process's peak memory.

Run: ``python benchmarks/decode_rows.py [--rows 200,100,50] [--steps 24]`` after the
table's cell exists (``benchmarks/qwen_table.sh``); the table paused, as it shares the
cores. Writes ``docs/results/decode_rows.{json,md}``.
"""

from __future__ import annotations

import argparse
import resource
from pathlib import Path
from typing import Any

from harness import (
    QWEN_GRID,
    add_report_only,
    comma_list,
    markdown_table,
    n_parameters,
    peak_gflops,
    rewrote_saved_report,
    saved_cell,
    write_with_headline,
)

from langchain_selfamplify import SLM
from langchain_selfamplify.models.embedded import QWEN_MODEL


def step_seconds(slm: SLM, texts: list[str], steps: int) -> dict[str, Any]:
    """Decode ``texts`` together for ``steps`` tokens; the steps' times at full rows."""
    rows = len(texts)
    slm.decode_slots = rows
    stats = slm.decode_stats
    stats.reset()
    slm.generate(texts, max_new_tokens=steps + 1)
    full = stats.steps_by_rows.get(rows, 0)
    if full < 2:
        raise RuntimeError(f"only {full} decoding steps ran all {rows} rows; raise --steps")
    return {"rows": rows, "steps": full, "seconds_per_step": stats.step_seconds[rows] / full,
            "steps_at_fewer_rows": stats.steps - full}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=Path, default=QWEN_GRID)
    parser.add_argument("--cell", default="arc_challenge__ph_cot__success__seed0")
    parser.add_argument("--rows", default="200,100,50", help="rows decoded together, each a run")
    parser.add_argument("--steps", type=int, default=24, help="decoding steps timed per run")
    add_report_only(parser)
    args = parser.parse_args()
    if rewrote_saved_report(args, "decode_rows", report, headline):
        return
    _, prompt, test = saved_cell(args.grid, args.cell)
    slm = SLM.load(QWEN_MODEL, show_progress=False)
    texts = [slm.format_prompt(prompt.to_messages(q), prompt.assistant_prefix()) for q in test]
    rows_values = [int(r) for r in comma_list(args.rows)]
    if max(rows_values) > len(texts):
        parser.error(f"--rows {max(rows_values)} is more than the cell's {len(texts)} questions")
    params, gflops = n_parameters(slm.model), peak_gflops()
    runs = []
    for rows in rows_values:
        run = step_seconds(slm, texts[:rows], args.steps)
        run["flop_limit_seconds"] = 2 * params * rows / (gflops * 1e9)
        runs.append(run)
        print(f"{rows} rows: {run['seconds_per_step']:.2f} s per step", flush=True)
    payload = {"cell": args.cell, "shared_prefix_tokens": slm.shared_prefix_length(
                   slm.tokenize(texts[:2])),
               "parameters": params, "peak_gflops": gflops, "steps": args.steps,
               "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "runs": runs}
    write_with_headline("decode_rows", payload, report, headline)


def headline(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The README performance table's row: the fit of a step's cost."""
    fixed, per_row = fixed_and_per_row(payload["runs"])
    return [{"target": "A decoding step on Qwen2.5-Coder-1.5B (float32, 2 cores), by rows "
                       "decoded together",
             "result": f"{fixed:.2f} s + {1000 * per_row:.1f} ms per row",
             "goal": "measured; sizes the table's slots", "met": True}]


def fixed_and_per_row(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """Least-squares fit of a step's seconds as ``fixed + per_row x rows``."""
    xs = [run["rows"] for run in runs]
    ys = [run["seconds_per_step"] for run in runs]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    per_row = (sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
               / sum((x - mean_x) ** 2 for x in xs))
    return mean_y - per_row * mean_x, per_row


def report(payload: dict[str, Any]) -> str:
    """The Markdown table of the runs, and the fit of a step's cost."""
    fixed, per_row = fixed_and_per_row(payload["runs"])
    weights_gb = payload["parameters"] * 4 / 1e9
    rows = [[run["rows"], run["steps"], round(run["seconds_per_step"], 2),
             round(1000 * run["seconds_per_step"] / run["rows"], 1),
             f"{run['flop_limit_seconds'] / run['seconds_per_step']:.0%}"]
            for run in payload["runs"]]
    return "\n".join([
        "# A decoding step's cost by the rows decoded together (Qwen2.5-Coder-1.5B, CPU)",
        "",
        f"The capable-model table's prompt (cell `{payload['cell']}`, a shared prefix of "
        f"{payload['shared_prefix_tokens']} tokens), its test questions, float32, 2 cores; "
        f"{payload['parameters'] / 1e9:.2f}B non-embedding parameters, matmul peak "
        f"{payload['peak_gflops']:.0f} GFLOP/s measured in the same run. Each row count is "
        "one call decoding that many questions together; a step's seconds are the mean of "
        "its steps at all rows. Share of the limit: the arithmetic limit (two FLOPs per "
        "weight per row at the peak) over the measured step: near 100%, more rows cost in "
        "proportion; far below, a step is bound by something other than its rows' "
        "arithmetic (reading the weights, the cache), and more rows per step come cheap. "
        f"Peak resident memory of the process: {payload['peak_rss_mib'] / 1024:.2f} GiB.",
        "",
        markdown_table(["rows", "steps timed", "seconds per step", "ms per row-step",
                        "share of the arithmetic limit"], rows),
        "",
        f"A step costs about **{fixed:.2f} s plus {1000 * per_row:.1f} ms per row** "
        "(least squares over the runs). The fixed part is about one read of the "
        f"{weights_gb:.1f} GB of float32 weights ({weights_gb / fixed:.1f} GB/s); the "
        "per-row part is the rows' arithmetic, at "
        f"{2 * payload['parameters'] / per_row / 1e9:.0f} GFLOP/s. So on two cores a "
        "step is bound by its rows' arithmetic from a few rows on: more slots gain only "
        "the fixed part, spread over more rows. A chunk decodes until its longest "
        "rationale ends, and each of those steps pays the fixed part however few rows "
        "are left: a queue decoded together, in as few chunks as the checkpoints allow, "
        "pays that tail once.",
    ])


if __name__ == "__main__":
    main()
