"""Answering test questions with an amplified prompt on an :class:`SLM`.

With rationale demonstrations the model first writes its own rationale (greedy,
capped, stopped at "The answer is"), then the labels are scored right after
"... The answer is (": every method is compared on the same footing, and no answer
is ever unparsable. IO prompts are scored directly.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import ContextLengthError
from langchain_selfamplify.evaluation.metrics import Accuracy, accuracy
from langchain_selfamplify.evaluation.parsing import parse_answer
from langchain_selfamplify.models.slm import ANSWER_PREFIX
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.prompting.messages import RATIONALE_STOP

logger = logging.getLogger(__name__)


class Prediction(BaseModel):
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


class EvalResult(BaseModel):
    """Predictions and accuracy of one prompt on one test set."""

    name: str
    """Row name, e.g. ``"IO"`` or ``"Self-AMPLIFY (ph_cot, success)"``."""
    accuracy: Accuracy
    """Accuracy with its 95% interval."""
    n_unparsed: int
    """Answers that could not be parsed (always 0 with label scoring)."""
    predictions: list[Prediction]
    """One per test question, in test order."""


def demonstrations_that_fit(
    slm: Any, prompt: AmplifiedPrompt, question: MCQExample, reserve: int = 0
) -> int:
    """How many of ``prompt``'s demonstrations fit the context with ``question``.

    Demonstrations are dropped from the end; the answer-turn prefix stays that of the
    full prompt, so the question is read the same way.

    Raises:
        ContextLengthError: the question does not fit even without demonstrations.
    """
    prefix = prompt.assistant_prefix()
    for kept in range(len(prompt.examples), -1, -1):
        messages = prompt.to_messages(question, prompt.examples[:kept])
        if slm.count_tokens(slm.format_prompt(messages, prefix)) + reserve <= slm.context_length:
            return kept
    raise ContextLengthError(
        f"Question {question.id!r} does not fit {slm.name}'s context of "
        f"{slm.context_length} tokens even without demonstrations (+{reserve} tokens for "
        "the rationale and answer)."
    )


def check_context(
    slm: Any,
    prompt: AmplifiedPrompt,
    questions: Sequence[MCQExample],
    reserve: int = 0,
    on_overflow: Literal["error", "drop"] = "error",
) -> dict[str, int]:
    """Check, before any model call, that each question's prompt fits the context.

    Args:
        slm: The model.
        prompt: The few-shot prompt.
        questions: The test questions.
        reserve: Tokens to keep free for the rationale and the answer.
        on_overflow: ``"error"`` (default) raises for the first question whose prompt
            is too long; ``"drop"`` drops demonstrations from the end of that
            question's prompt, with a warning.

    Returns:
        Question id -> number of demonstrations used, for questions that lose some.

    Raises:
        ContextLengthError: a prompt is too long (``"error"``), or a question does not
            fit even alone (both modes).
    """
    trimmed: dict[str, int] = {}
    for question in questions:
        kept = demonstrations_that_fit(slm, prompt, question, reserve)
        if kept == len(prompt.examples):
            continue
        if on_overflow == "error":
            raise ContextLengthError(
                f"The {len(prompt.examples)}-shot prompt for question {question.id!r} is too "
                f"long for {slm.name}'s context of {slm.context_length} tokens (+{reserve} "
                f"for the rationale and answer); {kept} demonstration(s) would fit. Use fewer "
                "or shorter demonstrations, or on_overflow='drop'."
            )
        trimmed[question.id] = kept
    if trimmed:
        logger.warning("%d question(s) too long for the full prompt were given fewer "
                       "demonstrations: %s", len(trimmed),
                       ", ".join(f"{qid} ({kept} kept)" for qid, kept in trimmed.items()))
    return trimmed


def answer_questions(
    slm: Any,
    prompt: AmplifiedPrompt,
    questions: Sequence[MCQExample],
    *,
    max_rationale_tokens: int = 96,
    mode: Literal["score", "generate"] = "score",
    on_overflow: Literal["error", "drop"] = "error",
) -> list[Prediction]:
    """Answer every question with ``prompt``'s demonstrations.

    Args:
        slm: The model.
        prompt: The few-shot prompt.
        questions: Test questions (their gold labels are used only for scoring).
        max_rationale_tokens: Token cap of a test-time rationale. Defaults to 96.
        mode: ``"score"`` (default) scores the labels after the model's rationale and
            ``"The answer is ("``; ``"generate"`` lets the model write its whole answer
            and reads the label with :func:`parse_answer` (for models whose
            log-probabilities are not available; unparsable answers count as wrong).
        on_overflow: What to do with a question whose prompt exceeds the context (see
            :func:`check_context`). Defaults to ``"error"``.
    """
    prefix = prompt.assistant_prefix()
    reserve = (max_rationale_tokens + 16 if mode == "generate"
               else 0 if prefix == ANSWER_PREFIX else max_rationale_tokens + 8)
    kept = check_context(slm, prompt, questions, reserve, on_overflow)
    conversations = [prompt.to_messages(q, prompt.examples[: kept.get(q.id, len(prompt.examples))])
                     for q in questions]
    if mode == "generate":
        return _generate_and_parse(slm, prefix, conversations, questions, reserve)
    rationales: list[str | None] = [None] * len(questions)
    if prefix != ANSWER_PREFIX:
        texts = [slm.format_prompt(messages, prefix) for messages in conversations]
        written = slm.generate(texts, max_new_tokens=max_rationale_tokens,
                               stop=[RATIONALE_STOP], desc="Writing rationales")
        rationales = [text.strip() for text in written]
    score_prompts = [
        slm.format_prompt(messages, f"{r}\n{ANSWER_PREFIX}" if r else ANSWER_PREFIX)
        for messages, r in zip(conversations, rationales, strict=True)
    ]
    scores = slm.score_choices(score_prompts, [q.labels for q in questions],
                               desc="Scoring answers")
    return [
        Prediction(
            id=q.id, gold=q.answer, predicted=s.predicted, correct=s.predicted == q.answer,
            probs=dict(zip(s.labels, s.probs, strict=True)), rationale=r,
        )
        for q, s, r in zip(questions, scores, rationales, strict=True)
    ]


def _generate_and_parse(slm: Any, prefix: str, conversations: Sequence[list[Any]],
                        questions: Sequence[MCQExample], max_new_tokens: int
                        ) -> list[Prediction]:
    texts = [slm.format_prompt(messages, prefix) for messages in conversations]
    replies = slm.generate(texts, max_new_tokens=max_new_tokens, desc="Answering")
    predictions = []
    for question, reply in zip(questions, replies, strict=True):
        label = parse_answer(prefix + reply, question.labels, list(question.choices.values()))
        predictions.append(Prediction(id=question.id, gold=question.answer, predicted=label,
                                      correct=label == question.answer, rationale=reply))
    return predictions


def evaluate_prompt(
    slm: Any,
    prompt: AmplifiedPrompt,
    questions: Sequence[MCQExample],
    name: str,
    **kwargs: Any,
) -> EvalResult:
    """Accuracy (with 95% interval) of ``prompt`` on ``questions``."""
    return summarize_predictions(answer_questions(slm, prompt, questions, **kwargs), name)


def answer_with_checkpoint(
    slm: Any,
    prompt: AmplifiedPrompt,
    questions: Sequence[MCQExample],
    path: str | os.PathLike[str],
    *,
    chunk_size: int = 64,
    desc: str | None = None,
    **kwargs: Any,
) -> list[Prediction]:
    """:func:`answer_questions`, appending each chunk's predictions to a JSONL checkpoint.

    Questions already in ``path`` (from an interrupted run) are not answered again.

    Args:
        slm: The model.
        prompt: The few-shot prompt.
        questions: Test questions.
        path: The checkpoint file.
        chunk_size: Questions per write. Defaults to 64 (the questions of one write
            are decoded together).
        desc: Progress-bar label.
        **kwargs: Passed to :func:`answer_questions`.
    """
    from tqdm.auto import tqdm

    from langchain_selfamplify.checkpoint import append_jsonl, read_jsonl

    wanted = {q.id for q in questions}
    done: dict[str, Prediction] = {}
    for record in read_jsonl(path):
        try:
            prediction = Prediction.model_validate(record)
        except ValidationError:
            continue
        if prediction.id in wanted:
            done.setdefault(prediction.id, prediction)
    todo = [q for q in questions if q.id not in done]
    chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
    for chunk in tqdm(chunks, desc=desc, disable=not (desc and slm.show_progress), leave=False):
        predictions = answer_questions(slm, prompt, chunk, **kwargs)
        append_jsonl(path, [p.model_dump() for p in predictions])
        done.update((p.id, p) for p in predictions)
    return [done[q.id] for q in questions]


def summarize_predictions(predictions: Sequence[Prediction], name: str) -> EvalResult:
    """Accuracy (with 95% interval) of a list of predictions."""
    correct = sum(p.correct for p in predictions)
    unparsed = sum(p.predicted is None for p in predictions)
    return EvalResult(name=name, accuracy=accuracy(correct, len(predictions)),
                      n_unparsed=unparsed, predictions=list(predictions))


def io_prompt(pool: Sequence[MCQExample], n: int, seed: int = 0,
              system_prompt: str | None = None) -> AmplifiedPrompt:
    """The IO baseline: ``n`` random labelled pool examples, no rationale."""
    if len(pool) < n:
        raise ValueError(f"the IO baseline needs n={n} examples; the pool has {len(pool)}")
    demos = [ex.with_rationale(None) for ex in random.Random(seed).sample(list(pool), n)]
    return AmplifiedPrompt(examples=demos, system_prompt=system_prompt,
                           metadata={"method": "io", "strategy": "random", "seed": seed})
