"""Where KernelShap's time goes on the capable model: its operators, and the matrix
products' speed against this machine's peak.

``kernelshap_cost.md`` found a KernelShap demonstration running at about 40% of the
float32 matrix-multiply peak (the tokens it runs, at 2 FLOPs per parameter, over its
seconds). This profiles one demonstration (the first success demonstration of the
capable-model table's ARC seed-0 cell, the one KernelShap's cell will explain first)
with ``torch.profiler`` and tells apart the two things that could be: time outside the
matrix products (attention, copies of the cache, Python), or the matrix products
themselves running below the peak at the shapes a coalition pass gives them (a chunk of
16 coalitions' tails: a few hundred rows). In the same run it times the harness's peak
shape and the model's own MLP product at a chunk's rows.

Run: ``python benchmarks/kernelshap_profile.py`` (about 3 minutes for the 1.5B model on
2 cores; stop the table meanwhile). Writes ``docs/results/kernelshap_profile.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from harness import markdown_table, peak_gflops, table_success_demonstrations, write_results
from torch.profiler import ProfilerActivity, profile

from langchain_selfamplify import SLM
from langchain_selfamplify.models.embedded import QWEN_MODEL
from langchain_selfamplify.rationales.methods.kernelshap import KernelShapRationale

MATRIX_PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm")
"""The operators that run the model's weights (and the attention's batched products)."""
SHOWN = 10
"""Operators listed in the report, by their share of the time."""


def mlp_product_gflops(hidden: int, intermediate: int, rows: int) -> float:
    """GFLOP/s of the model's MLP up-projection at ``rows`` rows: the best of 5."""
    a, b = torch.randn(rows, hidden), torch.randn(hidden, intermediate)
    a @ b
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * rows * hidden * intermediate / best / 1e9


def profiled(slm: SLM, example: Any, samples: int) -> tuple[float, list[dict[str, Any]], int]:
    """Seconds of one KernelShap attribution, its operators (self time, FLOPs), and the
    rows of the matrix product that took the most time (a pass's coalitions x tail
    tokens)."""
    KernelShapRationale(slm, n_samples=4).attribute(example)  # warm-up: the prompt's cache
    method = KernelShapRationale(slm, n_samples=samples)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True,
                 record_shapes=True) as prof:
        started = time.perf_counter()
        method.attribute(example)
        seconds = time.perf_counter() - started
    ops = [{"op": event.key, "seconds": event.self_cpu_time_total / 1e6,
            "calls": event.count, "gflop": event.flops / 1e9}
           for event in prof.key_averages()]
    by_shape = [event for event in prof.key_averages(group_by_input_shape=True)
                if event.key == "aten::mm" and event.input_shapes]
    dearest = max(by_shape, key=lambda event: event.self_cpu_time_total)
    return seconds, sorted(ops, key=lambda op: -op["seconds"]), dearest.input_shapes[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=QWEN_MODEL)
    parser.add_argument("--samples", type=int, default=48,
                        help="coalitions (3 passes of 16; the paper's 200 make 13)")
    args = parser.parse_args()
    example = table_success_demonstrations("arc_challenge")[0]
    slm = SLM.load(args.model, show_progress=False)
    config = slm.model.config

    def shape_peaks(rows: int) -> dict[str, float]:
        return {"harness": peak_gflops(),
                "mlp": mlp_product_gflops(config.hidden_size, config.intermediate_size, rows)}

    # This machine's speed drifts (a shared VM: the harness's peak has read 69-179
    # GFLOP/s on different runs), so the isolated products are timed on both sides of
    # the profile, at the rows of the pass that took the most time.
    before = shape_peaks(608)
    seconds, ops, chunk_rows = profiled(slm, example, args.samples)
    after = shape_peaks(chunk_rows)
    peaks = {key: [before[key], after[key]] for key in before}
    products = [op for op in ops if op["op"] in MATRIX_PRODUCTS]
    product_seconds = sum(op["seconds"] for op in products)
    product_gflops = sum(op["gflop"] for op in products) / product_seconds
    total = sum(op["seconds"] for op in ops)
    rows = [[f"`{op['op']}`", f"{op['seconds']:.1f}", f"{op['seconds'] / total:.1%}",
             op["calls"], f"{op['gflop'] / op['seconds']:.0f}" if op["gflop"] else ""]
            for op in ops[:SHOWN]]
    share = product_seconds / total
    markdown = "\n".join([
        f"# Where KernelShap's time goes on {args.model}",
        "",
        f"One demonstration (`{example.id}`), {args.samples} coalitions, "
        f"{torch.get_num_threads()} threads: {seconds:.1f} s, of which the profiler "
        f"attributes {total:.1f} s to operators.",
        "",
        markdown_table(["operator", "seconds", "share", "calls", "GFLOP/s"], rows),
        "",
        f"The matrix products take **{share:.0%}** of the time, at **{product_gflops:.0f} "
        f"GFLOP/s**. Timed alone just before and after the profile, the harness's peak "
        f"shape ran at {peaks['harness'][0]:.0f} and {peaks['harness'][1]:.0f} GFLOP/s, and "
        f"the model's MLP product at a pass's {chunk_rows} rows ({config.hidden_size} x "
        f"{config.intermediate_size}) at {peaks['mlp'][0]:.0f} and {peaks['mlp'][1]:.0f} "
        "GFLOP/s. `aten::mm` and `aten::addmm` are the decoder's weights and the "
        f"vocabulary projection of each pass's last positions ({config.vocab_size:,} "
        "words, handed contiguous rows: `head_input.md`); the attention's own products "
        "run inside its fused kernel.",
    ])
    write_results("kernelshap_profile", {
        "model": args.model, "example": example.id, "samples": args.samples,
        "seconds": seconds, "ops": ops, "peaks": peaks, "chunk_rows": chunk_rows,
        "matrix_product_share": share, "matrix_product_gflops": product_gflops,
        "headline": []}, markdown)


if __name__ == "__main__":
    main()
