"""Compare explainers' rationales on ARC-Challenge and Snarks (embedded model).

For each method (the paper's four by default; ``--methods all`` for every registered
one): time per example, model evaluations per example, and the faithfulness of its
rationales: comprehensiveness and sufficiency against random k words for keyword
rationales, each difference with its 95% paired-bootstrap interval over the examples,
and the rationale effect with its standard error. Words are taken out as
``word_absence`` says (mask by default). See
``langchain_selfamplify/evaluation/faithfulness.py`` for the definitions.

Run: ``python benchmarks/faithfulness.py`` (64 examples per dataset; about an hour on
2 CPU cores). Writes ``docs/results/faithfulness.{json,md}`` after every method; a rerun
with the same settings resumes after the last finished one.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from harness import RESULTS, markdown_table, shared_datasets, timed, write_results

from langchain_selfamplify import (
    METHODS,
    SLM,
    RationaleGenerator,
    faithfulness_report,
    load_dataset,
)
from langchain_selfamplify.evaluation.statistics import paired_bootstrap
from langchain_selfamplify.rationales.words import question_words

PAPER_METHODS = ["deeplift", "kernelshap", "self_topk", "ph_cot"]

# Perturbation budgets are cut from the library defaults so the run fits on a CPU; the
# table states them.
BUDGETS = {"kernelshap": {"n_samples": 64}, "lime": {"n_samples": 64},
           "shap_partition": {"max_evals": 64}, "shapley_sampling": {"n_permutations": 2},
           "integrated_gradients": {"path_steps": 16}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=64, help="examples per dataset")
    parser.add_argument("--methods", default=",".join(PAPER_METHODS),
                        help="comma-separated methods, or 'all'")
    parser.add_argument("--word-absence", default="mask", choices=["mask", "delete"])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    methods = sorted(METHODS) if args.methods == "all" else args.methods.split(",")
    data_dir = shared_datasets()
    slm = SLM.from_default(show_progress=False)
    datasets = {
        "arc_challenge": load_dataset("arc_challenge", split="train", data_dir=data_dir),
        "snarks": load_dataset("snarks", split="all", data_dir=data_dir),
    }
    records = _finished_records(args)
    rows = [_row(record) for record in records]
    done = {(r["dataset"], r["method"]) for r in records}
    for dataset, examples in datasets.items():
        sample = random.Random(args.seed).sample(examples, args.examples)
        for method in methods:
            if (dataset, method) in done:
                print(dataset, method, "already measured", flush=True)
                continue
            settings = BUDGETS.get(method, {})
            generator = RationaleGenerator(
                backend=slm, method=method, k=args.k, method_kwargs=settings,
                word_absence=args.word_absence if not METHODS[method].needs_gradients
                else "mask")
            times: dict[str, float] = {}
            try:
                with timed(times, "explain"):
                    explained, unusable = generator.explain_usable(sample)
            except Exception as exc:  # a method failing on this model is a result too
                records.append({"dataset": dataset, "method": method, "error": str(exc)})
                rows.append(_row(records[-1]))
                continue
            report = faithfulness_report(slm, explained, method=method, seed=args.seed,
                                         word_absence=args.word_absence)
            means = report.means()
            versus_random = _versus_random(report.examples)
            passes = statistics.fmean(
                generator.explainer.forward_passes(
                    sum(w.is_candidate for w in question_words(ex))) for ex in sample)
            record = {"dataset": dataset, "method": method, "settings": settings,
                      "unusable": unusable,
                      "seconds_per_example": times["explain"] / len(sample),
                      "forward_passes_per_example": passes, **means, **versus_random,
                      "examples": [e.model_dump() for e in report.examples]}
            records.append(record)
            rows.append(_row(record))
            print(dataset, method, f"{times['explain']:.1f}s", flush=True)
            # Written after every method, so an interrupted run still publishes what it has.
            _write(args, rows, records, expected=len(datasets) * len(methods))
    _write(args, rows, records, expected=len(datasets) * len(methods))


def _finished_records(args: argparse.Namespace) -> list[dict]:
    """Pairs measured by an earlier run with the same settings, so a rerun resumes."""
    path = RESULTS / "faithfulness.json"
    if not path.exists():
        return []
    earlier = json.loads(path.read_text(encoding="utf-8"))
    same = {"k": args.k, "examples": args.examples, "seed": args.seed,
            "word_absence": args.word_absence, "budgets": BUDGETS}
    if any(earlier.get(key) != value for key, value in same.items()):
        return []
    return [r for r in earlier.get("results", []) if "error" not in r]


def _row(record: dict) -> list:
    """One table row from one (dataset, method) record."""
    if "error" in record:
        return [record["dataset"], record["method"], "failed: " + record["error"][:60],
                *[None] * 6]
    effects = [e["rationale_effect"] for e in record["examples"]]
    return [record["dataset"], record["method"], f"{record['seconds_per_example']:.2f}",
            round(record["forward_passes_per_example"]),
            _interval(record.get("comprehensiveness_gain")),
            _interval(record.get("sufficiency_gain")),
            f"{statistics.fmean(effects):+.3f} ± {_se(effects):.3f}",
            f"{record.get('p_gold', 0):.3f}", len(record["examples"])]


def _write(args: argparse.Namespace, rows: list, records: list, expected: int) -> None:
    # Rows by dataset, then in the order the methods were asked for (resumed runs add
    # pairs out of that order).
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    methods = sorted(METHODS) if args.methods == "all" else args.methods.split(",")
    order = sorted(range(len(records)), key=lambda i: (
        datasets.index(records[i]["dataset"]), methods.index(records[i]["method"])
        if records[i]["method"] in methods else len(methods)))
    rows, records = [rows[i] for i in order], [records[i] for i in order]
    headers = ["dataset", "method", "s/example", "evals/example",
               "comprehensiveness - random-k [95% CI]", "random-k sufficiency - sufficiency "
               "[95% CI]", "rationale effect ± SE", "p(gold)", "n"]
    markdown = "\n".join([
        "# Rationale faithfulness by explainer (SmolLM2-135M-Instruct)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python benchmarks/faithfulness.py "
        f"--examples {args.examples} --methods {args.methods} --word-absence "
        f"{args.word_absence}` on {args.examples} seeded examples per dataset "
        f"(ARC-Challenge train, BIG-bench snarks), k={args.k}, towards the gold answer "
        f"(letter format), absent words: {args.word_absence} (gradient methods always "
        "mask). Budgets: " + ", ".join(f"{m} {s}" for m, s in BUDGETS.items()) + ".",
        "",
        "Comprehensiveness: drop in p(gold) when the keywords are erased; sufficiency: "
        "drop when only they are kept; random-k: the same for k random content words. "
        "Each gain over random-k (comprehensiveness above random, sufficiency below "
        "random) is given with its 95% paired-bootstrap interval over the examples: an "
        "interval above 0 means the keywords matter more than random words. Rationale "
        "effect: change in p(gold) when the rationale is written before 'The answer is "
        "(', mean ± standard error. Probabilities are renormalised over the answer "
        "labels. An example the method could make no rationale for (an unusable Self_topk "
        "reply) is left out: n counts the rest.",
        "",
        markdown_table(headers, rows),
        "" if len(rows) == expected else
        f"\n**Partial**: {len(rows)} of {expected} (dataset, method) pairs measured when "
        "this file was written; rerun the command for the rest.",
    ])
    write_results("faithfulness", {"k": args.k, "examples": args.examples, "seed": args.seed,
                                   "word_absence": args.word_absence, "budgets": BUDGETS,
                                   "results": records}, markdown)


def _versus_random(examples: list) -> dict[str, list[float]]:
    """Paired gains of the keywords over random-k words, with 95% bootstrap intervals."""
    keyed = [e for e in examples if e.comprehensiveness is not None]
    if not keyed:
        return {}
    return {
        "comprehensiveness_gain": list(paired_bootstrap(
            [e.comprehensiveness for e in keyed], [e.random_comprehensiveness for e in keyed])),
        "sufficiency_gain": list(paired_bootstrap(
            [e.random_sufficiency for e in keyed], [e.sufficiency for e in keyed])),
    }


def _interval(values: list[float] | None) -> str:
    return "" if not values else f"{values[0]:+.3f} [{values[1]:+.3f}, {values[2]:+.3f}]"


def _se(values: list[float]) -> float:
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")


if __name__ == "__main__":
    main()
