"""Rationale length against accuracy: k keywords (DeepLift) and n steps (Ph-CoT).

On ARC-Challenge with the embedded model: the same `success` demonstrations are
explained with k in {1, 3, 5, 10} keywords and n in {1, 2, 3, 5} steps; each
amplified prompt answers the same 64 test questions (its rationales' faithfulness is
reported beside) and is paired with the IO baseline on them (difference, paired
bootstrap interval, exact McNemar p-value). One seed: a screen, not a verdict.

Run: ``python benchmarks/rationale_length.py`` (about 20 minutes on 2 CPU cores).
Writes ``docs/results/rationale_length.{json,md}``.
"""

from __future__ import annotations

import argparse
import random
import time

from harness import markdown_table, shared_datasets, timed, write_results

from langchain_selfamplify import (
    SLM,
    AmplifiedPrompt,
    RationaleGenerator,
    SelfAmplifySelector,
    compare_paired,
    evaluate_prompt,
    faithfulness_report,
    io_prompt,
    load_dataset,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool", type=int, default=60)
    parser.add_argument("--test", type=int, default=64)
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data_dir = shared_datasets()
    slm = SLM.from_default(show_progress=False)
    pool = random.Random(args.seed).sample(
        load_dataset("arc_challenge", split="train", data_dir=data_dir), args.pool)
    test = load_dataset("arc_challenge", split="test", data_dir=data_dir)[: args.test]
    selector = SelfAmplifySelector(backend=slm, examples=pool, strategy="success", n=args.shots,
                                   seed=args.seed)
    demos = selector.select()
    settings = [("io", None)] + [("deeplift", k) for k in (1, 3, 5, 10)] + [
        ("ph_cot", n) for n in (1, 2, 3, 5)]
    rows, records = [], []
    io_correct: dict[str, bool] = {}
    for method, length in settings:
        times: dict[str, float] = {}
        if method == "io":
            prompt = io_prompt(pool, args.shots, args.seed)
            means: dict[str, float] = {}
        else:
            key = "k" if method == "deeplift" else "n_steps"
            generator = RationaleGenerator(backend=slm, method=method, **{key: length})
            with timed(times, "rationales"):
                prompt = AmplifiedPrompt(examples=generator.explain(demos))
            means = faithfulness_report(slm, prompt.examples, method=method).means()
        with timed(times, "evaluate"):
            result = evaluate_prompt(slm, prompt, test, f"{method} {length or ''}".strip())
        acc = result.accuracy
        correct = {p.id: p.correct for p in result.predictions}
        if method == "io":
            io_correct = correct
        paired = compare_paired(correct, io_correct) if method != "io" else None
        records.append({"method": method, "length": length, "accuracy": acc.model_dump(),
                        "versus_io": paired.model_dump() if paired else None,
                        "faithfulness": means, "seconds": times,
                        "rationales": [ex.rationale for ex in prompt.examples]})
        rows.append([method, "" if length is None else length, acc.value,
                     f"[{acc.ci_low:.3f}, {acc.ci_high:.3f}]", acc.n,
                     "" if paired is None else
                     f"{paired.difference * 100:+.1f} pts [{paired.ci_low * 100:+.1f}, "
                     f"{paired.ci_high * 100:+.1f}], McNemar p={paired.p_value:.2g}",
                     means.get("comprehensiveness"), means.get("random_comprehensiveness"),
                     means.get("rationale_effect"), round(sum(times.values()), 1)])
        print(method, length, f"{acc.value:.3f}", flush=True)
    headers = ["method", "k / n steps", "accuracy", "95% CI", "n",
               "vs IO on the same questions", "comprehensiveness",
               "random-k comp.", "rationale effect", "seconds"]
    markdown = "\n".join([
        "# Rationale length against accuracy (SmolLM2-135M-Instruct, ARC-Challenge)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python benchmarks/rationale_length.py`: "
        f"{args.shots} `success` demonstrations from a seeded pool of {args.pool} "
        f"ARC-Challenge train questions, the first {args.test} test questions, seed "
        f"{args.seed}. Answers are scored after the model's own rationale (letter format). "
        "Each row is paired with IO on the same questions (difference, 95% paired "
        "bootstrap, exact McNemar p). One seed and few questions: read a difference "
        "only where its interval excludes 0. Faithfulness columns describe the "
        "demonstrations' rationales (see faithfulness.md).",
        "",
        markdown_table(headers, rows),
    ])
    write_results("rationale_length", {**vars(args), "results": records}, markdown)


if __name__ == "__main__":
    main()
