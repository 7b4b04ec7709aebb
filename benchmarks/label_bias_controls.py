"""Do the label-bias controls help? Each control against the same grid without it.

Runs the grid of ``benchmarks/paper_table.py`` (letter format, SmolLM2 by default)
once per control: balanced demonstrations, contextual calibration and test-time
choice permutation. Each controlled row is compared with the same row of the
uncontrolled grid (``docs/results/paper_table_run/<model>__letter``, run first by
``paper_table.py`` with the same settings) on the same test questions and seeds: the
change in the share of the most predicted label, and the paired accuracy difference
over seeds (95% bootstrap interval, permutation p-value).

Run: ``python benchmarks/label_bias_controls.py`` (after ``paper_table.py``). Writes
``docs/results/label_bias_controls.{json,md}``. Reruns resume.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import RESULTS, comma_list, markdown_table, shared_datasets, write_results

from langchain_selfamplify import SLM
from langchain_selfamplify.evaluation.grid import GridConfig, grid_cells, run_grid
from langchain_selfamplify.evaluation.report import row_label
from langchain_selfamplify.evaluation.statistics import compare_across_seeds, holm_significant
from langchain_selfamplify.evaluation.summary import correct_by_cell, summarize

CONTROLS: dict[str, dict[str, Any]] = {
    "balanced": {"balance_labels": True}, "calibrated": {"calibrate": True},
    "permuted": {"permute": True}}
"""Control name -> the grid settings that switch it on."""


def correct_by_row(out: Path) -> dict[tuple[str, str, str], dict[int, dict[str, bool]]]:
    """(dataset, method, strategy) -> seed -> question id -> correct, from a grid."""
    rows: dict[tuple[str, str, str], dict[int, dict[str, bool]]] = {}
    for (dataset, method, strategy, seed), answers in correct_by_cell(out).items():
        rows.setdefault((dataset, method, strategy), {})[seed] = answers
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--controls", default="balanced,calibrated,permuted")
    parser.add_argument("--datasets", default="demo,snarks")
    parser.add_argument("--methods", default="io,deeplift")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--pool-size", type=int, default=40)
    parser.add_argument("--test-size", type=int, default=64)
    parser.add_argument("--reference", default=None,
                        help="the uncontrolled grid (default: paper_table_run/<model>__letter)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    reference = Path(args.reference or RESULTS / "paper_table_run" / f"{args.model}__letter")
    if not (reference / "predictions.jsonl").exists():
        raise SystemExit(f"run benchmarks/paper_table.py first: {reference} has no predictions")
    baseline_rows = correct_by_row(reference)
    baseline_summary = summarize(reference)
    top_share = {(r["dataset"], r["method"], r["strategy"]): max(r["top_label_shares"])
                 for r in baseline_summary["rows"] if r["top_label_shares"]}
    slm = None if args.report_only else SLM.load(args.model, show_progress=False)
    table_rows: list[list[Any]] = []
    tested: list[tuple[str, tuple[str, str, str], Any, dict[str, Any]]] = []
    finished: list[str] = []
    record: dict[str, Any] = {"reference": str(reference), "controls": {}}
    for control in comma_list(args.controls):
        config = GridConfig(
            datasets=comma_list(args.datasets), methods=comma_list(args.methods),
            strategies=["success"],
            seeds=[int(s) for s in comma_list(args.seeds)], shots=args.shots,
            pool_size=args.pool_size, test_size=args.test_size, answer_format="letter",
            data_dir=str(shared_datasets()),
            output_dir=str(RESULTS / "label_bias_controls_run" / f"{args.model}__{control}"),
            **CONTROLS[control])
        if slm is not None:
            run_grid(config, slm)
        elif not (Path(config.output_dir) / "cells.jsonl").exists():
            continue
        summary = summarize(config.output_dir)
        controlled = correct_by_row(Path(config.output_dir))
        comparisons = []
        for row in summary["rows"]:
            key = (row["dataset"], row["method"], row["strategy"])
            if key not in baseline_rows or key not in controlled or not row["top_label_shares"]:
                continue
            paired = compare_across_seeds(controlled[key], baseline_rows[key])
            comparisons.append({"row": key, **paired.model_dump(),
                                "top_label_share": max(row["top_label_shares"]),
                                "top_label_share_without": top_share.get(key)})
            tested.append((control, key, paired, comparisons[-1]))
        done = sum(c["status"] == "done" for c in summary["cells"])
        total = len(grid_cells(config))
        finished.append(f"{control}: {done} of {total} cells")
        record["controls"][control] = {"config": config.model_dump(), "comparisons": comparisons,
                                       "cells_done": done, "cells_total": total}
    # One family: every controlled row against itself without the control (Holm).
    significant = holm_significant([paired.p_value for _, _, paired, _ in tested])
    for (control, key, paired, record), passes in zip(tested, significant, strict=True):
        verdict = paired.decide(passes)
        record.update(verdict=verdict, family_size=len(tested))
        table_rows.append([
            control, key[0], row_label(key[1], key[2]),
            f"{record['top_label_share_without'] or float('nan'):.0%} -> "
            f"{record['top_label_share']:.0%}",
            f"{paired.difference * 100:+.1f} pts [{paired.ci_low * 100:+.1f}, "
            f"{paired.ci_high * 100:+.1f}]", f"{paired.p_value:.2g}",
            {"beats": "helps", "worse than": "hurts"}.get(verdict, "no detectable difference")])
    markdown = "\n".join([
        f"# Label-bias controls on {args.model} (letter format)",
        "",
        f"Written by `python benchmarks/label_bias_controls.py --model {args.model} --controls "
        f"{args.controls} --datasets {args.datasets} --methods {args.methods} --seeds "
        f"{args.seeds}`. Each controlled row is compared with the same row without the "
        f"control (`{reference.relative_to(RESULTS.parents[1])}`), on the same test "
        "questions and seeds: the largest per-seed share of the most predicted label "
        "without -> with the control, and the paired accuracy difference (mean over "
        "seeds; 95% interval and p-value from a bootstrap over seeds then questions). A "
        "verdict needs the interval to exclude 0 and p to pass Holm's correction over all "
        f"{len(tested)} comparisons of this file.",
        "",
        "Cells finished when this file was written: " + "; ".join(finished) + ". A control "
        "with fewer finished cells is compared on the seeds it has (rerun the command to "
        "complete it).",
        "",
        markdown_table(["control", "dataset", "row", "top-label share", "accuracy difference",
                        "p", "verdict"], table_rows),
    ])
    write_results("label_bias_controls", record, markdown)


if __name__ == "__main__":
    main()
