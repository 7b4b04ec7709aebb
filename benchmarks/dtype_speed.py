"""float32 against bfloat16 on this CPU: prompt encoding (prefill) and decoding apart.

bfloat16 halves the bytes of every weight read, which speeds up decoding (one token per
row per step: memory-bound). Prompt encoding is matrix products over many tokens
(compute-bound): without native bfloat16 instructions (AVX512-BF16 or AMX), PyTorch
converts on the fly, and bfloat16 can be far slower than float32 there. This benchmark
measures both in one run, on the same model and prompts, so the ratio is the machine's.

- prefill: the zero-shot label scores of ``--questions`` ARC-Challenge questions (one
  forward pass over each prompt; the grid's pool scoring and IO cells are this);
- decode: ``--new-tokens`` greedy tokens for 4 questions after their prompts.

Run: ``python benchmarks/dtype_speed.py [--model qwen2.5-coder-1.5b]``. Writes
``docs/results/dtype_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from harness import markdown_table, shared_datasets, write_results

from langchain_selfamplify import SLM
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.prompting.messages import zero_shot_prompt


def measure(model: str, dtype: str, questions: list[Any], new_tokens: int) -> dict[str, Any]:
    """Seconds of prefill and of decoding with the model loaded in ``dtype``."""
    slm = SLM.load(model, show_progress=False, torch_dtype=dtype)
    prompts = [zero_shot_prompt(slm, q) for q in questions]
    started = time.perf_counter()
    scores = slm.score_choices(prompts, [q.labels for q in questions])
    prefill = time.perf_counter() - started
    plain = [slm.format_prompt([{"role": "user", "content": q.render()}]) for q in questions[:4]]
    started = time.perf_counter()
    slm.generate(plain, max_new_tokens=new_tokens, stop=["\n\n\n\n"])
    decode = time.perf_counter() - started
    return {"dtype": dtype, "prefill_seconds": prefill,
            "prompt_tokens": sum(slm.count_tokens(p) for p in prompts),
            "decode_seconds": decode, "decode_tokens": 4 * new_tokens,
            "predicted": [s.predicted for s in scores]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    _, test = load_pool_and_test("arc_challenge", pool_size=100, test_size=args.questions,
                                 data_dir=shared_datasets())
    runs = [measure(args.model, dtype, test, args.new_tokens)
            for dtype in ("float32", "bfloat16")]
    f32, bf16 = runs
    prefill_ratio = bf16["prefill_seconds"] / f32["prefill_seconds"]
    decode_ratio = bf16["decode_seconds"] / f32["decode_seconds"]
    capability = torch.backends.cpu.get_cpu_capability()
    rows = [[r["dtype"], f"{r['prefill_seconds']:.1f}",
             f"{r['prompt_tokens'] / r['prefill_seconds']:.0f}", f"{r['decode_seconds']:.1f}",
             f"{r['decode_tokens'] / r['decode_seconds']:.1f}"] for r in runs]
    markdown = "\n".join([
        f"# float32 against bfloat16 on this CPU ({args.model})",
        "",
        f"CPU capability seen by PyTorch: `{capability}`; {torch.get_num_threads()} threads. "
        f"Prefill: zero-shot label scores of {args.questions} ARC questions. Decode: "
        f"{args.new_tokens} greedy tokens for 4 questions.",
        "",
        markdown_table(["dtype", "prefill (s)", "prompt tokens/s", "decode (s)",
                        "new tokens/s"], rows),
        "",
        f"bfloat16 takes **{prefill_ratio:.2f}x** float32's time to encode prompts and "
        f"**{decode_ratio:.2f}x** to decode. Same zero-shot predictions: "
        f"{sum(a == b for a, b in zip(f32['predicted'], bf16['predicted'], strict=True))}"
        f" of {args.questions}.",
    ])
    headline = [{
        "target": f"bfloat16 against float32 on {args.model} (CPU `{capability}`)",
        "result": f"{prefill_ratio:.2f}x float32's time to encode prompts, {decode_ratio:.2f}x "
                  "to decode",
        "goal": "bfloat16 the default only where faster (and >= 98% identical predictions)",
        "met": True}]  # a measurement that decides the default, not a target to pass
    write_results("dtype_speed", {"model": args.model, "runs": runs, "headline": headline,
                                  "cpu_capability": capability,
                                  "bfloat16_prefill_time_ratio": prefill_ratio,
                                  "bfloat16_decode_time_ratio": decode_ratio}, markdown)


if __name__ == "__main__":
    main()
