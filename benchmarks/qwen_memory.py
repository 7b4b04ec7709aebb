"""Memory of the capable model on the 2-core, 24 GiB machine: loading, and what each
decoding slot adds.

- **Loading**: ``SLM.load("qwen2.5-coder-1.5b")`` in this process while a thread samples
  ``/proc/self/status`` every 50 ms: the peak resident memory, split into anonymous
  memory (what the process itself holds) and file-backed pages (mapped files: page
  cache the kernel can reclaim and read again), and the same after loading. From a GGUF
  file the weights are dequantised into anonymous memory; from its float32 conversion
  (``models/gguf_cache.py``, what every load after the first reads) they are the
  conversion's safetensors files, mapped, and come in as file-backed pages when first
  read.
- **First forward pass**: one pass over a short question, which reads every weight, so
  the resident memory is then the model's working size.
- **Decoding, projected**: each slot's keys and values take ``2 x layers x KV heads x
  head size x 4`` bytes per token in float32. A grid decodes ``--slots`` questions at a
  time, each holding its own tokens (the question and up to ``--rationale-cap`` rationale
  tokens; the few-shot prefix is kept once for all slots): the largest cache is projected
  from the longest question of ARC-Challenge's test split, as if every slot held it.
- **Decoding, measured** (``--answer``, on by default): the grid's own Ph-CoT cell
  (``--cell``, its saved 8-shot prompt) answers as many of its test questions as it has
  slots, all decoded together, exactly as the grid answers a chunk
  (``answer_questions``, score mode, the grid's rationale cap), while the sampler runs:
  the peak a grid run at ``--slots`` reaches, and its seconds per question. Each sample
  is also put to the decoding stage running when it was taken (encoding prompts,
  decoding steps, feeding follow-ups, or between passes), so the report says which
  stage holds the peak.

Run: ``python benchmarks/qwen_memory.py [--slots 64]`` after the table's cell exists
(``benchmarks/qwen_table.sh``); the measured stage decodes a chunk of Ph-CoT answers
(about 20 minutes at 64 slots on two cores), ``--no-answer`` skips it (about a minute).
``--report-only`` rewrites the report from the saved JSON. Writes
``docs/results/qwen_memory.{json,md}`` and the README performance row of the measured
chunk. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import (
    QWEN_GRID,
    add_report_only,
    markdown_table,
    rewrote_saved_report,
    saved_cell,
    shared_datasets,
    write_with_headline,
)

from langchain_selfamplify import SLM, load_dataset
from langchain_selfamplify.evaluation.predict import answer_questions
from langchain_selfamplify.models import continuous_batching
from langchain_selfamplify.models.embedded import QWEN_MODEL, embedded_model_path
from langchain_selfamplify.models.gguf_cache import existing_conversion
from langchain_selfamplify.models.sizing import CPU_DECODE_SLOTS
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


STAGES = {"_prefill_pass": "encoding prompts", "_step": "decoding steps",
          "_feed_follow_ups": "feeding follow-ups"}
"""The decoding queue's passes (functions of ``models/continuous_batching.py``), by the
stage name the report gives them; samples taken outside them are "between passes"."""
BETWEEN = "between passes"


@contextlib.contextmanager
def labelled_stages(stage: list[str]) -> Iterator[None]:
    """While inside, ``stage[0]`` names the decoding pass running (:data:`STAGES`)."""
    originals = {name: getattr(continuous_batching, name) for name in STAGES}

    def labelled(name: str, function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            stage[0] = STAGES[name]
            try:
                return function(*args, **kwargs)
            finally:
                stage[0] = BETWEEN
        return run

    for name, function in originals.items():
        setattr(continuous_batching, name, labelled(name, function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(continuous_batching, name, function)


def sampled_peaks(run: Any, stage: list[str] | None = None,
                  by_stage: dict[str, dict[str, int]] | None = None
                  ) -> tuple[Any, dict[str, int]]:
    """``run()``'s result and the peak of each memory kind while it ran.

    Args:
        run: What to run.
        stage: The stage running, as :func:`labelled_stages` keeps it.
        by_stage: Filled with each stage's peaks (with ``stage``).
    """
    peaks = dict.fromkeys(FIELDS, 0)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            now = status()
            for key, value in now.items():
                peaks[key] = max(peaks[key], value)
            if stage is not None and by_stage is not None:
                held = by_stage.setdefault(stage[0], dict.fromkeys(FIELDS, 0))
                for key, value in now.items():
                    held[key] = max(held[key], value)
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


def first_pass(slm: Any) -> None:
    """One forward pass over a short question: every weight is read once, so weights
    that loading only mapped are resident afterwards."""
    import torch

    ids = slm.tokenizer("Which gas do green plants take in from the air?",
                        return_tensors="pt")["input_ids"].to(slm.model.device)
    with torch.no_grad():
        slm.model(ids)


def answered_chunk(slm: SLM, grid: Path, cell: str, slots: int) -> dict[str, Any]:
    """Answer the first ``slots`` test questions of the grid's ``cell`` together, as the
    grid answers a chunk, sampling memory; the peaks, seconds and rationale lengths."""
    config, prompt, test = saved_cell(grid, cell)
    questions = test[:slots]
    slm.decode_slots = len(questions)
    stage: list[str] = [BETWEEN]
    stages: dict[str, dict[str, int]] = {}
    slm.decode_stats.reset()
    start = time.perf_counter()
    with labelled_stages(stage):
        predictions, peaks = sampled_peaks(lambda: answer_questions(
            slm, prompt, questions, max_rationale_tokens=config["max_rationale_tokens"]),
            stage, stages)
    seconds = time.perf_counter() - start
    lengths = [slm.count_tokens(p.rationale or "", prompt=False) for p in predictions]
    stats = slm.decode_stats
    return {"cell": cell, "questions": len(questions), "seconds": seconds,
            "peaks": peaks, "stage_peaks": stages,
            "passes": {"prefills": stats.prefills, "steps": stats.steps,
                       "follow_ups": stats.follow_up_passes},
            "longest_rationale_tokens": max(lengths),
            "mean_rationale_tokens": sum(lengths) / len(lengths)}


def within(value: int) -> str:
    """" (within the 8 GiB bound)" or " (**over the 8 GiB bound**)": :data:`BOUND_GIB`."""
    bound = f"the {BOUND_GIB:.0f} GiB bound"
    return f" (within {bound})" if value <= BOUND_GIB * GIB else f" (**over {bound}**)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=CPU_DECODE_SLOTS,
                        help="questions decoded together (default: the CPU default)")
    parser.add_argument("--rationale-cap", type=int, default=512)
    parser.add_argument("--answer", action=argparse.BooleanOptionalAction, default=True,
                        help="measure a chunk of the grid's Ph-CoT answers (default: on)")
    parser.add_argument("--grid", type=Path, default=QWEN_GRID)
    parser.add_argument("--cell", default="arc_challenge__ph_cot__success__seed0")
    add_report_only(parser)
    args = parser.parse_args()
    if rewrote_saved_report(args, "qwen_memory", report, headline):
        return
    if args.answer and not (args.grid / "prompts" / f"{args.cell}.json").is_file():
        parser.error(f"no saved prompt of {args.cell} under {args.grid}: run the table's "
                     "cell first (benchmarks/qwen_table.sh) or pass --no-answer")
    # read before loading: the first load writes the conversion it then reads
    from_conversion = existing_conversion(embedded_model_path(QWEN_MODEL)) is not None
    slm, peaks = sampled_peaks(lambda: SLM.load(QWEN_MODEL, show_progress=False))
    loaded = status()
    _, pass_peaks = sampled_peaks(lambda: first_pass(slm))
    after = status()
    config = slm.model.config
    head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * head * 4
    test = load_dataset("arc_challenge", split="test", data_dir=shared_datasets())
    longest = max(slm.count_tokens(question_text(q), prompt=False) for q in test)
    chunk = answered_chunk(slm, args.grid, args.cell, args.slots) if args.answer else None
    source = ("its float32 conversion, mapped" if from_conversion
              else "the GGUF file, dequantised")
    slot_tokens = longest + args.rationale_cap
    write_with_headline("qwen_memory", {
        "source": source, "peaks": peaks, "after_loading": loaded,
        "first_pass_peaks": pass_peaks, "after_first_pass": after,
        "kv_bytes_per_token": per_token, "slots": args.slots, "slot_tokens": slot_tokens,
        "rationale_cap": args.rationale_cap,
        "projected_worst_bytes": after["RssAnon"] + args.slots * slot_tokens * per_token,
        "answered_chunk": chunk}, report, headline)


def report(payload: dict[str, Any]) -> str:
    """The Markdown report of a run's saved payload."""
    after, slots = payload["after_first_pass"], payload["slots"]
    slot_tokens = payload["slot_tokens"]
    cap = payload.get("rationale_cap", 512)  # runs before it was saved used the default
    cache = slots * slot_tokens * payload["kv_bytes_per_token"]
    worst, worst_resident = after["RssAnon"] + cache, after["VmRSS"] + cache
    chunk = payload.get("answered_chunk")

    def row(name: str, values: dict[str, int]) -> list[str]:
        return [name, *(f"{values[key] / GIB:.2f}" for key in FIELDS)]

    rows = [row("loading: peak", payload["peaks"]), row("after loading", payload["after_loading"]),
            row("first forward pass: peak", payload["first_pass_peaks"]),
            row("after it", after),
            [f"decoding {slots} slots of {slot_tokens} tokens (projected, worst case)",
             f"{worst_resident / GIB:.2f}", f"{worst / GIB:.2f}",
             f"{after['RssFile'] / GIB:.2f}"]]
    if chunk is not None:
        rows.append(row(f"answering {chunk['questions']} Ph-CoT questions together: peak",
                        chunk["peaks"]))
    loaded_peak = max(after["VmRSS"], payload["first_pass_peaks"]["VmRSS"],
                      payload["peaks"]["VmRSS"])
    return "\n".join([
        "# Memory of Qwen2.5-Coder-1.5B-Instruct (float32) on the 2-core machine",
        "",
        "Resident memory in GiB, sampled every 50 ms while the embedded model loads "
        f"(`SLM.load`, from {payload['source']}) and while it runs its first forward pass "
        "(which reads every weight); anonymous memory is what the process itself holds, "
        "file-backed pages are mapped files (page cache the kernel can reclaim and read "
        "again): the GGUF file while it is read, or the conversion's weights. "
        f"Decoding: keys and values take {payload['kv_bytes_per_token']:,} bytes per token "
        f"per slot; the table decodes {slots} questions at a time, each holding up to the "
        f"longest ARC-Challenge test question ({slot_tokens - cap} tokens) and a "
        f"{cap}-token rationale (the few-shot prefix is kept once for all slots).",
        "",
        markdown_table(["", "resident", "anonymous", "file-backed"], rows),
        "",
        f"- Against the {BOUND_GIB:.0f} GiB bound, loaded and run once: "
        f"{after['RssAnon'] / GIB:.2f} GiB of the process's own memory, "
        f"{after['VmRSS'] / GIB:.2f} GiB resident with the mapped files"
        + within(loaded_peak) + ".",
        f"- Decoding {slots} slots, the worst case projects to {worst / GIB:.2f} GiB "
        f"of the process's own memory{within(worst)}, {worst_resident / GIB:.2f} GiB "
        f"resident with the mapped weights{within(worst_resident)}. The measured peak of "
        "the table's own process (resident, mapped files included) is in "
        "`docs/results/qwen_table_cost.md`: slots hold their own tokens only, and most "
        "rationales end well before the cap.",
        *([] if chunk is None else [measured_line(chunk), *stages_line(chunk),
                                    slots_line(chunk, after)]),
    ])


def stages_line(chunk: dict[str, Any]) -> list[str]:
    """The report's line on each decoding stage's peak (none for runs before stages
    were sampled)."""
    stages = chunk.get("stage_peaks")
    if not stages:
        return []
    ranked = sorted(stages.items(), key=lambda item: -item[1]["VmRSS"])
    passes = chunk["passes"]
    return ["- By stage (the sample's stage when it was taken; resident, then the "
            "process's own): "
            + "; ".join(f"{name} {peak['VmRSS'] / GIB:.2f} GiB ({peak['RssAnon'] / GIB:.2f} "
                        "own)" for name, peak in ranked)
            + f". The peak is in {ranked[0][0]}. Passes: {passes['prefills']} prompt "
            f"encodings, {passes['steps']} decoding steps, {passes['follow_ups']} follow-up "
            "feeds."]


def memory_per_slot(chunk: dict[str, Any], after: dict[str, int]) -> float:
    """Bytes of the process's own memory the measured chunk took per slot, over the
    loaded model's (``after``: after its first forward pass)."""
    return float(chunk["peaks"]["RssAnon"] - after["RssAnon"]) / chunk["questions"]


def slots_within_bound(chunk: dict[str, Any], after: dict[str, int]) -> int:
    """Most slots whose chunk would stay within :data:`BOUND_GIB` resident, projected
    linearly from the measured chunk at :func:`memory_per_slot` (more or fewer than it
    ran)."""
    per_slot = memory_per_slot(chunk, after)
    room = BOUND_GIB * GIB - (chunk["peaks"]["VmRSS"] - chunk["questions"] * per_slot)
    return max(0, int(room // per_slot))


def slots_line(chunk: dict[str, Any], after: dict[str, int]) -> str:
    """The report's line on how many slots the bound allows, projected (not measured)."""
    per_slot = memory_per_slot(chunk, after)
    return (f"- Per slot, that chunk took {per_slot / 2**20:.0f} MiB of the process's own "
            "memory over the loaded model's (its keys and values, and its share of the "
            f"passes' activations). At that rate, up to {slots_within_bound(chunk, after)} slots "
            f"keep the resident peak within {BOUND_GIB:.0f} GiB (projected, not measured): "
            "the float32 weights alone are "
            f"{chunk['peaks']['RssFile'] / GIB:.2f} GiB of mapped pages.")


def headline(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The README performance row: the measured chunk's resident peak against the bound."""
    chunk = payload.get("answered_chunk")
    if chunk is None:
        return []
    peak = chunk["peaks"]
    return [{"target": f"Capable model's grid memory (Qwen2.5-Coder-1.5B, float32, "
                       f"{chunk['questions']} slots, a chunk of the table's Ph-CoT answers): "
                       "resident peak",
             "result": f"{peak['VmRSS'] / GIB:.2f} GiB ({peak['RssAnon'] / GIB:.2f} GiB own, "
                       f"{peak['RssFile'] / GIB:.2f} GiB mapped weights); "
                       f"{slots_within_bound(chunk, payload['after_first_pass'])} slots "
                       "projected within the bound",
             "goal": f"<= {BOUND_GIB:.0f} GiB",
             "met": peak["VmRSS"] <= BOUND_GIB * GIB}]


def measured_line(chunk: dict[str, Any]) -> str:
    """The report's line on the measured chunk of answers."""
    return (f"- Measured: the table's cell `{chunk['cell']}` (its saved prompt, as the grid "
            f"answers it) answered {chunk['questions']} test questions decoded together in "
            f"{chunk['seconds']:.0f} s ({chunk['seconds'] / chunk['questions']:.1f} s per "
            f"question; rationales of {chunk['mean_rationale_tokens']:.0f} tokens on "
            f"average, the longest {chunk['longest_rationale_tokens']}). Peak: "
            f"{chunk_peaks(chunk)}. A grid run with `--decode-slots "
            f"{chunk['questions']}` holds at most this many questions' caches at once.")


def chunk_peaks(chunk: dict[str, Any]) -> str:
    """The measured chunk's peaks against :data:`BOUND_GIB`, as the reports state them."""
    peak = chunk["peaks"]
    return (f"{peak['RssAnon'] / GIB:.2f} GiB of the process's own memory"
            f"{within(peak['RssAnon'])}, {peak['VmRSS'] / GIB:.2f} GiB resident with the "
            f"mapped weights{within(peak['VmRSS'])}")


if __name__ == "__main__":
    main()
