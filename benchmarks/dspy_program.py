"""DSPy's compiled program on its own, and what each row's prompt cost to build.

The grid's ``dspy_bootstrap`` and ``dspy_labeled`` rows answer through an
``AmplifiedPrompt`` holding DSPy's compiled demonstrations, so they are read exactly as
every other row. This benchmark adds, for each such cell of a finished grid:

- **the program's own accuracy**: the compiled ``ChainOfThought`` rebuilt from the
  cell's saved demonstrations, its prompts made by DSPy's chat adapter, its replies
  parsed by DSPy, on the same test questions; paired with the row's accuracy;
- **cost beside accuracy**: for every cell of the grid, the seconds its prompt took
  to build (DSPy: bootstrapping, with its model calls; Self-AMPLIFY: selection and
  rationales) and the seconds it took to answer its questions.

Resumable: the program's answers are appended to ``<grid>/dspy_program.jsonl``.

Run: ``python benchmarks/dspy_program.py --grid docs/results/paper_table_qwen_run/
qwen2.5-coder-1.5b__letter --model qwen2.5-coder-1.5b [--dtype bfloat16]``.
Writes ``docs/results/dspy_program.{json,md}`` (``--name`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path
from statistics import median
from typing import Any

from harness import cores_busy, grid_predictions, markdown_table, write_results
from readme_verdicts import update_readme_verdicts

from langchain_selfamplify import SLM, AmplifiedPrompt
from langchain_selfamplify.baselines.dspy_bootstrap import (
    DSPY_METHODS,
    program_from_prompt,
    program_predictions,
)
from langchain_selfamplify.checkpoint import append_jsonl, read_jsonl
from langchain_selfamplify.evaluation.grid import GridConfig, load_grid_splits
from langchain_selfamplify.evaluation.grid_state import recorded_config
from langchain_selfamplify.evaluation.metrics import accuracy
from langchain_selfamplify.evaluation.report import row_label
from langchain_selfamplify.evaluation.statistics import compare_paired


def answer_cells(slm: SLM | None, grid: Path, config: GridConfig, chunk_size: int = 32) -> None:
    """Answer every DSPy cell's questions with its rebuilt program (what is missing)."""
    saved = grid / "dspy_program.jsonl"
    done = {(r["cell"], r["question_id"]) for r in read_jsonl(saved)}
    cells = [r for r in read_jsonl(grid / "cells.jsonl")
             if r["method"] in DSPY_METHODS and r["status"] == "done"]
    if slm is None or not cells:
        return
    splits = load_grid_splits(config)
    for cell in cells:
        program = program_from_prompt(AmplifiedPrompt.load(grid / "prompts" /
                                                           f"{cell['cell']}.json"))
        _, test = splits[(cell["dataset"], cell["seed"])]
        todo = [q for q in test if (cell["cell"], q.id) not in done]
        for start in range(0, len(todo), chunk_size):
            records = program_predictions(slm, program, todo[start : start + chunk_size],
                                          max_new_tokens=2 * config.max_rationale_tokens)
            append_jsonl(saved, [{"cell": cell["cell"], **r} for r in records])
            print(f"{cell['cell']}: {start + len(records)}/{len(todo)}", flush=True)


def program_rows(grid: Path) -> list[dict[str, Any]]:
    """Per DSPy cell: the row's and the program's accuracy, paired, and the demos."""
    row_answers: dict[str, dict[str, bool]] = defaultdict(dict)
    for record in read_jsonl(grid / "predictions.jsonl"):
        row_answers[record["cell"]].setdefault(record["question_id"], bool(record["correct"]))
    program_answers: dict[str, dict[str, bool]] = defaultdict(dict)
    for record in read_jsonl(grid / "dspy_program.jsonl"):
        program_answers[record["cell"]].setdefault(record["question_id"],
                                                   bool(record["correct"]))
    rows = []
    for cell, answers in sorted(program_answers.items()):
        mine = row_answers.get(cell, {})
        common = sorted(set(answers) & set(mine))
        if not common:
            continue
        metadata = AmplifiedPrompt.load(grid / "prompts" / f"{cell}.json").metadata
        comparison = compare_paired({q: answers[q] for q in common}, {q: mine[q] for q in common})
        rows.append({"cell": cell, "n": len(common),
                     "row_accuracy": accuracy(sum(mine[q] for q in common),
                                              len(common)).model_dump(),
                     "program_accuracy": accuracy(sum(answers[q] for q in common),
                                                  len(common)).model_dump(),
                     "program_minus_row": comparison.model_dump(),
                     "bootstrapped": metadata.get("bootstrapped"),
                     "labeled": metadata.get("labeled"), "fallback": metadata.get("fallback")})
    return rows


def cost_rows(grid: Path) -> list[dict[str, Any]]:
    """Per cell of the grid: build seconds (and model calls for DSPy), answer seconds."""
    records = grid_predictions(grid)
    rows = []
    for record in read_jsonl(grid / "cells.jsonl"):
        if record["status"] != "done":
            continue
        answers = records.get(record["cell"], [])
        path = grid / "prompts" / f"{record['cell']}.json"
        metadata = json.loads(path.read_text())["metadata"] if path.exists() else {}
        rows.append({"cell": record["cell"], "dataset": record["dataset"],
                     "row": row_label(record["method"], record["strategy"]),
                     "build_seconds": metadata.get("build_seconds", 0.0),
                     "build_stage_seconds": metadata.get("build_stage_seconds"),
                     "model_calls": metadata.get("model_calls"),
                     "replies_generated": metadata.get("replies_generated"),
                     "longest_reply_tokens": metadata.get("longest_reply_tokens"),
                     "replies_at_cap": metadata.get("replies_at_cap"),
                     "build_cores_busy": cores_busy(
                         [{"seconds": metadata["build_seconds"],
                           "cpu_seconds": metadata["build_cpu_seconds"]}]
                         if "build_cpu_seconds" in metadata else []),
                     "answer_seconds": sum(r.get("seconds", 0.0) for r in answers),
                     "answer_cores_busy": cores_busy(answers),
                     "questions": len(answers)})
    return rows


def cost_summary(costs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per dataset and row: its cells' median prompt-build seconds, model calls to build
    (DSPy's) and answering seconds, so a row's cost reads beside its accuracy."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for cost in costs:
        groups[(cost.get("dataset") or cost["cell"].split("__")[0], cost["row"])].append(cost)
    summary = []
    for (dataset, row), cells in groups.items():
        calls = [c["model_calls"] for c in cells if c["model_calls"] is not None]
        summary.append({"dataset": dataset, "row": row, "cells": len(cells),
                        "build_seconds": median(c["build_seconds"] for c in cells),
                        "model_calls": median(calls) if calls else None,
                        "answer_seconds": median(c["answer_seconds"] for c in cells)})
    return sorted(summary, key=lambda r: (r["dataset"], r["row"]))


def replies_cell(cost: dict[str, Any]) -> str:
    """How many bootstrapping replies a DSPy prompt generated, with its longest and how
    many ran to the token cap where recorded (from session 9 on): a batch decodes until
    its longest reply ends."""
    if cost.get("replies_generated") is None:
        return ""
    if cost.get("longest_reply_tokens") is None:
        return str(cost["replies_generated"])
    return (f"{cost['replies_generated']} (longest {cost['longest_reply_tokens']} tokens, "
            f"{cost['replies_at_cap']} at the cap)")


def build_split(cost: dict[str, Any]) -> str:
    """A Self-AMPLIFY prompt's build seconds in pool scoring and in demonstration
    rationales, where its record splits them (from session 8 on); empty otherwise, and
    for the baselines, whose set-up is one stage."""
    stages = cost.get("build_stage_seconds") or {}
    if not {"pool_scoring", "demo_rationales"} & set(stages):
        return ""
    return f"{stages.get('pool_scoring', 0.0):.0f}, {stages.get('demo_rationales', 0.0):.0f}"


def _pct(acc: dict[str, Any]) -> str:
    return f"{acc['value']:.1%} [{acc['ci_low']:.1%}, {acc['ci_high']:.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", required=True, help="a grid's output directory")
    parser.add_argument("--model", default=None,
                        help="the grid's model (omit to report what is saved, run nothing)")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--chunk-size", type=int, default=32,
                        help="questions answered between two checkpoints")
    parser.add_argument("--decode-slots", type=int, default=None,
                        help="replies decoded together (default: sized from the device)")
    parser.add_argument("--name", default="dspy_program")
    args = parser.parse_args()
    grid = Path(args.grid)
    config = recorded_config(grid)
    slm = (SLM.load(args.model, show_progress=False, torch_dtype=args.dtype,
                    decode_slots=args.decode_slots) if args.model else None)
    answer_cells(slm, grid, config, args.chunk_size)
    programs, costs = program_rows(grid), cost_rows(grid)
    summary = cost_summary(costs)
    program_table = markdown_table(
        ["cell", "n", "row (AmplifiedPrompt)", "DSPy program itself", "program - row",
         "demos: traces + labelled"],
        [[r["cell"], r["n"], _pct(r["row_accuracy"]), _pct(r["program_accuracy"]),
          f"{r['program_minus_row']['difference'] * 100:+.1f} pts "
          f"[{r['program_minus_row']['ci_low'] * 100:+.1f}, "
          f"{r['program_minus_row']['ci_high'] * 100:+.1f}], "
          f"p={r['program_minus_row']['p_value']:.2g}",
          f"{r['bootstrapped']} + {r['labeled']}" + (" (no trace passed)" if r["fallback"]
                                                      else "")] for r in programs])
    cost_table = markdown_table(
        ["cell", "row", "prompt build (s)", "of which pool scoring, rationales (s)",
         "model calls to build", "replies generated to build", "answering (s)", "questions",
         "cores busy: build, answering"],
        [[c["cell"], c["row"], f"{c['build_seconds']:.0f}", build_split(c),
          "" if c["model_calls"] is None else c["model_calls"],
          replies_cell(c),
          f"{c['answer_seconds']:.0f}", c["questions"],
          ", ".join("not recorded" if busy is None else f"{busy:.2f}"
                    for busy in (c.get("build_cores_busy"), c.get("answer_cores_busy")))]
         for c in costs])
    markdown = "\n".join([
        f"# DSPy's compiled program on its own, and the cost of each row ({grid.name})",
        "",
        "Row: the DSPy row as the grid answers it (its demonstrations in the project's "
        "prompt, labels scored). Program: the compiled `ChainOfThought` itself (DSPy's "
        "chat adapter writes its prompt and parses its reply; an unparsable reply counts "
        "as wrong), on the same questions. Paired: exact McNemar p, percentile-bootstrap "
        "interval over questions.",
        "",
        program_table if programs else "No DSPy cell has been answered by its program yet.",
        "",
        "## Cost of each row",
        "",
        "Medians over each row's finished cells (wall time; see the cells below for "
        "which shared the machine).",
        "",
        markdown_table(["dataset", "row", "cells", "prompt build (s)", "model calls to build",
                        "answering (s)"],
                       [[r["dataset"], r["row"], r["cells"], f"{r['build_seconds']:.0f}",
                         "" if r["model_calls"] is None else f"{r['model_calls']:.0f}",
                         f"{r['answer_seconds']:.0f}"] for r in summary]),
        "",
        "## Cost of each cell",
        "",
        "Prompt build: DSPy's bootstrapping (model calls: its requests, one question "
        "each; replies generated: those requests answered in batches ahead of the "
        "optimiser, the ones it never read included, when the cell was built with "
        "prefetch), or Self-AMPLIFY's pool scoring, selection and rationales (batched, "
        "so not counted in calls; split into pool scoring and rationales for prompts "
        "built from session 8 on, and a prompt whose pool another cell of its dataset "
        "and seed scored first shows no pool scoring). Answering: the seconds the "
        "cell's test questions took. "
        "Seconds are wall time. Cores busy: the process's CPU seconds per wall second "
        f"(recorded from session 7 on), near the {os.cpu_count()} cores when it had the "
        "machine; lower means other work shared the cores or the process was stopped, so "
        "its seconds overstate the quiet machine's.",
        "",
        cost_table,
    ])
    write_results(args.name, {"grid": str(grid), "programs": programs, "costs": costs,
                              "cost_summary": summary}, markdown)
    update_readme_verdicts()  # its DSPy lines cite the programs and the costs


if __name__ == "__main__":
    main()
