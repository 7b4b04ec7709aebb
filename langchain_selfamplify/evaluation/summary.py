"""What a grid's files say: accuracy, label-bias diagnostics and paired comparisons.

Reads ``cells.jsonl``, ``predictions.jsonl`` and ``prompts/`` of a grid directory (see
``grid.py``), so a summary can be rebuilt at any time, from a finished or a partial run.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langchain_selfamplify.baselines import BASELINES
from langchain_selfamplify.checkpoint import read_jsonl
from langchain_selfamplify.errors import PromptFileError
from langchain_selfamplify.evaluation.diagnostics import TOP_LABEL_FLAG, cell_diagnostics
from langchain_selfamplify.evaluation.metrics import accuracy, clustered_accuracy
from langchain_selfamplify.evaluation.statistics import (
    ALPHA,
    compare_across_seeds,
    compare_paired,
    holm_significant,
)
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt


def summarize(out: str | os.PathLike[str],
              planned: Iterable[tuple[str, str, str]] | None = None) -> dict[str, Any]:
    """Accuracy, label-bias diagnostics and paired comparisons from a grid's files.

    Args:
        out: A grid's output directory.
        planned: The (dataset, method, strategy) rows the table is planned with (see
            :meth:`GridConfig.rows`), which fix the size of each Holm family before
            every cell has finished. Defaults to the rows found in ``out``.

    Returns:
        ``{"cells": [...], "rows": [...], "comparisons": [...], "predictions": n}``.
        A cell (one seed; status ``done``, ``failed``, or ``partial`` when it has
        answers but no record, i.e. it was stopped) carries its accuracy,
        :class:`CellDiagnostics` and how many
        selected examples were skipped for want of a usable rationale; a row (a
        dataset, method and strategy over its seeds) the accuracy pooled over seeds
        with a cluster-bootstrap interval over questions (Wilson for one seed), the
        per-seed accuracies and whether any seed is flagged; a comparison the paired
        difference of a row with IO, Auto-CoT and AMPLIFY, per seed and across seeds
        (see :mod:`.statistics`), with its verdict after Holm's correction over its
        family (see :func:`paired_comparisons`).
    """
    out = Path(out)
    cell_records = {r["cell"]: r for r in read_jsonl(out / "cells.jsonl")}
    by_cell: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in read_jsonl(out / "predictions.jsonl"):
        by_cell[record["cell"]].setdefault(record["question_id"], record)
    # A cell with answers but no record yet was stopped (or is still running): its
    # answered questions are reported, marked partial, and compared on what it has.
    for key, answers in by_cell.items():
        if key not in cell_records:
            first = next(iter(answers.values()))
            cell_records[key] = {k: first[k] for k in ("dataset", "method", "strategy", "seed")}
            cell_records[key].update(cell=key, status="partial")
    cells = []
    for key, record in cell_records.items():
        cell: dict[str, Any] = {k: record[k] for k in ("cell", "dataset", "method", "strategy",
                                                       "seed", "status")}
        cell["seconds"] = record.get("seconds", 0.0)
        labels, skipped, fallback = _prompt_facts(out / "prompts" / f"{key}.json")
        cell["skipped"] = record.get("skipped", skipped)
        cell["fallback"] = fallback
        predictions = list(by_cell.get(key, {}).values())
        if record["status"] == "failed":
            cell["reason"] = record.get("reason", "")
        elif predictions:
            correct = sum(bool(p["correct"]) for p in predictions)
            cell["accuracy"] = accuracy(correct, len(predictions)).model_dump()
            cell["unparsed"] = sum(p["parsed"] is None for p in predictions)
            cell["diagnostics"] = cell_diagnostics(predictions, labels).model_dump()
            cell["flagged"] = cell["diagnostics"]["top_label_share"] > TOP_LABEL_FLAG
        cells.append(cell)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for cell in cells:
        row = rows.setdefault((cell["dataset"], cell["method"], cell["strategy"]), {
            "dataset": cell["dataset"], "method": cell["method"], "strategy": cell["strategy"],
            "correct": 0, "n": 0, "unparsed": 0, "seconds": 0.0, "failed": [], "seeds": [],
            "seed_accuracies": [], "flagged": False, "top_label_shares": [],
            "truncation_rates": [], "skipped": 0, "partial": 0, "fallbacks": 0})
        row["seeds"].append(cell["seed"])
        row["skipped"] += cell["skipped"]
        row["fallbacks"] += cell["fallback"]
        row["partial"] += cell["status"] == "partial"
        row["seconds"] += cell["seconds"]
        if cell["status"] == "failed":
            row["failed"].append(cell.get("reason", ""))
        if "accuracy" not in cell:
            continue
        acc, diag = cell["accuracy"], cell["diagnostics"]
        row["correct"] += acc["correct"]
        row["n"] += acc["n"]
        row["unparsed"] += cell["unparsed"]
        row["seed_accuracies"].append(acc["value"])
        row["flagged"] = row["flagged"] or cell["flagged"]
        row["top_label_shares"].append(diag["top_label_share"])
        row["chance"] = diag["chance"]
        if diag["truncation_rate"] is not None:
            row["truncation_rates"].append(diag["truncation_rate"])
    correct_by = {(c["dataset"], c["method"], c["strategy"], c["seed"]):
                  {qid: bool(p["correct"]) for qid, p in by_cell.get(c["cell"], {}).items()}
                  for c in cells if "accuracy" in c}
    for row in rows.values():
        if row["n"]:
            row["accuracy"] = row_accuracy(
                [v for k, v in correct_by.items()
                 if k[:3] == (row["dataset"], row["method"], row["strategy"])]).model_dump()
            row["at_chance"] = row["accuracy"]["ci_low"] <= row["chance"]
    return {"cells": cells, "rows": list(rows.values()),
            "comparisons": paired_comparisons(correct_by, planned=planned),
            "predictions": sum(len(v) for v in by_cell.values())}


def row_accuracy(seeds: list[dict[str, bool]]) -> Any:
    """A row's accuracy over its seeds' answers (question id -> correct, per seed).

    One seed: Wilson on its questions. Several: every answer counts, and the interval
    is a cluster bootstrap over questions, as the seeds answer the same questions.
    """
    if len(seeds) == 1:
        answers = seeds[0]
        return accuracy(sum(answers.values()), len(answers))
    ids = sorted(set().union(*seeds))
    return clustered_accuracy([sum(bool(s.get(i)) for s in seeds) for i in ids],
                              [sum(i in s for s in seeds) for i in ids])


def correct_by_cell(out: str | os.PathLike[str]) -> dict[tuple[str, str, str, int],
                                                       dict[str, bool]]:
    """(dataset, method, strategy, seed) -> question id -> correct, from a grid's
    ``predictions.jsonl`` (the first record of a question counts)."""
    answers: dict[tuple[str, str, str, int], dict[str, bool]] = defaultdict(dict)
    for record in read_jsonl(Path(out) / "predictions.jsonl"):
        key = (record["dataset"], record["method"], record["strategy"], record["seed"])
        answers[key].setdefault(record["question_id"], bool(record["correct"]))
    return dict(answers)


def paired_comparisons(correct_by: dict[tuple[str, str, str, int], dict[str, bool]],
                       alpha: float = ALPHA,
                       planned: Iterable[tuple[str, str, str]] | None = None,
                       ) -> list[dict[str, Any]]:
    """Every row against every baseline row of its dataset, per seed and across seeds.

    Verdicts are corrected for multiple comparisons with Holm's procedure over each
    family: the Self-AMPLIFY rows' tests against one baseline at one level (across
    seeds, or one seed), over every dataset, as one table shows them. Baseline-vs-
    baseline tests form families of their own. A family's size is that of the planned
    table when one is given (tests not finished count as not rejected, see
    :func:`holm_significant`), so verdicts do not change as unrelated cells finish.
    Each result records ``family_size`` and ``family_finished``.

    Args:
        correct_by: (dataset, method, strategy, seed) -> question id -> correct.
        alpha: Family-wise error rate. Defaults to 0.05.
        planned: The planned (dataset, method, strategy) rows; rows of ``correct_by``
            outside them count too. Defaults to the rows of ``correct_by``.
    """
    rows = sorted({key[:3] for key in correct_by})
    results: list[dict[str, Any]] = []
    comparisons = []
    for dataset, method, strategy in rows:
        for baseline, baseline_strategy in BASELINES.items():
            if baseline == method:
                continue
            mine = {k[3]: v for k, v in correct_by.items() if k[:3] == (dataset, method, strategy)}
            theirs = {k[3]: v for k, v in correct_by.items()
                      if k[:3] == (dataset, baseline, baseline_strategy)}
            common = sorted(set(mine) & set(theirs))
            if not common:
                continue
            base = {"dataset": dataset, "method": method, "strategy": strategy,
                    "baseline": baseline}
            for seed in common:
                results.append({**base, "seed": seed})
                comparisons.append(compare_paired(mine[seed], theirs[seed]))
            results.append({**base, "seed": "all"})
            comparisons.append(compare_across_seeds(mine, theirs))
    families: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for index, result in enumerate(results):
        families[(result["baseline"], result["seed"],
                  result["method"] in BASELINES)].append(index)
    # The planned rows and any other found (a grid resumed with fewer datasets).
    sizes = planned_family_sizes({*rows, *(planned or ())})
    for (baseline, _, is_baseline), members in families.items():
        size = sizes[(baseline, is_baseline)]
        flags = holm_significant([comparisons[i].p_value for i in members], alpha, size)
        for index, significant in zip(members, flags, strict=True):
            comparison = comparisons[index]
            results[index].update(comparison.model_dump(), family_size=size,
                                  family_finished=len(members),
                                  verdict=comparison.decide(significant))
    return results


def planned_family_sizes(rows: Iterable[tuple[str, str, str]]) -> dict[tuple[str, bool], int]:
    """(baseline, whether the tested rows are baselines) -> how many tests a table of
    these (dataset, method, strategy) rows holds against that baseline at one level:
    one per row whose dataset also has the baseline's row."""
    table = set(rows)
    sizes: dict[tuple[str, bool], int] = defaultdict(int)
    for dataset, method, _ in table:
        for baseline, baseline_strategy in BASELINES.items():
            if baseline != method and (dataset, baseline, baseline_strategy) in table:
                sizes[(baseline, method in BASELINES)] += 1
    return dict(sizes)


def _prompt_facts(path: Path) -> tuple[list[str], int, bool]:
    """A saved prompt's demonstration labels, how many selected examples it skipped for
    want of a usable rationale, and whether it fell back to labelled examples because
    no trace passed (DSPy's BootstrapFewShot); none of them when the prompt is missing
    or unreadable."""
    try:
        prompt = AmplifiedPrompt.load(path)
    except PromptFileError:
        return [], 0, False
    return ([example.answer for example in prompt.examples],
            len(prompt.metadata.get("skipped", [])), bool(prompt.metadata.get("fallback")))
