"""Decisions the benchmark reports write from partial results (no model runs)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark(name: str) -> ModuleType:
    """A benchmark script as a module (the benchmarks import each other by name)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def zero_shot():
    return benchmark("zero_shot")


def cell(fmt, at_chance, finished=True):
    return {"model": "M", "dataset": "d", "answer_format": fmt, "at_chance": at_chance,
            "finished": finished}


@pytest.mark.parametrize(("cells", "decision", "kept"), [
    ([cell("letter", False)], "run the comparison", True),
    ([cell("letter", True), cell("cloze", False)], "run the comparison", True),
    ([cell("letter", True), cell("cloze", True)], "**at chance in every format: not run**",
     False),
    ([cell("letter", True)], "screen unfinished (cloze to do)", None),
    ([cell("letter", True), cell("cloze", True, finished=False)],
     "screen unfinished (cloze to do)", None),
    ([cell("letter", True), cell("cloze", False, finished=False)],
     "screen unfinished (cloze to do)", None),
    ([], "screen unfinished (letter, cloze to do)", None),
])
def test_a_dataset_is_dropped_only_when_every_format_is_finished_at_chance(
        zero_shot, cells, decision, kept):
    verdict = zero_shot.screen_decision(cells, "M", "d", ["letter", "cloze"])
    assert (verdict["decision"], verdict["kept"]) == (decision, kept)


def test_a_row_is_projected_at_its_least_full_chunk_rate():
    table_projection = benchmark("table_projection")
    # contention only slows a chunk: the least full chunk stands for the quiet machine
    assert table_projection.quiet_rate([(44.4, 32), (49.0, 100), (19.5, 100),
                                        (30.5, 200)]) == 19.5
    # a short last chunk is not a full one; with none full, the largest chunk stands
    assert table_projection.quiet_rate([(3.0, 8), (16.8, 64), (96.2, 4)]) == 16.8


def test_an_unmeasured_row_is_projected_at_its_own_method_before_a_stand_in():
    table_projection = benchmark("table_projection")
    assert table_projection.row_of("ph_cot", "error") == "ph_cot/error"
    assert table_projection.row_of("amplify", "proxy_mcs") == "amplify"
    assert table_projection.stand_in_of("ph_cot/error") == "ph_cot"
    assert table_projection.stand_in_of("auto_cot") == "ph_cot"
    measured = {"ph_cot": 700.0, "deeplift": 60.0}
    build = table_projection.build_seconds
    assert build("ph_cot/error", "ph_cot", measured) == 700.0  # same method, other strategy
    assert build("auto_cot", "ph_cot", measured) == 700.0  # its stand-in
    # no other method's prompt stands for KernelShap's 200 passes per demonstration
    assert build("kernelshap", "deeplift", measured) is None
    # ...until its explanations are measured alone: DeepLift's prompt plus them
    assert build("kernelshap", "deeplift", measured, 1800.0) == 1860.0
    assert build("kernelshap/error", "deeplift", {**measured, "kernelshap": 3600.0},
                 1800.0) == 3600.0  # its own cells, once run, win


def test_stage_rows_merge_building_and_answering_and_skip_unrecorded_cells():
    qwen_table_cost = benchmark("qwen_table_cost")
    rows = qwen_table_cost.stage_rows([
        {"cell": "old"},
        {"cell": "new", "answered": 200,
         "build_stage_seconds": {"pool_scoring": 40.0, "demo_rationales": 600.0, "other": 2.0},
         "answer_stage_seconds": {"test_rationales": 3000.0, "other": 5.0}}])
    assert rows == [["new", "40", "600", "0", "3000", "0", "7", 200]]


def test_each_cell_is_set_against_the_peak_of_the_cpu_that_finished_it(tmp_path, monkeypatch):
    qwen_table_cost = benchmark("qwen_table_cost")
    # a report from before the per-CPU record: its one peak is the AVX2 machines'
    (tmp_path / "qwen_table_cost.json").write_text(
        '{"gflops": 180.0, "gflops_measured": "at commit A"}', encoding="utf-8")
    monkeypatch.setattr(qwen_table_cost, "RESULTS", tmp_path)
    monkeypatch.setattr(qwen_table_cost, "cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(qwen_table_cost, "peak_gflops", lambda: 390.0)
    peaks = qwen_table_cost.machine_peaks(reuse=True)  # this CPU's is missing: measured
    assert {cpu: p["gflops"] for cpu, p in peaks.items()} == {"AVX2": 180.0, "AVX512": 390.0}
    assert "busy" in peaks["AVX512"]["measured"] and peaks["AVX2"]["measured"] == "at commit A"
    assert qwen_table_cost.cell_peak(peaks, "AVX512") == 390.0
    assert qwen_table_cost.cell_peak(peaks, None) == 180.0  # not recorded: the AVX2 peak
    assert qwen_table_cost.cell_peak(peaks, "NEON") == 180.0  # no peak measured for it
    # a report with the per-CPU record keeps every CPU's peak; --reuse-peak measures none
    (tmp_path / "qwen_table_cost.json").write_text(
        '{"peaks": {"AVX2": {"gflops": 180.0, "measured": "A"}, '
        '"AVX512": {"gflops": 400.0, "measured": "B"}}}', encoding="utf-8")
    assert qwen_table_cost.machine_peak(reuse=True) == (400.0, "B")
    assert qwen_table_cost.machine_peaks(reuse=False)["AVX512"]["gflops"] == 390.0
    # KernelShap's cost report, rewritten here, keeps the peak of the CPU it ran on
    kernelshap_cost = benchmark("kernelshap_cost")
    monkeypatch.setattr(kernelshap_cost, "cpu_capability", lambda: "AVX512")
    assert kernelshap_cost.peak(reuse=True, cpu="AVX2")[0] == 180.0
    assert kernelshap_cost.peak(reuse=True)[0] == 400.0
    # another CPU's peak is read, never measured: this machine's may be missing and busy
    monkeypatch.setattr(kernelshap_cost, "cpu_capability", lambda: "NEON")
    monkeypatch.setattr(qwen_table_cost, "cpu_capability", lambda: "NEON")
    monkeypatch.setattr(qwen_table_cost, "peak_gflops", lambda: pytest.fail("measured"))
    assert kernelshap_cost.peak(reuse=True, cpu="AVX2")[0] == 180.0


def test_the_gguf_load_headline_is_met_only_with_the_same_tensors_and_a_faster_load():
    gguf_load = benchmark("gguf_load")

    def run(off, read, same):
        loads = {gguf_load.LOADS[0]: {"seconds": off}, gguf_load.LOADS[1]: {"seconds": off + 1},
                 gguf_load.LOADS[2]: {"seconds": read}}
        return {"model": "m", "gguf_bytes": 2**30, "converted_bytes": 2**31, "loads": loads,
                "same_tensors": same}

    def met(*runs):
        return gguf_load.headline({"runs": list(runs)})[0]["met"]

    assert met(run(30.0, 5.0, True))
    assert not met(run(30.0, 5.0, True), run(30.0, 5.0, False))
    assert not met(run(30.0, 31.0, True))
    assert "| m | 1.00 | 30.0 | 31.0 | 5.0 | 6x | 2.00 | yes |" in gguf_load.report(
        {"runs": [run(30.0, 5.0, True)]})


def test_cores_busy_is_cpu_over_wall_seconds_of_the_records_that_have_both():
    harness = benchmark("harness")
    assert harness.cores_busy([{"seconds": 2.0}]) is None  # recorded before session 7
    assert harness.cores_busy([{"seconds": 2.0, "cpu_seconds": 3.0},
                               {"seconds": 1.0, "cpu_seconds": 0.0},
                               {"seconds": 5.0}]) == pytest.approx(1.0)


def test_the_paper_table_names_a_dataset_not_run_only_when_every_model_is_at_chance(
        tmp_path, monkeypatch):
    import json

    paper_table = benchmark("paper_table")
    monkeypatch.setattr(paper_table, "RESULTS", tmp_path)
    assert paper_table.screened_out(["qwen2.5-coder-1.5b"]) == []  # no screen yet
    names = paper_table.EMBEDDED_MODELS
    (tmp_path / "zero_shot.json").write_text(json.dumps({"decisions": [
        {"model": names["qwen2.5-coder-1.5b"], "dataset": "snarks", "kept": False},
        {"model": names["qwen2.5-coder-1.5b"], "dataset": "arc_challenge", "kept": True},
        {"model": names["qwen2.5-coder-1.5b"], "dataset": "causal_judgment", "kept": None},
        {"model": names["smollm2-135m"], "dataset": "snarks", "kept": True}]}))
    # an unfinished screen (kept None) decides nothing
    assert paper_table.screened_out(["qwen2.5-coder-1.5b"]) == ["snarks"]
    # a dataset another model of the table is above chance on is still run
    assert paper_table.screened_out(["qwen2.5-coder-1.5b", "smollm2-135m"]) == []


def test_the_paper_table_plans_its_whole_table_and_its_holm_families():
    import argparse

    from langchain_selfamplify.evaluation.grid_config import GridConfig

    paper_table = benchmark("paper_table")
    run = argparse.Namespace(datasets="arc_challenge", methods="io,ph_cot", strategies="success",
                             planned_datasets=None, planned_methods=None,
                             planned_strategies=None)
    config = GridConfig(datasets=["arc_challenge"], methods=["io", "ph_cot"],
                        strategies=["success"])
    # no plan: the family is this command's rows; the whole table every dataset the
    # screen keeps, every row, both strategies
    assert paper_table.planned_rows(config, run) == [("arc_challenge", "io", "random"),
                                                     ("arc_challenge", "ph_cot", "success")]
    datasets, methods, strategies = paper_table.whole_table(run, at_chance=["snarks"])
    assert datasets == ["arc_challenge", "commonsense_qa", "social_iqa", "causal_judgment"]
    assert (methods, strategies) == (paper_table.ALL_METHODS, ["success", "error"])
    planned = argparse.Namespace(**{**vars(run), "planned_datasets": "arc_challenge,social_iqa",
                                    "planned_methods": "io,ph_cot,deeplift",
                                    "planned_strategies": "success,error"})
    assert len(paper_table.planned_rows(config, planned)) == 2 * (1 + 2 * 2)
    assert paper_table.whole_table(planned, at_chance=[]) == (
        ["arc_challenge", "social_iqa"], ["io", "ph_cot", "deeplift"], ["success", "error"])


def test_the_dspy_cost_table_shows_the_longest_bootstrapping_reply_where_recorded():
    dspy_program = benchmark("dspy_program")
    assert dspy_program.replies_cell({"replies_generated": None}) == ""  # not a DSPy row
    assert dspy_program.replies_cell({"replies_generated": 16}) == "16"  # before session 9
    assert dspy_program.replies_cell({"replies_generated": 16, "longest_reply_tokens": 1024,
                                      "replies_at_cap": 1}) == (
        "16 (longest 1024 tokens, 1 at the cap)")


def test_the_paper_tables_resume_command_repeats_its_result_settings():
    import argparse

    paper_table = benchmark("paper_table")
    paper = argparse.Namespace(max_rationale_tokens=64, kernelshap_samples=200, dtype=None)
    assert paper_table._setting_options(paper) == ""  # the defaults: the paper's 200 samples
    small = argparse.Namespace(max_rationale_tokens=512, kernelshap_samples=32,
                               dtype="bfloat16")
    assert paper_table._setting_options(small) == (
        " --max-rationale-tokens 512 --kernelshap-samples 32 --dtype bfloat16")


def test_the_readme_names_which_wins_against_dspy_with_intervals(monkeypatch, tmp_path):
    readme_verdicts = benchmark("readme_verdicts")
    monkeypatch.setattr(readme_verdicts, "RESULTS", tmp_path)  # no saved program run

    def comparison(method, strategy, baseline, difference, verdict):
        return {"dataset": "d", "method": method, "strategy": strategy, "baseline": baseline,
                "seed": "all", "seeds": 3, "difference": difference,
                "ci_low": difference - 0.05, "ci_high": difference + 0.05, "p_value": 0.01,
                "verdict": verdict}

    accuracy = {"value": 0.6, "ci_low": 0.55, "ci_high": 0.65}
    grid = {"config": {"output_dir": str(tmp_path / "run" / "m__letter")}, "summary": {
        "rows": [{"dataset": "d", "method": "dspy_bootstrap", "seeds": [0, 1, 2],
                  "accuracy": accuracy}],
        "comparisons": [
            comparison("dspy_bootstrap", "bootstrap", "io", 0.01, "no detectable difference"),
            comparison("ph_cot", "success", "dspy_bootstrap", -0.10, "worse than"),
            comparison("deeplift", "success", "dspy_bootstrap", 0.08, "beats"),
            comparison("io", "random", "dspy_bootstrap", -0.01, "no detectable difference")]}}
    [line] = readme_verdicts.dspy_side_by_side(grid)
    assert "DSPy BootstrapFewShot 60.0% [55.0%, 65.0%] over 3 seed(s)" in line
    assert "minus IO +1.0 pts [-4.0, +6.0]" in line
    assert "Self-AMPLIFY Ph-CoT (success) -10.0 pts [-15.0, -5.0], p=0.01 over 3" in line
    assert ("**Self-AMPLIFY DeepLift (success) beats DSPy; "
            "DSPy beats Self-AMPLIFY Ph-CoT (success).**") in line
    assert "IO -1.0" not in line  # IO's difference is stated once, as DSPy minus IO


@pytest.fixture
def reporting_harness(monkeypatch, tmp_path):
    """The benchmarks' harness writing into ``tmp_path``, at commit ``REPORTING``."""
    harness = benchmark("harness")
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    monkeypatch.setattr(harness, "git_commit", lambda: "REPORTING")
    monkeypatch.setattr(harness, "update_readme_performance", lambda: None)
    return harness


def test_a_rewritten_report_keeps_the_measurements_own_command_and_commit(reporting_harness,
                                                                        tmp_path):
    harness = reporting_harness
    (tmp_path / "bench.json").write_text(
        '{"value": 1, "command": "python bench.py --big", "commit": "MEASURED", '
        '"machine": {"cpus": 2}}', encoding="utf-8")
    args = type("Args", (), {"report_only": True})()
    for _ in range(2):  # a second rewrite still names the measurement
        assert harness.rewrote_saved_report(args, "bench", lambda p: f"# {p['value']}",
                                            lambda p: [])
        saved = harness.saved_results("bench")
        assert saved["measured"] == {"command": "python bench.py --big",
                                     "commit": "MEASURED", "machine": {"cpus": 2}}
        assert saved["commit"] == "REPORTING"
    footnote = (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert "Measured by `python bench.py --big` at commit `MEASURED`" in footnote
    assert "at commit `REPORTING`" in footnote


def test_a_rewrite_may_amend_derived_values_but_keeps_the_measurement(reporting_harness,
                                                                    tmp_path):
    harness = reporting_harness
    (tmp_path / "bench.json").write_text(
        '{"seconds": 10, "gflops": 74, "command": "python bench.py", "commit": "MEASURED"}',
        encoding="utf-8")
    args = type("Args", (), {"report_only": True})()
    assert harness.rewrote_saved_report(
        args, "bench", lambda p: f"# {p['seconds']} s at {p['gflops']}", lambda p: [],
        amend=lambda saved: {**saved, "gflops": 179})
    saved = harness.saved_results("bench")
    assert (saved["seconds"], saved["gflops"]) == (10, 179)
    assert saved["measured"] == {"command": "python bench.py", "commit": "MEASURED"}
    assert (tmp_path / "bench.md").read_text(encoding="utf-8").startswith("# 10 s at 179")


def test_the_readme_counts_a_partial_table_against_its_whole_plan():
    readme_verdicts = benchmark("readme_verdicts")
    cells = [{"status": "done"}] * 21 + [{"status": "todo"}] * 3
    config = {"datasets": ["demo"], "methods": ["io"], "strategies": ["success"],
              "seeds": [0]}
    grid = {"summary": {"cells": cells}, "config": config, "planned_cells": 108}
    assert readme_verdicts.partial_note(grid) == ", **partial: 21 of 108 cells**"
    assert readme_verdicts.partial_note({**grid, "planned_cells": 21}) == ""


def test_a_pooled_comparison_is_marked_partial_while_one_of_its_cells_runs():
    readme_verdicts = benchmark("readme_verdicts")
    comparison = {"dataset": "d", "method": "ph_cot", "strategy": "success",
                  "baseline": "io", "n": 12, "seeds": 1}

    def row(method, strategy, partial):
        return {"dataset": "d", "method": method, "strategy": strategy, "partial": partial}

    running = {"rows": [row("io", "random", 0), row("ph_cot", "success", 1)]}
    assert readme_verdicts.paired_scope(comparison, running) == (
        "over 12 questions, 1 seed(s) (**partial**: a cell is unfinished)")
    other = {"rows": [row("io", "random", 0), row("ph_cot", "success", 0),
                      row("ph_cot", "error", 1)]}  # another row's cell
    assert readme_verdicts.paired_scope(comparison, other) == "over 12 questions, 1 seed(s)"


def test_the_capable_model_headline_reads_ph_cots_success_row_not_its_error_row(
        tmp_path, monkeypatch):
    import json

    readme_verdicts = benchmark("readme_verdicts")

    def row(method, strategy, value, seeds, cut):
        return {"dataset": "d", "method": method, "strategy": strategy, "partial": 0,
                "seeds": list(range(seeds)), "truncation_rates": [cut] * seeds if cut else [],
                "accuracy": {"value": value, "ci_low": value - 0.05, "ci_high": value + 0.05}}

    comparison = {"dataset": "d", "method": "ph_cot", "strategy": "success", "baseline": "io",
                  "seed": "all", "n": 200, "seeds": 3, "difference": -0.09, "ci_low": -0.16,
                  "ci_high": -0.02, "p_value": 0.016, "verdict": "no detectable difference"}
    summary = {"rows": [row("io", "random", 0.60, 3, None),
                        row("ph_cot", "success", 0.51, 3, 0.002),
                        row("ph_cot", "error", 0.535, 1, 0.01)],  # after success, as in the run
               "comparisons": [comparison], "cells": []}
    (tmp_path / "paper_table_qwen.json").write_text(json.dumps({"grids": [{
        "summary": summary, "config": {"max_rationale_tokens": 512, "test_size": 200}}]}))
    monkeypatch.setattr(readme_verdicts, "RESULTS", tmp_path)
    first = readme_verdicts.capable_model_headline().splitlines()[0]
    assert first.startswith("- **d**: IO 60.0% [55.0%, 65.0%] over 3 seed(s), Self-AMPLIFY "
                            "Ph-CoT (success) 51.0% [46.0%, 56.0%] over 3 (its test-time "
                            "rationales cut at their cap of at least 512 tokens: 0.2%)")


def test_the_paper_claim_says_whether_ph_cot_has_the_largest_gain_of_the_rows_run():
    readme_verdicts = benchmark("readme_verdicts")

    def comparison(method, strategy, difference, seeds=3, dataset="d"):
        return {"dataset": dataset, "method": method, "strategy": strategy,
                "baseline": "io", "seed": "all", "difference": difference, "seeds": seeds}

    grid = {"summary": {"comparisons": [
        comparison("ph_cot", "success", -0.09), comparison("deeplift", "success", -0.07, 1),
        comparison("amplify", "proxy_mcs", 0.05),  # a baseline, not a Self-AMPLIFY row
        comparison("ph_cot", "success", 0.02, dataset="other")]}}
    note = readme_verdicts._best_row_note(grid, "d")
    assert note.startswith(" Among the 2 Self-AMPLIFY rows run there, largest gain first: "
                           "DeepLift (success) -7.0 pts (1 seed(s)); Ph-CoT (success) -9.0")
    assert "no Ph-CoT row's is the largest (DeepLift (success)'s is)" in note
    assert "AMPLIFY" not in note.replace("Self-AMPLIFY", "")
    assert readme_verdicts._best_row_note(grid, "other") == ""  # one row: nothing to order
    # Ph-CoT's error row leading is Ph-CoT leading, though not its success row.
    grid["summary"]["comparisons"].append(comparison("ph_cot", "error", -0.05))
    assert ("a Ph-CoT row's is the largest (Ph-CoT (error)'s, not Ph-CoT (success)'s)"
            in readme_verdicts._best_row_note(grid, "d"))
    grid["summary"]["comparisons"].append(comparison("ph_cot", "success", 0.01, dataset="d"))
    assert "Ph-CoT (success)'s is the largest" in readme_verdicts._best_row_note(grid, "d")


def test_the_dtype_speed_report_keeps_one_record_per_cpu_capability():
    dtype_speed = benchmark("dtype_speed")
    run = {"prefill_seconds": 2.0, "prompt_tokens": 10, "decode_seconds": 4.0,
           "decode_tokens": 8, "predicted": ["A"]}
    legacy = {"model": "m", "cpu_capability": "AVX2", "command": "python old.py",
              "commit": "OLD", "runs": [{**run, "dtype": "float32"}, {**run, "dtype": "bfloat16"}],
              "bfloat16_prefill_time_ratio": 4.6, "bfloat16_decode_time_ratio": 2.4}
    step = {"rows": 64, "seconds_per_step": 1.0}
    new = {"cpu_capability": "AVX512", "command": "python new.py", "commit": "NEW",
           "runs": [{**run, "dtype": "float32", "table_step": step},
                    {**run, "dtype": "bfloat16", "table_step": {**step, "seconds_per_step": 0.5}}],
           "bfloat16_prefill_time_ratio": 0.3, "bfloat16_decode_time_ratio": 0.4,
           "table_rows": 64, "bfloat16_table_step_time_ratio": 0.5}
    payload = dtype_speed.merged(legacy, "m", new)
    assert list(payload["hosts"]) == ["AVX2", "AVX512"]
    assert payload["hosts"]["AVX2"]["commit"] == "OLD"  # the older machine's provenance
    assert dtype_speed.merged(payload, "m", {**new, "commit": "NEWER"})["hosts"]["AVX512"][
        "commit"] == "NEWER"
    assert list(dtype_speed.merged(payload, "other", new)["hosts"]) == ["AVX512"]
    rows = dtype_speed.headline(payload)
    assert [row["target"].split("`")[1] for row in rows] == ["AVX2", "AVX512"]
    assert "0.50x for a table decoding step" in rows[1]["result"]
    text = dtype_speed.report(payload)
    assert "Measured by `python old.py` at commit `OLD`" in text
    assert "**0.50x float32's time (faster)** for a decoding step of 64" in text


def test_a_float32_table_says_bfloat16_was_checked_only_for_the_model_it_was_checked_on(
        monkeypatch, tmp_path):
    paper_table = benchmark("paper_table")
    monkeypatch.setattr(paper_table, "RESULTS", tmp_path)
    assert paper_table._dtype_note(None, ["m"]) == ["Model weights and activations in float32.",
                                                   ""]
    (tmp_path / "dtype_agreement.json").write_text(
        '{"model": "m", "n": 400, "agreement": 0.8025, "allowed": false, '
        '"least_agreement": 0.98, "least_questions": 200}', encoding="utf-8")
    checked = paper_table._dtype_note("float32", ["m"])[0]
    assert "bfloat16 was checked and not used: on 400 questions" in checked
    assert "80.2%" in checked and "**not met**" in checked
    assert "checked" not in paper_table._dtype_note(None, ["other"])[0]
    assert paper_table._dtype_note("bfloat16", ["m"])[0].startswith("Run in bfloat16: on 400")


def test_the_dtype_agreement_compares_demonstrations_by_id_and_rationales_by_question(tmp_path):
    from langchain_selfamplify import AmplifiedPrompt, MCQExample

    agreement = benchmark("dtype_agreement")
    prompts = []
    for name, order in (("a", [("x", "r1"), ("y", "r2")]), ("b", [("y", "r2"), ("x", "other")])):
        path = tmp_path / f"{name}.json"
        examples = [MCQExample(id=i, question="?", choices={"A": "a", "B": "b"},
                               answer="A").with_rationale(r) for i, r in order]
        AmplifiedPrompt(examples=examples).save(path)  # as the grid saves a cell's prompt
        prompts.append(path)
    # the same two demonstrations in another order; one rationale differs
    assert agreement.same_demonstrations(*prompts) == {
        "demonstrations": 2, "same_demonstrations": 2, "same_rationales": 1}
    record = {"parsed": "A", "correct": True, "raw_output": "Step 1"}
    row = agreement.slice_row("s", [(record, record), (record, {**record, "raw_output": "Step"}),
                                    ({**record, "raw_output": None}, record)])
    assert (row["n"], row["identical"], row["rationales"], row["rationales_identical"]) == (
        3, 3, 2, 1)
    assert "rationales" not in agreement.slice_row("s", [({**record, "raw_output": None},) * 2])


def test_the_readme_names_each_verdict_against_io_with_a_p_value_that_is_not_zero():
    readme_verdicts = benchmark("readme_verdicts")
    tested = [("M", "letter", {"dataset": "d", "method": "self_topk", "strategy": "success",
                               "p_value": 0.00031, "verdict": "worse than", "family_size": 24,
                               "seeds": 1}),
              ("M", "letter", {"dataset": "d", "method": "ph_cot", "strategy": "success",
                               "p_value": 0.2, "verdict": "no detectable difference",
                               "family_size": 24})]
    [line] = readme_verdicts._multiple_comparisons(tested)
    assert line.endswith(
        "M, letter, d, self_topk (success): p=0.00031 over 1 seed(s), worse than IO.")
    assert "These lists hold 2 paired" in line



def test_the_capable_model_headline_names_the_other_rows_a_paired_test_tells_apart():
    readme_verdicts = benchmark("readme_verdicts")

    def comparison(method, verdict, difference):
        return {"dataset": "arc", "method": method, "strategy": "success", "baseline": "io",
                "seed": "all", "seeds": 2, "n": 200, "difference": difference,
                "ci_low": difference - 0.05, "ci_high": difference + 0.05,
                "p_value": 0.0003, "verdict": verdict}

    summary = {"rows": [], "comparisons": [
        comparison("ph_cot", "worse than", -0.09),  # stated on its own line
        comparison("self_topk", "worse than", -0.115),
        comparison("deeplift", "no detectable difference", -0.07)]}
    line = readme_verdicts.other_rows_line(summary)
    assert "(2 paired tests against IO)" in line
    assert ("arc, Self-AMPLIFY Self_topk (success) -11.5 pts [-16.5, -6.5], p=0.0003 over "
            "200 questions, 2 seed(s): **worse than IO**; no other differs detectably.") in line
    assert "Ph-CoT" not in line and "DeepLift" not in line
    summary["comparisons"][1]["verdict"] = "no detectable difference"
    assert readme_verdicts.other_rows_line(summary).endswith(
        "none differs detectably from IO.")


def test_the_rationale_lengths_report_names_each_cell_over_the_bound_and_sums_the_rest():
    lengths = benchmark("qwen_rationale_lengths")
    row = {"cap": 512, "n": 200}
    tests = [{**row, "cell": "a", "cut": 1, "cut_share": 0.005},
             {**row, "cell": "b", "cut": 12, "cut_share": 0.06}]
    *over, total = lengths.test_time_verdicts(tests)
    assert over == ["- test time, b: 6.0% reached the 512-token cap (**over the 5% bound**)"]
    assert total == ("- test time, all 2 cells: 13 of 400 rationales reached their cap; "
                     "1 cell(s) over the 5% bound (most: 6.0%, b)")
    [total] = lengths.test_time_verdicts(tests[:1])
    assert total.endswith("none over the 5% bound (most: 0.5%, a)")
    assert lengths.test_time_verdicts([]) == []
