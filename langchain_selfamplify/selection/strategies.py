"""Selection strategies: which pool examples become demonstrations.

Each strategy orders the scored pool; the selector takes the first ``n``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from pydantic import ConfigDict

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import UnknownNameError
from langchain_selfamplify.strict import StrictModel


class ScoredExample(StrictModel):
    """A pool example with the model's zero-shot belief over its labels."""

    model_config = ConfigDict(frozen=True)

    example: MCQExample
    """The pool example."""
    probs: dict[str, float]
    """Label -> probability after ``"The answer is ("``, renormalised over the labels."""
    predicted: str
    """The model's most probable label."""

    @property
    def correct(self) -> bool:
        """Whether the model's prediction is the gold answer."""
        return self.predicted == self.example.answer

    @property
    def p_gold(self) -> float:
        """Probability of the gold label."""
        return self.probs[self.example.answer]

    @property
    def margin(self) -> float:
        """``p(predicted) - p(gold)``: how confidently wrong the model is (0 when right)."""
        return self.probs[self.predicted] - self.p_gold


Strategy = Callable[[Sequence[ScoredExample], random.Random], list[ScoredExample]]


def _tie_keys(items: Sequence[ScoredExample], rng: random.Random) -> dict[str, float]:
    # A seeded random key per example breaks ties reproducibly without favouring
    # the pool's file order.
    return {item.example.id: rng.random() for item in items}


def success(items: Sequence[ScoredExample], rng: random.Random) -> list[ScoredExample]:
    """Examples the model answers correctly, highest probability on the gold label first."""
    ties = _tie_keys(items, rng)
    right = [item for item in items if item.correct]
    return sorted(right, key=lambda item: (-item.p_gold, ties[item.example.id]))


def error(items: Sequence[ScoredExample], rng: random.Random) -> list[ScoredExample]:
    """Examples the model gets wrong, most confident mistakes (largest margin) first."""
    ties = _tie_keys(items, rng)
    wrong = [item for item in items if not item.correct]
    return sorted(wrong, key=lambda item: (-item.margin, ties[item.example.id]))


STRATEGIES: dict[str, Strategy | None] = {"success": success, "error": error, "random": None}
"""Registered strategies by name; ``random`` needs no scores and samples the pool."""


def get_strategy(name: str) -> Strategy | None:
    """The ranking function of strategy ``name`` (``None`` for ``random``).

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the known ones.
    """
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownNameError("strategy", name, STRATEGIES) from None
