"""What a grid's files say: accuracy, label-bias diagnostics and paired comparisons.

Reads ``cells.jsonl``, ``predictions.jsonl`` and ``prompts/`` of a grid directory (see
``grid.py``), so a summary can be rebuilt at any time, from a finished or a partial run.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from langchain_selfamplify.baselines import BASELINES
from langchain_selfamplify.checkpoint import read_jsonl
from langchain_selfamplify.errors import PromptFileError
from langchain_selfamplify.evaluation.diagnostics import TOP_LABEL_FLAG, cell_diagnostics
from langchain_selfamplify.evaluation.metrics import accuracy
from langchain_selfamplify.evaluation.statistics import compare_across_seeds, compare_paired
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt


def summarize(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Accuracy, label-bias diagnostics and paired comparisons from a grid's files.

    Returns:
        ``{"cells": [...], "rows": [...], "comparisons": [...], "predictions": n}``.
        A cell (one seed) carries its accuracy and :class:`CellDiagnostics`; a row (a
        dataset, method and strategy over its seeds) the accuracy pooled over seeds,
        the mean of the per-seed accuracies and whether any seed is flagged; a
        comparison the paired difference of a row with IO, Auto-CoT and AMPLIFY, per
        seed and across seeds (see :mod:`.statistics`).
    """
    out = Path(out)
    cell_records = {r["cell"]: r for r in read_jsonl(out / "cells.jsonl")}
    by_cell: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in read_jsonl(out / "predictions.jsonl"):
        by_cell[record["cell"]].setdefault(record["question_id"], record)
    cells = []
    for key, record in cell_records.items():
        cell: dict[str, Any] = {k: record[k] for k in ("cell", "dataset", "method", "strategy",
                                                       "seed", "status")}
        cell["seconds"] = record.get("seconds", 0.0)
        predictions = list(by_cell.get(key, {}).values())
        if record["status"] == "failed":
            cell["reason"] = record.get("reason", "")
        elif predictions:
            correct = sum(bool(p["correct"]) for p in predictions)
            cell["accuracy"] = accuracy(correct, len(predictions)).model_dump()
            cell["unparsed"] = sum(p["parsed"] is None for p in predictions)
            cell["diagnostics"] = cell_diagnostics(
                predictions, _demo_labels(out / "prompts" / f"{key}.json")).model_dump()
            cell["flagged"] = cell["diagnostics"]["top_label_share"] > TOP_LABEL_FLAG
        cells.append(cell)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for cell in cells:
        row = rows.setdefault((cell["dataset"], cell["method"], cell["strategy"]), {
            "dataset": cell["dataset"], "method": cell["method"], "strategy": cell["strategy"],
            "correct": 0, "n": 0, "unparsed": 0, "seconds": 0.0, "failed": [], "seeds": [],
            "seed_accuracies": [], "flagged": False, "top_label_shares": [],
            "truncation_rates": []})
        row["seeds"].append(cell["seed"])
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
    for row in rows.values():
        if row["n"]:
            row["accuracy"] = accuracy(row["correct"], row["n"]).model_dump()
            row["at_chance"] = row["accuracy"]["ci_low"] <= row["chance"]
    correct_by = {(c["dataset"], c["method"], c["strategy"], c["seed"]):
                  {qid: bool(p["correct"]) for qid, p in by_cell.get(c["cell"], {}).items()}
                  for c in cells if "accuracy" in c}
    return {"cells": cells, "rows": list(rows.values()),
            "comparisons": paired_comparisons(correct_by),
            "predictions": sum(len(v) for v in by_cell.values())}


def correct_by_cell(out: str | os.PathLike[str]) -> dict[tuple[str, str, str, int],
                                                       dict[str, bool]]:
    """(dataset, method, strategy, seed) -> question id -> correct, from a grid's
    ``predictions.jsonl`` (the first record of a question counts)."""
    answers: dict[tuple[str, str, str, int], dict[str, bool]] = defaultdict(dict)
    for record in read_jsonl(Path(out) / "predictions.jsonl"):
        key = (record["dataset"], record["method"], record["strategy"], record["seed"])
        answers[key].setdefault(record["question_id"], bool(record["correct"]))
    return dict(answers)


def paired_comparisons(correct_by: dict[tuple[str, str, str, int], dict[str, bool]]
                       ) -> list[dict[str, Any]]:
    """Every row against every baseline row of its dataset, per seed and across seeds.

    Args:
        correct_by: (dataset, method, strategy, seed) -> question id -> correct.
    """
    rows = sorted({key[:3] for key in correct_by})
    results = []
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
                comparison = compare_paired(mine[seed], theirs[seed])
                results.append({**base, "seed": seed, **comparison.model_dump(),
                                "verdict": comparison.verdict})
            pooled = compare_across_seeds(mine, theirs)
            results.append({**base, "seed": "all", **pooled.model_dump(),
                            "verdict": pooled.verdict})
    return results


def _demo_labels(path: Path) -> list[str]:
    try:
        return [example.answer for example in AmplifiedPrompt.load(path).examples]
    except PromptFileError:
        return []
