"""The token budget of a test question: how many demonstrations fit the context with
it, how long its rationale may run, and where that rationale stops."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Literal

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import ContextLengthError
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.rationales.methods.ph_cot import step_marker
from langchain_selfamplify.wording import RATIONALE_STOPS

logger = logging.getLogger(__name__)


def demonstrations_that_fit(
    backend: ModelBackend, prompt: AmplifiedPrompt, question: MCQExample, reserve: int = 0
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
        tokens = backend.count_tokens(backend.format_prompt(messages, prefix))
        if tokens + reserve <= backend.context_length:
            return kept
    raise ContextLengthError(
        f"Question {question.id!r} does not fit {backend.name}'s context of "
        f"{backend.context_length} tokens even without demonstrations (+{reserve} tokens for "
        "the rationale and answer)."
    )


def check_context(
    backend: ModelBackend,
    prompt: AmplifiedPrompt,
    questions: Sequence[MCQExample],
    reserve: int = 0,
    on_overflow: Literal["error", "drop"] = "error",
) -> dict[str, int]:
    """Check, before any model call, that each question's prompt fits the context.

    Args:
        backend: The model.
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
        kept = demonstrations_that_fit(backend, prompt, question, reserve)
        if kept == len(prompt.examples):
            continue
        if on_overflow == "error":
            raise ContextLengthError(
                f"The {len(prompt.examples)}-shot prompt for question {question.id!r} is too "
                f"long for {backend.name}'s context of {backend.context_length} tokens (+{reserve} "
                f"for the rationale and answer); {kept} demonstration(s) would fit. Use fewer "
                "or shorter demonstrations, or on_overflow='drop'."
            )
        trimmed[question.id] = kept
    if trimmed:
        logger.warning("%d question(s) too long for the full prompt were given fewer "
                       "demonstrations: %s", len(trimmed),
                       ", ".join(f"{qid} ({kept} kept)" for qid, kept in trimmed.items()))
    return trimmed


def rationale_cap(backend: ModelBackend, prompt: AmplifiedPrompt, least: int) -> int:
    """Token cap of test-time rationales: ``least``, or the longest demonstration
    rationale plus 16 tokens when that is longer (a model cut shorter than what it
    imitates ends mid-sentence), but never over a quarter of the context."""
    lengths = [backend.count_tokens(d.rationale, prompt=False)
               for d in prompt.examples if d.rationale]
    longest = max(lengths) + 16 if lengths else 0
    return max(least, min(longest, backend.context_length // 4))


_STEP_NUMBER = re.compile(r"\bStep (\d+):")


def rationale_stops(prompt: AmplifiedPrompt) -> list[str]:
    """Where a test-time rationale ends: at :data:`RATIONALE_STOPS` (``"The answer
    is"``, ``"answer is ("``, ``"answer is:"``), and, when the
    demonstrations explain in numbered steps, where the model starts one step more than
    the longest of them (a capable model otherwise keeps writing steps until the cap
    cuts one mid-sentence)."""
    steps = [int(number) for d in prompt.examples if d.rationale
             for number in _STEP_NUMBER.findall(d.rationale)]
    return [*RATIONALE_STOPS, *([step_marker(max(steps) + 1)] if steps else [])]
