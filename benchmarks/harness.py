"""Shared helpers of the benchmark scripts: data location, timing, writing results.

Every benchmark writes ``docs/results/<name>.json`` (all numbers, the settings, the
machine) and ``docs/results/<name>.md`` (the table the README links), and prints the
table. Numbers are never typed by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (comma-separated command-line values)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def shared_datasets() -> Path:
    """The local copies of the paper's datasets (``../shared/datasets`` by default)."""
    path = Path(os.environ.get("SELFAMPLIFY_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    if not path.is_dir():
        raise SystemExit(f"datasets not found at {path}; set SELFAMPLIFY_DATA_DIR")
    return path


QWEN_GRID = RESULTS / "paper_table_qwen_run" / "qwen2.5-coder-1.5b__letter"
"""The capable-model table's grid directory (``benchmarks/qwen_table.sh``)."""


def table_success_demonstrations(dataset: str) -> list[Any]:
    """The success demonstrations of the capable-model table's seed-0 cell of ``dataset``
    (its Ph-CoT prompt's; every Self-AMPLIFY success row of a seed selects the same)."""
    from langchain_selfamplify import AmplifiedPrompt

    path = QWEN_GRID / "prompts" / f"{dataset}__ph_cot__success__seed0.json"
    return list(AmplifiedPrompt.load(path).examples)


def saved_cell(grid: Path, key: str) -> tuple[dict[str, Any], Any, list[Any]]:
    """The grid's settings (its ``config.json``), the saved prompt of its cell ``key``
    and that cell's test questions."""
    from langchain_selfamplify import AmplifiedPrompt

    config = json.loads((grid / "config.json").read_text(encoding="utf-8"))
    prompt = AmplifiedPrompt.load(grid / "prompts" / f"{key}.json")
    return config, prompt, cell_test_questions(config, key)


def grid_predictions(grid: Path) -> dict[str, list[dict[str, Any]]]:
    """The grid's ``predictions.jsonl`` records, grouped by cell in the order written."""
    from langchain_selfamplify.checkpoint import read_jsonl

    cells: dict[str, list[dict[str, Any]]] = {}
    for record in read_jsonl(grid / "predictions.jsonl"):
        cells.setdefault(record["cell"], []).append(record)
    return cells


def cell_test_questions(config: dict[str, Any], key: str) -> list[Any]:
    """The test questions of the grid cell named ``key`` (``Cell.key``), drawn with the
    settings of the grid's ``config.json`` (``config``)."""
    from langchain_selfamplify.data.loaders import load_pool_and_test
    from langchain_selfamplify.evaluation.grid_config import Cell

    cell = Cell.from_key(key)
    if cell is None:
        raise SystemExit(f"{key!r} is not a grid cell (dataset__method__strategy__seedN)")
    return load_pool_and_test(cell.dataset, pool_size=config["pool_size"],
                              test_size=config["test_size"], seed=cell.seed,
                              data_dir=config["data_dir"])[1]


@contextmanager
def timed(into: dict[str, float], key: str) -> Iterator[None]:
    """Add the wall time of the block, in seconds, to ``into[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - start


def chunk_rates(records: Sequence[dict[str, Any]]) -> list[tuple[float, int]]:
    """``(seconds per question, questions)`` of each chunk of a grid cell's answers
    (``predictions.jsonl`` records, in order). A chunk's records share one
    ``chunk_started`` and their ``seconds`` sum to its wall time; records written before
    answers were streamed have no ``chunk_started`` and share one ``seconds`` value, the
    chunk's wall time over its questions."""
    def chunk_of(record: dict[str, Any]) -> Any:
        return record.get("chunk_started", ("shared seconds", record["seconds"]))

    totals: list[tuple[float, int]] = []
    for i, record in enumerate(records):
        if i and chunk_of(record) == chunk_of(records[i - 1]):
            totals[-1] = (totals[-1][0] + record["seconds"], totals[-1][1] + 1)
        else:
            totals.append((record["seconds"], 1))
    # Either way a chunk's seconds sum to its wall time.
    return [(seconds / n, n) for seconds, n in totals]


def cores_busy(records: Sequence[dict[str, Any]]) -> float | None:
    """The process's CPU seconds per wall second over ``records`` (grid answer records
    with ``cpu_seconds``), or ``None`` when they predate it. Near the cores the process
    used when it had the machine; well below, other work shared the cores or the process
    was stopped, and its seconds overstate the quiet machine's."""
    timed = [r for r in records if "cpu_seconds" in r]
    wall = sum(r["seconds"] for r in timed)
    return sum(r["cpu_seconds"] for r in timed) / wall if timed and wall > 0 else None


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine()}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; floats get 3 decimals."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line() -> str:
    """The exact command this process runs, as a shell would take it back."""
    return shlex.join(["python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


def git_commit() -> str:
    """The commit the working tree is at, ``+dirty`` when it has uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def saved_results(name: str) -> dict[str, Any]:
    """The payload a benchmark saved as ``docs/results/<name>.json``."""
    loaded: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def write_with_headline(name: str, payload: dict[str, Any],
                        report: Callable[[dict[str, Any]], str],
                        headline: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> None:
    """:func:`write_results` with the Markdown of ``report(payload)`` and the README
    performance rows of ``headline(payload)`` (both rebuilt the same way from a saved
    payload by a benchmark's ``--report-only``)."""
    write_results(name, {**payload, "headline": headline(payload)}, report(payload))


def add_report_only(parser: argparse.ArgumentParser) -> None:
    """The ``--report-only`` option of a benchmark that can rewrite its report from the
    JSON it saved, without measuring again."""
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the Markdown from the saved JSON")


def rewrote_saved_report(args: argparse.Namespace, name: str,
                         report: Callable[[dict[str, Any]], str],
                         headline: Callable[[dict[str, Any]], list[dict[str, Any]]],
                         amend: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                         ) -> bool:
    """With ``--report-only``: :func:`write_with_headline` from ``<name>.json`` as saved
    (passed through ``amend`` first, if given: a value derived from the measurements,
    corrected), and ``True`` (the benchmark then stops); else ``False``."""
    if not args.report_only:
        return False
    saved = saved_results(name)
    # The measurement's own provenance is kept: the rewrite records only its own.
    measured = saved.pop("measured", None) or {
        key: saved[key] for key in ("command", "commit", "machine") if key in saved}
    if amend is not None:
        saved = amend(saved)
    write_with_headline(name, {**saved, "measured": measured}, report, headline)
    return True


def write_results(name: str, payload: dict[str, Any], markdown: str) -> None:
    """Write ``<name>.json`` and ``<name>.md`` under ``docs/results`` and print the table.

    The JSON records the machine, the exact command (``sys.argv``) and the git commit;
    a report rewritten from saved results (``--report-only``) keeps the measurement's own
    under ``measured``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "machine": machine(), "command": command_line(),
               "commit": git_commit()}
    written = f"`{payload['command']}` at commit `{payload['commit']}`"
    measured = payload.get("measured")
    footnote = (f"Written by {written}" if not measured else
                f"Measured by `{measured.get('command')}` at commit `{measured.get('commit')}`; "
                f"rewritten by {written}")
    markdown = markdown.rstrip() + f"\n\n<sub>{footnote}.</sub>\n"
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n",
                                         encoding="utf-8")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n", encoding="utf-8")
    print(markdown)
    if "headline" in payload:
        update_readme_performance()


# ---------------------------------------------------------------- performance helpers
def median_seconds(run: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Median wall time of ``repeats`` calls of ``run``, all times, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def peak_gflops() -> float:
    """Float32 matrix-multiply throughput of this machine (GFLOP/s), measured now on
    the shapes of a small transformer's MLP; the best of a few tries."""
    import torch

    a, b = torch.randn(768, 576), torch.randn(576, 1536)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        best = max(best, 10 * 2 * a.shape[0] * a.shape[1] * b.shape[1]
                   / (time.perf_counter() - start) / 1e9)
    return best


def n_parameters(model: Any) -> int:
    """Non-embedding parameters of a model: those every token runs through.

    The input embedding is a lookup, and its tied output projection (the vocabulary
    head) runs only where logits are read, which differs between routes; leaving it
    out keeps the FLOP limit a floor for every route.
    """
    embedding = model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in model.parameters()) - embedding


def flop_limit_seconds(params: int, tokens: int, gflops: float) -> float:
    """Seconds the machine needs at its measured peak for ``2 x params x tokens`` FLOPs."""
    return 2 * params * tokens / (gflops * 1e9)


@contextmanager
def counted_tokens(model: Any) -> Iterator[dict[str, int]]:
    """Count the tokens (rows x positions) every forward call of ``model`` processes."""
    counts = {"tokens": 0, "forward_calls": 0}

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        inputs = kwargs.get("input_ids")
        if inputs is None:
            inputs = kwargs.get("inputs_embeds", args[0] if args else None)
        if inputs is not None:
            counts["tokens"] += int(inputs.shape[0] * inputs.shape[1])
        counts["forward_calls"] += 1

    # Hook the inner transformer: Captum calls the LM's ``forward`` directly, which
    # skips hooks on the LM itself; the LM always calls its base model as a module.
    handle = getattr(model, "base_model", model).register_forward_pre_hook(hook,
                                                                           with_kwargs=True)
    try:
        yield counts
    finally:
        handle.remove()


def run_child(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` (Python source) in a fresh interpreter with ``args`` and return the
    JSON object it prints last; its stderr's tail ends the benchmark if it fails. Each
    memory measurement runs in its own process, so its peak counter is its own."""
    done = subprocess.run([sys.executable, "-c", script, *args],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


README = ROOT / "README.md"
PERFORMANCE_START = "<!-- performance:start -->"
PERFORMANCE_END = "<!-- performance:end -->"
PERFORMANCE_BENCHMARKS = ("perturbation", "evaluation", "selection", "gradient", "main_job",
                          "dtype_speed", "threads", "decode_rows", "own_cache_append",
                          "prefill_memory", "decode_heap", "qwen_memory", "qwen_table_cost",
                          "gguf_load", "head_input")


def update_readme_performance() -> None:
    """Rewrite the README's performance table from the ``headline`` rows of the
    performance results present in ``docs/results``."""
    rows = []
    for name in PERFORMANCE_BENCHMARKS:
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            continue
        for line in json.loads(path.read_text(encoding="utf-8")).get("headline", []):
            rows.append([line["target"], line["result"], line["goal"],
                         "yes" if line["met"] else "**no**",
                         f"`python benchmarks/{name}.py`"])
    table = markdown_table(["target", "measured", "goal", "met", "reproduce"], rows)
    replace_readme_block(PERFORMANCE_START, PERFORMANCE_END, table)


def replace_readme_block(start: str, end: str, content: str) -> None:
    """Replace the README's text between the ``start`` and ``end`` markers."""
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {start} ... {end} block")
    README.write_text(pattern.sub(lambda _: f"{start}\n{content}\n{end}", text),
                      encoding="utf-8")
