"""Accuracy with a 95% confidence interval."""

from __future__ import annotations

import math

from langchain_selfamplify.strict import StrictModel


class Accuracy(StrictModel):
    """Share of correct answers with its Wilson score interval."""

    correct: int
    """Number of correct answers."""
    n: int
    """Number of questions."""
    value: float
    """``correct / n``."""
    ci_low: float
    """Lower bound of the 95% interval."""
    ci_high: float
    """Upper bound of the 95% interval."""


def accuracy(correct: int, n: int, z: float = 1.959964) -> Accuracy:
    """Accuracy and its Wilson score interval (95% by default).

    The Wilson interval stays inside [0, 1] and behaves at 0% and 100%, unlike the
    normal approximation.
    """
    if n <= 0:
        raise ValueError("accuracy needs at least one question")
    if not 0 <= correct <= n:
        raise ValueError(f"correct={correct} is outside [0, {n}]")
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Accuracy(correct=correct, n=n, value=p,
                    ci_low=max(0.0, centre - half), ci_high=min(1.0, centre + half))
