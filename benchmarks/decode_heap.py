"""Resident memory of a decoding queue's key and value buffers, with and without large
freed blocks handed back to the system (``models/heap.py``).

A decoding queue regrows its rows' key and value buffers as replies lengthen and
rebuilds them as rows leave. Under glibc's default (a mmap threshold that rises to
32 MiB), freed buffers stay in the C heap, too small for the next one, and the process
holds more than the buffers it uses: a 64-slot chunk of the table's Ph-CoT answers on
Qwen2.5-Coder-1.5B peaked at 8.22 GiB resident, over its 8 GiB bound
(``docs/results/qwen_memory.md``).

The model is random, with Qwen2.5-1.5B's key-value layout (28 layers, 2 key-value heads
of 128 dimensions: 57,344 bytes a token in float32), so its buffers are the real
model's, and narrow elsewhere (hidden size 256), so a run takes seconds. The tokenizer
is the embedded SmolLM2's (no download). ``--rows`` prompts after a shared prefix, each
with ARC-Challenge-like own tokens (47 to 148), are decoded together (``decode_slots``
= rows); row ``i`` stops after a reply length spread evenly from 40 to ``--longest``
tokens (mean about 246, the table's ARC Ph-CoT rationales' mean; longest 451, theirs).
Each run is a fresh process; the peak is its ``VmHWM`` over its resident memory when
decoding began, beside the largest bytes the rows' buffers held at once.

Run: ``python benchmarks/decode_heap.py [--rows 64]`` (about two minutes on two cores).
Writes ``docs/results/decode_heap.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from decode_rows import fixed_and_per_row
from harness import (
    RESULTS,
    add_report_only,
    markdown_table,
    rewrote_saved_report,
    run_child,
    write_with_headline,
)

SHAPE = {"hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 2,
         "num_key_value_heads": 2, "num_hidden_layers": 28}
"""Qwen2.5-1.5B's key-value layout (layers, key-value heads, head size 256 / 2 = 128),
narrow elsewhere."""

RUN = r"""
import json, sys, time
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM
from langchain_selfamplify import SLM
from langchain_selfamplify.models import continuous_batching, heap
from langchain_selfamplify.models.embedded import default_model_path
from langchain_selfamplify.models.served import load_tokenizer

shape, rows, longest, mapped = json.loads(sys.argv[1]), *map(int, sys.argv[2:5])
if not mapped:
    heap.map_large_blocks = lambda *args, **kwargs: False
tokenizer = load_tokenizer(str(default_model_path()))
config = Qwen2Config(vocab_size=len(tokenizer), max_position_embeddings=8192,
                     tie_word_embeddings=True, **shape)
torch.manual_seed(0)
slm = SLM(Qwen2ForCausalLM(config), tokenizer, show_progress=False, decode_slots=rows)
prefix = "Question: which of these is alive? " * 30
texts = [prefix + f"Case {i}:" + " rock" * (47 + (i * 37) % 102) for i in range(rows)]
lengths = [40 + (longest - 40) * ((i * 23) % rows) // max(1, rows - 1) for i in range(rows)]
assigned = {}  # a reply's token list (kept alive, so its id is never reused) -> its length

def finished(tokens):
    entry = assigned.setdefault(id(tokens), (tokens, lengths[len(assigned) % rows]))
    return len(tokens) >= entry[1]

held = [0]
step = continuous_batching._step
def measured_step(core, slots):
    held[0] = max(held[0], sum(layer.held_bytes() for layer in slots.cache.layers))
    step(core, slots)
continuous_batching._step = measured_step

def resident(field):
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith(field)) * 1024

tokens = slm.tokenize(texts)
shared = slm.shared_prefix_length(tokens)
open("/proc/self/clear_refs", "w").write("5")  # the peak counter starts here
before = resident("VmRSS:")
start = time.perf_counter()
replies = continuous_batching.greedy_decode_shared_prefix(
    slm, tokens, shared, max_new_tokens=longest, eos_token_ids=set(), finished=finished)
print(json.dumps({"rows": rows, "mapped": bool(mapped), "limit": heap.HEAP_BLOCK_LIMIT,
                  "mean_reply_tokens": sum(map(len, replies)) / rows,
                  "longest_reply_tokens": max(map(len, replies)),
                  "steps": slm.decode_stats.steps, "before_bytes": before,
                  "peak_bytes": resident("VmHWM:"), "buffer_bytes": held[0],
                  "seconds": time.perf_counter() - start}))
"""


def run(rows: int, longest: int, mapped: bool) -> dict[str, Any]:
    """One fresh process decoding ``rows`` prompts, large blocks mapped or not."""
    return run_child(RUN, json.dumps(SHAPE), str(rows), str(longest), str(int(mapped)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64,
                        help="prompts decoded together (the CPU's default slots)")
    parser.add_argument("--longest", type=int, default=451, help="longest reply (tokens)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each setting, alternated (their median is reported)")
    add_report_only(parser)
    args = parser.parse_args()
    if rewrote_saved_report(args, "decode_heap", report, headline):
        return
    runs = []
    for _ in range(args.repeats):
        for mapped in (False, True):
            runs.append(run(args.rows, args.longest, mapped))
            print(json.dumps(runs[-1]), flush=True)
    write_with_headline("decode_heap", {"shape": SHAPE, "runs": runs}, report, headline)


def rise(run: dict[str, Any]) -> int:
    """Bytes the process's peak rose over its memory when decoding began."""
    return int(run["peak_bytes"] - run["before_bytes"])


def median_of(runs: list[dict[str, Any]], mapped: bool, key: Any) -> float:
    """The median of ``key(run)`` over the runs of one setting."""
    values = sorted(key(r) for r in runs if r["mapped"] is mapped)
    middle = len(values) // 2
    return float(values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2)


def summary(payload: dict[str, Any]) -> dict[str, float]:
    """Median peak rise (MiB) and seconds of each setting, the buffers' bytes, and what
    mapping adds to a decoding step (ms)."""
    runs = payload["runs"]
    mapped_seconds = median_of(runs, True, lambda r: r["seconds"])
    heap_seconds = median_of(runs, False, lambda r: r["seconds"])
    return {"heap_mib": median_of(runs, False, rise) / 2**20,
            "mapped_mib": median_of(runs, True, rise) / 2**20,
            "buffers_mib": median_of(runs, True, lambda r: r["buffer_bytes"]) / 2**20,
            "time_ratio": mapped_seconds / heap_seconds,
            "step_ms": 1000 * (mapped_seconds - heap_seconds) / runs[0]["steps"]}


def real_step_seconds(rows: int) -> float | None:
    """Seconds of one Qwen2.5-Coder-1.5B decoding step at ``rows`` rows, from the fit in
    ``docs/results/decode_rows.json`` (``None`` before that is measured)."""
    path = RESULTS / "decode_rows.json"
    if not path.is_file():
        return None
    fixed, per_row = fixed_and_per_row(json.loads(path.read_text(encoding="utf-8"))["runs"])
    return fixed + per_row * rows


def step_share(numbers: dict[str, float], rows: int) -> float | None:
    """What mapping adds to a step (``summary``'s ``step_ms``), as a share of the real
    model's step at ``rows`` rows."""
    real = real_step_seconds(rows)
    return None if real is None else numbers["step_ms"] / 1000 / real


def headline(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The README performance row: peak rise over the buffers' bytes, both settings, and
    the time mapping adds to a step against the real model's step."""
    numbers, rows = summary(payload), payload["runs"][0]["rows"]
    share = step_share(numbers, rows)
    cost = "" if share is None else f", {share:.1%} of a 1.5B step"
    return [{"target": f"Decoding {rows} rows' replies together (Qwen2.5-1.5B's key-value "
                       "layout, float32): peak rise, heap default vs large blocks mapped",
             "result": f"{numbers['heap_mib']:.0f} MiB vs {numbers['mapped_mib']:.0f} MiB "
                       f"(buffers {numbers['buffers_mib']:.0f} MiB); "
                       f"+{numbers['step_ms']:.0f} ms a step{cost}",
             "goal": "within 1.1x the buffers; < 5% of the real model's step",
             "met": numbers["mapped_mib"] <= 1.1 * numbers["buffers_mib"]
             and share is not None and share < 0.05}]


def report(payload: dict[str, Any]) -> str:
    """The Markdown table of the runs and the medians' line."""
    runs, numbers = payload["runs"], summary(payload)
    first = runs[0]
    real, share = real_step_seconds(first["rows"]), step_share(numbers, first["rows"])
    table = markdown_table(
        ["large blocks", "peak over the start (MiB)", "rows' buffers at most (MiB)",
         "steps", "seconds"],
        [["mapped on their own" if r["mapped"] else "heap (glibc default)",
          f"{rise(r) / 2**20:.0f}", f"{r['buffer_bytes'] / 2**20:.0f}", r["steps"],
          f"{r['seconds']:.1f}"] for r in runs])
    return "\n".join([
        "# A decoding queue's resident memory: the C heap's default against large blocks "
        "mapped on their own",
        "",
        f"{first['rows']} prompts decoded together by a random model with Qwen2.5-1.5B's "
        "key-value layout (28 layers, 2 key-value heads of 128; float32), replies of "
        f"{first['mean_reply_tokens']:.0f} tokens on average, the longest "
        f"{first['longest_reply_tokens']}. Peak: the process's resident peak (`VmHWM`) over "
        "its resident memory when decoding began. Buffers: the most bytes the rows' key "
        "and value buffers held at once (room for the next positions included). Mapped: "
        f"`heap.map_large_blocks` (blocks of {first['limit'] / 2**20:.0f} MiB and more "
        "mapped on their own), which decoding on a CPU now sets.",
        "",
        table,
        "",
        f"- Medians: {numbers['heap_mib']:.0f} MiB with the heap's default, "
        f"{numbers['mapped_mib']:.0f} MiB with large blocks mapped, for "
        f"{numbers['buffers_mib']:.0f} MiB of buffers.",
        f"- Time: mapped takes {numbers['time_ratio']:.2f}x the heap's, "
        f"{numbers['step_ms']:+.0f} ms a step: fresh mappings are faulted in page by page "
        "when a buffer regrows (every few dozen steps) and for each step's logits. That "
        "cost is per step, not per row's arithmetic, so this narrow model's cheap steps "
        "magnify it"
        + ("." if real is None or share is None else
           f"; against Qwen2.5-Coder-1.5B's step at {first['rows']} rows ({real:.2f} s, "
           f"`docs/results/decode_rows.md`) it is {share:.1%}."),
    ])


if __name__ == "__main__":
    main()
