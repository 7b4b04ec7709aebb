"""Label-bias diagnostics and the label-bias controls: balanced demonstrations,
choice permutation, contextual calibration and the answer options' checks."""

from __future__ import annotations

import contextlib
import math
import re

import pytest

from langchain_selfamplify import AmplifiedPrompt, Capabilities, MCQExample
from langchain_selfamplify.evaluation.bias_controls import calibrated, rotate_choices
from langchain_selfamplify.evaluation.diagnostics import cell_diagnostics
from langchain_selfamplify.evaluation.predict import answer_questions, check_answer_options
from langchain_selfamplify.models.choice_scores import ChoiceScores
from langchain_selfamplify.selection.balance import balance_labels


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
    selector = SelfAmplifySelector(backend=tiny_slm, examples=pool, strategy="random", n=4,
                                   balance_labels=True)
    generator = RationaleGenerator(backend=tiny_slm, method="deeplift", k=2)
    explained, skipped = generator.explain_selection(selector)
    assert sorted(d.answer for d in explained) == list("ABCD") and skipped == []
    for demo in explained:
        assert demo.rationale.endswith(f"the answer is ({demo.answer}).")


# ----------------------------------------------------------------- permutation, calibration


class PositionBiasedModel:
    """Prefers the first position strongly and the text "right" weakly; a content-free
    ("N/A") question gets the position bias alone."""

    name, context_length = "fake", 10**6
    show_progress, batch_size, local_model = False, 16, None
    capabilities = Capabilities(label_log_probs=True)
    lock = contextlib.nullcontext()

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
