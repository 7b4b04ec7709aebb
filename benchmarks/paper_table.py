"""Self-AMPLIFY against IO (and Auto-CoT, AMPLIFY) with paired tests, on the embedded models.

For each embedded model and answer format, runs the resumable grid of ``selfamplify
evaluate`` on ``../shared/datasets`` and the bundled demo set: 3 seeds by default (each
its own pool sample and demonstrations), the same test questions for every seed and
row. Each row is compared with the baselines question by question: the mean accuracy
difference over seeds with a two-level (seeds, then questions) bootstrap interval and
p-value (per seed: paired bootstrap and exact McNemar). A verdict needs the interval to
exclude 0 and p to pass Holm's correction within the table. Every cell carries its
label-bias diagnostics.

The full grid (5 datasets x 11 rows x 3 seeds x 200 questions x 2 models x 2 formats)
takes days on two CPU cores; the defaults are the largest slice that fits about an
hour, and the written report names what was left out and the command for the rest.
Rerunning the same command resumes every grid where it stopped.

Run: ``python benchmarks/paper_table.py``. Writes ``docs/results/paper_table.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from harness import (
    RESULTS,
    comma_list,
    command_line,
    shared_datasets,
    write_results,
)
from readme_verdicts import update_readme_verdicts

from langchain_selfamplify import SLM
from langchain_selfamplify.baselines import BASELINES
from langchain_selfamplify.evaluation.grid import GridConfig, grid_cells, run_grid
from langchain_selfamplify.evaluation.report import (
    CUT_FLAG,
    METHOD_NAMES,
    comparison_table,
    grid_figure,
    grid_table,
    verdict_lines,
)
from langchain_selfamplify.evaluation.summary import summarize
from langchain_selfamplify.models.embedded import EMBEDDED_MODELS
from langchain_selfamplify.rationales.methods.kernelshap import PAPER_SAMPLES

ALL_DATASETS = ["arc_challenge", "commonsense_qa", "social_iqa", "snarks", "causal_judgment"]
ALL_METHODS = ["io", "auto_cot", "amplify", "deeplift", "kernelshap", "self_topk", "ph_cot",
               "dspy_bootstrap", "dspy_labeled"]


def section(model: str, answer_format: str, config: GridConfig, summary: dict[str, Any],
            seconds: float) -> list[str]:
    """The markdown of one (model, answer format) grid."""
    baselines = [b for b in BASELINES if b in config.methods]
    lines = [
        f"## {model}, {answer_format} format",
        "",
        f"{len(config.seeds)} seeds {config.seeds}, {config.shots} shots, pool of "
        f"{config.pool_size} sampled per seed, up to {config.test_size} fixed test questions "
        f"per dataset; balanced demonstrations {'on' if config.balance_labels else 'off'}; "
        f"{summary['predictions']} predictions; {_finished(summary, config)}.",
        "",
        "Accuracy pooled over seeds, 95% interval: a cluster bootstrap over questions (the "
        "seeds answer the same questions), Wilson for one seed. ⚑: some seed's most "
        "predicted label covers over 80% of its answers. ≈chance: the interval reaches the "
        "chance rate. cut: share of test-time rationales that hit their token cap (✂ over "
        "10%). skipped: selected examples replaced for want of a usable rationale.",
        "",
        grid_table(summary),
        "",
    ]
    for baseline in baselines:
        lines += [f"Paired difference with {METHOD_NAMES[baseline]} (mean over seeds, 95% "
                  "percentile-bootstrap interval, p-value; a verdict needs both):", "",
                  comparison_table(summary, baseline), ""]
    for baseline in ("io", "dspy_bootstrap"):
        if baseline in baselines:
            lines += [f"Verdicts against {METHOD_NAMES[baseline]}:", "",
                      *verdict_lines(summary, baseline), ""]
    lines += _diagnostics_table(summary), ""
    return lines


def _finished(summary: dict[str, Any], config: GridConfig) -> str:
    done = sum(c["status"] == "done" for c in summary["cells"])
    total = len(grid_cells(config))
    return (f"all {total} cells finished" if done == total else
            f"**{done} of {total} cells finished** when this report was written (the "
            "grid is running or was stopped; rerunning the command resumes it)")


def _diagnostics_table(summary: dict[str, Any]) -> str:
    rows = ["| cell | top label (share) | gold labels | demonstration labels | "
            "majority-demo-label accuracy | cut | skipped | minutes |",
            "|---|---|---|---|---|---|---|---|"]
    for cell in summary["cells"]:
        diag = cell.get("diagnostics")
        if diag is None:
            continue
        demo_acc, cut = diag["demo_majority_accuracy"], diag["truncation_rate"]
        rows.append(
            f"| {cell['cell']} | {diag['top_label']} ({diag['top_label_share']:.0%})"
            f"{' ⚑' if cell['flagged'] else ''} | {_dist(diag['gold_distribution'])} | "
            f"{_dist(diag['demo_label_distribution'])} | "
            f"{'' if demo_acc is None else f'{demo_acc:.0%}'} | "
            f"{'' if cut is None else f'{cut:.0%}' + (' ✂' if cut > CUT_FLAG else '')} | "
            f"{cell.get('skipped', 0)} | "
            f"{cell['seconds'] / 60:.1f} |")
    return "<details><summary>Label-bias diagnostics of every cell</summary>\n\n" + \
        "\n".join(rows) + "\n\n</details>"


def _dist(counts: dict[str, int]) -> str:
    return " ".join(f"{label}:{count}" for label, count in counts.items())


def planned_rows(config: GridConfig, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """The (dataset, method, strategy) rows of the whole planned table (``--planned-*``),
    which fix the Holm families' sizes."""
    planned = {name: value for name in ("datasets", "methods", "strategies")
               if (value := planned_option(args, name)) is not None}
    return config.model_copy(update=planned).rows()


def planned_option(args: argparse.Namespace, name: str) -> list[str] | None:
    """The ``--planned-<name>`` option as a list, or None when not given."""
    value = getattr(args, f"planned_{name}")
    return None if value is None else comma_list(value)


def _setting_options(args: argparse.Namespace) -> str:
    """The run's non-default rationale cap, KernelShap samples and dtype, as
    command-line options: what resuming its grid must repeat."""
    cap, samples = args.max_rationale_tokens, args.kernelshap_samples
    return ((f" --max-rationale-tokens {cap}" if cap != 64 else "")
            + (f" --kernelshap-samples {samples}" if samples != PAPER_SAMPLES else "")
            + (f" --dtype {args.dtype}" if args.dtype else ""))


def _dtype_note(dtype: str | None, models: list[str]) -> list[str]:
    """What the table's dtype rests on: float32 (with bfloat16's measured agreement on
    these models, where measured), or the measured bfloat16 agreement."""
    agreement = RESULTS / "dtype_agreement.json"
    record = json.loads(agreement.read_text()) if agreement.exists() else None
    measured = (f"on {record['n']} questions answered in both dtypes, "
                f"{record['agreement']:.1%} of bfloat16's predictions are identical to "
                f"float32's (rule: at least {record['least_agreement']:.0%} of at least "
                f"{record['least_questions']}; "
                f"{'met' if record['allowed'] else '**not met**'}; "
                "[dtype_agreement.md](dtype_agreement.md))") if record else ""
    if dtype in (None, "float32"):
        checked = (f" bfloat16 was checked and not used: {measured}."
                   if record and record["model"] in models else "")
        return [f"Model weights and activations in float32.{checked}", ""]
    if not record:
        return [f"**Run in {dtype} with no measured agreement with float32**: run "
                "`python benchmarks/dtype_agreement.py`.", ""]
    return [f"Run in {dtype}: {measured}.", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2-135m")
    parser.add_argument("--formats", default="letter,cloze")
    parser.add_argument("--datasets", default="demo,snarks")
    parser.add_argument("--methods", default="io,deeplift,ph_cot")
    parser.add_argument("--strategies", default="success")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--pool-size", type=int, default=40)
    parser.add_argument("--test-size", type=int, default=64)
    parser.add_argument("--balance-labels", action="store_true")
    parser.add_argument("--dtype", default=None,
                        help="model dtype (float32 when omitted; bfloat16 is approximate)")
    parser.add_argument("--max-rationale-tokens", type=int, default=64,
                        help="least token cap of test-time rationales")
    parser.add_argument("--kernelshap-samples", type=int, default=PAPER_SAMPLES,
                        help="coalitions KernelShap samples per demonstration (the paper's "
                             "200; the SmolLM2 and Gemma grids ran with 32, and a grid "
                             "resumes only with the setting it started with)")
    parser.add_argument("--chunk-size", type=int, default=64,
                        help="questions answered between two checkpoints (smaller for a slow "
                             "model, so an interrupted run loses less)")
    parser.add_argument("--decode-slots", type=int, default=None,
                        help="replies decoded together (default: sized from the device, 64 "
                             "on a CPU); with --chunk-size as large, a decoding step, which "
                             "costs a pass over every weight, serves more questions")
    parser.add_argument("--name", default="paper_table",
                        help="results name: docs/results/<name>.{json,md,png}")
    parser.add_argument("--work-dir", default=None,
                        help="grid directories (kept, so an interrupted run resumes); "
                             "default docs/results/<name>_run")
    for name, what in (("datasets", "datasets"), ("methods", "methods"),
                       ("strategies", "strategies")):
        parser.add_argument(f"--planned-{name}", default=None,
                            help=f"{what} of the whole table this command fills in part, which "
                                 "size its Holm families so verdicts do not change as other "
                                 f"cells finish (default: --{name})")
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from the cells finished so far, run nothing")
    args = parser.parse_args()
    work_dir = Path(args.work_dir or RESULTS / f"{args.name}_run")
    sections: list[str] = []
    record: dict[str, Any] = {"grids": []}
    figure_summary: dict[str, Any] | None = None
    for model in comma_list(args.models):
        slm = None if args.report_only else SLM.load(model, show_progress=True,
                                                     torch_dtype=args.dtype,
                                                     decode_slots=args.decode_slots)
        name = EMBEDDED_MODELS.get(model, model)
        for answer_format in comma_list(args.formats):
            config = GridConfig(
                datasets=comma_list(args.datasets), methods=comma_list(args.methods),
                strategies=comma_list(args.strategies),
                seeds=[int(s) for s in comma_list(args.seeds)], shots=args.shots,
                pool_size=args.pool_size, test_size=args.test_size,
                answer_format=answer_format,  # type: ignore[arg-type]
                balance_labels=args.balance_labels,
                max_rationale_tokens=args.max_rationale_tokens,
                method_kwargs={"kernelshap": {"n_samples": args.kernelshap_samples}},
                data_dir=str(shared_datasets()),
                output_dir=str(work_dir / f"{model}__{answer_format}"))
            started = time.perf_counter()
            planned = planned_rows(config, args)
            if slm is not None:
                summary = run_grid(config, slm, chunk_size=args.chunk_size, planned=planned)
            elif (Path(config.output_dir) / "cells.jsonl").exists():
                summary = summarize(config.output_dir, planned)
            else:
                continue
            seconds = time.perf_counter() - started
            figure_summary = figure_summary or summary
            sections += section(name, answer_format, config, summary, seconds)
            record["grids"].append({"model": name, "answer_format": answer_format,
                                    "config": config.model_dump(), "seconds": seconds,
                                    "planned_cells": len(planned) * len(config.seeds),
                                    "summary": summary})
    if figure_summary is not None:
        grid_figure(figure_summary, RESULTS / f"{args.name}.png")
    at_chance = screened_out(comma_list(args.models))
    datasets, methods, strategies = whole_table(args, at_chance)
    left = [*(f"dataset {d}" for d in datasets if d not in comma_list(args.datasets)),
            *(f"row {m}" for m in methods if m not in comma_list(args.methods)),
            *(f"the {s} strategy" for s in strategies if s not in comma_list(args.strategies))]
    markdown = "\n".join([
        "# Does Self-AMPLIFY make the embedded models better? Paired tests",
        "",
        f"Written {time.strftime('%Y-%m-%d')} by `{command_line()}`.",
        "",
        *_dtype_note(args.dtype, comma_list(args.models)),
        "**Left out** of this report's command (not run yet, or not asked for): "
        f"{', '.join(left) or 'nothing'}. The whole table runs with `python "
        f"benchmarks/paper_table.py --name {args.name} --models {args.models} --formats "
        f"{args.formats} --datasets {','.join(datasets)} --methods {','.join(methods)} "
        f"--strategies {','.join(strategies)} --seeds {args.seeds} --shots {args.shots} "
        f"--pool-size {args.pool_size} --test-size {args.test_size}{_setting_options(args)}`: "
        "it resumes this run (a grid may gain cells; its result settings must match), so "
        "finished cells are kept.",
        "",
        *([f"**Not run, at chance**: {', '.join(at_chance)}. The zero-shot screen "
           "([zero_shot.md](zero_shot.md)) found every model here at chance on them in "
           "both answer formats, so no comparison on them could say anything.", ""]
          if at_chance else []),
        *sections,
        f"![accuracy by method]({args.name}.png)",
    ])
    write_results(args.name, record, markdown)
    update_readme_verdicts()


def whole_table(args: argparse.Namespace, at_chance: list[str]
                ) -> tuple[list[str], list[str], list[str]]:
    """The datasets, methods and strategies of the whole table this command fills in
    part: the ``--planned-*`` options where given, otherwise this command's datasets
    with every paper dataset the zero-shot screen keeps, every row and both strategies."""
    run_datasets = comma_list(args.datasets)
    datasets = planned_option(args, "datasets") or [
        *run_datasets, *(d for d in ALL_DATASETS if d not in run_datasets and d not in at_chance)]
    return (datasets, planned_option(args, "methods") or ALL_METHODS,
            planned_option(args, "strategies") or ["success", "error"])


def screened_out(models: list[str]) -> list[str]:
    """The datasets the zero-shot screen (``benchmarks/zero_shot.py``) finished at
    chance in every format for each of ``models``: the table does not run them."""
    path = RESULTS / "zero_shot.json"
    if not path.is_file():
        return []
    decisions = json.loads(path.read_text(encoding="utf-8"))["decisions"]
    names = {EMBEDDED_MODELS.get(model, model) for model in models}

    def out_for_all(dataset: str) -> bool:
        verdicts = [d["kept"] for d in decisions if d["dataset"] == dataset
                    and d["model"] in names]
        return len(verdicts) == len(names) and all(kept is False for kept in verdicts)

    return [dataset for dataset in ALL_DATASETS if out_for_all(dataset)]


if __name__ == "__main__":
    main()
