"""Answering test questions with an amplified prompt on an :class:`SLM`.

With rationale demonstrations the model first writes its own rationale (greedy,
capped, stopped at "The answer is"), then the answer is scored right after it, in the
prompt's answer format (the labels after "The answer is (", or the choice texts after
"The answer is:"): every method is compared on the same footing, and no answer is
ever unparsable. IO prompts are scored directly. Two label-bias controls are options:
test-time choice permutation and contextual calibration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import Field

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import accepts_renamed_arguments
from langchain_selfamplify.evaluation.bias_controls import (
    calibrated,
    content_free_question,
    mean_over_rotations,
    rotate_choices,
)
from langchain_selfamplify.evaluation.budget import check_context as check_context
from langchain_selfamplify.evaluation.budget import (
    demonstrations_that_fit as demonstrations_that_fit,
)
from langchain_selfamplify.evaluation.budget import rationale_cap as rationale_cap
from langchain_selfamplify.evaluation.budget import rationale_stops as rationale_stops
from langchain_selfamplify.evaluation.metrics import Accuracy, accuracy
from langchain_selfamplify.models.answer_formats import (
    cloze_continuation,
    require_choice_texts,
    score_answers,
)
from langchain_selfamplify.models.backend import ModelBackend, generate_each, require_local
from langchain_selfamplify.models.chat_format import Prompt
from langchain_selfamplify.models.choice_scores import ChoiceScores
from langchain_selfamplify.models.generation import generate_then_score
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.prompting.parsing import parse_answer
from langchain_selfamplify.stages import stage
from langchain_selfamplify.strict import StrictModel
from langchain_selfamplify.wording import (
    ANSWER_FORMATS,
    AnswerFormat,
    answer_prefix,
)

logger = logging.getLogger(__name__)


class Prediction(StrictModel):
    """The model's answer to one test question."""

    id: str
    """Question id."""
    gold: str
    """Gold label."""
    predicted: str | None
    """Predicted label (``None`` if unparsable)."""
    correct: bool
    """Whether ``predicted == gold``."""
    probs: dict[str, float] = Field(default_factory=dict)
    """Label probabilities at the answer position."""
    rationale: str | None = None
    """The rationale the model wrote before answering, if any."""
    truncated: bool = False
    """Whether that rationale reached its token cap before "The answer is"."""


class EvalResult(StrictModel):
    """Predictions and accuracy of one prompt on one test set."""

    name: str
    """Row name, e.g. ``"IO"`` or ``"Self-AMPLIFY (ph_cot, success)"``."""
    accuracy: Accuracy
    """Accuracy with its 95% interval."""
    n_unparsed: int
    """Answers that could not be parsed (always 0 with label scoring)."""
    predictions: list[Prediction]
    """One per test question, in test order."""


@accepts_renamed_arguments
def answer_questions(
    backend: ModelBackend,
    prompt: AmplifiedPrompt,
    questions: Sequence[MCQExample],
    *,
    max_rationale_tokens: int = 96,
    mode: Literal["score", "generate"] = "score",
    on_overflow: Literal["error", "drop"] = "error",
    permute: bool = False,
    calibrate: bool = False,
    on_prediction: Callable[[Prediction], None] | None = None,
) -> list[Prediction]:
    """Answer every question with ``prompt``'s demonstrations.

    The answer is read in the prompt's ``answer_format``: the label after ``"The answer
    is ("`` (letter), or the choice text of highest length-normalised log-likelihood
    after ``"The answer is:"`` (cloze). With rationale demonstrations the model first
    writes its own rationale, capped at ``max_rationale_tokens`` or the longest
    demonstration rationale (+16 tokens), whichever is larger, so it is never cut
    shorter than what it imitates.

    Args:
        backend: The model.
        prompt: The few-shot prompt.
        questions: Test questions (their gold labels are used only for scoring).
        max_rationale_tokens: Least token cap of a test-time rationale. Defaults to 96.
        mode: ``"score"`` (default) scores the answers after the model's rationale;
            ``"generate"`` lets the model write its whole answer and reads the label with
            :func:`parse_answer` (for models whose log-probabilities are not available;
            unparsable answers count as wrong).
        on_overflow: What to do with a question whose prompt exceeds the context (see
            :func:`check_context`). Defaults to ``"error"``.
        permute: Answer each question under each cyclic order of its choices and take
            the choice of highest mean probability (one pass per order). Score mode only.
        calibrate: Contextual calibration (Zhao et al., 2021): divide each label's
            probability by the one the prompt gives a content-free question ("N/A"),
            then renormalise. Letter format, score mode only.
        on_prediction: Called with each prediction as soon as it is made, e.g. to
            checkpoint it: as each question's rationale (or generated answer) ends and
            its answer is read, on every backend; with ``permute``, once all are made.
            Given one, the two-pass route (a served or chat model, an offload, the
            cloze format) scores each answer on its own as its rationale comes back,
            not in batches at the end. Defaults to none.

    Raises:
        ValueError: an option does not apply (see :func:`check_answer_options`).
    """
    check_answer_options(prompt.answer_format, questions, mode=mode, permute=permute,
                         calibrate=calibrate)
    cap = rationale_cap(backend, prompt, max_rationale_tokens)
    # The content-free question is the same under every choice order: asked once.
    references = (_content_free_probs(backend, prompt, questions, cap, mode, on_overflow)
                  if calibrate else None)
    if not permute:
        return _answer(backend, prompt, questions, cap, mode, on_overflow, references,
                       on_prediction)
    runs = []
    for shift in range(max(len(q.choices) for q in questions)):
        shifted = [rotate_choices(q, shift) for q in questions if len(q.choices) > shift]
        runs.append({p.id: p for p in _answer(backend, prompt, shifted, cap, mode, on_overflow,
                                              references)})
    predictions = []
    for question in questions:
        original = runs[0][question.id]
        mean = mean_over_rotations(question, [run[question.id].probs for run in runs])
        predicted = max(mean, key=mean.__getitem__)
        predictions.append(original.model_copy(update={
            "predicted": predicted, "correct": predicted == question.answer, "probs": mean}))
    return _announced(predictions, on_prediction)


def _announced(predictions: list[Prediction],
               on_prediction: Callable[[Prediction], None] | None) -> list[Prediction]:
    """``predictions``, each handed to ``on_prediction`` first."""
    if on_prediction is not None:
        for prediction in predictions:
            on_prediction(prediction)
    return predictions


class _AnswersInOrder:
    """Predictions made in any order, each handed to ``on_prediction`` at once and read
    back in question order."""

    def __init__(self, on_prediction: Callable[[Prediction], None] | None) -> None:
        self.on_prediction = on_prediction
        self.by_index: dict[int, Prediction] = {}

    def add(self, index: int, prediction: Prediction) -> None:
        self.by_index[index] = prediction
        if self.on_prediction is not None:
            self.on_prediction(prediction)

    def in_order(self, count: int) -> list[Prediction]:
        return [self.by_index[i] for i in range(count)]


def check_answer_options(
    answer_format: AnswerFormat,
    questions: Sequence[MCQExample],
    *,
    mode: Literal["score", "generate"] = "score",
    permute: bool = False,
    calibrate: bool = False,
) -> None:
    """Fail, before any model call, on an answer option that cannot apply.

    Raises:
        ValueError: cloze on questions whose choices are bare labels; permutation on a
            question with one choice or in generate mode; calibration in generate mode
            or with the cloze format.
    """
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, not {answer_format!r}")
    if answer_format == "cloze":
        require_choice_texts(questions)
    if permute:
        if mode != "score":
            raise ValueError("test-time choice permutation averages choice probabilities; "
                             "it needs mode='score', not 'generate'")
        single = next((q for q in questions if len(q.choices) < 2), None)
        if single is not None:
            raise ValueError(f"test-time choice permutation needs at least two choices; "
                             f"question {single.id!r} has {len(single.choices)}")
    if calibrate:
        if mode != "score":
            raise ValueError("contextual calibration rescales label probabilities; it needs "
                             "mode='score', not 'generate' (which reads no probabilities)")
        if answer_format != "letter":
            raise ValueError("contextual calibration applies to label scoring "
                             "(answer_format='letter'), not to the cloze format")


def _content_free_probs(backend: ModelBackend, prompt: AmplifiedPrompt,
                        questions: Sequence[MCQExample], cap: int,
                        mode: Literal["score", "generate"],
                        on_overflow: Literal["error", "drop"]
                        ) -> dict[tuple[str, ...], dict[str, float]]:
    """Label set -> the probabilities ``prompt`` gives the content-free question."""
    label_sets = sorted({tuple(q.labels) for q in questions})
    neutral = [content_free_question(labels) for labels in label_sets]
    answers = _answer(backend, prompt, neutral, cap, mode, on_overflow, references=None)
    return {labels: p.probs for labels, p in zip(label_sets, answers, strict=True)}


def _answer(backend: ModelBackend, prompt: AmplifiedPrompt, questions: Sequence[MCQExample],
            cap: int, mode: Literal["score", "generate"], on_overflow: Literal["error", "drop"],
            references: dict[tuple[str, ...], dict[str, float]] | None,
            on_prediction: Callable[[Prediction], None] | None = None
            ) -> list[Prediction]:
    """Answer ``questions`` once, in their choice order; with ``references``, label
    probabilities are calibrated against them. Each prediction goes to
    ``on_prediction`` as soon as it is made."""
    prefix = prompt.assistant_prefix()
    scored_after = answer_prefix(prompt.answer_format)
    reserve = (cap + 16 if mode == "generate" else 0 if prefix == scored_after else cap + 8)
    if prompt.answer_format == "cloze" and mode == "score":  # the choice texts scored after
        reserve += max(backend.count_tokens(cloze_continuation(text), prompt=False)
                       for q in questions for text in q.choices.values())
    kept = check_context(backend, prompt, questions, reserve, on_overflow)
    conversations = [prompt.to_messages(q, prompt.examples[: kept.get(q.id, len(prompt.examples))])
                     for q in questions]
    if mode == "generate":
        with stage("test_rationales"):
            return _generate_and_parse(backend, prefix, conversations, questions, reserve,
                                       on_prediction)
    def scoring_prompt(index: int, rationale: str | None) -> Prompt:
        after = f"{rationale}\n{scored_after}" if rationale else scored_after
        return backend.format_prompt(conversations[index], after)

    rationales: list[str | None] = [None] * len(questions)
    if prefix != scored_after:
        texts = [backend.format_prompt(messages, prefix) for messages in conversations]
        if prompt.answer_format == "letter" and backend.capabilities.fused_generate_score:
            # One pass: the labels are read where the rationale's decoding reaches
            # "The answer is (", so this stage holds the answer scoring too.
            local = require_local(backend, "generate-then-score")
            made = _AnswersInOrder(on_prediction)

            def made_one(index: int, reply: str, scores: ChoiceScores) -> None:
                made.add(index, _prediction(backend, questions[index], scores, reply.strip(),
                                            cap, references))

            with stage("test_rationales"):
                generate_then_score(
                    local, texts, lambda i, reply: scoring_prompt(i, reply.strip()),
                    [q.labels for q in questions], max_new_tokens=cap,
                    stop=rationale_stops(prompt), desc="Writing rationales and answers",
                    on_result=made_one)
            return made.in_order(len(questions))
        if on_prediction is not None:
            # Each answer read as its rationale comes back, so a stop keeps it; scored
            # one at a time (a served model scores each request on its own anyway).
            return _answer_each(backend, prompt, questions, texts, scoring_prompt, cap,
                                references, on_prediction)
        with stage("test_rationales"):
            written = backend.generate(texts, max_new_tokens=cap,
                                       stop=rationale_stops(prompt), desc="Writing rationales")
        rationales = [text.strip() for text in written]
    score_prompts = [scoring_prompt(i, r) for i, r in enumerate(rationales)]
    with stage("answer_scoring"):
        scores = score_answers(backend, score_prompts, [q.choices for q in questions],
                               prompt.answer_format, desc="Scoring answers")
    return _announced([_prediction(backend, q, s, r, cap, references)
                       for q, s, r in zip(questions, scores, rationales, strict=True)],
                      on_prediction)


def _answer_each(backend: ModelBackend, prompt: AmplifiedPrompt,
                 questions: Sequence[MCQExample], texts: Sequence[Prompt],
                 scoring_prompt: Callable[[int, str], Prompt], cap: int,
                 references: dict[tuple[str, ...], dict[str, float]] | None,
                 on_prediction: Callable[[Prediction], None]) -> list[Prediction]:
    """The two-pass route, each answer scored and handed over as its rationale ends
    (``generate_each``), not once every rationale is written."""
    made = _AnswersInOrder(on_prediction)

    def answer_one(index: int, reply: str) -> None:
        rationale = reply.strip()
        with stage("answer_scoring"):
            (scores,) = score_answers(backend, [scoring_prompt(index, rationale)],
                                      [questions[index].choices], prompt.answer_format)
        made.add(index, _prediction(backend, questions[index], scores, rationale, cap,
                                    references))

    with stage("test_rationales"):
        generate_each(backend, texts, answer_one, max_new_tokens=cap,
                      stop=rationale_stops(prompt), desc="Writing rationales")
    return made.in_order(len(questions))


def _prediction(backend: ModelBackend, question: MCQExample, scores: ChoiceScores,
                rationale: str | None, cap: int,
                references: dict[tuple[str, ...], dict[str, float]] | None) -> Prediction:
    """A question's :class:`Prediction` from its choice scores and rationale."""
    probs = dict(zip(scores.labels, scores.probs, strict=True))
    if references is not None:
        probs = calibrated(probs, references[tuple(question.labels)])
    predicted = max(probs, key=probs.__getitem__)
    truncated = (rationale is not None
                 and backend.count_tokens(rationale, prompt=False) >= cap - 1)
    return Prediction(id=question.id, gold=question.answer, predicted=predicted,
                      correct=predicted == question.answer, probs=probs, rationale=rationale,
                      truncated=truncated)


def _generate_and_parse(backend: ModelBackend, prefix: str, conversations: Sequence[list[Any]],
                        questions: Sequence[MCQExample], max_new_tokens: int,
                        on_prediction: Callable[[Prediction], None] | None
                        ) -> list[Prediction]:
    """Generate mode: each whole answer parsed, and handed to ``on_prediction``, as its
    reply comes back."""
    texts = [backend.format_prompt(messages, prefix) for messages in conversations]
    made = _AnswersInOrder(on_prediction)

    def parse_one(index: int, reply: str) -> None:
        question = questions[index]
        label = parse_answer(prefix + reply, question.labels, list(question.choices.values()))
        made.add(index, Prediction(id=question.id, gold=question.answer, predicted=label,
                                   correct=label == question.answer, rationale=reply))

    generate_each(backend, texts, parse_one, max_new_tokens=max_new_tokens, desc="Answering")
    return made.in_order(len(questions))


@accepts_renamed_arguments
def evaluate_prompt(
    backend: ModelBackend,
    prompt: AmplifiedPrompt,
    questions: Sequence[MCQExample],
    name: str,
    **kwargs: Any,
) -> EvalResult:
    """Accuracy (with 95% interval) of ``prompt`` on ``questions``."""
    return summarize_predictions(answer_questions(backend, prompt, questions, **kwargs), name)


def summarize_predictions(predictions: Sequence[Prediction], name: str) -> EvalResult:
    """Accuracy (with 95% interval) of a list of predictions."""
    correct = sum(p.correct for p in predictions)
    unparsed = sum(p.predicted is None for p in predictions)
    return EvalResult(name=name, accuracy=accuracy(correct, len(predictions)),
                      n_unparsed=unparsed, predictions=list(predictions))
