"""Selection: scoring a labelled pool, ours against per-example one-token ``generate``.

Ours is ``SelfAmplifySelector.score_pool`` (batched label scoring, the chat template's
system turn encoded once, the vocabulary projected at the last position only). The
reference is :func:`langchain_selfamplify.reference_routes.generate_predictions`: one
``model.generate(max_new_tokens=1)`` per example, as the paper's code scores the pool.
Both read the label tokens at the same position, so predictions must be identical.

Run: ``python benchmarks/selection.py`` (about 5 minutes on 2 CPU cores).
Writes ``docs/results/selection.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics

from harness import (
    counted_tokens,
    flop_limit_seconds,
    markdown_table,
    median_seconds,
    n_parameters,
    peak_gflops,
    shared_datasets,
    write_results,
)

from langchain_selfamplify import SLM, SelfAmplifySelector, load_dataset
from langchain_selfamplify.models.chat_format import Prompt
from langchain_selfamplify.reference_routes import generate_predictions

GOAL = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool", type=int, default=300, help="ARC-Challenge train examples")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    pool = load_dataset("arc_challenge", split="train", data_dir=shared_datasets(),
                        limit=args.pool)
    slm = SLM.from_default(show_progress=False)
    gflops, params = peak_gflops(), n_parameters(slm.model)

    def ours() -> list[str]:
        selector = SelfAmplifySelector(examples=pool, backend=slm, n=1)
        return [scored.predicted for scored in selector.score_pool()]

    with counted_tokens(slm.model) as ours_tokens:
        ours_s, ours_times, ours_pred = median_seconds(ours, args.repeats)
    with counted_tokens(slm.model) as ref_tokens:
        ref_s, ref_times, ref_pred = median_seconds(
            lambda: generate_predictions(slm, pool), args.repeats)
    identical = sum(a == b for a, b in zip(ours_pred, ref_pred, strict=True))
    speedup = ref_s / ours_s
    # The least any exact float32 route must run: each prompt once, the prefix all
    # prompts share once. At the machine's peak that takes ``floor_s``.
    token_lists = slm.tokenize(_prompts(slm, pool))
    shared = _common_prefix(token_lists)
    must_run = sum(len(t) for t in token_lists) - (len(token_lists) - 1) * shared
    floor_s = flop_limit_seconds(params, must_run, gflops)

    routes = []
    for name, seconds, times, tokens in (
        ("ours: SelfAmplifySelector.score_pool", ours_s, ours_times, ours_tokens),
        ("reference: one-token generate per example", ref_s, ref_times, ref_tokens),
    ):
        per_run = tokens["tokens"] // args.repeats
        limit = flop_limit_seconds(params, per_run, gflops)
        routes.append({"route": name, "median_s": seconds, "times_s": times,
                       "examples_per_s": len(pool) / seconds, "tokens_run": per_run,
                       "flop_limit_s": limit, "fraction_of_peak": limit / seconds})
    rows = [[r["route"], r["median_s"], r["examples_per_s"], r["tokens_run"],
             r["flop_limit_s"], f"{100 * r['fraction_of_peak']:.0f}%"] for r in routes]
    markdown = "\n".join([
        f"# Selection: scoring a {len(pool)}-example ARC-Challenge pool",
        "",
        f"Median of {args.repeats} runs, embedded SmolLM2-135M-Instruct, "
        f"{statistics.mean(len(slm.tokenize([p])[0]) for p in _prompts(slm, pool[:50])):.0f} "
        "prompt tokens on average. FLOP limit: 2 x "
        f"{params / 1e6:.0f}M non-embedding parameters x tokens run, at this machine's measured "
        f"{gflops:.0f} GFLOP/s (float32 matmul).",
        "",
        markdown_table(["route", "median s", "examples/s", "tokens run", "FLOP limit s",
                        "of peak"], rows),
        "",
        f"**Speed-up: {speedup:.2f}x** (goal: {GOAL:.0f}x). Identical predictions: "
        f"{identical}/{len(pool)}.",
        "",
        f"The tokens that must be run (each prompt once, the {shared}-token prefix all "
        f"prompts share once: {must_run}) take {floor_s:.1f} s at the machine's peak, so "
        f"no exact float32 route can beat the reference by more than "
        f"{ref_s / floor_s:.1f}x here; ours runs at {100 * floor_s / ours_s:.0f}% of that "
        "bound. The goal assumed batching pays as on a GPU; on two CPU cores a single "
        "prompt already keeps the cores busy.",
    ])
    write_results("selection", {
        "pool": len(pool), "repeats": args.repeats, "peak_gflops": gflops,
        "tokens_that_must_run": must_run, "floor_s": floor_s,
        "best_possible_speedup": ref_s / floor_s,
        "parameters": params, "routes": routes, "speedup": speedup,
        "identical_predictions": identical,
        "headline": [{
            "target": f"Selection: score a {len(pool)}-example pool vs one-token generate",
            "result": f"{speedup:.2f}x, {identical}/{len(pool)} identical predictions",
            "goal": f">= {GOAL:.0f}x, identical", "met": speedup >= GOAL
            and identical == len(pool)}],
    }, markdown)


def _common_prefix(token_lists: list[list[int]]) -> int:
    first, length = token_lists[0], min(len(t) for t in token_lists)
    for tokens in token_lists[1:]:
        length = next((i for i in range(length) if tokens[i] != first[i]), length)
    return length


def _prompts(slm: SLM, examples: list) -> list[Prompt]:
    from langchain_selfamplify.prompting.messages import zero_shot_prompt

    return [zero_shot_prompt(slm, ex) for ex in examples]


if __name__ == "__main__":
    main()
