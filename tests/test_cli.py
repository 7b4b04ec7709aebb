"""``selfamplify run`` end to end on the tiny model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from langchain_selfamplify import AmplifiedPrompt
from langchain_selfamplify.cli import app

runner = CliRunner()


def test_run_writes_the_prompt_and_the_results(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, [
        "run", "--model", str(tiny_model_dir), "--method", "deeplift", "--strategy", "random",
        "--shots", "2", "--k", "3", "--test-size", "6", "--output-dir", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "IO" in result.output and "Self-AMPLIFY (deeplift, random)" in result.output
    assert "Self-AMPLIFY - IO on the same 6 questions" in result.output  # the paired test
    results = json.loads((out / "results.json").read_text())
    assert results["io"]["accuracy"]["n"] == 6 == results["self_amplify"]["accuracy"]["n"]
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) >= {"selection", "rationales", "evaluate_io"}
    prompt = AmplifiedPrompt.load(out / "amplified_prompt.json")
    assert len(prompt.examples) == 2
    assert all(ex.rationale.startswith("The 3 keywords") for ex in prompt.examples)


def test_unknown_names_fail_before_loading_anything(tmp_path):
    result = runner.invoke(app, ["run", "--method", "nope", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "Unknown rationale method 'nope'" in result.output
    result = runner.invoke(app, ["run", "--dataset", "nope", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2 and "Known dataset names" in result.output


BAD_NUMBERS = [("--shots", "0", "--shots must be at least 1 (got 0)"),
               ("--k", "0", "--k must be at least 1 (got 0)"),
               ("--steps", "0", "--steps must be at least 1 (got 0)"),
               ("--pool-size", "0", "--pool-size must be at least 1 (got 0)"),
               ("--test-size", "-3", "--test-size must be at least 1 (got -3)"),
               ("--answer-format", "essay", "--answer-format must be 'letter' or 'cloze'")]
EVALUATE_ONLY = [
    ("--seeds", "0,x", "--seeds must be comma-separated whole numbers (got '0,x')"),
    ("--seeds", ",", "--seeds needs at least 1 value(s) (got [])"),
    ("--datasets", "", "--datasets needs at least 1 value(s) (got [])"),
    ("--methods", " , ", "--methods needs at least 1 value(s) (got [])"),
    ("--answer-mode", "guess", "--answer-mode must be 'score' or 'generate'")]


@pytest.mark.parametrize(("command", "option", "value", "message"), [
    *(("run", *case) for case in BAD_NUMBERS),
    ("run", "--batch-size", "0", "--batch-size must be at least 1 (got 0)"),
    *(("evaluate", *case) for case in [*BAD_NUMBERS, *EVALUATE_ONLY])])
def test_a_bad_value_is_refused_naming_the_option_it_came_from(command, option, value,
                                                                message, tmp_path):
    result = runner.invoke(app, [command, "--model", "/nonexistent", option, value,
                                 "--output-dir", str(tmp_path)])
    flat = " ".join(result.output.split())
    assert result.exit_code == 2 and message in flat, flat
    assert "pydantic" not in flat and "validation error" not in flat
    assert "invalid literal" not in flat


def test_threads_are_set_from_the_option_the_environment_or_the_free_cores(monkeypatch):
    import torch

    from langchain_selfamplify.threads import auto_threads, available_cpus, set_threads

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 == torch.get_num_threads()
        monkeypatch.setenv("SELFAMPLIFY_THREADS", "2")
        assert set_threads() == 2
        monkeypatch.setenv("SELFAMPLIFY_THREADS", "auto")
        assert 1 <= set_threads() <= available_cpus()
        assert 1 <= auto_threads() <= available_cpus()
        with pytest.raises(ValueError, match="--threads must be a positive whole number"):
            set_threads("0")
        result = runner.invoke(app, ["--threads", "many", "explain", "--help"])
        assert result.exit_code == 2 and "--threads must be" in result.output
    finally:
        torch.set_num_threads(before)
