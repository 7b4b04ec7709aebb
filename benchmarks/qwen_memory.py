"""Memory of the capable model on the 2-core, 24 GiB machine: loading, and what each
decoding slot adds.

- **Loading**: ``SLM.load("qwen2.5-coder-1.5b")`` in this process while a thread samples
  ``/proc/self/status`` every 50 ms: the peak resident memory, split into anonymous
  memory (the dequantised float32 weights) and file-backed pages (the GGUF file, mapped
  while it is read; page cache the kernel can reclaim), and the same after loading.
- **Decoding**: each slot's keys and values take ``2 x layers x KV heads x head size x
  4`` bytes per token in float32. The table decodes ``--slots`` questions at a time, each
  holding its own tokens (the question and up to ``--rationale-cap`` rationale tokens;
  the few-shot prefix is kept once for all slots): the largest cache is projected from
  the longest question of ARC-Challenge's test split, as if every slot held it.

Run: ``python benchmarks/qwen_memory.py`` (about a minute). Writes
``docs/results/qwen_memory.{json,md}``. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from harness import markdown_table, shared_datasets, write_results

from langchain_selfamplify import SLM, load_dataset
from langchain_selfamplify.models.embedded import QWEN_MODEL
from langchain_selfamplify.prompting.messages import question_text

FIELDS = ("VmRSS", "RssAnon", "RssFile")
GIB = 2**30
BOUND_GIB = 8.0
"""The speed issue's bound on the capable model's grid, float32, 2-core machine."""


def status() -> dict[str, int]:
    """This process's resident memory now, in bytes, by kind."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as file:
        for line in file:
            key, _, rest = line.partition(":")
            if key in FIELDS:
                values[key] = int(rest.split()[0]) * 1024
    return values


def sampled_peaks(run: Any) -> tuple[Any, dict[str, int]]:
    """``run()``'s result and the peak of each memory kind while it ran."""
    peaks = dict.fromkeys(FIELDS, 0)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for key, value in status().items():
                peaks[key] = max(peaks[key], value)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run()
    finally:
        done.set()
        sampler.join()
    for key, value in status().items():
        peaks[key] = max(peaks[key], value)
    return result, peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--rationale-cap", type=int, default=512)
    args = parser.parse_args()
    slm, peaks = sampled_peaks(lambda: SLM.load(QWEN_MODEL, show_progress=False))
    after = status()
    config = slm.model.config
    head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * head * 4
    test = load_dataset("arc_challenge", split="test", data_dir=shared_datasets())
    longest = max(slm.count_tokens(question_text(q), prompt=False) for q in test)
    slot_tokens = longest + args.rationale_cap
    cache = args.slots * slot_tokens * per_token
    worst = after["RssAnon"] + cache
    rows = [["loading: peak", f"{peaks['VmRSS'] / GIB:.2f}", f"{peaks['RssAnon'] / GIB:.2f}",
             f"{peaks['RssFile'] / GIB:.2f}"],
            ["after loading", f"{after['VmRSS'] / GIB:.2f}", f"{after['RssAnon'] / GIB:.2f}",
             f"{after['RssFile'] / GIB:.2f}"],
            [f"decoding {args.slots} slots of {slot_tokens} tokens (projected, worst case)",
             "", f"{worst / GIB:.2f}", ""]]
    markdown = "\n".join([
        "# Memory of Qwen2.5-Coder-1.5B-Instruct (float32) on the 2-core machine",
        "",
        "Resident memory in GiB, sampled every 50 ms while the embedded model loads "
        "(`SLM.load`); file-backed pages are the GGUF file mapped while it is read (page "
        "cache the kernel can reclaim), anonymous memory is the model itself. "
        f"Decoding: keys and values take {per_token:,} bytes per token per slot; the "
        f"table decodes {args.slots} questions at a time, each holding up to the longest "
        f"ARC-Challenge test question ({longest} tokens) and a {args.rationale_cap}-token "
        "rationale (the few-shot prefix is kept once for all slots).",
        "",
        markdown_table(["", "resident", "anonymous", "file-backed"], rows),
        "",
        f"- Against the {BOUND_GIB:.0f} GiB bound: the model's own memory peaks at "
        f"{peaks['RssAnon'] / GIB:.2f} GiB while loading"
        + (" (within it)" if peaks["RssAnon"] <= BOUND_GIB * GIB else " (**over it**)")
        + f"; with the file's mapped pages the resident peak is {peaks['VmRSS'] / GIB:.2f} GiB"
        + (" (within it)." if peaks["VmRSS"] <= BOUND_GIB * GIB else " (**over it**).")
        + f" Decoding {args.slots} slots, the worst case projects to {worst / GIB:.2f} GiB"
        + (" (within it)." if worst <= BOUND_GIB * GIB else
           " (**over it**; the measured peak of the table's process is in "
           "`docs/results/qwen_table_cost.md`: slots hold their own tokens only, and "
           "most rationales end well before the cap)."),
    ])
    write_results("qwen_memory", {"peaks": peaks, "after_loading": after,
                                  "kv_bytes_per_token": per_token, "slots": args.slots,
                                  "slot_tokens": slot_tokens,
                                  "projected_worst_bytes": worst}, markdown)


if __name__ == "__main__":
    main()
