"""The words of a prompt that the code relies on: answer prefixes, stop strings, formats.

One module, importing nothing from the package, so the model layer (which scores
after these prefixes) and the prompt layer (which writes them) read the same text.
"""

from __future__ import annotations

from typing import Literal

AnswerFormat = Literal["letter", "cloze"]
"""How answers are written in demonstrations and read at test time."""

ANSWER_FORMATS: tuple[AnswerFormat, ...] = ("letter", "cloze")
"""The answer formats, letter first (the default)."""

ANSWER_PREFIX = "The answer is ("
"""Text after which answer labels are scored, in demonstrations and at test time."""

CLOZE_PREFIX = "The answer is:"
"""Text after which a choice's text is scored in the cloze format."""

RATIONALE_STOP = "The answer is"
"""Where a generated test-time rationale ends and answer scoring begins."""

RATIONALE_STOPS: tuple[str, ...] = (RATIONALE_STOP, "answer is (", "answer is:")
"""Every text that ends a test-time rationale: :data:`RATIONALE_STOP`, or the model
closing its reasoning with an answer in its own words ("Therefore, the correct answer
is (B)"). Qwen2.5 closes that way, and with ``"The answer is"`` alone 38% of its ARC
rationales ran on to the token cap."""


def answer_prefix(answer_format: AnswerFormat = "letter") -> str:
    """Where the answer is read: ``"The answer is ("`` (letter) or ``"The answer is:"``
    (cloze)."""
    return CLOZE_PREFIX if answer_format == "cloze" else ANSWER_PREFIX
