"""Paired statistics: exact McNemar, paired bootstrap, sign-flip p-values over seeds and
questions, Holm families, and the grid summaries' verdicts built on them."""

from __future__ import annotations

import pytest

from langchain_selfamplify.evaluation.statistics import (
    compare_across_seeds,
    compare_paired,
    mcnemar_exact,
    paired_bootstrap,
    paired_permutation_p,
)

# ----------------------------------------------------------------- statistics


@pytest.mark.parametrize(("b", "c", "expected"), [
    (0, 0, 1.0),            # no discordant question
    (3, 3, 1.0),            # balanced discordance
    (0, 5, 2 / 32),         # 2 * P(X <= 0), X ~ Bin(5, 1/2)
    (1, 4, 2 * 6 / 32),     # 2 * (1 + 5) / 32
    (2, 10, 2 * (1 + 12 + 66) / 4096),
])
def test_exact_mcnemar_matches_hand_worked_binomial_tails(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected)
    assert mcnemar_exact(c, b) == pytest.approx(expected)


def test_paired_bootstrap_on_hand_worked_cases():
    assert paired_bootstrap([1, 0, 1], [1, 0, 1]) == (0.0, 0.0, 0.0)
    assert paired_bootstrap([1] * 10, [0] * 10) == (1.0, 1.0, 1.0)
    # Differences: 50 ones and 50 zeros -> mean 0.5, standard error 0.05.
    diff, low, high = paired_bootstrap([1] * 100, [0] * 50 + [1] * 50, seed=3)
    assert diff == 0.5
    assert 0.5 - 1.96 * 0.05 - 0.02 < low < 0.5 - 1.96 * 0.05 + 0.02
    assert 0.5 + 1.96 * 0.05 - 0.02 < high < 0.5 + 1.96 * 0.05 + 0.02
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1, 0], [1])


def test_paired_comparison_counts_discordant_questions_and_gives_verdicts():
    method = {f"q{i}": True for i in range(40)}
    baseline = {f"q{i}": i < 10 for i in range(40)}
    result = compare_paired(method, baseline)
    assert (result.n, result.method_only, result.baseline_only) == (40, 30, 0)
    assert result.difference == pytest.approx(0.75)
    assert result.p_value == pytest.approx(2 / 2**30)
    # 30 of 40 differences at +1: the bootstrap's 2.5% and 97.5% points of a
    # Binomial(40, 0.75) count, over 40 (sd of the mean 0.068)
    assert 0.75 - 2 * 0.068 - 0.03 < result.ci_low < 0.75 - 2 * 0.068 + 0.03
    assert result.ci_high * 40 == round(result.ci_high * 40) and result.ci_high <= 0.9
    assert result.verdict == "beats"
    assert compare_paired(baseline, method).verdict == "worse than"
    same = compare_paired(method, method)
    assert (same.verdict, same.p_value) == ("no detectable difference", 1.0)


def test_across_seeds_averages_per_question_differences_on_shared_questions():
    method = {0: {"a": True, "b": True, "c": False}, 1: {"a": True, "b": False, "c": False}}
    baseline = {0: {"a": False, "b": True, "c": False}, 1: {"a": False, "b": True, "c": False,
                                                         "extra": True}}
    result = compare_across_seeds(method, baseline)
    # per question, summed over seeds: a: +2, b: -1, c: 0 -> mean 1 / (3 questions x 2 seeds)
    assert result.difference == pytest.approx(1 / 6)
    assert (result.n, result.seeds, result.method_only, result.baseline_only) == (3, 2, 2, 1)
    # two seeds: questions only, and said so; the non-zero differences are [2, -1], whose
    # four sign vectors all reach |sum| >= 1, so p == 1
    assert result.interval_level == "questions (fewer than 3 seeds)"
    assert result.p_value == 1.0
    # the question bootstrap's sums lie in {-3, ..., 6} over 3 questions x 2 seeds
    assert result.ci_low == pytest.approx(-3 / 6) and result.ci_high == pytest.approx(6 / 6)


def test_sign_flip_p_values_on_hand_worked_cases():
    assert paired_permutation_p([1, -0.5]) == 1.0  # sums 0.5, -0.5, 1.5, -1.5: all >= 0.5
    assert paired_permutation_p([1] * 8) == pytest.approx(2 / 256)  # only all + or all -
    assert paired_permutation_p([0, 0]) == 1.0
    # beyond the exact enumeration: 30 differences all +1, Monte Carlo floor 1/10001
    assert paired_permutation_p([1] * 30) == pytest.approx(1 / 10_001)


def _seeded(pattern: list[tuple[int, int]], seeds: int = 3) -> tuple[dict, dict]:
    """Per question (method correct count, baseline correct count) over ``seeds``."""
    method = {s: {} for s in range(seeds)}
    baseline = {s: {} for s in range(seeds)}
    for q, (m, b) in enumerate(pattern):
        for s in range(seeds):
            method[s][f"q{q}"] = s < m
            baseline[s][f"q{q}"] = s < b
    return method, baseline


def test_a_difference_of_exactly_zero_is_never_a_verdict():
    # The published rounding case: 3 seeds, 64 questions, 13 at (2/3, 1), 5 at (1/3, 0).
    method, baseline = _seeded([(2, 3)] * 13 + [(1, 0)] * 5 + [(1, 1)] * 46)
    result = compare_across_seeds(method, baseline)
    assert result.difference == pytest.approx(-8 / 192)
    assert result.verdict == "no detectable difference"
    # every bound is a whole number of answers over 192, not a rounding residue
    for bound in (result.ci_low, result.ci_high):
        assert abs(bound * 192 - round(bound * 192)) < 1e-9
    # summed over seeds per question the old code averaged floats (2/3 - 1, 1/3 - 0);
    # as counts the question-level bounds are whole numbers over 192 too
    per_question = [-1] * 13 + [1] * 5 + [0] * 46
    _, low, high = paired_bootstrap(per_question, [0] * 64)
    assert low * 64 == round(low * 64) and high * 64 == round(high * 64)
    assert paired_bootstrap([2] * 13 + [1] * 5 + [1] * 46, [3] * 13 + [0] * 5 + [1] * 46) \
        == (-8 / 64, low, high)


def test_seeds_are_resampled_so_one_lucky_seed_is_no_verdict():
    # Seed 0 gets all 40 questions right that the baseline misses; seeds 1 and 2 tie.
    method = {s: {f"q{i}": s == 0 for i in range(40)} for s in range(3)}
    baseline = {s: {f"q{i}": False for i in range(40)} for s in range(3)}
    result = compare_across_seeds(method, baseline)
    assert result.interval_level == "seeds and questions"
    assert result.difference == pytest.approx(1 / 3)
    # Resampling seeds: the lucky seed is drawn 0..3 times (p 8/27, 12/27, 6/27, 1/27),
    # so the mean is 0, 1/3, 2/3 or 1, and the 95% interval is [0, 1].
    assert (result.ci_low, result.ci_high) == (0.0, 1.0)
    assert result.p_value == pytest.approx(2 * 8 / 27, abs=0.03)
    assert result.verdict == "no detectable difference"
    # Holding seeds fixed, the same data would look certain: every question at +1.
    assert paired_permutation_p([1] * 40) < 0.001


def test_a_consistent_gain_over_seeds_and_questions_beats():
    method, baseline = _seeded([(3, 0)] * 30 + [(1, 1)] * 30)
    result = compare_across_seeds(method, baseline)
    assert result.difference == pytest.approx(0.5)
    assert result.ci_low > 0 and result.p_value < 0.01
    assert result.verdict == "beats"


def test_a_verdict_needs_both_the_interval_and_the_p_value():
    from langchain_selfamplify.evaluation.statistics import PairedComparison

    comparison = PairedComparison(n=64, difference=0.1, ci_low=0.01, ci_high=0.2,
                                  p_value=0.077, method_only=9, baseline_only=3)
    assert comparison.verdict == "no detectable difference"  # interval alone would say beats
    assert comparison.decide(significant=True) == "beats"
    assert comparison.decide(significant=False) == "no detectable difference"
    inside = comparison.model_copy(update={"ci_low": -0.01, "p_value": 0.001})
    assert inside.verdict == "no detectable difference"  # p alone would say beats


def test_holm_step_down_on_a_hand_worked_family():
    from langchain_selfamplify.evaluation.statistics import holm_significant

    # sorted: 0.005 < 0.05/4, 0.01 < 0.05/3, 0.03 >= 0.05/2 -> stop; 0.04 is kept too
    assert holm_significant([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    assert holm_significant([0.04]) == [True]
    assert holm_significant([0.04, 0.04]) == [False, False]  # 0.04 >= 0.025
    assert holm_significant([]) == []


def test_clustered_accuracy_is_wider_than_wilson_on_question_x_seed():
    from langchain_selfamplify.evaluation.metrics import accuracy, clustered_accuracy

    # 100 questions, half right in all 3 seeds and half wrong in all 3: the seeds add
    # no information, so the interval is that of 100 answers, not 300.
    clustered = clustered_accuracy([3] * 50 + [0] * 50, [3] * 100)
    assert (clustered.correct, clustered.n, clustered.value) == (150, 300, 0.5)
    half = (clustered.ci_high - clustered.ci_low) / 2
    assert half == pytest.approx(1.96 * (0.25 / 100) ** 0.5, abs=0.012)
    wilson = accuracy(150, 300)
    assert half > 1.5 * (wilson.ci_high - wilson.ci_low) / 2
    assert clustered_accuracy([2, 2], [2, 2]).ci_low == 1.0
    with pytest.raises(ValueError, match="more correct"):
        clustered_accuracy([3], [2])


# ----------------------------------------------------------------- diagnostics



# ----------------------------------------------------------------- grid summaries


def _write_grid(out, rows: dict[tuple[str, str], list[list[bool]]]) -> None:
    """A grid directory by hand: (method, strategy) -> per seed, per question correct."""
    import json

    cells, predictions = [], []
    for (method, strategy), seeds in rows.items():
        for seed, answers in enumerate(seeds):
            key = f"demo__{method}__{strategy}__seed{seed}"
            base = {"cell": key, "dataset": "demo", "method": method, "strategy": strategy,
                    "seed": seed}
            cells.append({**base, "status": "done", "seconds": 1.0,
                          "skipped": 1 if method == "self_topk" else 0})
            predictions += [{**base, "question_id": f"q{i}", "gold": "ABCD"[i % 4],
                             "parsed": "ABCD"[(i + (not ok)) % 4], "correct": ok,
                             "truncated": False, "n_choices": 4, "raw_output": None}
                            for i, ok in enumerate(answers)]
    out.mkdir(parents=True, exist_ok=True)
    for name, records in (("cells", cells), ("predictions", predictions)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_summary_rows_comparisons_holm_family_and_verdict_lines(tmp_path):
    from langchain_selfamplify.evaluation.report import comparison_table, grid_table, verdict_lines
    from langchain_selfamplify.evaluation.summary import summarize

    io = [[i < 10 for i in range(40)]] * 3
    _write_grid(tmp_path, {
        ("io", "random"): io,
        ("ph_cot", "success"): [[True] * 40] * 3,        # +30 questions in every seed
        ("self_topk", "success"): [[i < 11 for i in range(40)]] * 3,  # +1 question
    })
    summary = summarize(tmp_path)
    rows = {r["method"]: r for r in summary["rows"]}
    assert rows["ph_cot"]["accuracy"]["value"] == 1.0
    assert rows["ph_cot"]["accuracy"]["interval"] == "cluster bootstrap over questions"
    # IO: 10 of 40 questions right in all 3 seeds -> the interval of 40 answers, not 120
    low, high = rows["io"]["accuracy"]["ci_low"], rows["io"]["accuracy"]["ci_high"]
    assert (high - low) / 2 == pytest.approx(1.96 * (0.25 * 0.75 / 40) ** 0.5, abs=0.02)
    assert rows["self_topk"]["skipped"] == 3
    pooled = {c["method"]: c for c in summary["comparisons"]
              if c["seed"] == "all" and c["baseline"] == "io"}
    assert pooled["ph_cot"]["difference"] == pytest.approx(0.75)
    assert pooled["ph_cot"]["interval_level"] == "seeds and questions"
    assert pooled["ph_cot"]["family_size"] == 2  # the two Self-AMPLIFY rows against IO
    assert pooled["ph_cot"]["verdict"] == "beats"
    assert pooled["self_topk"]["difference"] == pytest.approx(1 / 40)
    assert pooled["self_topk"]["verdict"] == "no detectable difference"
    per_seed = [c for c in summary["comparisons"] if c["seed"] == 0 and c["method"] == "ph_cot"]
    assert per_seed[0]["p_value"] == pytest.approx(2 / 2**30)  # exact McNemar, 30 vs 0
    assert verdict_lines(summary, "io") == [
        "- **demo**: 1 of 2 Self-AMPLIFY rows beat IO (Self-AMPLIFY Ph-CoT (success)); 0 are "
        "worse; 2 of 3 rows are within reach of chance."]  # IO and Self_topk, near 25%
    # a verdict on fewer seeds than the other rows' says so where it names the row
    one_seed = {**summary, "comparisons": [
        {**c, "seeds": 1} if c["method"] == "ph_cot" else c for c in summary["comparisons"]]}
    assert verdict_lines(one_seed, "io")[0].startswith(
        "- **demo**: 1 of 2 Self-AMPLIFY rows beat IO (Self-AMPLIFY Ph-CoT (success) at 1 of "
        "3 seeds so far); 0 are worse;")
    # a dataset whose Self-AMPLIFY rows have not run yet says so, not "0 of 0 beat"
    only_io = {**summary, "comparisons": [],
               "rows": [r for r in summary["rows"] if r["method"] == "io"]}
    assert verdict_lines(only_io, "io") == [
        "- **demo**: no Self-AMPLIFY row compared with IO yet; 1 of 1 rows are within "
        "reach of chance."]
    table = comparison_table(summary, "io")
    assert "Intervals resample seeds and questions" in table
    assert "families of 2 planned test(s)" in table
    assert "**beats IO**" in table
    assert "3 skipped" in grid_table(summary)


def test_holm_family_sized_by_the_plan_keeps_verdicts_as_the_table_fills():
    from langchain_selfamplify.evaluation.statistics import holm_significant

    # alone, p=0.02 passes; in a planned family of 4 with 3 not run, it needs p < 0.0125
    assert holm_significant([0.02]) == [True]
    assert holm_significant([0.02], family_size=4) == [False]
    assert holm_significant([0.01], family_size=4) == [True]
    # monotone: whatever the other three turn out to be, the rejection stands
    for others in ([0.9, 0.8, 0.7], [0.001, 0.002, 0.003], [0.011, 0.5, 0.04]):
        assert holm_significant([0.01, *others])[0] is True
    with pytest.raises(ValueError, match="family_size=1 is smaller than the 2 tests"):
        holm_significant([0.01, 0.02], family_size=1)


def test_planned_rows_size_the_family_before_their_cells_finish(tmp_path):
    from langchain_selfamplify.evaluation.grid_config import GridConfig
    from langchain_selfamplify.evaluation.report import comparison_table
    from langchain_selfamplify.evaluation.summary import summarize

    _write_grid(tmp_path, {("io", "random"): [[i < 10 for i in range(40)]] * 3,
                           ("ph_cot", "success"): [[True] * 40] * 3})
    plan = GridConfig(datasets=["demo", "snarks"], methods=["io", "ph_cot", "deeplift"],
                      strategies=["success", "error"])
    assert plan.rows()[:3] == [("demo", "io", "random"), ("demo", "ph_cot", "success"),
                               ("demo", "ph_cot", "error")]
    summary = summarize(tmp_path, plan.rows())
    (pooled,) = [c for c in summary["comparisons"] if c["seed"] == "all"]
    # 2 datasets x 2 rationale methods x 2 strategies against IO, 1 of them finished
    assert (pooled["family_size"], pooled["family_finished"]) == (8, 1)
    assert pooled["verdict"] == "beats"  # p far below 0.05 / 8
    assert "families of 8 (1 finished) planned test(s)" in comparison_table(summary, "io")
    unplanned = summarize(tmp_path)
    assert [c["family_size"] for c in unplanned["comparisons"] if c["seed"] == "all"] == [1]


def test_an_interval_excluding_zero_without_a_verdict_says_why():
    from langchain_selfamplify.evaluation.report import holm_caveat

    held_back = {"verdict": "no detectable difference", "ci_low": -0.16, "ci_high": -0.02,
                 "family_size": 24}
    assert holm_caveat(held_back) == (" (the interval excludes 0, but p does not pass "
                                      "Holm's correction over 24 planned tests)")
    assert holm_caveat({**held_back, "ci_high": 0.01}) == ""  # the interval holds 0
    assert holm_caveat({**held_back, "verdict": "worse than"}) == ""


def test_a_stopped_cell_is_reported_partial_and_compared_on_what_it_answered(tmp_path):
    from langchain_selfamplify.evaluation.report import grid_table
    from langchain_selfamplify.evaluation.summary import summarize

    _write_grid(tmp_path, {("io", "random"): [[i < 10 for i in range(40)]],
                           ("ph_cot", "success"): [[True] * 40]})
    cells = (tmp_path / "cells.jsonl").read_text().splitlines()
    (tmp_path / "cells.jsonl").write_text(cells[0] + "\n")  # the Ph-CoT cell never finished
    predictions = (tmp_path / "predictions.jsonl").read_text().splitlines()
    kept = predictions[:40] + predictions[40:56]  # it answered 16 questions
    (tmp_path / "predictions.jsonl").write_text("\n".join(kept) + "\n")
    summary = summarize(tmp_path)
    statuses = {c["method"]: c["status"] for c in summary["cells"]}
    assert statuses == {"io": "done", "ph_cot": "partial"}
    (pooled,) = [c for c in summary["comparisons"] if c["seed"] == "all"]
    assert pooled["n"] == 16  # the questions both answered: q0..q15, IO right on q0..q9
    assert pooled["difference"] == pytest.approx(6 / 16)
    assert "1 seed(s) partial" in grid_table(summary)
