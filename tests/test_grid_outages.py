"""A grid survives its server: an outage stops it with an error, and the same command resumes.

The served cases run a real llama.cpp server (xllamacpp) on 127.0.0.1 with the embedded
SmolLM2 GGUF; the out-of-memory case runs the tiny local model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_selfamplify import OpenAICompatibleBackend
from langchain_selfamplify.cli import EXIT_CELLS_FAILED, EXIT_STOPPED, app
from langchain_selfamplify.errors import GridStoppedError, is_transient
from langchain_selfamplify.evaluation import grid as grid_module
from langchain_selfamplify.evaluation.grid import GridConfig, run_grid
from langchain_selfamplify.models.embedded import default_model_path
from tests import llama_server

GGUF = default_model_path()


def _grid(out: Path, **overrides) -> GridConfig:
    settings = {"datasets": ["demo"], "methods": ["io", "ph_cot"], "strategies": ["success"],
                "seeds": [0], "shots": 2, "pool_size": 12, "test_size": 6,
                "max_rationale_tokens": 16, "output_dir": str(out)}
    return GridConfig(**{**settings, **overrides})


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _without_timings(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds", "chunk_started")}
            for r in records]


def _backend(base_url: str) -> OpenAICompatibleBackend:
    # One request at a time on one slot: llama.cpp's batched decoding is not bitwise
    # reproducible across batch compositions, and the test compares replies exactly.
    return OpenAICompatibleBackend(base_url, "smollm2", tokenizer=str(GGUF),
                                   show_progress=False, max_retries=1, timeout=20,
                                   max_concurrency=1)


def test_transient_failures_are_told_from_permanent_ones():
    from langchain_selfamplify.errors import BackendCapabilityError, BackendConnectionError

    assert is_transient(BackendConnectionError("http://127.0.0.1:1/v1 refused"))
    assert is_transient(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried "
                                     "to allocate 29871833088 bytes"))
    assert is_transient(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_transient(BackendCapabilityError("needs gradients"))
    assert not is_transient(ValueError("cloze needs choice texts"))
    assert not is_transient(RuntimeError("shape mismatch"))


def test_out_of_memory_stops_the_grid_and_a_rerun_resumes_it(tiny_slm, tmp_path, monkeypatch):
    config = _grid(tmp_path, methods=["io", "feature_ablation"], strategies=["random"], k=2,
                   max_rationale_tokens=4)
    original = grid_module.answer_questions
    calls = {"n": 0}

    def out_of_memory_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second cell's first chunk
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
                               "can't allocate memory: you tried to allocate 29871833088 bytes")
        return original(*args, **kwargs)

    monkeypatch.setattr(grid_module, "answer_questions", out_of_memory_once)
    with pytest.raises(GridStoppedError, match="out of memory.*29871833088"):
        run_grid(config, tiny_slm)
    cells = _records(tmp_path / "cells.jsonl")
    assert [c["status"] for c in cells] == ["done"]  # the stopped cell is not recorded
    summary = run_grid(config, tiny_slm)  # the same call resumes
    assert [c["status"] for c in summary["cells"]] == ["done", "done"]
    assert len(_records(tmp_path / "predictions.jsonl")) == 12


@pytest.mark.integration
def test_server_down_at_the_start_exits_non_zero_naming_the_url(tmp_path):
    base_url = f"http://127.0.0.1:{llama_server.free_port()}/v1"
    result = CliRunner().invoke(app, [
        "evaluate", "--base-url", base_url, "--served-model", "smollm2", "--tokenizer",
        str(GGUF), "--methods", "io,ph_cot", "--strategies", "success", "--seeds", "0",
        "--shots", "2", "--pool-size", "12", "--test-size", "6",
        "--output-dir", str(tmp_path)])
    assert result.exit_code == EXIT_STOPPED, result.output
    assert "127.0.0.1" in result.output and "resume" in result.output
    assert not any(c["status"] == "done" for c in _records(tmp_path / "cells.jsonl"))
    assert "predictions.jsonl" not in result.output


@pytest.mark.integration
def test_a_server_killed_mid_grid_stops_it_and_a_restart_completes_it(tmp_path, monkeypatch):
    process, base_url = llama_server.start(GGUF, n_parallel=1)
    port = int(base_url.split(":")[2].split("/")[0])
    try:
        whole = run_grid(_grid(tmp_path / "whole"), _backend(base_url))
        backend = _backend(base_url)
        generate = backend.generate

        def crash_then_generate(*args, **kwargs):  # the server dies in the Ph-CoT cell
            llama_server.stop(process)
            return generate(*args, **kwargs)

        monkeypatch.setattr(backend, "generate", crash_then_generate)
        with pytest.raises(GridStoppedError, match=f"127.0.0.1:{port}"):
            run_grid(_grid(tmp_path / "cut"), backend)
    finally:
        if process.poll() is None:
            llama_server.stop(process)
    cut = tmp_path / "cut"
    kept_cells = (cut / "cells.jsonl").read_bytes()
    kept_predictions = (cut / "predictions.jsonl").read_bytes()
    assert [c["status"] for c in _records(cut / "cells.jsonl")] == ["done"]  # IO only

    process, _ = llama_server.start(GGUF, port=port, n_parallel=1)
    try:
        resumed = run_grid(_grid(cut), _backend(base_url))
    finally:
        llama_server.stop(process)
    assert (cut / "cells.jsonl").read_bytes().startswith(kept_cells)
    assert (cut / "predictions.jsonl").read_bytes().startswith(kept_predictions)
    assert [c["status"] for c in resumed["cells"]] == ["done", "done"]
    # The same questions answered once each, with the same demonstrations chosen. The
    # replies themselves are compared exactly for the scored IO cell only: llama.cpp
    # reuses its cache of the previous request's prefix, so a long generated rationale
    # can differ in a late token between servers with different request histories.
    resumed_records = _without_timings(_records(cut / "predictions.jsonl"))
    whole_records = _without_timings(_records(tmp_path / "whole" / "predictions.jsonl"))
    assert sorted((r["cell"], r["question_id"]) for r in resumed_records) == sorted(
        (r["cell"], r["question_id"]) for r in whole_records)
    assert [r for r in resumed_records if r["method"] == "io"] == [
        r for r in whole_records if r["method"] == "io"]
    demos = [[e["id"] for e in json.loads(path.read_text())["examples"]]
             for path in (cut / "prompts").glob("*ph_cot*")]
    assert demos == [[e["id"] for e in json.loads(path.read_text())["examples"]]
                     for path in (tmp_path / "whole" / "prompts").glob("*ph_cot*")]
    assert whole["predictions"] == resumed["predictions"] == 12


@pytest.mark.integration
def test_a_permanent_failure_is_recorded_once_and_the_exit_code_says_so(tmp_path):
    process, base_url = llama_server.start(GGUF, n_parallel=2)
    arguments = ["evaluate", "--base-url", base_url, "--served-model", "smollm2",
                 "--tokenizer", str(GGUF), "--methods", "io,deeplift", "--strategies",
                 "success", "--seeds", "0", "--shots", "2", "--pool-size", "8",
                 "--test-size", "4", "--output-dir", str(tmp_path)]
    try:
        first = CliRunner().invoke(app, arguments)
        second = CliRunner().invoke(app, arguments)
    finally:
        llama_server.stop(process)
    assert first.exit_code == second.exit_code == EXIT_CELLS_FAILED, first.output
    assert "1 of 2 cells failed" in first.output
    cells = _records(tmp_path / "cells.jsonl")
    assert [(c["method"], c["status"]) for c in cells] == [("io", "done"),
                                                           ("deeplift", "failed")]
    assert "gradient" in cells[1]["reason"].lower()
