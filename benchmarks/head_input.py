"""The vocabulary projection's input: the strided rows ``logits_to_keep`` keeps, or a copy.

A causal LM asked for the logits of its last positions only (``logits_to_keep``) slices
them out of the ``(rows, tokens, hidden)`` hidden states before ``lm_head``: a strided
view. On CPU, ``F.linear`` on that view runs as a batched product with the
``(vocab, hidden)`` weight broadcast to every row; on a contiguous copy it is one matrix
product. ``langchain_selfamplify/models/head_input.py`` hands it the copy (a pre-hook on
the output embeddings). This measures both routes in one run, on the model's own
``lm_head``:

- speed: the projection alone at the shapes the table's passes give it, the two routes
  interleaved, median of ``--repeats`` (end-to-end times on this shared machine drift by
  more than the projection's share);
- agreement: one KernelShap demonstration (the first success demonstration of the
  capable-model table's ARC seed-0 cell, ``--samples`` coalitions) and the greedy
  replies to ``--questions`` ARC questions (continuous batching, whose prefill and
  follow-ups take this route), on each route. The two routes sum the same products in
  another order, so only the last bits may move.

Run: ``python benchmarks/head_input.py`` (about 6 minutes for the 1.5B model on 2 cores;
stop the table meanwhile). Writes ``docs/results/head_input.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from harness import markdown_table, shared_datasets, table_success_demonstrations, write_results
from torch.nn.functional import linear

from langchain_selfamplify import SLM
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.models.embedded import QWEN_MODEL
from langchain_selfamplify.models.head_input import (
    contiguous_head_inputs,
    remove_contiguous_head_inputs,
)
from langchain_selfamplify.rationales.methods.kernelshap import KernelShapRationale

ROUTES = ("strided", "contiguous")
PASSES = {
    "a KernelShap pass (16 coalitions, tails of 38 tokens, 2 positions read)": (16, 38, 2),
    "a prefill pass (16 prompts of 200 own tokens, last position read)": (16, 200, 1),
    "a prefill pass (64 prompts of 120 own tokens, last position read)": (64, 120, 1),
}
"""(rows, tokens, positions kept) of the passes whose kept positions reach ``lm_head``."""


def use_route(slm: SLM, route: str) -> None:
    """Hand ``lm_head`` the strided view (the hook removed) or a contiguous copy."""
    if route == "strided":
        remove_contiguous_head_inputs(slm.model)
    else:
        contiguous_head_inputs(slm.model)


def projection_seconds(head: torch.nn.Linear, rows: int, tokens: int, kept: int,
                       repeats: int) -> dict[str, float]:
    """Median seconds of ``head`` on the last ``kept`` positions of ``(rows, tokens)``
    hidden states, as the strided view and as a contiguous copy (interleaved)."""
    hidden = torch.randn(rows, tokens, head.in_features)
    view = hidden[:, -kept:, :]
    times: dict[str, list[float]] = {route: [] for route in ROUTES}
    with torch.no_grad():  # F.linear itself: the module would run the package's hook
        linear(view.contiguous(), head.weight, head.bias)  # warm-up: the weight paged in
        for _ in range(repeats):
            for route in ROUTES:
                started = time.perf_counter()
                linear(view if route == "strided" else view.contiguous(), head.weight,
                       head.bias)
                times[route].append(time.perf_counter() - started)
    return {route: statistics.median(seconds) for route, seconds in times.items()}


def on_route(slm: SLM, route: str, demonstration: Any, samples: int, prompts: list[Any],
             new_tokens: int) -> dict[str, Any]:
    """KernelShap's attribution of ``demonstration`` and the greedy replies to
    ``prompts``, on ``route``."""
    use_route(slm, route)
    attribution = KernelShapRationale(slm, n_samples=samples).attribute(demonstration)
    replies = slm.generate(prompts, max_new_tokens=new_tokens)
    return {"route": route, "keywords": attribution.top_k(5), "scores": attribution.scores,
            "replies": replies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=QWEN_MODEL)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=48)
    args = parser.parse_args()
    _, test = load_pool_and_test("arc_challenge", pool_size=100, test_size=args.questions,
                                 data_dir=shared_datasets())
    demonstration = table_success_demonstrations("arc_challenge")[0]
    slm = SLM.load(args.model, show_progress=False)
    head = slm.model.get_output_embeddings()
    speed = {name: projection_seconds(head, *shape, repeats=args.repeats)
             for name, shape in PASSES.items()}
    prompts = [slm.format_prompt([{"role": "user", "content": q.render()}]) for q in test]
    runs = {route: on_route(slm, route, demonstration, args.samples, prompts, args.new_tokens)
            for route in ROUTES}
    contiguous_head_inputs(slm.model)
    strided, contiguous = runs["strided"], runs["contiguous"]
    same_replies = sum(a == b for a, b in zip(strided["replies"], contiguous["replies"],
                                              strict=True))
    same_keywords = strided["keywords"] == contiguous["keywords"]
    gap = max(abs(a - b) for a, b in zip(strided["scores"], contiguous["scores"], strict=True))
    ratios = {name: s["strided"] / s["contiguous"] for name, s in speed.items()}
    rows = [[name, f"{s['strided']:.2f}", f"{s['contiguous']:.2f}", f"{ratios[name]:.1f}x"]
            for name, s in speed.items()]
    markdown = "\n".join([
        f"# The vocabulary projection's input: strided or contiguous ({args.model})",
        "",
        f"`lm_head` ({head.out_features:,} x {head.in_features}) alone, "
        f"{torch.get_num_threads()} threads, the two routes interleaved, median of "
        f"{args.repeats}:",
        "",
        markdown_table(["pass", "strided view (s)", "contiguous copy (s)", "speed-up"], rows),
        "",
        f"Agreement: KernelShap on `{demonstration.id}` ({args.samples} coalitions) names "
        f"{'the same' if same_keywords else 'different'} 5 keywords on both routes (largest "
        f"attribution gap {gap:.1e}); the greedy replies to {args.questions} ARC questions "
        f"({args.new_tokens} new tokens, continuous batching) are identical for "
        f"{same_replies} of {args.questions}.",
    ])
    kernelshap_pass = next(iter(PASSES))
    headline = [{
        "target": f"lm_head handed contiguous rows on {args.model} (CPU)",
        "result": f"{ratios[kernelshap_pass]:.1f}x faster per KernelShap pass; same keywords: "
                  f"{'yes' if same_keywords else 'no'}, same replies {same_replies}/"
                  f"{args.questions}",
        "goal": "faster, with the same keywords and replies",
        "met": same_keywords and same_replies == args.questions and min(ratios.values()) > 1}]
    write_results("head_input", {
        "model": args.model, "repeats": args.repeats, "samples": args.samples,
        "questions": args.questions, "new_tokens": args.new_tokens,
        "passes": {name: {"shape": PASSES[name], **speed[name], "speedup": ratios[name]}
                   for name in PASSES},
        "runs": runs, "same_keywords": same_keywords, "largest_attribution_gap": gap,
        "same_replies": same_replies, "headline": headline}, markdown)


if __name__ == "__main__":
    main()
