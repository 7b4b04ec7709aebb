"""How long the capable model's Ph-CoT rationales run, and how many their caps cut.

Two kinds of rationale, two caps:

- **demonstrations**: Ph-CoT explains a pool example towards its gold answer, stopped
  where the model starts step ``n + 1`` and capped at ``100 x n`` tokens (300 for 3
  steps). Here the same prompts run on the first ``--examples`` pool examples of each
  dataset with a far higher cap (``--uncapped``), so the length each reply needs is
  seen, and the share the 300-token cap would cut is counted;
- **test-time rationales**: read from the capable-model table's own predictions
  (``docs/results/paper_table_qwen_run``), written under its cap (512 tokens, stopped
  at "The answer is" or the step after the demonstrations' last); the share that reached
  the cap is the share cut.

Run: ``python benchmarks/qwen_rationale_lengths.py [--datasets arc_challenge]`` (about
15 minutes a dataset on 2 cores; datasets measured before with the same settings are
kept, and measured again only with ``--again``). Writes
``docs/results/qwen_rationale_lengths.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    QWEN_GRID,
    RESULTS,
    comma_list,
    grid_predictions,
    markdown_table,
    shared_datasets,
    write_results,
)

from langchain_selfamplify import SLM
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.models.embedded import QWEN_MODEL, embedded_model_path
from langchain_selfamplify.models.served import load_tokenizer
from langchain_selfamplify.rationales.methods.ph_cot import PhCoTRationale

MOST_CUT = 0.05
"""The issue's bound: a cap may cut at most this share of rationales."""


def summary(lengths: list[int], cap: int) -> dict[str, Any]:
    """Percentiles of ``lengths`` (tokens) and the share at or over ``cap``."""
    ordered = sorted(lengths)

    def percentile(share: float) -> int:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    cut = sum(length >= cap for length in lengths)
    return {"n": len(lengths), "median": statistics.median(lengths), "p90": percentile(0.9),
            "p95": percentile(0.95), "max": ordered[-1], "cap": cap, "cut": cut,
            "cut_share": cut / len(lengths)}


def demonstration_lengths(slm: SLM, dataset: str, examples: int, uncapped: int
                          ) -> dict[str, Any]:
    """Ph-CoT replies to ``examples`` pool examples, capped at ``uncapped`` only."""
    pool, _ = load_pool_and_test(dataset, pool_size=100, test_size=200, seed=0,
                                 data_dir=shared_datasets())
    method = PhCoTRationale(slm)
    prompts = [slm.format_prompt([{"role": "user", "content": method.instruction(ex)}],
                                 method.assistant_prefix()) for ex in pool[:examples]]
    replies = slm.generate(prompts, max_new_tokens=uncapped, stop=method.stop(),
                           desc=f"{dataset}: Ph-CoT demonstrations")
    lengths = [slm.count_tokens(reply, prompt=False) for reply in replies]
    return {**summary(lengths, method.max_new_tokens),
            "still_at_uncapped_limit": sum(length >= uncapped for length in lengths),
            "uncapped_limit": uncapped}


def test_time_lengths(count: Callable[[str], int], grid: Path) -> list[dict[str, Any]]:
    """Per cell with rationales, the table's test-time rationale lengths."""
    config = json.loads((grid / "config.json").read_text(encoding="utf-8"))
    rows = []
    for cell, records in sorted(grid_predictions(grid).items()):
        if records[0]["method"] in ("io", "dspy_labeled"):
            continue
        lengths = [count(r["raw_output"]) for r in records]
        row = summary(lengths, config["max_rationale_tokens"])
        row["cut"] = sum(r["truncated"] for r in records)  # as the grid recorded it
        row["cut_share"] = row["cut"] / len(records)
        rows.append({"cell": cell, **row})
    return rows


def test_time_verdicts(tests: list[dict[str, Any]]) -> list[str]:
    """One line per cell over the 5% bound, then one on all the cells: how many, how
    many of their rationales reached the cap, and the most cut share (the table above
    gives every cell's)."""
    if not tests:
        return []
    over = [row for row in tests if row["cut_share"] > MOST_CUT]
    most = max(tests, key=lambda row: row["cut_share"])
    lines = [f"- test time, {row['cell']}: {row['cut_share']:.1%} reached the "
             f"{row['cap']}-token cap (**over the 5% bound**)" for row in over]
    lines.append(
        f"- test time, all {len(tests)} cells: {sum(row['cut'] for row in tests)} of "
        f"{sum(row['n'] for row in tests)} rationales reached their cap; "
        + (f"{len(over)} cell(s) over the 5% bound" if over else "none over the 5% bound")
        + f" (most: {most['cut_share']:.1%}, {most['cell']})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="arc_challenge,commonsense_qa",
                        help="datasets whose demonstrations to generate; empty: only "
                        "re-read the table's test-time rationales")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--uncapped", type=int, default=1024)
    parser.add_argument("--grid", type=Path, default=QWEN_GRID)
    parser.add_argument("--again", action="store_true",
                        help="measure the datasets again even if an earlier run did")
    args = parser.parse_args()
    # Datasets measured by an earlier run (with the same settings) are kept, and not
    # measured again unless asked: the table's script resumes through this step.
    saved = RESULTS / "qwen_rationale_lengths.json"
    earlier = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else {}
    demos = {d: row for d, row in earlier.get("demonstrations", {}).items()
             if (earlier["examples"], earlier["uncapped"]) == (args.examples, args.uncapped)}
    datasets = [d for d in comma_list(args.datasets) if args.again or d not in demos]
    if datasets:
        slm = SLM.load(QWEN_MODEL, decode_slots=2 * args.examples)
        demos.update({d: demonstration_lengths(slm, d, args.examples, args.uncapped)
                      for d in datasets})
    tokenizer = load_tokenizer(embedded_model_path(QWEN_MODEL))
    tests = test_time_lengths(
        lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]), args.grid)

    def columns(row: dict[str, Any]) -> list[Any]:
        flag = " ✂" if row["cut_share"] > MOST_CUT else ""
        return [row["n"], row["median"], row["p90"], row["p95"], row["max"], row["cap"],
                f"{row['cut']} ({row['cut_share']:.1%}){flag}"]

    headers = ["n", "median", "p90", "p95", "max", "cap", "cut at the cap"]
    demo_rows = [[d, *columns(row)] for d, row in demos.items()]
    test_rows = [[row["cell"], *columns(row)] for row in tests]
    verdicts = [f"- demonstrations, {d}: the {row['cap']}-token cap cuts {row['cut_share']:.1%}"
                + (" (within the 5% bound)" if row["cut_share"] <= MOST_CUT
                   else " (**over the 5% bound**)") for d, row in demos.items()]
    verdicts += test_time_verdicts(tests)
    markdown = "\n".join([
        "# Qwen2.5-Coder-1.5B: Ph-CoT rationale lengths and the share their caps cut",
        "",
        f"Tokens of the model's replies (its own tokenizer). Demonstrations: Ph-CoT "
        f"(3 steps, stopped at `Step 4:`) on the first {args.examples} pool examples of "
        f"seed 0, generated with a cap of {args.uncapped} tokens "
        f"(replies still at that limit: "
        + ", ".join(f"{d} {row['still_at_uncapped_limit']}" for d, row in demos.items())
        + "), set against the method's own cap. Test time: the capable-model table's "
        "rationales, as written under its cap. ✂: over 5% cut.",
        "",
        "## Demonstrations (uncapped replies)",
        "",
        markdown_table(["dataset", *headers], demo_rows),
        "",
        "## Test-time rationales of the table",
        "",
        markdown_table(["cell", *headers], test_rows),
        "",
        *verdicts,
    ])
    write_results("qwen_rationale_lengths", {"demonstrations": demos, "test_time": tests,
                                             "examples": args.examples,
                                             "uncapped": args.uncapped}, markdown)


if __name__ == "__main__":
    main()
