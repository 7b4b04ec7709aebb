"""Compare every explainer's rationales on ARC-Challenge and Snarks (embedded model).

For each registered method: time per example, model evaluations per example, and the
faithfulness of its rationales (comprehensiveness and sufficiency against random k
words for keyword rationales, rationale effect for all). See
``langchain_selfamplify/evaluation/faithfulness.py`` for the definitions.

Run: ``python benchmarks/faithfulness.py`` (about 15 minutes on 2 CPU cores).
Writes ``docs/results/faithfulness.{json,md}``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from harness import markdown_table, shared_datasets, timed, write_results

from langchain_selfamplify import (
    METHODS,
    SLM,
    RationaleGenerator,
    faithfulness_report,
    load_dataset,
)
from langchain_selfamplify.rationales.words import question_words

# Perturbation budgets are cut from the library defaults so the run fits on a CPU; the
# table states them.
BUDGETS = {"kernelshap": {"n_samples": 64}, "lime": {"n_samples": 64},
           "shap_partition": {"max_evals": 64}, "shapley_sampling": {"n_permutations": 2},
           "integrated_gradients": {"path_steps": 16}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=8, help="examples per dataset")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data_dir = shared_datasets()
    slm = SLM.from_default(show_progress=False)
    datasets = {
        "arc_challenge": load_dataset("arc_challenge", split="train", data_dir=data_dir),
        "snarks": load_dataset("snarks", split="all", data_dir=data_dir),
    }
    rows, records = [], []
    for dataset, examples in datasets.items():
        sample = random.Random(args.seed).sample(examples, args.examples)
        for method in sorted(METHODS):
            settings = BUDGETS.get(method, {})
            generator = RationaleGenerator(slm=slm, method=method, k=args.k,
                                           method_kwargs=settings)
            times: dict[str, float] = {}
            try:
                with timed(times, "explain"):
                    explained = generator.explain(sample)
            except Exception as exc:  # a method failing on this model is a result too
                records.append({"dataset": dataset, "method": method, "error": str(exc)})
                rows.append([dataset, method, "failed: " + str(exc)[:60]] + [None] * 7)
                continue
            report = faithfulness_report(slm, explained, method=method, seed=args.seed)
            means = report.means()
            passes = statistics.fmean(
                generator.explainer.forward_passes(
                    sum(w.is_candidate for w in question_words(ex))) for ex in sample)
            record = {"dataset": dataset, "method": method, "settings": settings,
                      "seconds_per_example": times["explain"] / len(sample),
                      "forward_passes_per_example": passes, **means,
                      "examples": [e.model_dump() for e in report.examples]}
            records.append(record)
            rows.append([dataset, method, f"{record['seconds_per_example']:.2f}",
                         round(passes), means.get("comprehensiveness"),
                         means.get("random_comprehensiveness"), means.get("sufficiency"),
                         means.get("random_sufficiency"), means.get("rationale_effect"),
                         means.get("p_gold")])
            print(dataset, method, f"{times['explain']:.1f}s", flush=True)
    headers = ["dataset", "method", "s/example", "evals/example", "comprehensiveness",
               "random-k comp.", "sufficiency", "random-k suff.", "rationale effect",
               "p(gold)"]
    markdown = "\n".join([
        "# Rationale faithfulness by explainer (SmolLM2-135M-Instruct)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python benchmarks/faithfulness.py` on "
        f"{args.examples} seeded examples per dataset (ARC-Challenge train, BIG-bench "
        f"snarks), k={args.k}, towards the gold answer. Budgets: "
        + ", ".join(f"{m} {s}" for m, s in BUDGETS.items()) + ".",
        "",
        "Comprehensiveness: drop in p(gold) when the keywords are erased (higher is more "
        "faithful); sufficiency: drop when only they are kept (lower is more faithful); "
        "random-k: the same for k random content words. Rationale effect: change in "
        "p(gold) when the rationale is written before 'The answer is ('. Probabilities "
        "are renormalised over the answer labels.",
        "",
        markdown_table(headers, rows),
    ])
    write_results("faithfulness", {"k": args.k, "examples": args.examples, "seed": args.seed,
                                   "budgets": BUDGETS, "results": records}, markdown)


if __name__ == "__main__":
    main()
