"""Gradient rationales: DeepLift and Integrated Gradients, examples per second.

Each method explains ARC-Challenge test questions batched over examples (similar
lengths together, left-padded; at most 4 examples, 8 rows, per backward pass to bound
activation memory; Integrated Gradients also batches its path steps with
``internal_batch_size``), against the same method one example (and one step) at a
time (``slm.batch_size = 1``). The keywords must not change.

Run: ``python benchmarks/gradient.py`` (about 3 minutes on 2 CPU cores).
Writes ``docs/results/gradient.{json,md}``.
"""

from __future__ import annotations

import argparse

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

from langchain_selfamplify import SLM, load_dataset
from langchain_selfamplify.rationales import get_method
from langchain_selfamplify.rationales.attribution import AttributionMethod

# The parameters do not require gradients, so the backward pass computes activation
# gradients only: about one forward pass more.
FORWARD_AND_BACKWARD = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deeplift-examples", type=int, default=16)
    parser.add_argument("--ig-examples", type=int, default=4)
    parser.add_argument("--path-steps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    data = shared_datasets()
    slm = SLM.from_default(show_progress=False)
    gflops, params = peak_gflops(), n_parameters(slm.model)
    settings = [("deeplift", {}, args.deeplift_examples),
                ("integrated_gradients", {"path_steps": args.path_steps}, args.ig_examples)]
    results = []
    for method, kwargs, n_examples in settings:
        examples = load_dataset("arc_challenge", split="test", data_dir=data, limit=n_examples)
        explainer = get_method(method)(slm, **kwargs)
        assert isinstance(explainer, AttributionMethod)
        routes = {}
        for label, batch_size in (("batched", args.batch_size), ("one at a time", 1)):
            slm.batch_size = batch_size
            with counted_tokens(slm.model) as tokens:
                seconds, times, rationales = median_seconds(
                    lambda: explainer.explain(examples), args.repeats)  # noqa: B023
            per_run = tokens["tokens"] // args.repeats
            limit = flop_limit_seconds(params, FORWARD_AND_BACKWARD * per_run, gflops)
            routes[label] = {"examples_per_batch": explainer.examples_per_batch(),
                             "median_s": seconds, "times_s": times,
                             "examples_per_s": n_examples / seconds, "tokens_run": per_run,
                             "fraction_of_peak": limit / seconds, "rationales": rationales}
            print(method, label, {k: v for k, v in routes[label].items() if k != "rationales"},
                  flush=True)
        same = sum(a == b for a, b in zip(routes["batched"]["rationales"],
                                          routes["one at a time"]["rationales"], strict=True))
        results.append({"method": method, "kwargs": kwargs, "examples": n_examples,
                        "routes": routes, "same_rationales": same,
                        "speedup": routes["one at a time"]["median_s"]
                        / routes["batched"]["median_s"]})
    slm.batch_size = args.batch_size

    rows = [[r["method"], label, route["examples_per_batch"], r["examples"],
             route["examples_per_s"], route["tokens_run"],
             f"{100 * route['fraction_of_peak']:.0f}%"]
            for r in results for label, route in r["routes"].items()]
    markdown = "\n".join([
        "# Gradient rationales: examples per second",
        "",
        f"Embedded SmolLM2-135M-Instruct on ARC-Challenge test questions; Integrated "
        f"Gradients with {args.path_steps} path steps. Tokens: rows x positions of the "
        "forward passes. Of peak: the FLOP limit of a forward and a backward pass over "
        f"those tokens (2 x 2 x {params / 1e6:.0f}M non-embedding parameters x tokens at "
        f"the measured {gflops:.0f} GFLOP/s) over the measured time.",
        "",
        markdown_table(["method", "route", "examples per batch", "examples", "examples/s",
                        "tokens run", "of peak"], rows),
        "",
        *[f"- {r['method']}: batched is {r['speedup']:.2f}x one at a time; "
          f"{r['same_rationales']}/{r['examples']} rationales identical." for r in results],
    ])
    for r in results:
        for route in r["routes"].values():
            route.pop("rationales")
    write_results("gradient", {
        "peak_gflops": gflops, "parameters": params, "results": results,
        "headline": [{
            "target": f"Gradient rationales: {r['method']}, batched over examples",
            "result": f"{r['routes']['batched']['examples_per_s']:.2f} examples/s "
                      f"({r['speedup']:.2f}x one at a time)",
            "goal": "report examples/s; same rationales",
            "met": r["same_rationales"] == r["examples"],
        } for r in results],
    }, markdown)


if __name__ == "__main__":
    main()
