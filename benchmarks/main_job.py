"""The whole main job: ``selfamplify run`` with its defaults, and a small sweep.

Each run is a fresh process (as a user runs it): its wall time, its peak resident
memory, and how its time splits across the steps (``timings.json``). The sweep varies
one setting at a time around a smaller base (16 test questions): pool size (selection
cost), shots (rationales and prompt length) and Ph-CoT steps (rationale length, so
prompt length).

Run: ``python benchmarks/main_job.py`` (about 10 minutes on 2 CPU cores).
Writes ``docs/results/main_job.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import markdown_table, write_results

WALL_GOAL_S = 300.0
RSS_GOAL_MIB = 3 * 1024.0
STEPS = ("load_data", "load_model", "selection", "rationales", "evaluate_io",
         "evaluate_self_amplify")

# Runs the CLI in this child process and reports the child's own peak RSS.
CHILD = """
import json, resource, sys
from typer.main import get_command
from langchain_selfamplify.cli import app
try:
    code = get_command(app).main(args=sys.argv[1:], standalone_mode=False)
finally:
    print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code if isinstance(code, int) else 0)
"""


def run_job(options: list[str]) -> dict[str, Any]:
    """One ``selfamplify run`` in a fresh process: wall time, peak RSS, step times."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-c", CHILD, "run", "--output-dir", out, *options]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines()
                     if line.strip() and not line.startswith("PEAK_RSS_KIB")]
            return {"options": options, "error": lines[-1] if lines else "failed"}
        peak = next(int(line.split()[1]) for line in done.stderr.splitlines()
                    if line.startswith("PEAK_RSS_KIB"))
        timings = json.loads((Path(out) / "timings.json").read_text(encoding="utf-8"))
        results = json.loads((Path(out) / "results.json").read_text(encoding="utf-8"))
    return {"options": options, "wall_s": wall, "peak_rss_mib": peak / 1024,
            "steps_s": {step: timings.get(step, 0.0) for step in STEPS},
            "io_accuracy": results["io"]["accuracy"]["value"],
            "self_amplify_accuracy": results["self_amplify"]["accuracy"]["value"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-sweep", action="store_true", help="only the default run")
    args = parser.parse_args()

    default = run_job([])
    print("default", default, flush=True)
    if "error" in default:
        raise SystemExit(f"selfamplify run failed: {default['error']}")
    sweep = []
    if not args.no_sweep:
        base = ["--test-size", "16"]
        for options in ([], ["--pool-size", "32"], ["--pool-size", "48"], ["--shots", "4"],
                        ["--shots", "12"], ["--steps", "1"], ["--steps", "5"]):
            sweep.append(run_job(base + options))
            print("sweep", sweep[-1], flush=True)

    def row(name: str, job: dict[str, Any]) -> list[Any]:
        if "error" in job:
            return [name, f"failed: {job['error']}", None, None, None, None, None, None]
        steps = job["steps_s"]
        return [name, job["wall_s"], job["peak_rss_mib"], steps["load_model"], steps["selection"],
                steps["rationales"], steps["evaluate_io"], steps["evaluate_self_amplify"]]

    headers = ["run", "wall s", "peak RSS MiB", "load model s", "selection s", "rationales s",
               "evaluate IO s", "evaluate Self-AMPLIFY s"]
    met = default["wall_s"] <= WALL_GOAL_S and default["peak_rss_mib"] <= RSS_GOAL_MIB
    lines = [
        "# The main job: `selfamplify run`",
        "",
        "Defaults: embedded SmolLM2-135M-Instruct, bundled demo set, Ph-CoT (3 steps), "
        "success, 8 shots, 64 test questions. Each run is a fresh process.",
        "",
        markdown_table(headers, [row("defaults", default)]),
        "",
        f"Goal: under {WALL_GOAL_S / 60:.0f} minutes and {RSS_GOAL_MIB / 1024:.0f} GiB: "
        f"{'met' if met else '**not met**'}.",
    ]
    if sweep:
        names = ["base: 16 test questions", "pool 32", "pool 48", "4 shots", "12 shots",
                 "1 Ph-CoT step", "5 Ph-CoT steps"]
        lines += ["", "## Sweep (one setting changed from the base)", "",
                  markdown_table(headers, [row(n, j) for n, j in zip(names, sweep, strict=True)])]
    write_results("main_job", {
        "default": default, "sweep": sweep,
        "headline": [{
            "target": "Main job: `selfamplify run` with defaults",
            "result": f"{default['wall_s'] / 60:.1f} min, peak RSS "
                      f"{default['peak_rss_mib'] / 1024:.2f} GiB",
            "goal": "< 5 min, < 3 GiB", "met": met,
        }],
    }, "\n".join(lines))


if __name__ == "__main__":
    main()
