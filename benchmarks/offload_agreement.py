"""The llama.cpp generation offload (``--generate-url``) on the capable model, against the
exact float32 answers of the published table, on the table's own prompt and questions.

The offload writes every rationale on a llama.cpp server serving the same Q4_K_M GGUF
(``--slots`` parallel slots, prompt cache, all cores while it generates) and scores the
answers locally in float32. It is approximate: the server computes on the quantised
weights and quantises activations in its dot products, so greedy rationales can part.
This runs one table cell's prompt (``--cell``) on its first ``--questions`` test
questions through three routes in one process:

- ours, exact: ``answer_questions`` on the local float32 model, the table's setting
  (all the questions decoded together); its predictions must equal the table's;
- the offload, same questions;

and reports seconds per question of both and the offload's identical predictions
against the exact ones (rationales and labels).

Run: ``python benchmarks/offload_agreement.py [--questions 24]`` after the table's
cell exists (``benchmarks/qwen_table.sh``). Writes
``docs/results/offload_agreement.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from harness import ROOT, markdown_table, write_results

from langchain_selfamplify import SLM, AmplifiedPrompt, GenerationOffload, OpenAICompatibleBackend
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.evaluation.predict import Prediction, answer_questions
from langchain_selfamplify.models.embedded import QWEN_MODEL, embedded_model_path

sys.path.insert(0, str(ROOT))
from tests import llama_server  # noqa: E402 - the test suite's server launcher

GRID = ROOT / "docs" / "results" / "paper_table_qwen_run" / "qwen2.5-coder-1.5b__letter"


def table_cell(grid: Path, cell: str) -> tuple[dict[str, Any], AmplifiedPrompt,
                                                dict[str, dict[str, Any]]]:
    """The grid's settings, the cell's saved prompt and its predictions by question id."""
    config = json.loads((grid / "config.json").read_text(encoding="utf-8"))
    prompt = AmplifiedPrompt.load(grid / "prompts" / f"{cell}.json")
    records = [json.loads(line) for line in
               (grid / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    return config, prompt, {r["question_id"]: r for r in records if r["cell"] == cell}


def timed_answers(backend: Any, prompt: AmplifiedPrompt, questions: list[Any],
                  cap: int) -> tuple[list[Prediction], float]:
    started = time.perf_counter()
    predictions = answer_questions(backend, prompt, questions, max_rationale_tokens=cap)
    return predictions, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=Path, default=GRID)
    parser.add_argument("--cell", default="arc_challenge__ph_cot__success__seed0")
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--slots", type=int, default=4, help="the server's parallel slots")
    parser.add_argument("--threads", type=int, default=2, help="the server's threads")
    args = parser.parse_args()
    config, prompt, table = table_cell(args.grid, args.cell)
    dataset, seed = args.cell.split("__")[0], int(args.cell.rsplit("seed", 1)[1])
    _, test = load_pool_and_test(dataset, pool_size=config["pool_size"],
                                 test_size=config["test_size"], seed=seed,
                                 data_dir=config["data_dir"])
    questions = [q for q in test if q.id in table][: args.questions]
    cap = config["max_rationale_tokens"]
    gguf = embedded_model_path(QWEN_MODEL)
    local = SLM.load(QWEN_MODEL, show_progress=False, decode_slots=max(len(questions), 1))
    exact, exact_seconds = timed_answers(local, prompt, questions, cap)
    server, url = llama_server.start(gguf, n_parallel=args.slots, n_threads=args.threads,
                                     timeout=600)
    try:
        served = OpenAICompatibleBackend(url, QWEN_MODEL, tokenizer=str(gguf),
                                         batch_size=args.slots, show_progress=False)
        offload, offload_seconds = timed_answers(GenerationOffload(local, served), prompt,
                                                 questions, cap)
    finally:
        llama_server.stop(server)
    same_as_table = sum(p.predicted == table[p.id]["parsed"] for p in exact)
    same_labels = sum(a.predicted == b.predicted for a, b in zip(exact, offload, strict=True))
    same_rationales = sum(a.rationale == b.rationale
                          for a, b in zip(exact, offload, strict=True))
    n = len(questions)
    rows = [["ours, float32 (exact)", n, round(exact_seconds / n, 1), "1.00x",
             f"{same_as_table}/{n} (the table's)", ""],
            [f"llama.cpp offload, {args.slots} slots, {args.threads} threads", n,
             round(offload_seconds / n, 1), f"{exact_seconds / offload_seconds:.2f}x",
             f"{same_labels}/{n}", f"{same_rationales}/{n}"]]
    markdown = "\n".join([
        "# The llama.cpp generation offload on Qwen2.5-Coder-1.5B, against exact float32",
        "",
        f"Cell `{args.cell}` of the capable-model table: its saved {len(prompt.examples)}-shot "
        f"prompt, its first {n} test questions, rationales capped at {cap} tokens; the "
        "same process runs both routes, one after the other, on the 2-core machine. The "
        "offload writes the rationales on a llama.cpp server on the same Q4_K_M GGUF and "
        "reads the answers locally in float32.",
        "",
        markdown_table(["route", "questions", "seconds per question", "speed-up",
                        "identical predicted labels", "identical rationales"], rows),
        "",
        f"The exact route here is the code at this commit; it agrees with the table's own "
        f"predictions on {same_as_table} of {n}.",
    ])
    write_results("offload_agreement", {
        "cell": args.cell, "questions": n, "cap": cap, "slots": args.slots,
        "threads": args.threads, "exact_seconds": exact_seconds,
        "offload_seconds": offload_seconds, "same_as_table": same_as_table,
        "same_labels": same_labels, "same_rationales": same_rationales,
        "predictions": [{"id": a.id, "exact": a.predicted, "offload": b.predicted,
                         "table": table[a.id]["parsed"]}
                        for a, b in zip(exact, offload, strict=True)]}, markdown)


if __name__ == "__main__":
    main()
