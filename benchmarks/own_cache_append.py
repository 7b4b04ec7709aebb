"""What a decoding step spends extending the rows' own KV cache, on the capable model's
cache shape: appended in place (``SharedPrefixLayer``) against ``DynamicLayer``'s
concatenation.

Every decoding step adds one position to every row's own keys and values in every
layer. ``transformers``' ``DynamicLayer`` concatenates, so each step copies every row's
whole own cache: ``rows x own positions x KV bytes per token``. A few-shot Ph-CoT row
holds its question and a rationale of up to 512 tokens, so late in a cell the copy is
gigabytes a step. ``SharedPrefixLayer`` keeps the rows' own keys and values in buffers
with room ahead and writes only the new position (a new buffer, one copy, every
``OWN_COLUMNS_AHEAD`` steps or when rows join; rows that leave are compacted in place).

For each own-cache width this times, in the same run, one step's cache update over all
layers both ways (no forward pass: only the cache's part of a step), at the KV shape of
Qwen2.5-Coder-1.5B read from its GGUF, and sets it beside the whole step measured by
``benchmarks/decode_rows.py`` at the same rows.

Run: ``python benchmarks/own_cache_append.py [--rows 200] [--widths 150,350,650]`` (a
minute). Writes ``docs/results/own_cache_append.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from decode_rows import fixed_and_per_row
from harness import (
    RESULTS,
    add_report_only,
    comma_list,
    markdown_table,
    rewrote_saved_report,
    write_with_headline,
)
from transformers import AutoConfig, DynamicCache
from transformers.cache_utils import DynamicLayer

from langchain_selfamplify.models.embedded import QWEN_MODEL, embedded_model_path
from langchain_selfamplify.models.shared_prefix import OWN_COLUMNS_AHEAD, shared_prefix_cache


def step_updates(layers: list[Any], rows: int, kv_heads: int, dim: int, steps: int) -> float:
    """Mean seconds of one step's cache update over ``layers`` (keys and values of one
    new position per row), over ``steps`` steps."""
    new = torch.randn(rows, kv_heads, 1, dim)
    started = time.perf_counter()
    for _ in range(steps):
        for layer in layers:
            layer.update(new, new)
    return (time.perf_counter() - started) / steps


def layers_at(kind: str, layers: int, rows: int, kv_heads: int, dim: int,
              width: int) -> list[Any]:
    """``layers`` cache layers of ``kind`` holding ``width`` own positions for ``rows``."""
    made: list[Any] = []
    for _ in range(layers):
        if kind == "concatenated":
            layer = DynamicLayer()
        else:
            prefix = DynamicCache()
            prefix.update(torch.zeros(1, kv_heads, 1, dim), torch.zeros(1, kv_heads, 1, dim), 0)
            layer = shared_prefix_cache(prefix, 1).layers[0]
        cached = torch.randn(rows, kv_heads, width, dim)
        layer.update(cached, cached.clone())  # the rows joining: copied in once
        made.append(layer)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--widths", default="150,350,650", help="own cache positions")
    parser.add_argument("--steps", type=int, default=8, help="steps timed per width and way")
    add_report_only(parser)
    args = parser.parse_args()
    if rewrote_saved_report(args, "own_cache_append", report, headline):
        return
    gguf = embedded_model_path(QWEN_MODEL)
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    kv_heads, layers = config.num_key_value_heads, config.num_hidden_layers
    dim = config.hidden_size // config.num_attention_heads
    runs = []
    for width in (int(w) for w in comma_list(args.widths)):
        seconds = {kind: step_updates(layers_at(kind, layers, args.rows, kv_heads, dim, width),
                                      args.rows, kv_heads, dim, args.steps)
                   for kind in ("concatenated", "in place")}
        runs.append({"width": width, **seconds})
        print(width, seconds, flush=True)
    decode = RESULTS / "decode_rows.json"
    step = None
    if decode.is_file():
        fixed, per_row = fixed_and_per_row(json.loads(decode.read_text(encoding="utf-8"))["runs"])
        step = fixed + per_row * args.rows
    payload = {"rows": args.rows, "layers": layers, "kv_heads": kv_heads, "head_dim": dim,
               "steps": args.steps, "columns_ahead": OWN_COLUMNS_AHEAD,
               "step_seconds": step, "runs": runs}
    write_with_headline("own_cache_append", payload, report, headline)


def headline(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The README performance table's row: the widest own cache measured."""
    run = max(payload["runs"], key=lambda r: r["width"])
    return [{"target": f"Own KV cache extended per decoding step, {payload['rows']} rows x "
                       f"{run['width']} positions (Qwen2.5-Coder-1.5B's shape): in place vs "
                       "concatenated",
             "result": f"{run['in place']:.2f} s vs {run['concatenated']:.2f} s",
             "goal": "in place faster", "met": run["in place"] < run["concatenated"]}]


def report(payload: dict[str, Any]) -> str:
    """The Markdown table of the runs."""
    step = payload["step_seconds"]
    rows = [[run["width"], f"{run['concatenated']:.3f}", f"{run['in place']:.4f}",
             f"{run['concatenated'] / run['in place']:.0f}x"] for run in payload["runs"]]
    scale = (f" For scale, a whole decoding step of {payload['rows']} rows is about "
             f"{step:.1f} s (`docs/results/decode_rows.md`'s fit, measured with short own "
             "caches, concatenated)." if step else "")
    return "\n".join([
        "# Extending the rows' own KV cache: in place against concatenation",
        "",
        f"One decoding step's cache update for {payload['rows']} rows over "
        f"{payload['layers']} layers ({payload['kv_heads']} KV heads of "
        f"{payload['head_dim']}, float32: the KV shape of Qwen2.5-Coder-1.5B), timed "
        f"both ways in the same run over {payload['steps']} steps, without a forward "
        "pass. Concatenated: `transformers`' `DynamicLayer`, which copies every row's "
        "whole own cache at every step. In place: `SharedPrefixLayer`, which writes the "
        f"new position into buffers with room for {payload['columns_ahead']} more (a "
        "new buffer, one copy, when the room runs out or rows join or leave: not counted "
        "here, as that copy is made once per that many steps). The machine may be shared "
        "with other work: compare the two ways within a run." + scale,
        "",
        markdown_table(["own positions per row", "concatenated, s per step",
                        "in place, s per step", "ratio"], rows),
    ])


if __name__ == "__main__":
    main()
