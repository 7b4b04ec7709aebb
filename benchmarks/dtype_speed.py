"""float32 against bfloat16 on this CPU: prompt encoding, decoding, and the table's step.

bfloat16 halves the bytes of every weight read, which speeds up decoding a few rows
(one token per row per step: memory-bound). Prompt encoding and decoding many rows are
matrix products (compute-bound): without native bfloat16 instructions (AVX512-BF16 or
AMX), PyTorch converts on the fly, and bfloat16 can be far slower than float32 there;
with them, far faster. This benchmark measures each in one run, on the same model and
prompts, so the ratio is the machine's:

- prefill: the zero-shot label scores of ``--questions`` ARC-Challenge questions (one
  forward pass over each prompt; the grid's pool scoring and IO cells are this);
- decode: ``--new-tokens`` greedy tokens for 4 questions after their prompts;
- table step: a decoding step of ``--rows`` of the capable-model table's own Ph-CoT
  questions decoded together after its 8-shot prompt (``decode_rows.step_seconds``;
  the regime of every rationale row of the table).

The answer depends on the CPU, and this project's machines differ from one session to
the next, so the results are kept per CPU capability (``torch.backends.cpu.
get_cpu_capability()``): a run replaces only its own machine's record.

Run: ``python benchmarks/dtype_speed.py [--model qwen2.5-coder-1.5b] [--rows 64]``, the
table paused (it shares the cores). Writes ``docs/results/dtype_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from decode_rows import step_seconds
from harness import (
    QWEN_GRID,
    RESULTS,
    add_report_only,
    command_line,
    git_commit,
    markdown_table,
    rewrote_saved_report,
    saved_cell,
    saved_results,
    shared_datasets,
    write_with_headline,
)

from langchain_selfamplify import SLM
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.prompting.messages import zero_shot_prompt
from langchain_selfamplify.stages import cpu_capability

TABLE_CELL = "arc_challenge__ph_cot__success__seed0"
"""The table cell whose prompt and questions the table-step measurement decodes."""


def measure(model: str, dtype: str, questions: list[Any], new_tokens: int,
            table_rows: int, table_steps: int) -> dict[str, Any]:
    """Seconds of prefill, of decoding and of the table's decoding step with the model
    loaded in ``dtype``."""
    slm = SLM.load(model, show_progress=False, torch_dtype=dtype)
    prompts = [zero_shot_prompt(slm, q) for q in questions]
    started = time.perf_counter()
    scores = slm.score_choices(prompts, [q.labels for q in questions])
    prefill = time.perf_counter() - started
    plain = [slm.format_prompt([{"role": "user", "content": q.render()}]) for q in questions[:4]]
    started = time.perf_counter()
    slm.generate(plain, max_new_tokens=new_tokens, stop=["\n\n\n\n"])
    decode = time.perf_counter() - started
    run = {"dtype": dtype, "prefill_seconds": prefill,
           "prompt_tokens": sum(slm.count_tokens(p) for p in prompts),
           "decode_seconds": decode, "decode_tokens": 4 * new_tokens,
           "predicted": [s.predicted for s in scores]}
    if table_rows:
        _, table_prompt, table_test = saved_cell(QWEN_GRID, TABLE_CELL)
        texts = [slm.format_prompt(table_prompt.to_messages(q), table_prompt.assistant_prefix())
                 for q in table_test[:table_rows]]
        run["table_step"] = step_seconds(slm, texts, table_steps)
    return run


def host_record(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """This machine's measurement: both runs and bfloat16's time ratios."""
    f32, bf16 = runs
    record = {"cpu_capability": cpu_capability(),
              "threads": torch.get_num_threads(), "questions": args.questions,
              "new_tokens": args.new_tokens, "measured_on": time.strftime("%Y-%m-%d"),
              "command": command_line(), "commit": git_commit(),
              "runs": runs,
              "bfloat16_prefill_time_ratio": bf16["prefill_seconds"] / f32["prefill_seconds"],
              "bfloat16_decode_time_ratio": bf16["decode_seconds"] / f32["decode_seconds"]}
    if "table_step" in f32:
        record["table_rows"] = f32["table_step"]["rows"]
        record["bfloat16_table_step_time_ratio"] = (bf16["table_step"]["seconds_per_step"]
                                                    / f32["table_step"]["seconds_per_step"])
    return record


def hosts(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-machine records of a saved payload (one written before records were kept
    per machine is its only record)."""
    if "hosts" in payload:
        return dict(payload["hosts"])
    keys = ("cpu_capability", "runs", "bfloat16_prefill_time_ratio",
            "bfloat16_decode_time_ratio")
    provenance = payload.get("measured") or payload
    return {payload["cpu_capability"]: {**{key: payload[key] for key in keys},
                                        "command": provenance["command"],
                                        "commit": provenance["commit"]}}


def _ratio_words(ratio: float) -> str:
    return f"{ratio:.2f}x float32's time" + (" (faster)" if ratio < 1 else "")


def host_section(record: dict[str, Any]) -> list[str]:
    """The Markdown of one machine's measurement."""
    rows = [[r["dtype"], f"{r['prefill_seconds']:.1f}",
             f"{r['prompt_tokens'] / r['prefill_seconds']:.0f}", f"{r['decode_seconds']:.1f}",
             f"{r['decode_tokens'] / r['decode_seconds']:.1f}",
             f"{r['table_step']['seconds_per_step']:.2f}" if "table_step" in r else "-"]
            for r in record["runs"]]
    f32, bf16 = record["runs"]
    same = sum(a == b for a, b in zip(f32["predicted"], bf16["predicted"], strict=True))
    when = f", measured {record['measured_on']}" if "measured_on" in record else ""
    step = (f", and **{_ratio_words(record['bfloat16_table_step_time_ratio'])}** for a "
            f"decoding step of {record['table_rows']} of the table's Ph-CoT questions"
            if "bfloat16_table_step_time_ratio" in record else "")
    return [
        f"## CPU capability `{record['cpu_capability']}`",
        "",
        f"{record.get('threads', 2)} threads{when}. Prefill: zero-shot label scores of "
        f"{len(f32['predicted'])} ARC questions. Decode: {f32['decode_tokens'] // 4} greedy "
        "tokens for 4 questions. Table step: seconds per decoding step of the table's "
        f"cell `{TABLE_CELL}` (8-shot prefix), all its rows together.",
        "",
        markdown_table(["dtype", "prefill (s)", "prompt tokens/s", "decode (s)",
                        "new tokens/s", "table step (s)"], rows),
        "",
        f"bfloat16 takes **{_ratio_words(record['bfloat16_prefill_time_ratio'])}** to "
        f"encode prompts, **{_ratio_words(record['bfloat16_decode_time_ratio'])}** to "
        f"decode 4 rows{step}. Same zero-shot predictions: {same} of {len(f32['predicted'])}.",
        "",
        f"<sub>Measured by `{record['command']}` at commit `{record['commit']}`.</sub>",
        "",
    ]


def report(payload: dict[str, Any]) -> str:
    """One section per machine the benchmark has run on."""
    lines = [f"# float32 against bfloat16 on the CPU ({payload['model']})", "",
             "This project's machines differ between sessions: some have native bfloat16 "
             "(AVX512-BF16, AMX), some only AVX2. Each section is one machine's run; a "
             "speed-up here says nothing of the predictions, which "
             "[dtype_agreement.md](dtype_agreement.md) compares.", ""]
    for record in hosts(payload).values():
        lines += host_section(record)
    return "\n".join(lines)


def headline(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One README performance row per machine."""
    rows = []
    for capability, record in hosts(payload).items():
        step = (f", {record['bfloat16_table_step_time_ratio']:.2f}x for a table decoding "
                "step" if "bfloat16_table_step_time_ratio" in record else "")
        rows.append({
            "target": f"bfloat16 against float32 on {payload['model']} (CPU `{capability}`)",
            "result": f"{record['bfloat16_prefill_time_ratio']:.2f}x float32's time to encode "
                      f"prompts, {record['bfloat16_decode_time_ratio']:.2f}x to decode{step}",
            "goal": "bfloat16 only where faster and >= 98% identical predictions",
            "met": True})  # a measurement that decides the dtype, not a target to pass
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rows", type=int, default=64,
                        help="table questions decoded together for the table step (0: skip)")
    parser.add_argument("--steps", type=int, default=6, help="table decoding steps timed")
    add_report_only(parser)
    args = parser.parse_args()
    if rewrote_saved_report(args, "dtype_speed", report, headline):
        return
    _, test = load_pool_and_test("arc_challenge", pool_size=100, test_size=args.questions,
                                 data_dir=shared_datasets())
    runs = [measure(args.model, dtype, test, args.new_tokens, args.rows, args.steps)
            for dtype in ("float32", "bfloat16")]
    saved = (saved_results("dtype_speed") if (RESULTS / "dtype_speed.json").is_file()
             else None)
    write_with_headline("dtype_speed", merged(saved, args.model, host_record(args, runs)),
                        report, headline)


def merged(saved: dict[str, Any] | None, model: str, record: dict[str, Any]) -> dict[str, Any]:
    """The payload with this machine's ``record`` in place of any earlier one of the same
    CPU capability, other machines' records kept (those of the same ``model`` only)."""
    known = hosts(saved) if saved is not None and saved.get("model") == model else {}
    return {"model": model, "hosts": {**known, record["cpu_capability"]: record}}


if __name__ == "__main__":
    main()
