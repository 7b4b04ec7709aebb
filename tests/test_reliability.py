"""Reliability: determinism, resumable runs killed with SIGKILL, validated persistence."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from langchain_selfamplify import SLM, ModelLoadError, PromptFileError
from langchain_selfamplify.checkpoint import read_jsonl
from langchain_selfamplify.pipeline import RunConfig, RunResult, run_self_amplify


def run_config(out: Path, model_dir: Path, **overrides) -> RunConfig:
    settings = {"model": str(model_dir), "method": "feature_ablation", "strategy": "error",
                "shots": 2, "k": 2, "test_size": 12, "pool_size": 24,
                "max_rationale_tokens": 4, "output_dir": str(out)}
    return RunConfig(**{**settings, **overrides})


def test_same_seed_gives_byte_identical_prompt_and_results(tiny_slm, tiny_model_dir, tmp_path):
    for name in ("first", "second"):
        run_self_amplify(run_config(tmp_path / name, tiny_model_dir), slm=tiny_slm)
    for file in ("amplified_prompt.json", "results.json"):
        first = (tmp_path / "first" / file).read_bytes()
        second = (tmp_path / "second" / file).read_bytes()
        assert first == second.replace(b"second", b"first")


def cli_run(out: Path, model_dir: Path, delay: str) -> subprocess.Popen:
    env = {**os.environ, "SELFAMPLIFY_CHECKPOINT_DELAY": delay, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "langchain_selfamplify.cli", "run", "--model", str(model_dir),
         "--method", "feature_ablation", "--strategy", "error", "--shots", "2", "--k", "2",
         "--test-size", "12", "--pool-size", "24", "--batch-size", "2",
         "--output-dir", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def checkpoint_rows(out: Path) -> int:
    return sum(len(read_jsonl(path)) for path in (out / "checkpoint").glob("*.jsonl"))


def test_run_killed_at_random_points_resumes_to_the_same_results(tiny_model_dir, tmp_path):
    reference = tmp_path / "reference"
    assert cli_run(reference, tiny_model_dir, "0").wait(timeout=300) == 0
    killed = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for _ in range(12):
        process = cli_run(killed, tiny_model_dir, "0.3")
        target = checkpoint_rows(killed) + rng.randint(1, 3) if (killed / "checkpoint").exists() \
            else rng.randint(1, 3)
        deadline = time.time() + 120
        while process.poll() is None and time.time() < deadline:
            if (killed / "checkpoint").exists() and checkpoint_rows(killed) >= target:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                break
            time.sleep(0.05)
        if process.poll() == 0 or (killed / "results.json").exists():
            break
    else:
        pytest.fail("the killed run never finished")
    process.wait(timeout=300)
    assert kills >= 2
    assert (killed / "results.json").read_text() == (reference / "results.json").read_text(
        ).replace("reference", "killed")
    assert (killed / "amplified_prompt.json").read_text() == (
        reference / "amplified_prompt.json").read_text()
    result = RunResult.load(killed / "results.json")
    ids = [p.id for p in result.self_amplify.predictions]
    assert len(ids) == len(set(ids)) == 12


def test_tampered_results_and_prompt_files_are_rejected(tiny_slm, tiny_model_dir, tmp_path):
    run_self_amplify(run_config(tmp_path, tiny_model_dir, method="gradient_x_input"),
                     slm=tiny_slm)
    results = json.loads((tmp_path / "results.json").read_text())
    results["io"]["accuracy"]["n"] = "many"
    (tmp_path / "bad.json").write_text(json.dumps(results))
    with pytest.raises(PromptFileError, match="not a valid run results file"):
        RunResult.load(tmp_path / "bad.json")
    (tmp_path / "torn.json").write_text((tmp_path / "results.json").read_text()[:200])
    with pytest.raises(PromptFileError):
        RunResult.load(tmp_path / "torn.json")
    assert RunResult.load(tmp_path / "results.json").io.accuracy.n == 12


def test_gguf_of_an_unsupported_architecture_is_a_clear_error(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "strange.gguf"
    writer = gguf.GGUFWriter(str(path), "notanarchitecture")
    writer.add_tensor("weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match="Could not load model .*strange.gguf"):
        SLM.from_pretrained(path)
