"""May the capable model's table run in bfloat16? Predictions compared with float32.

bfloat16 runs Qwen2.5-Coder-1.5B about 1.56x faster than float32 on two CPU cores, but
it rounds every activation: a near-tie between two labels can flip. The table may run
in bfloat16 only if, on a slice of at least :data:`LEAST_QUESTIONS` questions, at least
:data:`LEAST_AGREEMENT` of the predictions are identical to float32's.

Reads answers both dtypes already wrote, question by question (nothing is run here):

- the zero-shot screen, ``docs/results/zero_shot_run/<model>.jsonl`` against
  ``<model>__bfloat16.jsonl`` (``benchmarks/zero_shot.py [--dtype bfloat16]``);
- grid cells that both a float32 and a bfloat16 run of ``benchmarks/paper_table.py``
  finished with the same demonstrations' settings (same cell name and question).

Run: ``python benchmarks/dtype_agreement.py [--model ...] [--float32-grid DIR]
[--bfloat16-grid DIR]``. Writes ``docs/results/dtype_agreement.{json,md}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import RESULTS, markdown_table, write_results
from zero_shot import run_file

from langchain_selfamplify.checkpoint import read_jsonl
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt

LEAST_QUESTIONS = 200
"""Fewest paired predictions the decision may rest on."""

LEAST_AGREEMENT = 0.98
"""Least share of identical predictions for bfloat16 to stand in for float32."""


def paired(reference: list[dict[str, Any]], candidate: list[dict[str, Any]],
           key: tuple[str, ...]) -> dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]]:
    """Records of both runs matched on ``key`` (the first record of each key)."""
    first: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in reference:
        first.setdefault(tuple(record[k] for k in key), record)
    pairs: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}
    for record in candidate:
        found = first.get(tuple(record[k] for k in key))
        if found is not None:
            pairs.setdefault(tuple(record[k] for k in key), (found, record))
    return pairs


def slice_row(name: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Agreement and both accuracies of one slice; for answers written after a test-time
    rationale, how many of those rationales are identical too."""
    n = len(pairs)
    row = {"slice": name, "n": n,
           "identical": sum(a["parsed"] == b["parsed"] for a, b in pairs),
           "float32_correct": sum(bool(a["correct"]) for a, _ in pairs),
           "bfloat16_correct": sum(bool(b["correct"]) for _, b in pairs)}
    written = [(a["raw_output"], b["raw_output"]) for a, b in pairs
               if a.get("raw_output") is not None and b.get("raw_output") is not None]
    if written:
        row["rationales"] = len(written)
        row["rationales_identical"] = sum(a == b for a, b in written)
    return row


def same_demonstrations(reference: Path, candidate: Path) -> dict[str, int]:
    """How many of a cell's demonstrations both dtypes selected, and of those, how many
    carry the same rationale (the saved prompts of the two runs' cell)."""
    examples = [{ex.id: ex.rationale for ex in AmplifiedPrompt.load(path).examples}
                for path in (reference, candidate)]
    shared = examples[0].keys() & examples[1].keys()
    return {"demonstrations": len(examples[0]), "same_demonstrations": len(shared),
            "same_rationales": sum(examples[0][i] == examples[1][i] for i in shared)}


def zero_shot_slices(model: str) -> list[dict[str, Any]]:
    """One slice per (dataset, format) of the zero-shot screen both dtypes answered."""
    pairs = paired(read_jsonl(run_file(model)), read_jsonl(run_file(model, "bfloat16")),
                   ("dataset", "answer_format", "question_id"))
    groups: dict[tuple[str, str], list[Any]] = {}
    for (dataset, answer_format, _), pair in pairs.items():
        groups.setdefault((dataset, answer_format), []).append(pair)
    return [slice_row(f"zero-shot {dataset}, {fmt}", group)
            for (dataset, fmt), group in sorted(groups.items())]


def grid_slices(float32_grid: Path, bfloat16_grid: Path) -> list[dict[str, Any]]:
    """One slice per grid cell both runs answered."""
    rows = []
    for reference_dir in sorted(p for p in float32_grid.iterdir() if p.is_dir()):
        candidate_dir = bfloat16_grid / reference_dir.name
        pairs = paired(read_jsonl(reference_dir / "predictions.jsonl"),
                       read_jsonl(candidate_dir / "predictions.jsonl"), ("cell", "question_id"))
        groups: dict[str, list[Any]] = {}
        for (cell, _), pair in pairs.items():
            groups.setdefault(cell, []).append(pair)
        for cell, group in sorted(groups.items()):
            row = slice_row(f"8-shot {cell} ({reference_dir.name})", group)
            prompts = [d / "prompts" / f"{cell}.json" for d in (reference_dir, candidate_dir)]
            if all(p.is_file() for p in prompts):
                row.update(same_demonstrations(*prompts))
            rows.append(row)
    return rows


def _prompt_cells(row: dict[str, Any]) -> list[str]:
    """A slice's prompt and rationale agreement, where it has them."""
    demos = (f"{row['same_demonstrations']} of {row['demonstrations']} "
             f"({row['same_rationales']})" if "demonstrations" in row else "")
    written = (f"{row['rationales_identical']} of {row['rationales']}"
               if "rationales" in row else "")
    return [demos, written]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--float32-grid", default=str(RESULTS / "paper_table_qwen_float32_run"))
    parser.add_argument("--bfloat16-grid", default=str(RESULTS / "paper_table_qwen_run"))
    args = parser.parse_args()
    slices = zero_shot_slices(args.model)
    if Path(args.float32_grid).is_dir() and Path(args.bfloat16_grid).is_dir():
        slices += grid_slices(Path(args.float32_grid), Path(args.bfloat16_grid))
    n = sum(s["n"] for s in slices)
    identical = sum(s["identical"] for s in slices)
    share = identical / n if n else 0.0
    allowed = n >= LEAST_QUESTIONS and share >= LEAST_AGREEMENT
    rows = [[s["slice"], s["n"], f"{s['identical'] / s['n']:.1%}",
             f"{s['float32_correct'] / s['n']:.1%}", f"{s['bfloat16_correct'] / s['n']:.1%}",
             *_prompt_cells(s)]
            for s in slices]
    rows.append(["**all**", n, f"**{share:.1%}**" if n else "-",
                 f"{sum(s['float32_correct'] for s in slices) / max(n, 1):.1%}",
                 f"{sum(s['bfloat16_correct'] for s in slices) / max(n, 1):.1%}", "", ""])
    decision = (f"**bfloat16 may stand in for float32**: {identical} of {n} predictions "
                f"({share:.1%}) are identical, at least {LEAST_AGREEMENT:.0%} of at least "
                f"{LEAST_QUESTIONS}." if allowed else
                f"**bfloat16 may not stand in for float32**: {identical} of {n} predictions "
                f"({share:.1%}) are identical; the rule asks for at least "
                f"{LEAST_AGREEMENT:.0%} of at least {LEAST_QUESTIONS}.")
    markdown = "\n".join([
        f"# float32 against bfloat16 on {args.model}",
        "",
        "From answers both dtypes wrote for the same questions (zero-shot screen, and "
        "grid cells both runs finished). Identical: the same predicted label. A grid "
        "cell's prompt is built by each run itself, so the dtypes may select other "
        "demonstrations (the success strategy ranks the pool by the model's confidence) "
        "and write other rationales for them; a rationale row's answers also follow a "
        "test-time rationale each run writes itself.",
        "",
        markdown_table(["slice", "questions", "identical", "float32 accuracy",
                        "bfloat16 accuracy", "same demonstrations (same rationale)",
                        "same test-time rationales"], rows),
        "",
        decision,
    ])
    write_results("dtype_agreement", {
        "model": args.model, "slices": slices, "n": n, "identical": identical,
        "agreement": share, "allowed": allowed, "least_questions": LEAST_QUESTIONS,
        "least_agreement": LEAST_AGREEMENT}, markdown)


if __name__ == "__main__":
    main()
