"""Evaluation: answering test questions with an 8-shot amplified prompt, ours against
the plain LangChain route.

The prompt: 8 ARC-Challenge train examples the model gets right (``success``), each
with a Ph-CoT rationale written by the model, as ``selfamplify run`` builds it. Ours is
``answer_questions`` (the few-shot prefix encoded once and its KV cache reused, the
question suffixes batched): in ``generate`` mode, which reads the label from the reply
as the reference does, and in the default ``score`` mode. The reference is
:func:`langchain_selfamplify.reference_routes.pipeline_answers`:
``AmplifiedPrompt | ChatHuggingFace(HuggingFacePipeline)`` invoked one question at a
time over the same in-memory model, same token cap, greedy. The reference is slow, so
it answers the first ``--reference-questions`` questions; questions per second are
compared, and predictions on those questions must be identical.

Run: ``python benchmarks/evaluation.py`` (about 8 minutes on 2 CPU cores).
Writes ``docs/results/evaluation.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from harness import (
    counted_tokens,
    flop_limit_seconds,
    markdown_table,
    n_parameters,
    peak_gflops,
    shared_datasets,
    write_results,
)

from langchain_selfamplify import (
    SLM,
    AmplifiedPrompt,
    RationaleGenerator,
    SelfAmplifySelector,
    load_dataset,
)
from langchain_selfamplify.evaluation.predict import answer_questions, rationale_cap
from langchain_selfamplify.reference_routes import pipeline_answers

GOAL = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=200, help="ARC-Challenge test questions")
    parser.add_argument("--reference-questions", type=int, default=24)
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--max-rationale-tokens", type=int, default=64)
    args = parser.parse_args()

    data = shared_datasets()
    pool = load_dataset("arc_challenge", split="train", data_dir=data, limit=64)
    questions = load_dataset("arc_challenge", split="test", data_dir=data, limit=args.questions)
    slm = SLM.from_default(show_progress=False)
    gflops, params = peak_gflops(), n_parameters(slm.model)
    selector = SelfAmplifySelector(examples=pool, backend=slm, n=args.shots, strategy="success")
    demos = RationaleGenerator(backend=slm, method="ph_cot").invoke(selector.select())
    prompt = AmplifiedPrompt(examples=demos)
    prefix_tokens = slm.count_tokens(slm.format_prompt(prompt.to_messages(questions[0])[:-1]))
    # What answer_questions lets a generate-mode reply run to: its rationale cap (raised
    # to the longest demonstration rationale + 16) + 16.
    max_new = rationale_cap(slm, prompt, args.max_rationale_tokens) + 16

    routes: list[dict[str, Any]] = []

    def measure(name: str, run, n_questions: int):  # type: ignore[no-untyped-def]
        with counted_tokens(slm.model) as tokens:
            start = time.perf_counter()
            predictions = run()
            seconds = time.perf_counter() - start
        limit = flop_limit_seconds(params, tokens["tokens"], gflops)
        routes.append({"route": name, "questions": n_questions, "seconds": seconds,
                       "questions_per_s": n_questions / seconds, "tokens_run": tokens["tokens"],
                       "flop_limit_s": limit, "fraction_of_peak": limit / seconds})
        print(routes[-1], flush=True)
        return predictions

    ours_generate = measure(
        "ours: answer_questions(mode='generate')",
        lambda: answer_questions(slm, prompt, questions, mode="generate",
                                 max_rationale_tokens=args.max_rationale_tokens),
        len(questions))
    ours_score = measure(
        "ours: answer_questions(mode='score'), the default",
        lambda: answer_questions(slm, prompt, questions,
                                 max_rationale_tokens=args.max_rationale_tokens),
        len(questions))
    subset = questions[: args.reference_questions]
    reference = measure(
        "reference: AmplifiedPrompt | ChatHuggingFace(HuggingFacePipeline), one at a time",
        lambda: pipeline_answers(slm, prompt, subset, max_new_tokens=max_new), len(subset))

    ref_qps = routes[2]["questions_per_s"]
    speedup, score_speedup = (routes[0]["questions_per_s"] / ref_qps,
                              routes[1]["questions_per_s"] / ref_qps)
    identical_labels = sum(a.predicted == b.predicted
                           for a, b in zip(ours_generate, reference, strict=False))
    identical_texts = sum(a.rationale.strip() == b.rationale.strip()  # type: ignore[union-attr]
                          for a, b in zip(ours_generate, reference, strict=False))
    score_agree = sum(a.predicted == b.predicted
                      for a, b in zip(ours_score, reference, strict=False))
    rows = [[r["route"], r["questions"], r["seconds"], r["questions_per_s"],
             f"{r['questions_per_s'] / ref_qps:.1f}x", r["tokens_run"], r["flop_limit_s"],
             f"{100 * r['fraction_of_peak']:.0f}%"] for r in routes]
    accuracy = sum(p.correct for p in ours_generate) / len(ours_generate)
    markdown = "\n".join([
        f"# Evaluation: {args.shots}-shot amplified prompt (Ph-CoT) on ARC-Challenge",
        "",
        f"Embedded SmolLM2-135M-Instruct; the few-shot prefix is {prefix_tokens} tokens; "
        f"replies capped at {max_new} new tokens, greedy. Tokens: rows x positions the "
        "model ran (prompt and generated). Of peak: the FLOP limit of those tokens "
        f"(2 x {params / 1e6:.0f}M non-embedding parameters x tokens at the measured {gflops:.0f} "
        "GFLOP/s) over the measured time; decoding one token per row at a time is bound "
        "by memory, not FLOPs, so these fractions are low for every route.",
        "",
        markdown_table(["route", "questions", "seconds", "questions/s", "vs reference",
                        "tokens run", "FLOP limit s", "of peak"], rows),
        "",
        f"**Speed-up (generate mode, same decoding as the reference): {speedup:.1f}x** "
        f"(goal: {GOAL:.0f}x). On the {len(subset)} questions both answered: identical "
        f"predicted labels {identical_labels}/{len(subset)}, identical reply texts "
        f"{identical_texts}/{len(subset)}.",
        "",
        f"The default score mode (rationale stopped at \"The answer is\", labels scored) "
        f"runs at {score_speedup:.1f}x the reference and agrees with it on "
        f"{score_agree}/{len(subset)} labels. Accuracy of the generate mode on "
        f"{len(questions)} questions: {100 * accuracy:.1f}%.",
    ])
    write_results("evaluation", {
        "questions": len(questions), "reference_questions": len(subset),
        "shots": args.shots, "prefix_tokens": prefix_tokens, "max_new_tokens": max_new,
        "peak_gflops": gflops, "parameters": params, "routes": routes,
        "speedup_generate": speedup, "speedup_score": score_speedup,
        "identical_labels": identical_labels, "identical_texts": identical_texts,
        "score_mode_agreement": score_agree,
        "headline": [{
            "target": f"Evaluation: {args.shots}-shot amplified prompt vs "
                      "AmplifiedPrompt | HuggingFacePipeline, one question at a time",
            "result": f"{speedup:.1f}x questions/s, {identical_labels}/{len(subset)} "
                      "identical predictions",
            "goal": f">= {GOAL:.0f}x, identical",
            "met": speedup >= GOAL and identical_labels == len(subset),
        }],
    }, markdown)


if __name__ == "__main__":
    main()
