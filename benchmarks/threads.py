"""Threads under contention: the model's speed with another process busy on a core.

Runs one workload (the embedded model scores 32 zero-shot demo-set questions, then
writes 16 tokens for 8 of them) in fresh processes:

- on an idle machine, with every core (the reference);
- with a competitor process spinning on one core, with every core (torch's default)
  and with the count ``--threads auto`` picks (the cores left free);

so the slowdown under contention and what ``auto`` recovers are read from one run.

Run: ``python benchmarks/threads.py``. Writes ``docs/results/threads.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from harness import markdown_table, write_results

from langchain_selfamplify.threads import available_cpus

WORKLOAD = r"""
import json, sys, time
from langchain_selfamplify.threads import set_threads
threads = set_threads(sys.argv[1])
from langchain_selfamplify import SLM, load_demo_set
from langchain_selfamplify.prompting.messages import zero_shot_prompt
slm = SLM.load(sys.argv[2], show_progress=False)
questions = load_demo_set("test")[:32]
prompts = [zero_shot_prompt(slm, q) for q in questions]
started = time.perf_counter()
slm.score_choices(prompts, [q.labels for q in questions])
scoring = time.perf_counter() - started
started = time.perf_counter()
slm.generate([slm.format_prompt([{"role": "user", "content": q.render()}])
              for q in questions[:8]], max_new_tokens=16)
print(json.dumps({"threads": threads, "scoring_seconds": scoring,
                  "generation_seconds": time.perf_counter() - started}))
"""

SPIN = "while True: pass"


def workload(threads: str, model: str) -> dict[str, Any]:
    """One run of the workload in a fresh process with ``--threads threads``."""
    out = subprocess.run([sys.executable, "-c", WORKLOAD, threads, model], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    cores = available_cpus()
    runs = [{"setting": f"idle machine, {cores} threads", **workload(str(cores), args.model)}]
    competitor = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(1.0)
        runs.append({"setting": f"one core busy, {cores} threads (torch's default)",
                     **workload(str(cores), args.model)})
        runs.append({"setting": "one core busy, --threads auto",
                     **workload("auto", args.model)})
    finally:
        competitor.kill()
    reference = runs[0]
    rows = [[r["setting"], r["threads"], f"{r['scoring_seconds']:.2f}",
             f"{r['scoring_seconds'] / reference['scoring_seconds']:.1f}x",
             f"{r['generation_seconds']:.2f}",
             f"{r['generation_seconds'] / reference['generation_seconds']:.1f}x"]
            for r in runs]
    markdown = "\n".join([
        f"# Threads under contention ({args.model}, {cores} cores)",
        "",
        "Workload: zero-shot label scores of 32 demo-set questions, then 16 new tokens for "
        "8 of them, each setting in a fresh process. The competitor is a Python loop "
        "spinning on one core.",
        "",
        markdown_table(["setting", "threads", "scoring (s)", "vs idle", "generation (s)",
                        "vs idle"], rows),
    ])
    default, auto = runs[1], runs[2]
    headline = [{
        "target": "Threads under contention: `--threads auto` against torch's default, one "
                  "core busy",
        "result": f"scoring {default['scoring_seconds'] / reference['scoring_seconds']:.1f}x"
                  f" -> {auto['scoring_seconds'] / reference['scoring_seconds']:.1f}x idle "
                  f"time, generation "
                  f"{default['generation_seconds'] / reference['generation_seconds']:.1f}x -> "
                  f"{auto['generation_seconds'] / reference['generation_seconds']:.1f}x",
        "goal": "auto faster than the default under contention",
        "met": (auto["scoring_seconds"] < default["scoring_seconds"]
                and auto["generation_seconds"] < default["generation_seconds"])}]
    write_results("threads", {"model": args.model, "cores": cores, "runs": runs,
                              "headline": headline}, markdown)


if __name__ == "__main__":
    main()
