"""The README's answers, rewritten from the paper tables' paired tests: the "does it
help?" lists per model and answer format, and the capable model's first answer in the
set-up section. ``benchmarks/paper_table.py`` calls :func:`update_readme_verdicts`
after every report, so the README never states a verdict no run wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import RESULTS, replace_readme_block

VERDICTS_START = "<!-- verdicts:start -->"
VERDICTS_END = "<!-- verdicts:end -->"
VERDICT_RESULTS = ("paper_table_qwen", "paper_table", "paper_table_gemma",
                   "paper_table_gemma_csqa")


def update_readme_verdicts() -> None:
    """Rewrite the README's "does it help?" block from the paired tests of the paper
    tables present in ``docs/results``, one list per model and answer format."""
    from langchain_selfamplify.evaluation.report import METHOD_NAMES, verdict_lines

    parts, tested = [], []
    for name in VERDICT_RESULTS:
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            continue
        for grid in json.loads(path.read_text(encoding="utf-8")).get("grids", []):
            tested += [(grid["model"], grid["answer_format"], c)
                       for c in pooled_against_io(grid["summary"])]
            parts += [f"**{grid['model']}, {grid['answer_format']} format** "
                      f"([details](docs/results/{name}.md){partial_note(grid)}):", "",
                      *verdict_lines(grid["summary"], "io"), *_paper_claim(grid), ""]
            if "dspy_bootstrap" in grid["config"]["methods"]:
                parts += [f"Against {METHOD_NAMES['dspy_bootstrap']} (same model, questions "
                          "and statistics; each row minus DSPy, pooled over the seeds both "
                          "finished):", "", *dspy_side_by_side(grid), ""]
    parts += _multiple_comparisons(tested)
    replace_readme_block(VERDICTS_START, VERDICTS_END, "\n".join(parts).strip())
    headline = capable_model_headline()
    if headline:
        replace_readme_block(HEADLINE_START, HEADLINE_END, headline)


def difference_text(c: dict[str, Any]) -> str:
    """A paired comparison's difference, 95% interval and p-value, as the README states
    them: ``"-9.2 pts [-16.2, -1.8], p=0.016"``."""
    return (f"{100 * c['difference']:+.1f} pts [{100 * c['ci_low']:+.1f}, "
            f"{100 * c['ci_high']:+.1f}], p={c['p_value']:.2g}")


def pooled_against_io(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """A table's Self-AMPLIFY rows tested against IO, pooled over seeds (baselines
    apart)."""
    from langchain_selfamplify.baselines import BASELINES

    return [c for c in summary["comparisons"] if c["baseline"] == "io"
            and c["seed"] == "all" and c["method"] not in BASELINES]


def partial_note(grid: dict[str, Any]) -> str:
    """``", **partial: done of planned cells**"`` while a grid's whole planned table
    (``paper_table.py``'s ``--planned-*``, else the command's own grid) is unfinished,
    else ``""``."""
    from langchain_selfamplify.evaluation.grid import GridConfig, grid_cells

    done = sum(c["status"] == "done" for c in grid["summary"]["cells"])
    total = grid.get("planned_cells") or len(grid_cells(GridConfig(**grid["config"])))
    return "" if done >= total else f", **partial: {done} of {total} cells**"


def dspy_side_by_side(grid: dict[str, Any]) -> list[str]:
    """Per dataset: the DSPy row's accuracy and its difference from IO, every other row's
    difference from it with its interval, which wins, and the compiled program's own
    accuracy per seed and the rows' cost (``benchmarks/dspy_program.py``) where it was
    run."""
    from langchain_selfamplify.evaluation.report import row_label

    summary = grid["summary"]
    rows = {(r["dataset"], r["method"]): r for r in summary["rows"]}
    saved = _dspy_program_results(grid)
    programs, costs = saved.get("programs", []), saved.get("cost_summary", [])

    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in summary["rows"]):
        row = rows.get((dataset, "dspy_bootstrap"))
        if row is None:
            continue
        pooled = [c for c in summary["comparisons"] if c["dataset"] == dataset
                  and c["seed"] == "all"]
        against_io = [c for c in pooled if (c["method"], c["baseline"])
                      == ("dspy_bootstrap", "io")]
        others = [c for c in pooled if c["baseline"] == "dspy_bootstrap"
                  and c["method"] != "io"]
        a = row["accuracy"]
        line = (f"- **{dataset}**: DSPy BootstrapFewShot {a['value']:.1%} "
                f"[{a['ci_low']:.1%}, {a['ci_high']:.1%}] over {len(row['seeds'])} seed(s)")
        line += (f"; minus IO {difference_text(against_io[0])}" if against_io else "") + ". "
        line += "Rows minus DSPy: " + "; ".join(
            f"{row_label(c['method'], c['strategy'])} {difference_text(c)} "
            f"over {c['seeds']} seed(s)"
            for c in others) + ". " if others else ""
        wins = ([f"{row_label(c['method'], c['strategy'])} beats DSPy" for c in others
                 if c["verdict"] == "beats"]
                + [f"DSPy beats {row_label(c['method'], c['strategy'])}" for c in others
                   if c["verdict"] == "worse than"]
                + [f"DSPy {c['verdict']} IO" for c in against_io
                   if c["verdict"] != "no detectable difference"])
        line += (f"**{'; '.join(wins)}.**" if wins else
                 "**Neither wins**: no paired difference here is detectable.")
        mine = [p for p in programs if p["cell"].startswith(f"{dataset}__")]
        if mine:
            differs = [p for p in mine if p["program_minus_row"]["ci_low"] > 0
                       or p["program_minus_row"]["ci_high"] < 0]
            line += (" DSPy's compiled program on its own (its prompt and parser), per seed: "
                     + ", ".join(f"{p['program_accuracy']['value']:.1%}" for p in mine)
                     + " against the row's " + ", ".join(
                         f"{p['row_accuracy']['value']:.1%}" for p in mine)
                     + (f" ({len(differs)} of {len(mine)} differences detectable)."
                        if differs else " (no seed's difference is detectable)."))
        cost = {c["row"]: c for c in costs if c["dataset"] == dataset}
        dspy, ph_cot = cost.get("DSPy BootstrapFewShot"), cost.get(
            "Self-AMPLIFY Ph-CoT (success)")
        if dspy and ph_cot:
            line += (f" Cost, medians per cell: DSPy's prompt took {dspy['build_seconds']:.0f} s "
                     f"to build ({dspy['model_calls']:.0f} model calls), Ph-CoT's "
                     f"{ph_cot['build_seconds']:.0f} s; answering {dspy['answer_seconds']:.0f} "
                     f"s against {ph_cot['answer_seconds']:.0f} s.")
        lines.append(line)
    return lines


def _dspy_program_results(grid: dict[str, Any]) -> dict[str, Any]:
    """What ``benchmarks/dspy_program.py`` saved for this grid (empty if not run)."""
    tail = Path(grid["config"]["output_dir"]).parts[-2:]
    for path in sorted(RESULTS.glob("dspy_program*.json")):
        saved = json.loads(path.read_text(encoding="utf-8"))
        if Path(saved.get("grid", "")).parts[-2:] == tail:
            return dict(saved)
    return {}


HEADLINE_START = "<!-- capable-model:start -->"
HEADLINE_END = "<!-- capable-model:end -->"


def paired_scope(comparison: dict[str, Any], summary: dict[str, Any]) -> str:
    """Over what a comparison pooled over seeds pairs: its questions and seeds, marked
    partial while one of its two rows has a partial cell (the summary's ``partial``)."""
    def compared(row: dict[str, Any]) -> bool:
        return row["dataset"] == comparison["dataset"] and (
            row["method"] == comparison["baseline"]
            or (row["method"], row["strategy"]) == (comparison["method"],
                                                    comparison["strategy"]))

    partial = any(row["partial"] for row in summary["rows"] if compared(row))
    return (f"over {comparison['n']} questions, {comparison['seeds']} seed(s)"
            + (" (**partial**: a cell is unfinished)" if partial else ""))


def capable_model_headline() -> str | None:
    """The README's first answer for the capable model: Ph-CoT (success) against IO per
    dataset of its table, and the minutes that keep it out of the 10-minute main job
    (its prompts' build time and its cells' answering time, read from the run)."""
    from langchain_selfamplify.evaluation.report import cut_share, holm_caveat

    path = RESULTS / "paper_table_qwen.json"
    if not path.is_file():
        return None
    grid = json.loads(path.read_text(encoding="utf-8"))["grids"][0]
    summary = grid["summary"]
    # keyed by strategy too: Ph-CoT's error row is another row of the same method
    rows = {(r["dataset"], r["method"], r["strategy"]): r for r in summary["rows"]}

    def share(row: dict[str, Any]) -> str:
        a = row["accuracy"]
        return f"{a['value']:.1%} [{a['ci_low']:.1%}, {a['ci_high']:.1%}]"

    lines = []
    for c in summary["comparisons"]:
        if (c["method"], c["strategy"], c["baseline"], c["seed"]) != ("ph_cot", "success",
                                                                       "io", "all"):
            continue
        io = rows[(c["dataset"], c["baseline"], "random")]
        ph_cot = rows[(c["dataset"], c["method"], c["strategy"])]
        cut = cut_share(ph_cot)
        cut_note = ("" if cut is None else
                    f" (its test-time rationales cut at their cap of at least "
                    f"{grid['config']['max_rationale_tokens']} tokens: {cut:.1%})")
        lines.append(
            f"- **{c['dataset']}**: IO {share(io)} over {len(io['seeds'])} seed(s), "
            f"Self-AMPLIFY Ph-CoT (success) {share(ph_cot)} over {len(ph_cot['seeds'])}"
            f"{cut_note}; "
            f"paired {paired_scope(c, summary)}: {difference_text(c)}: "
            + {"beats": "**Ph-CoT helps**.", "worse than": "**Ph-CoT is worse than IO**."}
            .get(c["verdict"], f"no detectable difference{holm_caveat(c)}."))
    lines.append(other_rows_line(summary))
    builds = sorted(json.loads(prompt.read_text(encoding="utf-8"))["metadata"]["build_seconds"]
                    / 60 for prompt in RESULTS.glob(
                        "paper_table_qwen_run/*/prompts/*__ph_cot__success__*.json"))
    answering = sorted(cell["seconds"] / 60 for cell in summary["cells"]
                       if (cell["method"], cell["strategy"]) == ("ph_cot", "success")
                       and cell["status"] == "done")
    if builds and answering:
        lines.append(
            f"- Why it is not the main job's default: on two CPU cores one 8-shot Ph-CoT "
            f"prompt took {builds[0]:.0f} to {builds[-1]:.0f} minutes to build (scoring the "
            f"pool, then 8 explanations; {len(builds)} prompts) and a cell of "
            f"{grid['config']['test_size']} questions "
            f"{answering[0]:.0f} to {answering[-1]:.0f} minutes in all (wall time, the "
            "machine shared with other work at times), against the main job's 10 minutes.")
    return "\n".join(lines)


def other_rows_line(summary: dict[str, Any]) -> str:
    """The capable-model headline's line on the table's other Self-AMPLIFY rows against
    IO: each one a paired test tells apart (Holm-corrected, as in the full list), or
    that none is told apart so far."""
    from langchain_selfamplify.evaluation.report import row_label

    others = [c for c in pooled_against_io(summary)
              if (c["method"], c["strategy"]) != ("ph_cot", "success")]
    decided = [c for c in others if c["verdict"] != "no detectable difference"]
    if not decided:
        return (f"- The other Self-AMPLIFY rows run ({len(others)} paired tests "
                "against IO): none differs detectably from IO.")
    return (f"- The other Self-AMPLIFY rows run ({len(others)} paired tests against "
            "IO), where a paired test tells them apart: "
            + "; ".join(f"{c['dataset']}, {row_label(c['method'], c['strategy'])} "
                        f"{difference_text(c)} {paired_scope(c, summary)}: "
                        f"**{c['verdict']} IO**"
                        for c in decided)
            + "; no other differs detectably.")


def _paper_claim(grid: dict[str, Any]) -> list[str]:
    """Where a table has Ph-CoT (success) against IO pooled over seeds: the paper's claim
    beside what was measured, one line per dataset."""
    from langchain_selfamplify.evaluation.report import holm_caveat

    found = [c for c in grid["summary"]["comparisons"]
             if c["method"] == "ph_cot" and c["strategy"] == "success"
             and c["baseline"] == "io" and c["seed"] == "all"]
    return [f"- The paper's claim, Ph-CoT the best average gain over IO (2B-7B models), on "
            f"{c['dataset']}: Ph-CoT (success) minus IO {difference_text(c)} "
            f"{paired_scope(c, grid['summary'])}: "
            + {"beats": "a gain here too.", "worse than": "**the opposite here**."}.get(
                c["verdict"], f"no detectable gain here{holm_caveat(c)}.")
            + _best_row_note(grid, c["dataset"])
            for c in found]


def _best_row_note(grid: dict[str, Any], dataset: str) -> str:
    """Which Self-AMPLIFY row run on ``dataset`` has the largest mean gain over IO, and
    whether it is a Ph-CoT row (the paper's "best"), each over its own seeds; ``""`` with
    fewer than two rows. The rows are not paired with one another, so this orders
    point estimates; it tests nothing."""
    from langchain_selfamplify.evaluation.report import row_label

    rows = sorted((c for c in pooled_against_io(grid["summary"]) if c["dataset"] == dataset),
                  key=lambda c: c["difference"], reverse=True)
    if len(rows) < 2:
        return ""
    def label(c: dict[str, Any]) -> str:
        return row_label(c["method"], c["strategy"]).removeprefix("Self-AMPLIFY ")

    top = rows[0]
    # The paper's Ph-CoT is a method, run with each strategy: an error row leading is
    # Ph-CoT leading, though not the success row the line above tests.
    if top["method"] != "ph_cot":
        leader = f"no Ph-CoT row's is the largest ({label(top)}'s is)"
    elif top["strategy"] == "success":
        leader = "Ph-CoT (success)'s is the largest"
    else:
        leader = f"a Ph-CoT row's is the largest ({label(top)}'s, not Ph-CoT (success)'s)"
    return (f" Among the {len(rows)} Self-AMPLIFY rows run there, largest gain first: "
            + "; ".join(f"{label(c)} {100 * c['difference']:+.1f} pts ({c['seeds']} seed(s))"
                        for c in rows)
            + f": {leader} (point estimates over each row's own seeds, not a paired test "
            "between rows).")


def _multiple_comparisons(tested: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """A sentence on how many Self-AMPLIFY-vs-IO tests the lists above hold and how their
    verdicts were corrected (Holm, within each table's family)."""
    if not tested:
        return []
    decided = [(m, f, c) for m, f, c in tested if c["verdict"] != "no detectable difference"]
    sizes = sorted({c.get("family_size", 1) for _, _, c in tested})
    line = (f"These lists hold {len(tested)} paired Self-AMPLIFY-vs-IO tests. A verdict needs "
            "its interval to exclude 0 and its p-value to pass Holm's correction within its "
            f"table (families of {', '.join(map(str, sizes))} planned tests); ")
    line += ("; ".join(f"{m}, {f}, {c['dataset']}, {c['method']} ({c['strategy']}): "
                       f"p={c['p_value']:.2g} over {c['seeds']} seed(s), {c['verdict']} IO"
                       for m, f, c in decided) + "."
             if decided else "none passes.")
    return [line]
