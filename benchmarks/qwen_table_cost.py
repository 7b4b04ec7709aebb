"""What the capable-model table costs on this machine, and what bounds it.

Reads the Qwen2.5-Coder-1.5B table's own records (``docs/results/paper_table_qwen_run``:
each finished cell's seconds, each answered question's seconds and written rationale)
and the cells' saved prompts, counts the tokens the model ran (each prompt's shared
few-shot prefix once per cell, each question's own tokens, its rationale and the
``The answer is (`` follow-up), and sets the seconds against the FLOP limit of those
tokens at the measured float32 matrix-multiply peak of the CPU that finished the cell
(``2 x non-embedding parameters x tokens``, a floor: attention, the vocabulary head and
Python are left out; the project's machines differ between sessions, so the report keeps
one peak per CPU).

It then projects the whole table (``benchmarks/qwen_table.sh``: ARC-Challenge,
CommonsenseQA and Social IQa, the datasets the zero-shot screen keeps, x 3 seeds x 200
questions, rows IO, Auto-CoT, AMPLIFY, DSPy
BootstrapFewShot, and Ph-CoT, Self_topk, DeepLift and KernelShap with success and
error) from the measured seconds per question of each row and the measured minutes of
each row's prompt building, and states how far that is from the speed issue's 3-hour
target. A row not measured yet is projected at a measured row's cost and marked so:
DSPy and Auto-CoT at Ph-CoT's (their chain-of-thought answers are as long), the keyword
rows at IO's, a lower bound (they add a sentence of keywords to write), an error row at
its success row's; KernelShap's answers at DeepLift's, and its prompt at DeepLift's plus
its demonstrations' explanations as ``benchmarks/kernelshap_cost.py`` measured them.

Where the table's records carry them (cells run from session 8 on), each cell's time is
also split by stage (pool scoring, demonstration rationales, baselines' set-up, test
rationales, answer scoring; ``langchain_selfamplify.stages``): prompt building from the
prompt's ``build_stage_seconds``, answering from the cell's ``answer_stage_seconds``.

Run: ``python benchmarks/qwen_table_cost.py`` (a minute: no model is run, only its
tokenizer and configuration are read) on a quiet machine, as it measures the peak; with
``--reuse-peak`` (while the table runs, say) it takes the peaks its last report measured,
and says so (a CPU it has none for is measured, and marked as maybe busy).
Writes ``docs/results/qwen_table_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from typing import Any

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
from table_cost_sentences import decode_line, dtype_line, memory_line, speed_routes_line
from table_projection import (
    FULL_CHUNK,
    TABLE,
    TARGET_HOURS,
    finished_per_row,
    hours_left,
    kernelshap_explaining,
    project_table,
    prompts_per_row,
    row_of,
    table_flop_limit_hours,
)

from langchain_selfamplify.evaluation.grid import load_grid_splits
from langchain_selfamplify.evaluation.grid_state import recorded_config
from langchain_selfamplify.models.chat_format import render_chat
from langchain_selfamplify.models.embedded import QWEN_MODEL, embedded_model_path
from langchain_selfamplify.models.served import load_tokenizer
from langchain_selfamplify.models.shared_prefix import common_prefix_length
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.stages import LOGGED, cpu_capability
from langchain_selfamplify.wording import ANSWER_PREFIX


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


def model_parameters(model: str) -> int:
    """:func:`non_embedding_parameters` of an embedded model, from its GGUF's
    configuration (no weights read). The output matrix is left out too: the routes
    measured here project few positions to the vocabulary."""
    from transformers import AutoConfig

    gguf = embedded_model_path(model)
    return non_embedding_parameters(
        AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name))


def seconds_against_limit(cells: list[dict[str, Any]]) -> tuple[float, float]:
    """The cells' seconds in all and the FLOP limit of their tokens, in seconds."""
    return (sum(c["seconds"] for c in cells), sum(c["flop_limit_seconds"] for c in cells))


def by_method(cells: list[dict[str, Any]]) -> dict[str, float]:
    """Each method's seconds over the FLOP limit of its tokens, its cells pooled."""
    seconds: dict[str, float] = defaultdict(float)
    limit: dict[str, float] = defaultdict(float)
    for cell in cells:
        seconds[cell["method"]] += cell["seconds"]
        limit[cell["method"]] += cell["flop_limit_seconds"]
    return {method: seconds[method] / limit[method] for method in seconds}


UNRECORDED_CPU = "AVX2"
"""The CPU a cell with no ``cpu_capability`` record is set against: the machines of
sessions 1-16, before cells recorded theirs, were AVX2 ones (``dtype_speed.md``); the
AVX512 machine of session 17 finished cells before the record landed, and their
seconds come out under this peak's FLOP limit."""


def recorded_peaks() -> dict[str, dict[str, Any]]:
    """The float32 matrix-multiply peak (``gflops``) and when it was ``measured``, per CPU
    capability, as the last report recorded them (none measured here)."""
    last = RESULTS / "qwen_table_cost.json"
    if not last.is_file():
        return {}
    report = json.loads(last.read_text(encoding="utf-8"))
    # Reports before the per-CPU record held one peak, measured on an AVX2 machine.
    return dict(report.get("peaks") or {UNRECORDED_CPU: {
        "gflops": report["gflops"],
        "measured": report.get("gflops_measured", "by an earlier report's run")}})


def machine_peaks(reuse: bool) -> dict[str, dict[str, Any]]:
    """:func:`recorded_peaks`, with this machine's CPU measured now, or with ``reuse``
    taken from the last report when it has this CPU's (so a busy machine does not lower
    it). A CPU whose peak this report does not measure keeps the last one's."""
    peaks = recorded_peaks()
    cpu = cpu_capability()
    if not reuse or cpu not in peaks:
        busy = " with --reuse-peak: the machine may have been busy, so a floor" if reuse else ""
        peaks[cpu] = {"gflops": peak_gflops(), "measured": f"at commit {git_commit()}{busy}"}
    return peaks


def machine_peak(reuse: bool) -> tuple[float, str]:
    """This machine's CPU's entry of :func:`machine_peaks`: GFLOP/s and when measured."""
    mine = machine_peaks(reuse)[cpu_capability()]
    return mine["gflops"], mine["measured"]


def cell_peak(peaks: dict[str, dict[str, Any]], cpu: str | None) -> float:
    """The peak (GFLOP/s) of the CPU that finished a cell: :data:`UNRECORDED_CPU`'s when
    it recorded none or its CPU's peak was never measured."""
    return float(peaks.get(cpu or UNRECORDED_CPU, peaks[UNRECORDED_CPU])["gflops"])


def finished_cells() -> dict[str, dict[str, Any]]:
    """The table's ``cells.jsonl`` records by cell (the last record of a cell wins)."""
    return {record["cell"]: record for record in map(
        json.loads, (QWEN_GRID / "cells.jsonl").read_text().splitlines())}


def measure_cells(tokenizer: Any, params: int, peaks: dict[str, dict[str, Any]],
                  finished: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per cell that answered questions: its seconds, chunks, stages, and the
    tokens the model ran for it, counted on the prompts exactly as the model ran them
    (its chat template), so the shared few-shot prefix is counted once per cell and each
    question's own tokens, rationale and follow-up once per question; their FLOP limit
    is at the peak of the CPU that finished the cell (:func:`cell_peak`)."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    questions = {q.id: q for _, test in load_grid_splits(recorded_config(QWEN_GRID)).values()
                 for q in test}
    follow_up = count(f"\n{ANSWER_PREFIX}")
    cells = []
    for cell, records in grid_predictions(QWEN_GRID).items():
        prompt = AmplifiedPrompt.load(QWEN_GRID / "prompts" / f"{cell}.json")
        prompt_ids = [tokenizer(render_chat(tokenizer, prompt.to_messages(
            questions[r["question_id"]]), prompt.assistant_prefix())[0],
            add_special_tokens=False)["input_ids"] for r in records]
        prefix = min(common_prefix_length(prompt_ids[0], ids) for ids in prompt_ids)
        written = [r["raw_output"] or "" for r in records]
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
            "cpu_capability": record.get("cpu_capability"),
            "prefix_tokens": prefix, "tokens": tokens,
            "rationale_tokens_mean": sum(count(t) for t in written) / len(written),
            "flop_limit_seconds": 2 * params * tokens
            / (cell_peak(peaks, record.get("cpu_capability")) * 1e9),
        })
    return cells


def kernelshap_line(projected: dict[str, dict[str, Any]], explaining: float) -> str:
    """KernelShap's projected cell, set against the dearest other row's: the issue asks
    what a method that dominates costs per cell (it runs last)."""

    def cell_minutes(p: dict[str, Any]) -> float:
        return ((p["build_seconds"] or 0.0) + p["seconds_per_question"] * TABLE["questions"]) / 60

    kernelshap = projected["kernelshap"]
    others = {row: p for row, p in projected.items() if not row.startswith("kernelshap")}
    dearest = max(others, key=lambda row: others[row]["hours"])
    share = sum(p["hours"] for row, p in projected.items() if row.startswith("kernelshap")) \
        / sum(p["hours"] for p in projected.values())
    return (f"- KernelShap's prompt, until its cells run: DeepLift's (the same pool "
            f"scoring) plus {explaining / 60:.0f} minutes to explain its demonstrations at "
            "the paper's 200 coalitions each, measured on the table's own demonstrations "
            "(`docs/results/kernelshap_cost.md`). A KernelShap cell, answered at DeepLift's "
            f"rate, is about {cell_minutes(kernelshap):.0f} minutes against "
            f"{cell_minutes(others[dearest]):.0f} for {dearest}'s, the dearest other row; "
            f"its two rows are {share:.0%} of the table, so they run last "
            "(`benchmarks/qwen_table.sh`).")


def markdown_report(cells: list[dict[str, Any]], projected: dict[str, dict[str, Any]], *,
                    params: int, peaks: dict[str, dict[str, Any]], total: float, left: float,
                    done: int, planned: int, table_floor_hours: float,
                    finished: dict[str, dict[str, Any]],
                    explaining: float | None) -> str:
    """The report's Markdown: the cells run (``done`` of the ``planned`` cells
    finished), their stages, the projection."""
    spent, floor = seconds_against_limit(cells)
    rows = [[c["cell"], c["questions"], "yes" if c["finished"] else "no",
             f"{c['seconds_per_question']:.1f}",
             ", ".join(f"{x:.1f} ({n})" for x, n in c["chunk_seconds_per_question"]),
             c["prefix_tokens"],
             f"{c['rationale_tokens_mean']:.0f}", c["tokens"],
             f"{c['seconds'] / c['flop_limit_seconds']:.1f}x",
             "not recorded" if c.get("cores_busy") is None else f"{c['cores_busy']:.2f}",
             c.get("cpu_capability") or "not recorded"]
            for c in cells]
    project_rows = [[m, f"{p['seconds_per_question']:.1f}",
                     "not measured yet" if p["build_seconds"] is None
                     else f"{p['build_seconds'] / 60:.0f}",
                     "measured" if p["measured"]
                     else f"not measured yet ({p['stand_in']}'s cost)",
                     f"{p['hours']:.1f}"] for m, p in projected.items()]
    unbuilt = [m for m, p in projected.items() if p["build_seconds"] is None]
    per_stage = stage_rows(cells)
    return "\n".join([
        "# The capable-model table: what it costs on two cores, and what bounds it",
        "",
        f"Read from the table's own records by `python benchmarks/qwen_table_cost.py`: "
        f"Qwen2.5-Coder-1.5B-Instruct (float32, {params / 1e9:.2f}B non-embedding "
        f"parameters), 8 shots, letter format; float32 matrix-multiply peak by CPU: "
        + "; ".join(f"{cpu} {peak['gflops']:.0f} GFLOP/s (measured {peak['measured']})"
                    for cpu, peak in sorted(peaks.items()))
        + ". Seconds are wall time of the grid's "
        "chunks while other work shared the machine at times (and a chunk paused "
        "for measurements counts its pause), so they are an upper bound of the quiet "
        "machine's. The first Ph-CoT chunks decoded 32 questions at a time, later ones "
        "100, and from ARC seed 2 on a whole cell's 200 (`benchmarks/qwen_table.sh`).",
        "",
        "## Cells run",
        "",
        markdown_table(["cell", "questions", "finished", "seconds per question",
                        "by chunk (questions), in order", "shared prefix tokens",
                        "rationale tokens (mean)", "tokens run",
                        "seconds over the FLOP limit", "cores busy", "CPU"], rows),
        "",
        f"Cores busy: the process's CPU seconds per wall second while it answered "
        f"(recorded from session 7 on); near the {os.cpu_count()} cores when it had the "
        "machine, lower when other work shared it or it was stopped. CPU: the vector "
        "instructions PyTorch used on the machine that finished the cell (recorded from "
        "session 17 on): the project's machines differ between sessions, and an AVX512 "
        "one runs float32 faster than an AVX2 one (both in [dtype_speed.md](dtype_speed.md)), "
        "so seconds compare only within one CPU. Seconds over the FLOP limit: at the peak "
        f"of the cell's CPU; a cell with no CPU recorded is set against the "
        f"{UNRECORDED_CPU} peak, the CPU of sessions 1-16's machines, and one that comes "
        "out under 1.0x ran on a faster CPU (session 17's AVX512 machine, which finished "
        "cells before the record landed).",
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
        "lower bound; a row whose fastest chunk ran on an AVX512 machine is projected "
        "at that machine's speed, one run only on AVX2 machines at theirs, so the hours "
        "mix two machines' speeds):",
        "",
        markdown_table(["row", "seconds per question", "minutes per prompt", "basis",
                        "hours"], project_rows),
        "",
        *([f"- Not counted: the prompt building of {', '.join(unbuilt)}, not measured "
           "yet and with no stand-in (200 model passes per demonstration), so the total "
           "below leaves it out."] if unbuilt else []),
        *([kernelshap_line(projected, explaining)]
          if explaining is not None and not any(
              p["measured"] for m, p in projected.items() if m.startswith("kernelshap"))
          else []),
        f"- Total: about **{total:.0f} hours** of two-core compute, "
        f"{total / TARGET_HOURS:.1f} times the {TARGET_HOURS}-hour target. It cannot "
        "meet it here.",
        f"- Left: about **{left:.0f} hours**, {done} of {planned} cells finished (at the "
        "projection's costs).",
        f"- The tokens alone do not explain it: the cells ran {spent / 3600:.1f} "
        f"hours against a FLOP limit of {floor / 3600:.1f} hours for their tokens at the "
        f"peak of each cell's CPU ({spent / floor:.1f}x); at the fastest CPU's peak "
        "the whole table's tokens "
        f"would take about {table_floor_hours:.1f} hours. The gap is in decoding: "
        + ", ".join(f"{method} {ratio:.1f}x" for method, ratio in by_method(cells).items())
        + " its FLOP limit. " + decode_line(),
        "- Speed options, each projected over the whole table at the time ratio it "
        "measured against exact float32 (an approximation: the ratios were measured on "
        "Ph-CoT questions or on short replies, and every row is assumed to follow them): "
        + dtype_line(total) + " " + speed_routes_line(total),
        f"- Peak memory of the table's process: {memory_line(finished)}.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse-peak", action="store_true",
                        help="take the matrix-multiply peak from the last report instead "
                             "of measuring it (for a machine that is not quiet)")
    args = parser.parse_args()
    peaks = machine_peaks(args.reuse_peak)  # first, before the tokenizer is read
    params = model_parameters(QWEN_MODEL)
    finished = finished_cells()
    cells = measure_cells(load_tokenizer(embedded_model_path(QWEN_MODEL)), params, peaks,
                          finished)
    explaining = kernelshap_explaining()
    projected = project_table(cells, explaining)
    total = sum(p["hours"] for p in projected.values())
    done = finished_per_row(cells)
    left = hours_left(projected, done)
    fastest = max(peak["gflops"] for peak in peaks.values())
    table_floor_hours = table_flop_limit_hours(cells, projected, params, fastest)
    done_cells = sum(done.values())
    planned = prompts_per_row() * len(TABLE["rows"])
    markdown = markdown_report(cells, projected, params=params, peaks=peaks,
                               total=total, left=left, done=done_cells, planned=planned,
                               table_floor_hours=table_floor_hours,
                               finished=finished, explaining=explaining)
    spent, floor = seconds_against_limit(cells)
    headline = [{"target": "Capable-model table (Qwen2.5-Coder-1.5B, float32, 2 cores), "
                           f"projected from its {done_cells} of {planned} "
                           "cells finished",
                 "result": f"{total:.0f} h ({spent / floor:.1f}x the FLOP limit of its "
                           "tokens)",
                 "goal": f"<= {TARGET_HOURS} h", "met": total <= TARGET_HOURS}]
    write_results("qwen_table_cost", {"table": TABLE, "params": params, "peaks": peaks,
                                      "cells": cells, "projected": projected,
                                      "total_hours": total, "left_hours": left,
                                      "table_flop_limit_hours": table_floor_hours,
                                      "headline": headline}, markdown)
    update_readme_performance()


if __name__ == "__main__":
    main()
