"""Ph-CoT rationales: the model writes a short n-step explanation of the known answer."""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.prompted import PromptedRationale
from langchain_selfamplify.wording import RATIONALE_STOP

_STEP = re.compile(r"\s*Step\s*\d+\s*[:.)-]\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@register_method
class PhCoTRationale(PromptedRationale):
    """Post hoc chain of thought: "explain in n steps why the answer is (X)".

    Generation is greedy, stops where the model starts step ``n_steps + 1`` (so the
    cap rarely cuts a step short), is capped at ``max_new_tokens``, and never uses
    ``no_repeat_ngram_size`` (which would ban "answer is (X)"). The reply is cut into
    steps ("Step 1: ..." markers, else sentences), trimmed to ``n_steps`` and
    rendered as ``"Step 1: ... Step 2: ..."``. When no step names the answer, a
    closing sentence does, so every demonstration links its reasoning to its label.

    Args:
        backend: The model to ask.
        n_steps: Maximum number of steps kept. Defaults to 3.
        max_new_tokens: Token cap of the explanation. Defaults to ``100 * n_steps``
            (the reference implementation lets replies run to 300 tokens; a capable
            model's steps run to 60-100 tokens each).
    """

    name = "ph_cot"
    description = "the model explains the known answer in n steps (post hoc CoT)"

    def __init__(
        self, backend: ModelBackend, n_steps: int = 3, max_new_tokens: int | None = None
    ) -> None:
        super().__init__(backend)
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        self.n_steps = n_steps
        self.max_new_tokens = max_new_tokens or 100 * n_steps

    def stop(self) -> list[str]:
        """The next step's marker: the reply ends after the ``n_steps``-th step."""
        return [step_marker(self.n_steps + 1)]

    def request(self) -> str:
        """Ask for an n-step explanation."""
        return f"Explain in {self.n_steps} short steps why this is the correct answer."

    def assistant_prefix(self) -> str:
        """``"Step 1:"``: the reply starts as a numbered explanation."""
        return "Step 1:"

    def to_rationale(self, example: MCQExample, reply: str) -> str | None:
        """The trimmed steps, closed by the answer when they do not name it."""
        steps = split_steps(reply, self.n_steps)
        return render_steps(steps, example) if steps else None


def step_marker(number: int) -> str:
    """``"Step 4:"``: how a rationale starts its ``number``-th step."""
    return f"Step {number}:"


def split_steps(reply: str, n_steps: int) -> list[str]:
    """Up to ``n_steps`` non-empty steps of a reply that continues ``"Step 1:"``."""
    pieces = [p.strip() for p in _STEP.split(reply) if p.strip()]
    if len(pieces) == 1:
        pieces = [p.strip() for p in _SENTENCE_END.split(pieces[0]) if p.strip()]
    steps = []
    for piece in pieces[:n_steps]:
        # Test-time rationales end where "The answer is" starts; a demonstration that
        # contained it mid-rationale would teach the model to stop early.
        piece = " ".join(piece.split()).replace(RATIONALE_STOP, "the answer is")
        if piece[-1] not in ".!?":
            # A step cut by the token cap: keep up to its last full sentence, if any.
            cut = max(piece.rfind(". "), piece.rfind("! "), piece.rfind("? "))
            piece = piece[: cut + 1] if cut > 0 else piece + "."
        steps.append(piece)
    return steps


def render_steps(steps: Sequence[str], example: MCQExample) -> str:
    """``"Step 1: ... Step 2: ..."``, closed by the answer when no step names it."""
    text = " ".join(f"{step_marker(i + 1)} {step}" for i, step in enumerate(steps))
    names_answer = (f"({example.answer})" in text
                    or example.answer_text.lower() in text.lower())
    if not names_answer:
        text += f" So the answer is {example.answer_text}."
    return text
