"""The llama.cpp generation offload (``--generate-url``) on the capable model, against the
exact float32 answers of the published table, on the table's own prompt and questions.

The offload writes every rationale on a llama.cpp server serving the same Q4_K_M GGUF
(``--slots`` parallel slots, prompt cache, all cores while it generates) and scores the
answers locally in float32. It is approximate: the server computes on the quantised
weights and quantises activations in its dot products, so greedy rationales can part.
This runs one table cell's prompt (``--cell``) on its first ``--questions`` test
questions through the routes of ``--routes``, in one process:

- ``offload``: the llama.cpp server writes the rationales;
- ``exact``: ``answer_questions`` on the local float32 model at this commit (all the
  questions decoded together); its predictions should equal the table's;
- ``int8``: the same on the local model with its decoder layers' linear maps quantised
  dynamically to int8 (``torch.ao.quantization.quantize_dynamic``, per-channel
  weights, fbgemm kernels; the embeddings and the vocabulary projection stay float32):
  the library route to int8 matrix products on a CPU, approximate;

and reports each route's seconds per question beside the table's own, and its
identical labels and rationales against the table's (exact float32).

Run: ``python benchmarks/offload_agreement.py [--questions 24] [--routes offload]``
after the table's cell exists (``benchmarks/qwen_table.sh``). Writes
``docs/results/offload_agreement.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    QWEN_GRID,
    RESULTS,
    ROOT,
    add_report_only,
    chunk_rates,
    comma_list,
    git_commit,
    grid_predictions,
    markdown_table,
    saved_cell,
    saved_results,
    write_results,
)

from langchain_selfamplify import SLM, AmplifiedPrompt, GenerationOffload, OpenAICompatibleBackend
from langchain_selfamplify.evaluation.metrics import accuracy
from langchain_selfamplify.evaluation.predict import Prediction, answer_questions
from langchain_selfamplify.models.embedded import QWEN_MODEL, embedded_model_path

sys.path.insert(0, str(ROOT))
from tests import llama_server  # noqa: E402 - the test suite's server launcher


def table_answers(grid: Path, cell: str) -> dict[str, dict[str, Any]]:
    """The table cell's predictions by question id."""
    return {r["question_id"]: r for r in grid_predictions(grid).get(cell, [])}


def saved_routes(saved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The saved routes' records, each with its own question count, command and commit
    (results written before routes ran apart kept those once, for all routes)."""
    return {route: {"questions": saved.get("questions"),
                    "table_seconds": saved.get("table_seconds"),
                    "run_command": saved.get("run_command", saved.get("command")),
                    "commit": saved.get("commit")} | record
            for route, record in saved.get("routes", {}).items()}


def quantize_layers_int8(slm: SLM) -> None:
    """Quantise the decoder layers' linear maps of ``slm`` to int8 in place (dynamic
    activations, per-channel weights)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    layers = slm.model.model.layers
    quantize_dynamic(layers, {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True)


def timed_answers(backend: Any, prompt: AmplifiedPrompt, questions: list[Any],
                  cap: int) -> tuple[list[Prediction], float]:
    started = time.perf_counter()
    predictions = answer_questions(backend, prompt, questions, max_rationale_tokens=cap)
    return predictions, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=Path, default=QWEN_GRID)
    parser.add_argument("--cell", default="arc_challenge__ph_cot__success__seed0")
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--routes", default="offload,exact",
                        help="offload, exact (ours, float32, in this process), int8 "
                             "(ours, decoder layers quantised in this process), comma-joined")
    parser.add_argument("--slots", type=int, default=4, help="the server's parallel slots")
    parser.add_argument("--threads", type=int, default=2, help="the server's threads")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds one request to the server may take")
    add_report_only(parser)
    args = parser.parse_args()
    if args.report_only:
        saved = saved_results("offload_agreement")
        saved["routes"] = saved_routes(saved)
        saved["table_chunk_rates"] = chunk_rates(
            list(table_answers(args.grid, saved["cell"]).values()))
        write_results("offload_agreement", saved, report(saved))
        return
    config, prompt, test = saved_cell(args.grid, args.cell)
    table = table_answers(args.grid, args.cell)
    questions = [q for q in test if q.id in table][: args.questions]
    n, cap = len(questions), config["max_rationale_tokens"]
    routes = comma_list(args.routes)
    gguf = embedded_model_path(QWEN_MODEL)
    local = SLM.load(QWEN_MODEL, show_progress=False, decode_slots=max(n, 1))
    results: dict[str, tuple[list[Prediction], float]] = {}
    if "offload" in routes:
        server, url = llama_server.start(gguf, n_parallel=args.slots, n_threads=args.threads,
                                         timeout=600)
        try:
            served = OpenAICompatibleBackend(url, QWEN_MODEL, tokenizer=str(gguf),
                                             batch_size=args.slots,
                                             max_concurrency=args.slots,
                                             timeout=args.timeout, show_progress=False)
            results["offload"] = timed_answers(GenerationOffload(local, served), prompt,
                                               questions, cap)
        finally:
            llama_server.stop(server)
    if "exact" in routes:
        results["exact"] = timed_answers(local, prompt, questions, cap)
    if "int8" in routes:  # last: it changes the local model in place
        quantize_layers_int8(local)
        results["int8"] = timed_answers(local, prompt, questions, cap)
    # A route not run now keeps its saved record (same cell), so the routes can run apart.
    saved_path = RESULTS / "offload_agreement.json"
    saved = json.loads(saved_path.read_text(encoding="utf-8")) if saved_path.exists() else {}
    records = {route: record for route, record in saved_routes(saved).items()
               if saved.get("cell") == args.cell and route not in results}
    for route, (predictions, seconds) in results.items():
        records[route] = {
            "questions": n,
            "table_seconds": sum(table[q.id]["seconds"] for q in questions),
            "run_command": "python " + " ".join(sys.argv),
            "commit": git_commit(),
            "seconds": seconds,
            "same_labels_as_table": sum(p.predicted == table[p.id]["parsed"]
                                        for p in predictions),
            "same_rationales_as_table": sum(p.rationale == table[p.id]["raw_output"]
                                            for p in predictions),
            "predicted": {p.id: p.predicted for p in predictions}}
    payload = {"cell": args.cell, "cap": cap, "slots": args.slots,
               "threads": args.threads, "shots": len(prompt.examples),
               "table_chunk_rates": chunk_rates(list(table.values())),
               "routes": records}
    write_results("offload_agreement", payload, report(payload))


def report(payload: dict[str, Any]) -> str:
    """The Markdown table of a run's records."""
    names = {"exact": "ours, float32, exact, at this route's commit (all questions together)",
             "offload": f"llama.cpp offload, {payload['slots']} slots, "
                        f"{payload['threads']} threads",
             "int8": "ours, decoder layers int8 (torch dynamic quantisation, per-channel "
                     "weights), all questions together"}
    rows = [[f"the table, a chunk of {questions} questions", questions,
              round(rate, 1), "", "", "", ""]
             for rate, questions in payload.get("table_chunk_rates", []) if questions >= 50]
    for route, record in payload["routes"].items():
        n = record["questions"]
        same = accuracy(record["same_labels_as_table"], n)
        rows.append([names[route], n, round(record["seconds"] / n, 1),
                     round(record["table_seconds"] / n, 1), f"{same.correct}/{n}",
                     f"{same.ci_high:.1%}", f"{record['same_rationales_as_table']}/{n}"])
    return "\n".join([
        "# Approximate speed options on Qwen2.5-Coder-1.5B, against exact float32",
        "",
        f"Cell `{payload['cell']}` of the capable-model table: its saved "
        f"{payload['shots']}-shot prompt, its first test questions, rationales "
        f"capped at {payload['cap']} tokens, on the 2-core machine (the table paused). The "
        "offload writes the rationales on a llama.cpp server on the same Q4_K_M GGUF "
        "(its time includes encoding the prompt prefix once per slot) and reads the "
        "answers locally in float32. The int8 route quantises the local model's decoder "
        "layers' linear maps to int8 (torch's dynamic quantisation: per-channel weights, "
        "activations quantised per call, fbgemm kernels) and decodes as the exact route "
        "does. The exact route reruns the table's decoding at its"
        " own commit: it checks that later changes to the decoding path (such as "
        "feeding follow-ups in one pass) leave the table's answers as they were. "
        "Identical: against the table's own predictions and rationales (exact float32),"
        " with the upper end of the 95% Wilson interval of the share of identical "
        "labels: below 98%, the option fails the agreement bar whatever more questions "
        "would show. The table's seconds are its chunks' wall time per question; its "
        "first answers were decoded 32 at a time, later chunks 100 at a time.",
        "",
        markdown_table(["route", "questions", "seconds per question",
                        "the table's seconds per question, same questions",
                        "identical predicted labels", "identical labels, 95% upper bound",
                        "identical rationales"], rows),
    ])


if __name__ == "__main__":
    main()
