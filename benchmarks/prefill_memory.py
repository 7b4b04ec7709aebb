"""Peak memory of encoding prompts, for decoding and for label scoring, with and without
the bound on a forward pass's tokens (``sizing.prefill_tokens``).

Continuous batching encodes the prompts that fill its free slots before decoding them.
All in one pass, the pass's activations grow with rows x width: with 200 slots on
Qwen2.5-Coder-1.5B that transient outgrew the questions' keys and values, and the
table's process peaked near 15 GiB. Bounded, the prompts go in passes of a few
thousand tokens.

The model is a 2-layer random model with the per-layer sizes of ``--shape`` (a shape of
``benchmarks/gpu.py``; by default ``1.5b``, Qwen2.5-1.5B's): a forward pass frees each
layer's activations before the next, so the transient is the full model's, while the
weights and the keys and values of 2 layers stay small. The tokenizer is the embedded
SmolLM2's (no download). Each run is a fresh process that resets its peak counter after
the model is built and then decodes ``--rows`` prompts (a shared few-shot prefix, then
each question's own ``--own-tokens`` tokens, about ARC-Challenge's longest) for 2 new
tokens at ``decode_slots = rows``, so the encoding is all it measures. Float32.

Label scoring runs at most ``batch_size`` prompts a pass (16 on a CPU). Prompts with no
shared prefix and a long rationale (``--score-tokens``, a question and a 512-token
rationale) made such a pass several times the decoding bound's tokens; the ``score``
runs label-score ``--score-rows`` of them at the default batch size, with and without
the bound.

Run: ``python benchmarks/prefill_memory.py [--rows 32,200] [--score-rows 32]`` (a few
minutes on two cores). Writes ``docs/results/prefill_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gpu import SHAPES
from harness import (
    add_report_only,
    comma_list,
    markdown_table,
    rewrote_saved_report,
    run_child,
    write_with_headline,
)


def layer_sizes(shape: str) -> dict[str, int]:
    """The per-layer sizes of ``gpu.SHAPES[shape]`` as ``Qwen2Config`` arguments."""
    sizes = SHAPES[shape]
    return {"hidden_size": sizes["hidden"], "intermediate_size": sizes["intermediate"],
            "num_attention_heads": sizes["heads"], "num_key_value_heads": sizes["kv_heads"]}


RUN = r"""
import json, sys, time
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM
from langchain_selfamplify import SLM
from langchain_selfamplify.models import continuous_batching, core, label_scoring, sizing
from langchain_selfamplify.models.embedded import default_model_path
from langchain_selfamplify.models.served import load_tokenizer

shape, rows, own_tokens, bounded = json.loads(sys.argv[1]), *map(int, sys.argv[2:5])
stage = sys.argv[5]
tokenizer = load_tokenizer(str(default_model_path()))
config = Qwen2Config(vocab_size=len(tokenizer), num_hidden_layers=2,
                     max_position_embeddings=8192, tie_word_embeddings=True, **shape)
torch.manual_seed(0)
slm = SLM(Qwen2ForCausalLM(config), tokenizer, show_progress=False, decode_slots=rows)
if not bounded:
    continuous_batching.prefill_tokens = core.prefill_tokens = lambda model, device: 2**62
if stage == "decode":
    prefix = "Question: which of these is alive? " * 60
    texts = [prefix + f"Case {i}:" + " rock" * (own_tokens - 3) for i in range(rows)]
    encode = lambda: slm.generate(texts, max_new_tokens=2)
else:  # no shared prefix: each prompt starts with its own case
    texts = [f"Case {i}:" + " rock" * (own_tokens - 8) + " The answer is (" for i in range(rows)]
    encode = lambda: slm.score_choices(texts, [["A", "B"]] * rows)
    run_pass = label_scoring.last_logits
    def counted(*args):
        slm.decode_stats.prefills += 1  # a scoring pass, counted like an encoding pass
        return run_pass(*args)
    label_scoring.last_logits = counted

def peak_mib(field):
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith(field)) / 1024

open("/proc/self/clear_refs", "w").write("5")  # the peak counter starts here
before = peak_mib("VmRSS:")
start = time.perf_counter()
encode()
own = len(slm.tokenize(texts[:1])[0]) - slm.shared_prefix_length(slm.tokenize(texts[:2]))
print(json.dumps({"stage": stage, "rows": rows, "bounded": bool(bounded), "own_tokens": own,
                  "batch_size": slm.batch_size,
                  "prefill_tokens": sizing.prefill_tokens(slm.model, slm.device),
                  "passes": slm.decode_stats.prefills, "before_mib": before,
                  "peak_mib": peak_mib("VmHWM:"), "seconds": time.perf_counter() - start}))
"""


def run(shape: dict[str, int], rows: int, own_tokens: int, bounded: bool,
        stage: str) -> dict[str, Any]:
    """One fresh process's peak over encoding ``rows`` prompts, for decoding or for label
    scoring (``stage``)."""
    return run_child(RUN, json.dumps(shape), str(rows), str(own_tokens), str(int(bounded)),
                     stage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="1.5b",
                        help="a benchmarks/gpu.py shape (default: Qwen2.5-1.5B's sizes)")
    parser.add_argument("--rows", default="32,200", help="prompts encoded, each a run")
    parser.add_argument("--own-tokens", type=int, default=190)
    parser.add_argument("--score-rows", default="32",
                        help="prompts label-scored, each a run (none: '')")
    parser.add_argument("--score-tokens", type=int, default=700)
    add_report_only(parser)
    args = parser.parse_args()
    if rewrote_saved_report(args, "prefill_memory", report, headline):
        return
    runs = []
    for stage, counts, tokens in (("decode", args.rows, args.own_tokens),
                                  ("score", args.score_rows, args.score_tokens)):
        for rows in (int(r) for r in comma_list(counts)):
            for bounded in (False, True):
                runs.append(run(layer_sizes(args.shape), rows, tokens, bounded, stage))
                print(json.dumps(runs[-1]), flush=True)
    write_with_headline("prefill_memory", {"shape": args.shape, "runs": runs}, report,
                        headline)


def stage_of(run: dict[str, Any]) -> str:
    """``decode`` or ``score`` (runs saved before the score stage were all decoding)."""
    return str(run.get("stage", "decode"))


def pairs(runs: list[dict[str, Any]], stage: str
          ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(unbounded, bounded) runs of ``stage`` for each number of prompts, fewest first."""
    staged = [r for r in runs if stage_of(r) == stage]

    def of(rows: int, bounded: bool) -> dict[str, Any]:
        return next(r for r in staged if r["rows"] == rows and r["bounded"] is bounded)

    return [(of(rows, False), of(rows, True)) for rows in sorted({r["rows"] for r in staged})]


def growth(run: dict[str, Any]) -> float:
    """MiB the process's peak rose over its memory when encoding began."""
    return float(run["peak_mib"] - run["before_mib"])


def headline(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The README performance row: the largest queue, one pass against bounded passes."""
    free, bound = pairs(payload["runs"], "decode")[-1]
    return [{"target": f"Encoding {free['rows']} queued prompts for decoding "
                       f"({payload['shape']} shape's layer sizes, float32): peak rise, one "
                       "pass vs passes bounded by `prefill_tokens`",
             "result": f"{growth(free):.0f} MiB vs {growth(bound):.0f} MiB "
                       f"({bound['seconds'] / free['seconds']:.2f}x the time)",
             "goal": "bounded by memory, not slower",
             "met": growth(bound) < growth(free) and bound["seconds"] <= 1.1 * free["seconds"]}]


def report(payload: dict[str, Any]) -> str:
    """The Markdown table of the runs and one line per number of prompts."""
    runs = payload["runs"]
    table = markdown_table(
        ["stage", "prompts", "bound", "passes", "peak over the start (MiB)", "seconds"],
        [[stage_of(r), r["rows"], bound_cell(r), r["passes"], f"{growth(r):.0f}",
          f"{r['seconds']:.1f}"] for r in runs])
    lines = [f"- {stage}, {free['rows']} prompts of {free['own_tokens']} own tokens: "
             f"{growth(free):.0f} MiB unbounded, {growth(bound):.0f} MiB bounded; "
             f"{bound['seconds'] / free['seconds']:.2f}x the time."
             for stage in ("decode", "score") for free, bound in pairs(runs, stage)]
    return "\n".join([
        "# Encoding prompts: peak memory with and without the pass bound",
        "",
        f"A 2-layer random model with the {payload['shape']} shape's per-layer sizes "
        "(float32; the full model's activations per pass, 2 layers' weights and caches). "
        "`decode`: prompts of a shared few-shot prefix and their own tokens, decoded 2 "
        "tokens with as many slots as prompts (unbounded: one pass). `score`: prompts with "
        "no shared prefix, label-scored at the default batch size (unbounded: "
        "`batch_size` prompts a pass). Peak: the process's resident peak (`VmHWM`) over "
        "its resident memory when encoding began.",
        "",
        table,
        "",
        *lines,
    ])


def bound_cell(run: dict[str, Any]) -> str:
    """The table's bound column: the tokens a pass, or what limits an unbounded pass."""
    if run["bounded"]:
        return f"{run['prefill_tokens']} tokens a pass"
    return "none" if stage_of(run) == "decode" else f"{run['batch_size']} prompts a pass"


if __name__ == "__main__":
    main()
