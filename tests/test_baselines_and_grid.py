"""The AMPLIFY baseline, the evaluation grid, its resume, table and figure."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from langchain_selfamplify import SLM, load_demo_set, parse_answer
from langchain_selfamplify.baselines import Amplify
from langchain_selfamplify.cli import app
from langchain_selfamplify.evaluation import grid as grid_module
from langchain_selfamplify.evaluation.grid import GridConfig, grid_cells, read_jsonl, run_grid
from langchain_selfamplify.evaluation.report import cut_share, grid_figure, grid_table
from langchain_selfamplify.selection.selector import SelfAmplifySelector
from tests.conftest import real_or_demo_pool


def test_amplify_selects_model_errors_by_proxy_confidence(tiny_slm):
    pool = real_or_demo_pool(24)
    builder = Amplify(tiny_slm, n=3, k=3, epochs=1, folds=2)
    prompt = builder.build(pool)
    scores = {s.example.id: s for s in SelfAmplifySelector(
        backend=tiny_slm, examples=pool, strategy="error", n=1).score_pool()}
    assert all(not scores[ex.id].correct for ex in prompt.examples)
    mcs = [builder.misclassification_confidence(ex) for ex in prompt.examples]
    assert mcs == sorted(mcs, reverse=True)
    wrong = [s.example for s in scores.values() if not s.correct]
    assert max(builder.misclassification_confidence(ex) for ex in wrong) == pytest.approx(mcs[0])
    for ex in prompt.examples:
        assert ex.rationale.startswith("The key words: '")
        assert ex.rationale.endswith(f"are important clues to predict ({ex.answer}) as the "
                                     "correct answer.")


def test_an_unknown_amplify_setting_is_refused_before_any_work(tmp_path):
    from langchain_selfamplify.errors import UnknownNameError

    config = small_grid(tmp_path, methods=["io", "amplify"],
                        method_kwargs={"amplify": {"fold": 2}})
    with pytest.raises(UnknownNameError, match="Unknown AMPLIFY setting 'fold'.*folds"):
        config.validate_names()


def small_grid(tmp_path, **overrides):
    settings = {"datasets": ["demo"], "methods": ["io", "feature_ablation"],
                "strategies": ["random", "error"], "seeds": [0], "shots": 2, "k": 2,
                "pool_size": 16, "test_size": 6, "max_rationale_tokens": 4,
                "output_dir": str(tmp_path)}
    return GridConfig(**{**settings, **overrides})


def test_grid_resumes_after_an_interruption_without_duplicates(tiny_slm, tmp_path, monkeypatch):
    whole = run_grid(small_grid(tmp_path / "whole"), tiny_slm, chunk_size=2)
    original = grid_module.answer_questions
    calls = {"n": 0}

    def dies_on_the_fourth_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # stands for the process being killed
        return original(*args, **kwargs)

    monkeypatch.setattr(grid_module, "answer_questions", dies_on_the_fourth_chunk)
    with pytest.raises(KeyboardInterrupt):
        run_grid(small_grid(tmp_path / "resumed"), tiny_slm, chunk_size=2)
    partial = read_jsonl(tmp_path / "resumed" / "predictions.jsonl")
    assert 0 < len(partial) < 3 * 6
    monkeypatch.setattr(grid_module, "answer_questions", original)
    resumed = run_grid(small_grid(tmp_path / "resumed"), tiny_slm, chunk_size=2)
    def without_time(summary):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in summary["rows"]]

    assert without_time(resumed) == without_time(whole)
    lines = read_jsonl(tmp_path / "resumed" / "predictions.jsonl")
    keys = [(r["cell"], r["question_id"]) for r in lines]
    assert len(keys) == len(set(keys)) == len(grid_cells(small_grid(tmp_path))) * 6
    # the same test questions in every cell
    by_cell = {}
    for r in lines:
        by_cell.setdefault(r["cell"], set()).add(r["question_id"])
    assert len({frozenset(v) for v in by_cell.values()}) == 1


def test_a_stop_inside_a_chunk_keeps_its_answers_already_read(tiny_slm, tmp_path,
                                                              monkeypatch):
    """Rationale answers are written as each one is read, not when their chunk ends: a
    stop in the middle of a chunk of 6 keeps the answers before it, and the rerun
    answers only the rest."""
    config = small_grid(tmp_path / "cut", methods=["ph_cot"], strategies=["random"])
    whole = run_grid(small_grid(tmp_path / "whole", methods=["ph_cot"],
                                strategies=["random"]), tiny_slm, chunk_size=6)
    original = grid_module.append_jsonl
    written = []

    def stops_at_the_fourth_answer(path, records):
        records = list(records)
        if path.name == "predictions.jsonl":
            if len(written) == 3:
                raise KeyboardInterrupt  # stands for the process being killed
            written.extend(records)
        original(path, records)

    monkeypatch.setattr(grid_module, "append_jsonl", stops_at_the_fourth_answer)
    with pytest.raises(KeyboardInterrupt):
        run_grid(config, tiny_slm, chunk_size=6)
    kept = read_jsonl(tmp_path / "cut" / "predictions.jsonl")
    assert [r["question_id"] for r in kept] == [r["question_id"] for r in written]
    assert len(kept) == 3 and len({r["chunk_started"] for r in kept}) == 1
    monkeypatch.setattr(grid_module, "append_jsonl", original)
    resumed = run_grid(config, tiny_slm, chunk_size=6)
    lines = read_jsonl(tmp_path / "cut" / "predictions.jsonl")
    assert lines[:3] == kept
    assert sorted(r["question_id"] for r in lines) == sorted(
        r["question_id"] for r in read_jsonl(tmp_path / "whole" / "predictions.jsonl"))
    assert [r["accuracy"] for r in resumed["rows"]] == [r["accuracy"] for r in whole["rows"]]


def test_a_cell_that_cannot_run_fails_with_its_reason(tiny_model_dir, tmp_path):
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", gradients=False,
                              show_progress=False)
    summary = run_grid(small_grid(tmp_path, methods=["io", "deeplift"],
                                  strategies=["random"]), slm)
    table = grid_table(summary)
    assert "failed: deeplift needs gradients" in table
    assert "| IO | " in table and "n=6" in table
    figure = grid_figure(summary, tmp_path / "figure.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {r["method"]: r for r in summary["rows"]}
    assert rows["io"]["n"] == 6 and "accuracy" not in rows["deeplift"]
    assert rows["deeplift"]["failed"][0].startswith("deeplift needs gradients")


def test_generate_mode_reads_answers_from_free_text(tiny_slm, tmp_path):
    summary = run_grid(small_grid(tmp_path, methods=["io"], answer_mode="generate"), tiny_slm)
    (row,) = summary["rows"]
    lines = read_jsonl(tmp_path / "predictions.jsonl")
    assert row["n"] == len(lines) == 6
    assert row["unparsed"] == sum(r["parsed"] is None for r in lines)
    questions = {q.id: q for q in load_demo_set("test")}
    for record in lines:  # each answer is what the parser reads in the model's own text
        question = questions[record["question_id"]]
        assert record["parsed"] == parse_answer("The answer is (" + record["raw_output"],
                                                question.labels,
                                                list(question.choices.values()))
        assert record["correct"] == (record["parsed"] == record["gold"])


def test_evaluate_command_rejects_unknown_names(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "--datasets", "arc", "--output-dir",
                                 str(tmp_path)])
    assert result.exit_code == 2 and "Known dataset names: arc_challenge" in result.output
    result = runner.invoke(app, ["evaluate", "--methods", "io,cot", "--output-dir",
                                 str(tmp_path)])
    assert result.exit_code == 2 and "Unknown method 'cot'" in result.output
    assert not (tmp_path / "predictions.jsonl").exists()


def test_evaluate_command_writes_table_and_figure(tiny_model_dir, tmp_path):
    result = CliRunner().invoke(app, [
        "evaluate", "--model", str(tiny_model_dir), "--methods", "io", "--shots", "2",
        "--pool-size", "8", "--test-size", "4", "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "| IO |" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "figure.png").exists()
    assert json.loads((tmp_path / "config.json").read_text())["shots"] == 2


def test_a_grid_resumes_with_more_cells_keeping_the_finished_ones(tiny_slm, tmp_path):
    from langchain_selfamplify.stages import cpu_capability

    run_grid(small_grid(tmp_path, methods=["io"], strategies=["random"]), tiny_slm)
    first = (tmp_path / "predictions.jsonl").read_bytes()
    summary = run_grid(small_grid(tmp_path, methods=["io", "feature_ablation"],
                                  strategies=["random"]), tiny_slm)
    assert (tmp_path / "predictions.jsonl").read_bytes().startswith(first)
    records = [json.loads(line) for line in (tmp_path / "cells.jsonl").read_text().splitlines()]
    assert [r["method"] for r in records] == ["io", "feature_ablation"]  # IO not run again
    # each cell records the process's peak memory so far (a model is loaded: > 50 MiB)
    assert all(r["peak_rss_mib"] > 50 for r in records)
    # and the CPU it ran on, as seconds compare only within one kind of machine
    assert {r["cpu_capability"] for r in records} == {cpu_capability()}
    assert summary["predictions"] == 12


def test_resuming_with_other_settings_is_refused(tiny_slm, tmp_path):
    from langchain_selfamplify import SelfAmplifyError

    run_grid(small_grid(tmp_path, methods=["io"]), tiny_slm)
    with pytest.raises(SelfAmplifyError, match="other settings"):
        run_grid(small_grid(tmp_path, methods=["io"], test_size=5), tiny_slm)


def test_a_method_no_cell_has_used_may_change_its_settings_on_resume(tiny_slm, tmp_path):
    from langchain_selfamplify import SelfAmplifyError

    # KernelShap's samples may change before its first cell...
    run_grid(small_grid(tmp_path, methods=["io", "feature_ablation"],
                        method_kwargs={"kernelshap": {"n_samples": 8}}), tiny_slm)
    run_grid(small_grid(tmp_path, methods=["io", "feature_ablation"],
                        method_kwargs={"kernelshap": {"n_samples": 16}}), tiny_slm)
    # ...but not those of a method whose cells ran
    with pytest.raises(SelfAmplifyError, match="other settings"):
        run_grid(small_grid(tmp_path, methods=["io", "feature_ablation"],
                            method_kwargs={"feature_ablation": {"n_samples": 4}}), tiny_slm)


def test_a_cell_reads_back_from_its_key():
    from langchain_selfamplify.evaluation.grid_config import Cell

    cell = Cell(dataset="arc_challenge", method="ph_cot", strategy="success", seed=12)
    assert Cell.from_key(cell.key) == cell
    from_file = Cell(dataset="/data/my__set.jsonl", method="io", strategy="random", seed=0)
    assert Cell.from_key(from_file.key) == from_file.model_copy(update={"dataset": "my__set"})
    for not_a_key in ("notes", "a__b__c", "a__b__c__seedx", "a__b__c__d"):
        assert Cell.from_key(not_a_key) is None


def test_run_grid_sizes_its_holm_families_from_the_planned_table(tiny_slm, tmp_path):
    config = small_grid(tmp_path, strategies=["random"])
    planned = small_grid(tmp_path, strategies=["random", "error"],
                         methods=["io", "feature_ablation", "deeplift"]).rows()
    summary = run_grid(config, tiny_slm, planned=planned)
    pooled = [c for c in summary["comparisons"] if c["seed"] == "all"]
    assert [(c["family_size"], c["family_finished"]) for c in pooled] == [(4, 1)]


def test_the_pool_is_scored_once_per_dataset_and_seed_and_stages_are_timed(
        tiny_slm, tmp_path, monkeypatch):
    import time

    from langchain_selfamplify.selection import selector as selector_module
    from langchain_selfamplify.stages import STAGES, measure_stages

    scored = []
    original = selector_module.score_answers

    def counting(slm, prompts, *args, **kwargs):
        scored.append(len(prompts))
        return original(slm, prompts, *args, **kwargs)

    monkeypatch.setattr(selector_module, "score_answers", counting)
    config = small_grid(tmp_path, methods=["io", "amplify", "feature_ablation", "self_topk"],
                        strategies=["error", "success"], seeds=[0, 1],
                        method_kwargs={"amplify": {"folds": 2, "epochs": 1}})
    started = time.perf_counter()
    with measure_stages() as log:
        summary = run_grid(config, tiny_slm)
    total = time.perf_counter() - started
    assert sum(scored) == 2 * 16  # one pool of 16 per seed, for AMPLIFY and 8 ranked cells
    assert len(summary["rows"]) == 6  # io, amplify, 2 methods x 2 strategies
    assert all(row["n"] == 2 * 6 for row in summary["rows"])  # 6 questions x 2 seeds
    assert [json.loads(line)["status"] for line in
            (tmp_path / "cells.jsonl").read_text().splitlines()] == ["done"] * 12
    assert set(log.seconds) <= {*STAGES, "other"}
    for name in ("pool_scoring", "demo_rationales", "test_rationales", "answer_scoring"):
        assert log.seconds[name] > 0, name
    assert sum(log.seconds.values()) == pytest.approx(total, rel=0.05)


def test_answers_and_prompts_record_cpu_time_beside_wall_time(tiny_slm, tmp_path):
    """The cost reports read cores busy (CPU over wall seconds) from these fields."""
    run_grid(small_grid(tmp_path, methods=["io", "feature_ablation"], strategies=["random"]),
             tiny_slm, chunk_size=3)
    records = read_jsonl(tmp_path / "predictions.jsonl")
    assert records and all(r["cpu_seconds"] >= 0 and r["seconds"] >= 0 for r in records)
    assert sum(r["cpu_seconds"] for r in records) > 0
    built = json.loads((tmp_path / "prompts" / "demo__feature_ablation__random__seed0.json"
                        ).read_text())["metadata"]
    assert built["build_cpu_seconds"] > 0 and built["build_seconds"] > 0
    # per stage too: the cost reports split a cell's time from these
    assert built["build_stage_seconds"]["demo_rationales"] > 0
    assert sum(built["build_stage_seconds"].values()) <= built["build_seconds"] + 0.01
    done = [c for c in read_jsonl(tmp_path / "cells.jsonl") if c["status"] == "done"]
    assert [c["answered"] for c in done] == [6, 6]
    for cell in done:
        assert sum(cell["answer_stage_seconds"].values()) <= cell["seconds"] + 0.01
    io, rationale = done  # grid order; a rationale row's fused pass reads its answers too
    assert io["answer_stage_seconds"]["answer_scoring"] > 0
    assert rationale["answer_stage_seconds"]["test_rationales"] > 0


def test_stage_logs_nest_and_every_active_log_sees_every_mark():
    import time

    from langchain_selfamplify.stages import measure_stages, stage

    with measure_stages() as outer, stage("demo_rationales"):
        with measure_stages() as inner:
            time.sleep(0.02)  # charged to the stage the inner block opened in
            with stage("answer_scoring"):
                time.sleep(0.02)
        time.sleep(0.01)
    assert set(inner.totals()) == {"demo_rationales", "answer_scoring"}
    assert inner.seconds["answer_scoring"] >= 0.02
    assert outer.seconds["answer_scoring"] == pytest.approx(inner.seconds["answer_scoring"],
                                                             abs=1e-3)
    assert outer.seconds["demo_rationales"] >= 0.03
    assert list(outer.totals()) == ["demo_rationales", "answer_scoring", "other"]


def test_a_grids_recorded_config_covers_every_cell_it_ran(tmp_path):
    """config.json names its last run's cell lists only; reading results back needs the
    datasets and seeds of every run, a cell still answering included."""
    from langchain_selfamplify.checkpoint import append_jsonl
    from langchain_selfamplify.evaluation.grid_state import recorded_config

    config = GridConfig(datasets=["commonsense_qa"], seeds=[1], output_dir=str(tmp_path))
    (tmp_path / "config.json").write_text(config.model_dump_json())
    append_jsonl(tmp_path / "cells.jsonl", [{"cell": "a", "dataset": "arc_challenge",
                                             "seed": 0, "status": "done"}])
    append_jsonl(tmp_path / "predictions.jsonl", [{"cell": "b", "dataset": "commonsense_qa",
                                                   "seed": 2, "question_id": "q"}])
    recorded = recorded_config(tmp_path)
    assert recorded.datasets == ["commonsense_qa", "arc_challenge"]
    assert recorded.seeds == [0, 1, 2]
    assert recorded.model_dump(exclude={"datasets", "seeds"}) == config.model_dump(
        exclude={"datasets", "seeds"})


def test_the_table_flags_a_row_whose_rationales_are_cut_over_a_tenth():
    def row(method, rates):
        return {"dataset": "d", "method": method, "strategy": "success", "n": 20,
                "accuracy": {"value": 0.5, "ci_low": 0.3, "ci_high": 0.7},
                "seed_accuracies": [0.5, 0.5], "top_label_shares": [0.3, 0.4],
                "flagged": False, "truncation_rates": rates, "failed": []}

    summary = {"rows": [row("io", []), row("ph_cot", [0.15, 0.1]),
                        row("self_topk", [0.1, 0.1])]}
    lines = grid_table(summary).splitlines()
    assert "cut" not in lines[2]  # IO writes no rationale
    assert "cut 12% ✂" in lines[3]  # the seeds' mean, over the 10% flag
    assert "cut 10%)" in lines[4]  # at the flag is not over it
    assert [cut_share(r) for r in summary["rows"]] == [None, 0.125, 0.1]
