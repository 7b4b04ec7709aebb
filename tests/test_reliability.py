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
        run_self_amplify(run_config(tmp_path / name, tiny_model_dir), backend=tiny_slm)
    for file in ("amplified_prompt.json", "results.json"):
        first = (tmp_path / "first" / file).read_bytes()
        second = (tmp_path / "second" / file).read_bytes()
        assert first == second.replace(b"second", b"first")


def cli(args: list[str], delay: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    helper = Path(__file__).with_name("slow_checkpoint_cli.py")
    return subprocess.Popen([sys.executable, str(helper), delay, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_args(out: Path, model_dir: Path) -> list[str]:
    return ["run", "--model", str(model_dir), "--method", "feature_ablation", "--strategy",
            "error", "--shots", "2", "--k", "2", "--test-size", "12", "--pool-size", "24",
            "--batch-size", "2", "--output-dir", str(out)]


def evaluate_args(out: Path, model_dir: Path) -> list[str]:
    return ["evaluate", "--model", str(model_dir), "--methods", "io,feature_ablation",
            "--strategies", "error", "--seeds", "0", "--shots", "2", "--k", "2", "--test-size", "8",
            "--pool-size", "16", "--output-dir", str(out)]


def checkpoint_rows(out: Path) -> int:
    return sum(len(read_jsonl(path)) for path in out.rglob("*.jsonl"))


def kill_until_done(args: list[str], out: Path, finished: Path, seed: int) -> int:
    """Start the command, SIGKILL it after a random number of new checkpoint rows, repeat
    until it finishes by itself; returns the number of kills. Each restart pays the
    command's start-up (importing torch), so kills come every 2 to 6 rows, not every
    row: the test's minutes go to kills at rows, not to imports."""
    rng = random.Random(seed)
    kills = 0
    for _ in range(15):
        target = checkpoint_rows(out) + rng.randint(2, 6)
        process = cli(args, "0.3")
        deadline = time.time() + 120
        while process.poll() is None and time.time() < deadline:
            if checkpoint_rows(out) >= target:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                break
            time.sleep(0.05)
        if process.wait(timeout=300) == 0 and finished.exists():
            return kills
    pytest.fail("the killed command never finished")


def test_run_killed_at_random_points_resumes_to_the_same_results(tiny_model_dir, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert cli(run_args(reference, tiny_model_dir), "0").wait(timeout=300) == 0
    kills = kill_until_done(run_args(killed, tiny_model_dir), killed, killed / "results.json", 7)
    assert kills >= 2
    assert (killed / "results.json").read_text() == (reference / "results.json").read_text(
        ).replace("reference", "killed")
    assert (killed / "amplified_prompt.json").read_text() == (
        reference / "amplified_prompt.json").read_text()
    result = RunResult.load(killed / "results.json")
    ids = [p.id for p in result.self_amplify.predictions]
    assert len(ids) == len(set(ids)) == 12


def test_evaluate_killed_at_random_points_resumes_to_the_same_table(tiny_model_dir, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert cli(evaluate_args(reference, tiny_model_dir), "0").wait(timeout=300) == 0
    kills = kill_until_done(evaluate_args(killed, tiny_model_dir), killed,
                            killed / "figure.png", 11)
    assert kills >= 2

    def table(path):  # the seconds column depends on the run
        import re

        return re.sub(r", \d+ s\)", ")", (path / "table.md").read_text())

    assert table(killed) == table(reference)
    rows = read_jsonl(killed / "predictions.jsonl")
    keys = [(r["cell"], r["question_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * 8


def test_tampered_results_and_prompt_files_are_rejected(tiny_slm, tiny_model_dir, tmp_path):
    run_self_amplify(run_config(tmp_path, tiny_model_dir, method="gradient_x_input"),
                     backend=tiny_slm)
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


def test_run_replaces_an_example_self_topk_cannot_explain_and_records_it(
        tiny_slm, tiny_model_dir, tmp_path, monkeypatch):
    """`selfamplify run --method self_topk` takes the next-ranked example when one reply
    is unusable (as `evaluate` does), and checkpoints the rationales it wrote."""
    from langchain_selfamplify.rationales.methods.self_topk import SelfTopKRationale

    real = SelfTopKRationale.explain_each
    refused: list[str] = []

    def one_unusable(self, examples, on_each=None):
        texts = real(self, examples)  # none handed over before the batch ends
        if not refused:
            refused.append(examples[0].id)
        return [None if ex.id in refused else text for ex, text in zip(examples, texts)]

    monkeypatch.setattr(SelfTopKRationale, "explain_each", one_unusable)
    config = run_config(tmp_path, tiny_model_dir, method="self_topk", strategy="random")
    run_self_amplify(config, backend=tiny_slm)
    prompt = json.loads((tmp_path / "amplified_prompt.json").read_text())
    assert prompt["metadata"]["skipped"] == refused
    ids = [ex["id"] for ex in prompt["examples"]]
    assert len(ids) == 2 and refused[0] not in ids
    saved = read_jsonl(tmp_path / "checkpoint" / "rationales.jsonl")
    assert {r["example_id"] for r in saved} == set(ids)
