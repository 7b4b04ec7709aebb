"""Loading an embedded GGUF model: read from the GGUF every time, against converted once.

For each embedded model installed, three loads, each in its own process (as a CLI call,
a grid step or a test process pays them), into an empty converted-model cache:

1. the GGUF read with the cache off (``SELFAMPLIFY_GGUF_CACHE=0``): what every load
   cost before;
2. the GGUF read that also writes the conversion (the first load on a machine);
3. the load that reads the conversion (every load after).

Each load hashes its model's tensors (float32 bytes, in state-dict order), so the table
also says whether the conversion gives the same tensors as the GGUF.

Run: ``python benchmarks/gguf_load.py [--models smollm2-135m,gemma3-270m,qwen2.5-coder-1.5b]``
(about 6 minutes for the three; a model whose package is missing is skipped). Writes
``docs/results/gguf_load.{json,md}``. Run it on a quiet machine: it times whole loads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    add_report_only,
    comma_list,
    markdown_table,
    rewrote_saved_report,
    write_with_headline,
)

from langchain_selfamplify.errors import ModelLoadError
from langchain_selfamplify.models.embedded import EMBEDDED_MODELS, embedded_model_path

LOADS = ("gguf, cache off", "gguf, conversion written", "conversion read")


def load_once() -> None:
    """Child process: load the GGUF in ``argv[2]``, print seconds and a tensor hash."""
    from langchain_selfamplify.models.hf_loading import load_model_and_tokenizer

    started = time.perf_counter()
    model, _, _ = load_model_and_tokenizer(sys.argv[2], device="cpu")
    seconds = time.perf_counter() - started
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.float().contiguous().numpy().tobytes())
    print(json.dumps({"seconds": seconds, "sha256": digest.hexdigest()}))


def timed_load(gguf: Path, cache: Path, converting: bool) -> dict[str, Any]:
    """One load of ``gguf`` in a fresh process."""
    env = {**os.environ, "SELFAMPLIFY_CACHE": str(cache),
           "SELFAMPLIFY_GGUF_CACHE": "1" if converting else "0", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", str(gguf)], env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "process_seconds": time.perf_counter() - started}


def measure(model: str) -> dict[str, Any] | None:
    """The three loads of one embedded model, or ``None`` when it is not installed."""
    try:
        gguf = Path(embedded_model_path(model))
    except ModelLoadError as exc:
        print(f"{model}: skipped ({exc})", flush=True)
        return None
    cache = Path(tempfile.mkdtemp(prefix="gguf-load-"))
    try:
        loads = {LOADS[0]: timed_load(gguf, cache, converting=False),
                 LOADS[1]: timed_load(gguf, cache, converting=True),
                 LOADS[2]: timed_load(gguf, cache, converting=True)}
        size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(model, {k: round(v["seconds"], 1) for k, v in loads.items()}, flush=True)
    return {"model": model, "gguf_bytes": gguf.stat().st_size, "converted_bytes": size,
            "loads": loads,
            "same_tensors": len({load["sha256"] for load in loads.values()}) == 1}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        load_once()
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(EMBEDDED_MODELS))
    add_report_only(parser)
    args = parser.parse_args()
    if rewrote_saved_report(args, "gguf_load", report, headline):
        return
    runs = [run for model in comma_list(args.models) if (run := measure(model))]
    write_with_headline("gguf_load", {"runs": runs}, report, headline)


def headline(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The README performance table's row: each model's load, before and after."""
    parts = [f"{run['model']} {run['loads'][LOADS[0]]['seconds']:.1f} s -> "
             f"{run['loads'][LOADS[2]]['seconds']:.1f} s" for run in payload["runs"]]
    return [{"target": "Loading an embedded GGUF model: converted once, against read every "
                       "time (same tensors)",
             "result": "; ".join(parts),
             "goal": "faster after the first load, identical tensors",
             "met": all(run["same_tensors"] and run["loads"][LOADS[2]]["seconds"]
                        < run["loads"][LOADS[0]]["seconds"] for run in payload["runs"])}]


def report(payload: dict[str, Any]) -> str:
    """The Markdown table of the loads."""
    rows = []
    for run in payload["runs"]:
        loads = run["loads"]
        rows.append([run["model"], f"{run['gguf_bytes'] / 2**30:.2f}",
                     *(f"{loads[name]['seconds']:.1f}" for name in LOADS),
                     f"{loads[LOADS[0]]['seconds'] / loads[LOADS[2]]['seconds']:.0f}x",
                     f"{run['converted_bytes'] / 2**30:.2f}",
                     "yes" if run["same_tensors"] else "**no**"])
    return "\n".join([
        "# Loading an embedded GGUF model: read every time, or converted once",
        "",
        "Seconds inside `load_model_and_tokenizer`, each load in its own process, into an "
        "empty converted-model cache: the GGUF read with the cache off, the first load "
        "(which reads the GGUF and writes its conversion), and a later load (which reads "
        "the conversion). Same tensors: the three loads' tensor hashes are equal.",
        "",
        markdown_table(["model", "GGUF, GiB", *(f"{name}, s" for name in LOADS),
                        "speed-up", "conversion on disk, GiB", "same tensors"], rows),
    ])


if __name__ == "__main__":
    main()
