"""What the capable-model table costs on this machine, and what bounds it.

Reads the Qwen2.5-Coder-1.5B table's own records (``docs/results/paper_table_qwen_run``:
each finished cell's seconds, each answered question's seconds and written rationale)
and the cells' saved prompts, counts the tokens the model ran (each prompt's shared
few-shot prefix once per cell, each question's own tokens, its rationale and the
``The answer is (`` follow-up), and sets the seconds against the FLOP limit of those
tokens at this machine's measured float32 matrix-multiply peak (``2 x non-embedding
parameters x tokens``, a floor: attention, the vocabulary head and Python are left
out).

It then projects the whole table (``benchmarks/qwen_table.sh``: ARC-Challenge,
CommonsenseQA and Social IQa, the datasets the zero-shot screen keeps, x 3 seeds x 200
questions, rows IO, Auto-CoT, AMPLIFY, DSPy
BootstrapFewShot, and Ph-CoT, Self_topk, DeepLift and KernelShap with success and
error) from the measured seconds per question of each row and the measured minutes of
each row's prompt building, and states how far that is from the speed issue's 3-hour
target. A row not measured yet is projected at a measured row's cost and marked so:
DSPy and Auto-CoT at Ph-CoT's (their chain-of-thought answers are as long), the keyword
rows at IO's, a lower bound (they add a sentence of keywords to write), an error row at
its success row's.

Where the table's records carry them (cells run from session 8 on), each cell's time is
also split by stage (pool scoring, demonstration rationales, baselines' set-up, test
rationales, answer scoring; ``langchain_selfamplify.stages``): prompt building from the
prompt's ``build_stage_seconds``, answering from the cell's ``answer_stage_seconds``.

Run: ``python benchmarks/qwen_table_cost.py`` (a minute: no model is run, only its
tokenizer and configuration are read) on a quiet machine, as it measures the peak; with
``--reuse-peak`` (while the table runs, say) it takes the peak its last report measured,
and says so. Writes ``docs/results/qwen_table_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from collections.abc import Collection
from typing import Any

from decode_rows import fixed_and_per_row
from harness import (
    QWEN_GRID,
    RESULTS,
    chunk_rates,
    cores_busy,
    git_commit,
    grid_predictions,
    markdown_table,
    peak_gflops,
    update_readme_performance,
    write_results,
)
from qwen_memory import chunk_peaks

from langchain_selfamplify.evaluation.grid import load_grid_splits
from langchain_selfamplify.evaluation.grid_state import recorded_config
from langchain_selfamplify.evaluation.metrics import accuracy
from langchain_selfamplify.models.chat_format import render_chat
from langchain_selfamplify.models.embedded import QWEN_MODEL, embedded_model_path
from langchain_selfamplify.models.served import load_tokenizer
from langchain_selfamplify.models.shared_prefix import common_prefix_length
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.stages import LOGGED
from langchain_selfamplify.wording import ANSWER_PREFIX

TABLE: dict[str, Any] = {"datasets": 3, "seeds": 3, "questions": 200,
         "rows": ["io", "ph_cot", "self_topk", "deeplift", "amplify", "dspy_bootstrap",
                  "auto_cot", "kernelshap", "ph_cot/error", "self_topk/error",
                  "deeplift/error", "kernelshap/error"]}
"""The capable-model table (``benchmarks/qwen_table.sh``): a row is a method, with
``/error`` for the error strategy (success otherwise)."""
STAND_IN = {"dspy_bootstrap": "ph_cot", "auto_cot": "ph_cot", "self_topk": "io",
            "deeplift": "io", "amplify": "io", "kernelshap": "deeplift"}
"""The measured row a row not measured yet is projected at: Ph-CoT for a chain of
thought as long, IO (a lower bound) for a sentence of keywords, DeepLift for KernelShap's
answers (its prompt building has no stand-in: 200 model passes per demonstration); an
error row at its success row."""


def row_of(method: str, strategy: str) -> str:
    """The :data:`TABLE` row of a cell's method and strategy."""
    return f"{method}/error" if strategy == "error" else method


def stand_in_of(row: str) -> str:
    """The row a row not measured yet is projected at (see :data:`STAND_IN`)."""
    method = row.split("/")[0]
    return method if row.endswith("/error") else STAND_IN.get(method, "ph_cot")


def measured_stand_in(row: str, measured: Collection[str]) -> str:
    """``row`` if ``measured``, else the first measured row of its chain of stand-ins
    (an error row's success row, then that row's stand-in...), else the chain's end."""
    while row not in measured and row != stand_in_of(row):
        row = stand_in_of(row)
    return row


def build_seconds(row: str, stand_in: str, measured: dict[str, float]) -> float | None:
    """A row's prompt-building seconds: measured on the row or on its method's other
    strategy, else its stand-in's; ``None`` for KernelShap until measured (no other
    method's prompt costs what its 200 passes per demonstration do)."""
    method = row.split("/")[0]
    for source in (row, method, f"{method}/error"):
        if source in measured:
            return measured[source]
    return None if method == "kernelshap" else measured.get(stand_in, 0.0)


def stage_rows(cells: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per cell whose records split its time by stage: build and answer seconds
    per stage, answering's over the questions that run answered."""
    rows = []
    for cell in cells:
        build, answer = cell.get("build_stage_seconds"), cell.get("answer_stage_seconds")
        if build is None and answer is None:
            continue
        merged = {name: (build or {}).get(name, 0.0) + (answer or {}).get(name, 0.0)
                  for name in LOGGED}
        rows.append([cell["cell"], *(f"{merged[name]:.0f}" for name in LOGGED),
                     cell.get("answered", "")])
    return rows


TARGET_HOURS = 3
"""The speed issue's target for the whole table on two cores."""


def non_embedding_parameters(config: Any) -> int:
    """Parameters every token runs through (attention and MLP of every layer, norms),
    from a Qwen2/Llama-style configuration."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    mlp = 3 * hidden * config.intermediate_size
    return layers * (attention + mlp + 2 * hidden)


def by_method(cells: list[dict[str, Any]]) -> dict[str, float]:
    """Each method's seconds over the FLOP limit of its tokens, its cells pooled."""
    seconds: dict[str, float] = defaultdict(float)
    limit: dict[str, float] = defaultdict(float)
    for cell in cells:
        seconds[cell["method"]] += cell["seconds"]
        limit[cell["method"]] += cell["flop_limit_seconds"]
    return {method: seconds[method] / limit[method] for method in seconds}


FULL_CHUNK = 100
"""Questions in a chunk the size the rest of the table runs with (100 or 200)."""


def quiet_rate(chunks: list[tuple[float, int]]) -> float:
    """A row's seconds per question on the quiet machine, from its chunks' ``(seconds
    per question, questions)``: the least among chunks of at least :data:`FULL_CHUNK`
    questions (contention only slows a chunk; a short chunk decodes few rows per step
    and costs more), else the largest chunk's."""
    full = [rate for rate, questions in chunks if questions >= FULL_CHUNK]
    return min(full) if full else max(chunks, key=lambda chunk: chunk[1])[0]


APPROXIMATE_ROUTES = {"offload": "llama.cpp generation (`--generate-url`, approximate)",
                      "int8": "int8 decoder layers (torch dynamic quantisation, approximate)"}
"""The approximate speed routes of ``benchmarks/offload_agreement.py``."""


def dtype_line(total: float) -> str:
    """bfloat16's time against float32's (``benchmarks/dtype_speed.py``), and the table
    projected at its decoding ratio (decoding is most of every cell's time)."""
    path = RESULTS / "dtype_speed.json"
    if not path.is_file():
        return "bfloat16: not measured on this model (`benchmarks/dtype_speed.py`)."
    measured = json.loads(path.read_text(encoding="utf-8"))
    ratio = measured["bfloat16_decode_time_ratio"]
    return (f"bfloat16 is slower on this CPU ({measured['cpu_capability']}, no AVX512-BF16): "
            f"{measured['bfloat16_prefill_time_ratio']:.2f}x float32's time to encode "
            f"prompts, {ratio:.2f}x to decode, so the table would take about "
            f"{total * ratio:.0f} hours at its decoding ratio "
            "(`docs/results/dtype_speed.md`).")


def speed_routes_line(total: float) -> str:
    """What the approximate speed routes measured on this table's Ph-CoT questions, if
    they were run: seconds per question against exact float32 on the same questions
    (the exact route when it decoded as many together, else the table's own seconds),
    the labels kept, and the table's ``total`` hours projected at that time ratio."""
    path = RESULTS / "offload_agreement.json"
    routes = json.loads(path.read_text(encoding="utf-8"))["routes"] if path.is_file() else {}
    measured = {name: routes[name] for name in APPROXIMATE_ROUTES if name in routes}
    if not measured:
        return ("llama.cpp generation (`--generate-url`, approximate) changes the per-token "
                "cost, not the number of tokens (`docs/results/grid.md`).")
    exact = routes.get("exact")
    lines = []
    for name, route in measured.items():
        n = route["questions"]
        if exact is not None and exact["questions"] == n:
            base, basis = exact["seconds"] / n, "exact float32 decoding as many together"
        else:
            base, basis = route["table_seconds"] / n, "the table's own seconds"
        faster = route["seconds"] / n < base
        close = accuracy(route["same_labels_as_table"], n).ci_high >= 0.98
        verdict = ("faster and possibly within the 98% agreement bar" if faster and close
                   else "faster, but its agreement is below the 98% bar" if faster
                   else "not faster" + ("" if close else ", and its agreement is below the "
                                        "98% bar"))
        lines.append(f"{APPROXIMATE_ROUTES[name]} took {route['seconds'] / n:.0f} s per "
                     f"question on {n} of this table's Ph-CoT questions against {base:.0f} "
                     f"s ({basis}) and kept {route['same_labels_as_table']} of {n} "
                     f"labels: {verdict}; the table would take about "
                     f"{total * route['seconds'] / n / base:.0f} hours at that ratio.")
    return " ".join(lines) + " (`docs/results/offload_agreement.md`)"


def decode_line() -> str:
    """What a decoding step costs by its rows (``benchmarks/decode_rows.py``), if
    measured."""
    path = RESULTS / "decode_rows.json"
    if not path.is_file():
        return ("A decoding step passes every row through every weight, and a chunk of "
                "questions decodes until its longest rationale ends, so its late steps run "
                "few rows.")
    measured = json.loads(path.read_text(encoding="utf-8"))
    fixed, per_row = fixed_and_per_row(measured["runs"])
    row_gflops = 2 * measured["parameters"] / per_row / 1e9
    return (f"A decoding step costs about {fixed:.2f} s plus {1000 * per_row:.0f} ms per "
            "row (`docs/results/decode_rows.md`): the rows' arithmetic runs at "
            f"{row_gflops / measured['peak_gflops']:.0%} of the matrix-multiply peak "
            "measured in that run, and a chunk decodes until its longest rationale ends, "
            "each late step paying the fixed part for few rows.")


def memory_line(finished: dict[str, dict[str, Any]]) -> str:
    """The largest peak memory the table's cells recorded, if any did, and the peak of a
    chunk of its answers at the CPU default of slots (``benchmarks/qwen_memory.py``),
    if measured."""
    peaks = [r["peak_rss_mib"] for r in finished.values() if r.get("peak_rss_mib")]
    if not peaks:
        line = ("not recorded by these cells (cells record it from this commit on; "
                "`peak_rss_mib` in `cells.jsonl`)")
    else:
        line = (f"{max(peaks) / 1024:.2f} GiB, the largest of the {len(peaks)} cells that "
                "recorded it (the model file's mapped pages included while resident)")
    path = RESULTS / "qwen_memory.json"
    chunk = (json.loads(path.read_text(encoding="utf-8")).get("answered_chunk")
             if path.is_file() else None)
    if chunk:
        line += (f". Decoding {chunk['questions']} together (`--decode-slots "
                 f"{chunk['questions']}`), a chunk of this table's Ph-CoT answers peaked at "
                 f"{chunk_peaks(chunk)}, at {chunk['seconds'] / chunk['questions']:.1f} s per "
                 "question (`docs/results/qwen_memory.md`)")
    return line


def machine_peak(reuse: bool) -> tuple[float, str]:
    """The float32 matrix-multiply peak (GFLOP/s) and when it was measured: now, or with
    ``reuse`` by the last report's run (so a busy machine does not lower it)."""
    last = RESULTS / "qwen_table_cost.json"
    if reuse and last.is_file():
        report = json.loads(last.read_text(encoding="utf-8"))
        return report["gflops"], report.get("gflops_measured", "by the last report's run")
    return peak_gflops(), f"at commit {git_commit()}"


def main() -> None:
    from transformers import AutoConfig

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse-peak", action="store_true",
                        help="take the matrix-multiply peak from the last report instead "
                             "of measuring it (for a machine that is not quiet)")
    args = parser.parse_args()
    gflops, measured = machine_peak(args.reuse_peak)  # first, before the tokenizer is read
    gguf = embedded_model_path(QWEN_MODEL)
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = load_tokenizer(gguf)
    params = non_embedding_parameters(config)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    finished = {}
    for line in (QWEN_GRID / "cells.jsonl").read_text().splitlines():
        record = json.loads(line)
        finished[record["cell"]] = record
    answers = grid_predictions(QWEN_GRID)

    questions = {q.id: q for _, test in load_grid_splits(recorded_config(QWEN_GRID)).values()
                 for q in test}
    cells = []
    for cell, records in answers.items():
        prompt = AmplifiedPrompt.load(QWEN_GRID / "prompts" / f"{cell}.json")
        # The prompts exactly as the model ran them (its chat template), so the shared
        # few-shot prefix and each question's own tokens are counted, not estimated.
        prompt_ids = [tokenizer(render_chat(tokenizer, prompt.to_messages(
            questions[r["question_id"]]), prompt.assistant_prefix())[0],
            add_special_tokens=False)["input_ids"] for r in records]
        prefix = min(common_prefix_length(prompt_ids[0], ids) for ids in prompt_ids)
        written = [r["raw_output"] or "" for r in records]
        follow_up = count(f"\n{ANSWER_PREFIX}")
        tokens = prefix + sum(len(ids) - prefix + (count(text) + follow_up if text else 0)
                              for ids, text in zip(prompt_ids, written, strict=True))
        seconds = sum(r["seconds"] for r in records)
        record = finished.get(cell, {})
        cells.append({
            "cell": cell, "method": records[0]["method"],
            "row": row_of(records[0]["method"], records[0]["strategy"]),
            "build_seconds": prompt.metadata.get("build_seconds", 0.0),
            "build_stage_seconds": prompt.metadata.get("build_stage_seconds"),
            "answer_stage_seconds": record.get("answer_stage_seconds"),
            "answered": record.get("answered"),
            "questions": len(records),
            "finished": record.get("status") == "done",
            "seconds": seconds, "seconds_per_question": seconds / len(records),
            "chunk_seconds_per_question": chunk_rates(records),
            "cores_busy": cores_busy(records),
            "prefix_tokens": prefix, "tokens": tokens,
            "rationale_tokens_mean": sum(count(t) for t in written) / len(written),
            "flop_limit_seconds": 2 * params * tokens / (gflops * 1e9),
        })
    per_row = {row: quiet_rate([chunk for c in cells if c["row"] == row
                                for chunk in c["chunk_seconds_per_question"]])
               for row in TABLE["rows"] if any(c["row"] == row for c in cells)}
    # A prompt is built once per cell; the least build is the closest to the quiet
    # machine's, as for answering.
    build_per_row = {row: min(c["build_seconds"] for c in cells if c["row"] == row)
                     for row in per_row}
    prompts = TABLE["seeds"] * TABLE["datasets"]
    projected = {}
    for row in TABLE["rows"]:
        stand_in = measured_stand_in(row, per_row)
        per_question = per_row.get(stand_in, 0.0)
        build = build_seconds(row, stand_in, build_per_row)
        projected[row] = {"seconds_per_question": per_question,
                          "measured": row in per_row, "stand_in": stand_in,
                          "build_seconds": build,
                          "hours": (per_question * TABLE["questions"] + (build or 0.0))
                          * prompts / 3600}
    total = sum(p["hours"] for p in projected.values())
    done_cells = {row: sum(c["finished"] and c["row"] == row for c in cells)
                  for row in TABLE["rows"]}
    left = sum(p["hours"] * (1 - min(done_cells[row], prompts) / prompts)
               for row, p in projected.items())
    # The FLOP limit of the whole table's tokens, from each row's tokens per question.
    tokens_per_question = {c["row"]: (c["tokens"] - c["prefix_tokens"]) / c["questions"]
                           for c in cells}
    table_tokens = sum(tokens_per_question.get(m, tokens_per_question.get(p["stand_in"], 0.0))
                       for m, p in projected.items()) * TABLE["questions"] * TABLE["seeds"] \
        * TABLE["datasets"]
    table_floor_hours = 2 * params * table_tokens / (gflops * 1e9) / 3600
    floor = sum(c["flop_limit_seconds"] for c in cells)
    spent = sum(c["seconds"] for c in cells)
    rows = [[c["cell"], c["questions"], "yes" if c["finished"] else "no",
             f"{c['seconds_per_question']:.1f}",
             ", ".join(f"{x:.1f} ({n})" for x, n in c["chunk_seconds_per_question"]),
             c["prefix_tokens"],
             f"{c['rationale_tokens_mean']:.0f}", c["tokens"],
             f"{c['seconds'] / c['flop_limit_seconds']:.1f}x",
             "not recorded" if c.get("cores_busy") is None else f"{c['cores_busy']:.2f}"]
            for c in cells]
    project_rows = [[m, f"{p['seconds_per_question']:.1f}",
                     "not measured yet" if p["build_seconds"] is None
                     else f"{p['build_seconds'] / 60:.0f}",
                     "measured" if p["measured"]
                     else f"not measured yet ({p['stand_in']}'s cost)",
                     f"{p['hours']:.1f}"] for m, p in projected.items()]
    unbuilt = [m for m, p in projected.items() if p["build_seconds"] is None]
    per_stage = stage_rows(cells)
    markdown = "\n".join([
        "# The capable-model table: what it costs on two cores, and what bounds it",
        "",
        f"Read from the table's own records by `python benchmarks/qwen_table_cost.py`: "
        f"Qwen2.5-Coder-1.5B-Instruct (float32, {params / 1e9:.2f}B non-embedding "
        f"parameters), 8 shots, letter format; float32 matrix-multiply peak "
        f"{gflops:.0f} GFLOP/s (measured {measured}). Seconds are wall time of the grid's "
        "chunks while other work shared the machine at times (and a chunk paused "
        "for measurements counts its pause), so they are an upper bound of the quiet "
        "machine's. The first Ph-CoT chunks decoded 32 questions at a time, later ones "
        "100, and from ARC seed 2 on a whole cell's 200 (`benchmarks/qwen_table.sh`).",
        "",
        "## Cells so far",
        "",
        markdown_table(["cell", "questions", "finished", "seconds per question",
                        "by chunk (questions), in order", "shared prefix tokens",
                        "rationale tokens (mean)", "tokens run",
                        "seconds over the FLOP limit", "cores busy"], rows),
        "",
        f"Cores busy: the process's CPU seconds per wall second while it answered "
        f"(recorded from session 7 on); near the {os.cpu_count()} cores when it had the "
        "machine, lower when other work shared it or it was stopped.",
        "",
        "## Per stage",
        "",
        ("Seconds of each cell by stage, prompt building and answering together "
         "(exclusive: a stage inside another is charged to the inner one); a rationale "
         "row's fused pass reads its answers as it writes the rationales, so its answer "
         "scoring sits in `test_rationales`. Answering covers the questions the run that "
         "finished the cell answered.\n\n"
         + markdown_table(["cell", *LOGGED, "questions answered"], per_stage)
         if per_stage else "No cell recorded its stages yet: cells record them from "
         "session 8 on (`build_stage_seconds` in a prompt's metadata, "
         "`answer_stage_seconds` in `cells.jsonl`)."),
        "",
        "## The whole table, projected",
        "",
        f"{TABLE['datasets']} datasets x {TABLE['seeds']} seeds x {TABLE['questions']} "
        f"questions per row (a row with `/error` uses the error strategy), at each row's "
        f"least seconds per question among its chunks of at least {FULL_CHUNK} questions "
        "(the chunk sizes the rest of the table runs with; other work sharing the "
        "machine only ever slowed a chunk, so the least is the closest to the quiet "
        "machine's), plus its least prompt-building time once per dataset and seed (DSPy's "
        "bootstrapping included; the short last chunk of a cell left out, so this is a "
        "lower bound):",
        "",
        markdown_table(["row", "seconds per question", "minutes per prompt", "basis",
                        "hours"], project_rows),
        "",
        *([f"- Not counted: the prompt building of {', '.join(unbuilt)}, not measured "
           "yet and with no stand-in (200 model passes per demonstration), so the total "
           "below leaves it out."] if unbuilt else []),
        f"- Total: about **{total:.0f} hours** of two-core compute, "
        f"{total / TARGET_HOURS:.1f} times the {TARGET_HOURS}-hour target. It cannot "
        "meet it here.",
        f"- Left: about **{left:.0f} hours**, {sum(done_cells.values())} of "
        f"{prompts * len(TABLE['rows'])} cells finished (at the projection's costs).",
        f"- The tokens alone do not explain it: the cells so far ran {spent / 3600:.1f} "
        f"hours against a FLOP limit of {floor / 3600:.1f} hours for their tokens at the "
        f"measured peak ({spent / floor:.1f}x); at that limit the whole table's tokens "
        f"would take about {table_floor_hours:.1f} hours. The gap is in decoding: "
        + ", ".join(f"{method} {ratio:.1f}x" for method, ratio in by_method(cells).items())
        + " its FLOP limit. " + decode_line(),
        "- Speed options, each projected over the whole table at the time ratio it "
        "measured against exact float32 (an approximation: the ratios were measured on "
        "Ph-CoT questions or on short replies, and every row is assumed to follow them): "
        + dtype_line(total) + " " + speed_routes_line(total),
        f"- Peak memory of the table's process: {memory_line(finished)}.",
    ])
    headline = [{"target": "Capable-model table (Qwen2.5-Coder-1.5B, float32, 2 cores), "
                           "projected from its cells so far",
                 "result": f"{total:.0f} h ({spent / floor:.1f}x the FLOP limit of its "
                           "tokens)",
                 "goal": f"<= {TARGET_HOURS} h", "met": total <= TARGET_HOURS}]
    write_results("qwen_table_cost", {"table": TABLE, "params": params, "gflops": gflops,
                                      "gflops_measured": measured,
                                      "cells": cells, "projected": projected,
                                      "total_hours": total, "left_hours": left,
                                      "table_flop_limit_hours": table_floor_hours,
                                      "headline": headline}, markdown)
    update_readme_performance()


if __name__ == "__main__":
    main()
