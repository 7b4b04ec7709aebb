"""No silent loss: a finished run survives a typo, a bad dataset and other settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_selfamplify import SelfAmplifyError
from langchain_selfamplify.cli import app
from langchain_selfamplify.errors import DatasetError, ModelLoadError
from langchain_selfamplify.pipeline import RunConfig, run_self_amplify


def _config(out: Path, model: str, **overrides) -> RunConfig:
    settings = {"model": model, "method": "feature_ablation", "strategy": "error", "shots": 2,
                "k": 2, "test_size": 6, "pool_size": 16, "max_rationale_tokens": 4,
                "output_dir": str(out)}
    return RunConfig(**{**settings, **overrides})


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def test_a_finished_run_survives_typos_bad_data_and_other_settings(tiny_slm, tiny_model_dir,
                                                                   tmp_path):
    out = tmp_path / "out"
    run_self_amplify(_config(out, str(tiny_model_dir)), backend=tiny_slm)
    before = _snapshot(out)
    assert any(name.startswith("checkpoint/") for name in before)
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        run_self_amplify(_config(out, str(tmp_path / "missing.gguf")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "Q?", "answerKey": "Z", '
                   '"choices": {"label": ["A", "B"], "text": ["a", "b"]}}\n')
    with pytest.raises(DatasetError, match="bad.jsonl, line 1"):
        run_self_amplify(_config(out, str(tiny_model_dir), dataset=str(bad)), backend=tiny_slm)
    with pytest.raises(SelfAmplifyError, match="holds a run with other settings.*--overwrite"):
        run_self_amplify(_config(out, str(tiny_model_dir), shots=3), backend=tiny_slm)
    result = CliRunner().invoke(app, ["run", "--model", "missing.gguf", "--output-dir",
                                      str(out)])
    assert result.exit_code == 2 and "GGUF file not found" in result.output
    assert _snapshot(out) == before  # every file byte-identical


def test_overwrite_moves_the_old_run_aside_and_never_deletes_it(tiny_slm, tiny_model_dir,
                                                                tmp_path):
    out = tmp_path / "out"
    run_self_amplify(_config(out, str(tiny_model_dir)), backend=tiny_slm)
    before = _snapshot(out)
    run_self_amplify(_config(out, str(tiny_model_dir), shots=3), backend=tiny_slm, overwrite=True)
    (aside,) = out.glob("previous-*")
    assert _snapshot(aside) == before
    assert (out / "results.json").exists()


def test_evaluate_refuses_a_directory_of_other_settings_before_loading_the_model(
        tiny_slm, tiny_model_dir, tmp_path, monkeypatch):
    from langchain_selfamplify import SLM
    from langchain_selfamplify.evaluation.grid import GridConfig, run_grid

    run_grid(GridConfig(methods=["io"], seeds=[0], shots=2, pool_size=8, test_size=3,
                        output_dir=str(tmp_path)), tiny_slm)

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the resume check")

    monkeypatch.setattr(SLM, "load", no_loading)
    result = CliRunner().invoke(app, ["evaluate", "--model", str(tiny_model_dir), "--methods",
                                      "io", "--shots", "3", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2 and "other settings" in result.output


def test_evaluate_overwrite_moves_a_grid_of_other_settings_aside(tiny_slm, tmp_path):
    from langchain_selfamplify.evaluation.grid import GridConfig, check_output_dir, run_grid

    def grid(**overrides) -> GridConfig:
        settings = {"methods": ["io"], "seeds": [0], "shots": 2, "pool_size": 8,
                    "test_size": 3, "output_dir": str(tmp_path)}
        return GridConfig(**{**settings, **overrides})

    run_grid(grid(), tiny_slm)
    before = {name: (tmp_path / name).read_bytes()
              for name in ("config.json", "predictions.jsonl", "cells.jsonl")}
    check_output_dir(grid(seeds=[0, 1]))  # more cells: the same grid, resumed
    with pytest.raises(SelfAmplifyError, match="holds a grid run with other settings"):
        check_output_dir(grid(shots=3))
    check_output_dir(grid(shots=3), overwrite=True)
    (aside,) = tmp_path.glob("previous-*")
    assert {name: (aside / name).read_bytes() for name in before} == before
    assert not (tmp_path / "predictions.jsonl").exists()


def test_a_run_marker_written_in_another_key_order_still_resumes(tiny_slm, tiny_model_dir,
                                                                 tmp_path):
    import json

    out = tmp_path / "out"
    config = _config(out, str(tiny_model_dir))
    run_self_amplify(config, backend=tiny_slm)
    marker = out / "checkpoint" / "config.json"
    settings = json.loads(marker.read_text())
    marker.write_text(json.dumps(dict(reversed(list(settings.items())))))
    run_self_amplify(config, backend=tiny_slm)  # same settings: resumed, not refused
    assert not list(out.glob("previous-*"))


def test_evaluate_refuses_cloze_on_bare_labels_before_loading_the_model(tmp_path, monkeypatch):
    import json

    from langchain_selfamplify import SLM

    rows = [{"id": f"r{i}", "question": f"Yes or no {i}?", "answerKey": "A",
             "choices": {"label": ["A", "B"], "text": ["A", "B"]}} for i in range(12)]
    data = tmp_path / "bare.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the answer options were checked")

    monkeypatch.setattr(SLM, "load", no_loading)
    result = CliRunner().invoke(app, ["evaluate", "--datasets", str(data), "--methods", "io",
                                      "--answer-format", "cloze", "--output-dir",
                                      str(tmp_path / "out")])
    assert result.exit_code == 2 and "bare labels" in result.output


def _grid(out: Path, **overrides):
    from langchain_selfamplify.evaluation.grid import GridConfig

    settings = {"datasets": ["demo"], "methods": ["kernelshap"], "strategies": ["error"],
                "seeds": [0], "shots": 3, "k": 2, "pool_size": 16, "test_size": 4,
                "max_rationale_tokens": 4, "method_kwargs": {"kernelshap": {"n_samples": 8}},
                "output_dir": str(out)}
    return GridConfig(**{**settings, **overrides})


def test_a_stop_while_a_prompt_is_built_keeps_the_pool_scores_and_each_explanation(
        tiny_slm, tmp_path, monkeypatch):
    """A perturbation method's demonstrations are checkpointed one by one (KernelShap
    takes minutes per demonstration on the capable model), with the pool scores: the
    rerun scores no pool example again, explains only the demonstrations left, and
    builds the prompt an uninterrupted run builds."""
    from langchain_selfamplify.evaluation.grid import read_jsonl, run_grid
    from langchain_selfamplify.rationales.perturbation import PerturbationMethod
    from langchain_selfamplify.selection import selector as selector_module

    whole = run_grid(_grid(tmp_path / "whole"), tiny_slm)
    original_attribute, original_score = PerturbationMethod.attribute, selector_module.score_answers
    attributed: list[str] = []
    scored: list[int] = []

    def attribute_stopping_at_the_third(self, example):
        if len(attributed) == 2:
            raise KeyboardInterrupt  # stands for the process being killed
        attributed.append(example.id)
        return original_attribute(self, example)

    def counting(backend, prompts, *args, **kwargs):
        scored.append(len(prompts))
        return original_score(backend, prompts, *args, **kwargs)

    monkeypatch.setattr(PerturbationMethod, "attribute", attribute_stopping_at_the_third)
    monkeypatch.setattr(selector_module, "score_answers", counting)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run_grid(_grid(cut), tiny_slm)
    store = cut / "checkpoints" / "demo__seed0"
    assert len(read_jsonl(store / "pool_scores.jsonl")) == 16 == sum(scored)
    assert [r["example_id"] for r in read_jsonl(store / "rationales.jsonl")] == attributed
    assert not list((cut / "prompts").glob("*.json"))

    monkeypatch.setattr(PerturbationMethod, "attribute", original_attribute)
    explained_again: list[str] = []

    def recording(self, example):
        explained_again.append(example.id)
        return original_attribute(self, example)

    monkeypatch.setattr(PerturbationMethod, "attribute", recording)
    resumed = run_grid(_grid(cut), tiny_slm)
    assert sum(scored) == 16  # the pool was not scored again
    assert len(explained_again) == 1 and explained_again[0] not in attributed
    (name,) = [p.name for p in (tmp_path / "whole" / "prompts").glob("*.json")]
    assert ((cut / "prompts" / name).read_text().split('"metadata"')[0]
            == (tmp_path / "whole" / "prompts" / name).read_text().split('"metadata"')[0])
    assert [r["accuracy"] for r in resumed["rows"]] == [r["accuracy"] for r in whole["rows"]]


def test_a_stop_while_ph_cot_writes_its_batch_keeps_the_replies_that_ended(tiny_model_dir,
                                                                          demo_pool, monkeypatch):
    """Ph-CoT writes its demonstrations' rationales in one batch (minutes on the capable
    model): each is checkpointed as its reply ends, so a stop mid-batch keeps those, and
    the rerun writes only the rest, the rationales an uninterrupted run writes."""
    from langchain_selfamplify import SLM
    from langchain_selfamplify.rationales import RationaleGenerator

    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                              decode_slots=2)
    examples = demo_pool[:4]
    whole = RationaleGenerator(backend=slm, method="ph_cot").explain(examples)
    kept: list[dict[str, str]] = []

    def checkpoint_then_stop(records: list[dict[str, str]]) -> None:
        kept.extend(records)
        raise KeyboardInterrupt  # the process killed just after the first reply was kept

    with pytest.raises(KeyboardInterrupt):
        RationaleGenerator(backend=slm, method="ph_cot").explain(
            examples, on_chunk=checkpoint_then_stop)
    assert len(kept) == 1
    resumed = RationaleGenerator(backend=slm, method="ph_cot")
    assert resumed.preload(kept) == 1
    written: list[int] = []
    original = slm.generate

    def counting(prompts, **kwargs):
        written.append(len(prompts))
        return original(prompts, **kwargs)

    monkeypatch.setattr(slm, "generate", counting)
    again = resumed.explain(examples)
    assert written == [len(examples) - 1]
    assert [ex.rationale for ex in again] == [ex.rationale for ex in whole]


def test_explaining_one_example_at_a_time_gives_the_rationales_of_one_batch(tiny_slm,
                                                                            demo_pool):
    """The checkpoint unit does not change a perturbation method's rationales: its
    coalitions are seeded per example."""
    from langchain_selfamplify.rationales import RationaleGenerator
    from langchain_selfamplify.rationales.methods.kernelshap import KernelShapRationale

    examples = demo_pool[:3]
    chunks: list[list[dict[str, str]]] = []
    generator = RationaleGenerator(backend=tiny_slm, method="kernelshap", k=2,
                                   method_kwargs={"n_samples": 8})
    one_by_one = generator.explain(examples, on_chunk=chunks.append)
    assert [len(chunk) for chunk in chunks] == [1, 1, 1]
    batch = KernelShapRationale(tiny_slm, k=2, n_samples=8).explain(examples)
    assert [ex.rationale for ex in one_by_one] == batch


def test_a_later_run_of_other_rows_reuses_the_pool_scores_and_rationales(tiny_slm, tmp_path,
                                                                         monkeypatch):
    """The table runs its rows in steps, each a new process: the pool scores AMPLIFY
    stored, and the rationales of a prompt built before, are read back, not recomputed."""
    from langchain_selfamplify.evaluation.grid import read_jsonl, run_grid
    from langchain_selfamplify.rationales.perturbation import PerturbationMethod
    from langchain_selfamplify.selection import selector as selector_module

    amplify_kwargs = {"amplify": {"folds": 2, "epochs": 1}}
    run_grid(_grid(tmp_path, methods=["amplify"], method_kwargs=amplify_kwargs), tiny_slm)
    assert len(read_jsonl(tmp_path / "checkpoints" / "demo__seed0" / "pool_scores.jsonl")) == 16

    def no_scoring(*args, **kwargs):
        raise AssertionError("the pool was scored again")

    monkeypatch.setattr(selector_module, "score_answers", no_scoring)
    more = _grid(tmp_path, methods=["amplify", "kernelshap"],
                 method_kwargs={**amplify_kwargs, "kernelshap": {"n_samples": 8}})
    run_grid(more, tiny_slm)
    # The KernelShap cell to build again, its prompt file lost: its rationales are stored.
    (tmp_path / "prompts" / "demo__kernelshap__error__seed0.json").unlink()
    (tmp_path / "cells.jsonl").write_text("")

    def no_explaining(*args, **kwargs):
        raise AssertionError("a demonstration was explained again")

    monkeypatch.setattr(PerturbationMethod, "attribute", no_explaining)
    run_grid(more, tiny_slm)
    assert (tmp_path / "prompts" / "demo__kernelshap__error__seed0.json").exists()
