"""Where the evaluation grid's time goes, and what the full grid would take.

Runs ``selfamplify evaluate``'s grid (``run_grid``) on a fixed slice: one dataset,
one seed, a few test questions, every row type (IO, Auto-CoT, AMPLIFY and the paper's
four methods with the success strategy), 8 shots, an embedded model (``--model``: the
SmolLM2 by default, ``qwen2.5-coder-1.5b`` for the capable model). For each
stage (pool scoring, demonstration rationales, baselines' set-up, test-time
rationales, answer scoring) it reports seconds, share of the total, tokens run and the
seconds the machine's measured matrix-multiply peak would need for those tokens.

It then projects the full grid (``--full-datasets``, 5 by default, x 11 rows x 3 seeds x
200 questions): the
per-question stages scale with questions, the per-cell stages with cells (an error
row costs what its success row costs), and pool scoring with (dataset, seed) pairs, as
the grid shares pool scores between cells. The slice's dataset stands for all of them.

Each speed option runs the same slice: ``float32`` (exact), ``bfloat16``
(approximate, opt-in with ``--dtype bfloat16``) and ``llamacpp-generation`` (every
rationale written by a llama.cpp server on the same GGUF, answers scored locally in
float32; opt-in with ``--generate-url``), the approximate ones with the share of their
predictions identical to float32's.

Run: ``python benchmarks/grid.py`` (about 25 minutes on 2 CPU cores; ``--resume``
reuses the options already run). Writes ``docs/results/grid.{json,md}``; with another
``--model``, ``grid_<model>.{json,md}``. The capable model's table
(``benchmarks/qwen_table.sh``: 2 datasets, 512-token rationales) is projected by
``python benchmarks/grid.py --model qwen2.5-coder-1.5b --full-datasets 2
--max-rationale-tokens 512 --options float32``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from harness import (
    ROOT,
    comma_list,
    counted_tokens,
    flop_limit_seconds,
    markdown_table,
    n_parameters,
    peak_gflops,
    shared_datasets,
    write_results,
)

from langchain_selfamplify import SLM, GenerationOffload, ModelBackend, OpenAICompatibleBackend
from langchain_selfamplify.baselines import BASELINES
from langchain_selfamplify.evaluation.grid import GridConfig, grid_cells, run_grid
from langchain_selfamplify.models.embedded import EMBEDDED_MODELS, embedded_model_path
from langchain_selfamplify.stages import LOGGED, STAGES, measure_stages

sys.path.insert(0, str(ROOT))
from tests import llama_server  # noqa: E402 - the test suite's server launcher

FULL = {"datasets": 5, "seeds": 3, "questions": 200, "rationale_methods": 4,
        "strategies": 2, "baselines": 3}
"""The full grid the issue names: 5 datasets x 11 rows x 3 seeds x 200 questions."""
SERVED = "llamacpp-generation"
"""The option that sends every generation step to a llama.cpp server on the same GGUF
(one thread, 4 parallel slots), scoring locally in float32 (``--generate-url``)."""


RUNS = Path(__file__).parent / "grid_runs"
"""Each option's finished run, so an interrupted benchmark resumes (``--resume``)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m", choices=sorted(EMBEDDED_MODELS))
    parser.add_argument("--full-datasets", type=int, default=FULL["datasets"],
                        help="datasets of the full grid projected")
    parser.add_argument("--max-rationale-tokens", type=int, default=96)
    parser.add_argument("--dataset", default="arc_challenge")
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--pool-size", type=int, default=100)
    parser.add_argument("--methods", default="io,auto_cot,amplify,deeplift,kernelshap,"
                                             "self_topk,ph_cot")
    parser.add_argument("--options", default=f"float32,bfloat16,{SERVED}",
                        help=f"weight dtypes to run, the exact one first, and {SERVED}")
    parser.add_argument("--resume", action="store_true",
                        help=f"reuse an option's run saved under {RUNS.name}/ for the same "
                             "slice (delete it after changing inference code)")
    args = parser.parse_args()
    config = {"datasets": [args.dataset], "methods": comma_list(args.methods),
              "strategies": ["success"], "seeds": [0], "shots": args.shots,
              "pool_size": args.pool_size, "test_size": args.questions,
              "max_rationale_tokens": args.max_rationale_tokens,
              "data_dir": str(shared_datasets())}
    full = {**FULL, "datasets": args.full_datasets}
    gflops = peak_gflops()
    runs = {}
    RUNS.mkdir(exist_ok=True)
    for option in comma_list(args.options):
        saved = RUNS / f"{args.model}-{option}.json"
        if args.resume and saved.exists() and json.loads(saved.read_text())["slice"] == config:
            runs[option] = json.loads(saved.read_text())["run"]
            print(option, "reused from", saved, flush=True)
            continue
        runs[option] = _run(args.model, option, config, gflops)
        saved.write_text(json.dumps({"slice": config, "run": runs[option]}))
        print(option, f"{runs[option]['total_seconds']:.0f}s", flush=True)
    exact = next(iter(runs))
    for run in runs.values():
        run["agreement"] = _agreement(runs[exact]["predictions"], run["predictions"])
        run["projected_full_grid_minutes"] = _project(run, config, full) / 60
        run["projected_flop_limit_minutes"] = _project(run, config, full,
                                                       "flop_limit_seconds") / 60
    _write(args, config, full, runs, exact, gflops)


def _run(model: str, option: str, config: dict, gflops: float) -> dict:
    server = None
    if option == SERVED:
        gguf = embedded_model_path(model)
        server, url = llama_server.start(gguf, n_parallel=4, timeout=600)
        local = SLM.load(model, show_progress=False)
        backend: ModelBackend = GenerationOffload(local, OpenAICompatibleBackend(
            url, "default", tokenizer=str(gguf), batch_size=4, show_progress=False))
    else:
        local = SLM.load(model, show_progress=False, torch_dtype=option)
        backend = local
    out = Path(tempfile.mkdtemp(prefix=f"grid-{option}-"))
    try:
        grid = GridConfig(**config, output_dir=str(out))
        with counted_tokens(local.model) as counts, \
                measure_stages(counter=lambda: counts["tokens"]) as log:
            started = time.perf_counter()
            run_grid(grid, backend)
            total = time.perf_counter() - started
        predictions = [json.loads(line) for line in
                       (out / "predictions.jsonl").read_text().splitlines()]
        cells = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
        per_cell_seconds = {c["cell"]: c["seconds"] for c in cells}
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if server is not None:
            llama_server.stop(server)
    params = n_parameters(local.model)
    stages = {name: {"seconds": log.seconds.get(name, 0.0),
                     "tokens": log.counts.get(name, 0),
                     "flop_limit_seconds": flop_limit_seconds(params, log.counts.get(name, 0),
                                                              gflops)}
              for name in LOGGED}
    return {"option": option, "total_seconds": total, "stages": stages, "gflops": gflops,
            "cells": per_cell_seconds, "failed": [c["cell"] for c in cells
                                                  if c["status"] != "done"],
            "predictions": [{k: p[k] for k in ("cell", "question_id", "parsed")}
                            for p in predictions]}


def _agreement(exact: list[dict], other: list[dict]) -> float:
    """Share of (cell, question) predictions identical to the exact run's."""
    reference = {(p["cell"], p["question_id"]): p["parsed"] for p in exact}
    same = sum(reference.get((p["cell"], p["question_id"])) == p["parsed"] for p in other)
    return same / len(reference) if reference else float("nan")


def _project(run: dict, config: dict, full: dict, key: str = "seconds") -> float:
    """Seconds of the full grid, scaled from the slice's ``key`` per stage (its
    seconds, or the FLOP limit of its tokens; see the module docs)."""
    return sum(_project_stages(run, config, full, key).values())


def _project_stages(run: dict, config: dict, full: dict, key: str = "seconds"
                    ) -> dict[str, float]:
    """Each stage's seconds in the full grid, scaled from the slice (see the module
    docs)."""
    cells = grid_cells(GridConfig(**config))
    rows = len(cells)
    method_rows = sum(c.method not in BASELINES for c in cells)
    baseline_rows = rows - method_rows
    full_rows = full["rationale_methods"] * full["strategies"] + full["baselines"]
    pairs = full["datasets"] * full["seeds"]
    stages = run["stages"]
    # Rationales are written in every row but IO; answers are read in every row (an
    # upper bound where they are read in the rationale's pass and IO rows alone remain).
    rationale_rows = sum(c.method != "io" for c in cells)
    projected = {
        "test_rationales": stages["test_rationales"][key] / max(rationale_rows, 1)
        / config["test_size"] * (full_rows - 1) * full["questions"] * pairs,
        "answer_scoring": stages["answer_scoring"][key] / (rows * config["test_size"])
        * full_rows * full["questions"] * pairs}
    projected["demo_rationales"] = (stages["demo_rationales"][key] / max(method_rows, 1)
                                    * full["rationale_methods"] * full["strategies"] * pairs)
    projected["baseline_setup"] = (stages["baseline_setup"][key] / max(baseline_rows, 1)
                                   * full["baselines"] * pairs)
    projected["pool_scoring"] = stages["pool_scoring"][key] * pairs
    projected["other"] = stages["other"][key] * pairs
    return projected


def _write(args: argparse.Namespace, config: dict, full: dict, runs: dict, exact: str,
           gflops: float) -> None:
    stage_rows = []
    for option, run in runs.items():
        for name, stage in run["stages"].items():
            stage_rows.append([option, name, f"{stage['seconds']:.1f}",
                               f"{stage['seconds'] / run['total_seconds']:.0%}",
                               stage["tokens"], f"{stage['flop_limit_seconds']:.1f}"])
    option_rows = [[option, f"{run['total_seconds']:.0f}",
                    f"{run['agreement']:.1%}" + ("" if option == exact else
                                                 " (below 98%)" if run["agreement"] < 0.98
                                                 else ""),
                    f"{run['projected_full_grid_minutes']:.0f}",
                    f"{run['projected_flop_limit_minutes']:.0f}",
                    ", ".join(run["failed"]) or "none"]
                   for option, run in runs.items()]
    fastest = min((run for option, run in runs.items()
                   if option == exact or run["agreement"] >= 0.98),
                  key=lambda run: run["projected_full_grid_minutes"])
    minutes = runs[exact]["projected_full_grid_minutes"]
    floor = runs[exact]["projected_flop_limit_minutes"]
    per_stage = _project_stages(runs[exact], config, full)
    by_size = sorted(STAGES, key=lambda name: -per_stage[name])
    if args.model == "smollm2-135m":
        target = ("Targets of the grid-speed issue: the full grid in 60 minutes with an "
                  "option of at least 98% agreement, in 2 hours exact, on two cores.")
        exact_target, fast_target = 120, 60
    else:
        target = ("Target of the capable-model speed issue: the table in 3 hours of "
                  "background compute on two cores, with any option of at least 98% "
                  "agreement (exact included).")
        exact_target = fast_target = 180
    markdown = "\n".join([
        "# The evaluation grid: where the time goes, and the full grid projected",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python benchmarks/grid.py` with "
        f"{torch.get_num_threads()} torch thread(s) on a 2-core CPU (float32 matrix-multiply "
        "peak measured in the invocation that ran each option: "
        + ", ".join(f"{option} {run['gflops']:.0f}" for option, run in runs.items())
        + " GFLOP/s). Slice: "
        f"{args.dataset}, seed 0, {args.questions} test questions, pool of "
        f"{args.pool_size}, {args.shots} shots, rows {args.methods} (rationale methods "
        f"with the success strategy), embedded {EMBEDDED_MODELS[args.model]}, letter format, "
        "score mode.",
        "",
        "## Per stage",
        "",
        "Seconds are exclusive (a stage inside another is charged to the inner one). "
        "Tokens are rows x positions the model ran; the FLOP limit is the time the "
        "measured peak needs for 2 x parameters x tokens.",
        "",
        markdown_table(["option", "stage", "seconds", "share", "tokens",
                        "FLOP-limit seconds"], stage_rows),
        "",
        "## Speed options and the full grid",
        "",
        f"Projected: {full['datasets']} datasets x 11 rows x 3 seeds x {full['questions']} "
        "questions, "
        "8 shots; test-time rationales scaled by the questions of the rows that write "
        "them (all but IO), answer scoring by the questions of every row (an upper bound "
        "where answers are read in the rationale's pass, leaving IO rows alone), "
        "demonstration rationales and set-up by cells (an error row costs what its "
        "success row costs), pool scoring by (dataset, seed) pairs, which the grid shares "
        "between cells. The slice's dataset stands for all of them. Agreement: share of the "
        "slice's predictions identical to float32's.",
        "",
        markdown_table(["option", "slice seconds", "identical predictions",
                        "projected full grid (minutes, one thread)",
                        "FLOP limit of its tokens (minutes, one thread)", "failed cells"],
                       option_rows),
        "",
        "Exact speed-ups in every row: pool scores shared by the cells of a (dataset, "
        "seed); a few-shot prompt's prefix encoded once for all its questions; all "
        "choices scored over one encoded prefix; and the answer labels read in the pass "
        "that decodes the test-time rationale (finished rows are fed the rest of `The "
        "answer is (` in one pass per group), so `answer_scoring` holds only the rows "
        "without rationales. "
        f"`{SERVED}` counts only the local model's tokens (the server's are not seen).",
        "",
        "## Where this lands",
        "",
        target,
        "",
        f"- Exact (float32), one thread: {minutes:.0f} minutes projected. The grid's "
        "cells are independent, so two workers of one thread each (`selfamplify evaluate "
        "--ray local --ray-workers 2`) can at best halve it: "
        f"{minutes / 2:.0f} minutes, {minutes / 2 / exact_target:.1f} times the "
        f"{exact_target}-minute target.",
        f"- Fastest option with at least 98% agreement: {fastest['option']}, "
        f"{fastest['projected_full_grid_minutes'] / 2:.0f} minutes on two workers "
        f"against the {fast_target}-minute target.",
        f"- What bounds the rest: the tokens themselves. At the measured matrix-multiply "
        f"peak, the exact grid's tokens alone need {floor:.0f} minutes on one core, "
        f"{floor / 2:.0f} on two, before attention over the 8-shot prefix, Python "
        f"overhead or the proxy training of AMPLIFY (which runs outside the counted "
        "model). Projected exact minutes per stage (one thread): "
        + ", ".join(f"`{name}` {per_stage[name] / 60:.0f}" for name in by_size)
        + ". Test-time rationales lead: every test question is answered after a "
        "rationale the model writes in 10 of the 11 rows, and decoding them already runs "
        "its matrix products near the machine's peak.",
        "",
        "Nothing here is on by default: each option is opt-in (`selfamplify evaluate "
        "--dtype bfloat16`, `--generate-url`).",
    ])
    payload = {"slice": config, "full_grid": full, "gflops": gflops,
               "runs": {option: {k: v for k, v in run.items() if k != "predictions"}
                        for option, run in runs.items()}}
    write_results("grid" if args.model == "smollm2-135m" else f"grid_{args.model}", payload,
                  markdown)


if __name__ == "__main__":
    main()
