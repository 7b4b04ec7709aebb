""":class:`ChoiceScores`: a model's belief over one question's answer choices."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ChoiceScores:
    """The model's belief over the answer labels at one answer position."""

    labels: list[str]
    """Answer labels, in the order of ``probs``."""
    probs: list[float]
    """Probability of each label, renormalised over the labels (sums to 1)."""
    log_probs: list[float]
    """Log-probability of each label's token over the whole vocabulary."""

    @property
    def predicted(self) -> str:
        """The most probable label (the first one on ties)."""
        return self.labels[max(range(len(self.probs)), key=self.probs.__getitem__)]

    def prob(self, label: str) -> float:
        """Renormalised probability of ``label``."""
        return self.probs[self.labels.index(label)]


def softmax(values: Sequence[float]) -> list[float]:
    """Probabilities proportional to ``exp(values)``, computed without overflow."""
    peak = max(values)
    weights = [math.exp(value - peak) for value in values]
    return [weight / sum(weights) for weight in weights]
