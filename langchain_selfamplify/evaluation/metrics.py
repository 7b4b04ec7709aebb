"""Accuracy with a 95% confidence interval.

* :func:`accuracy`: one pass over ``n`` questions, Wilson interval;
* :func:`clustered_accuracy`: the same questions answered under several seeds, with
  an interval from a bootstrap over questions (each question's answers over seeds stay
  together), since those answers are not independent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

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
    interval: str = "Wilson"
    """How the interval was made."""


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


def percentile_bounds(n_resamples: int, confidence: float) -> tuple[int, int]:
    """Indices of a percentile bootstrap interval's bounds among ``n_resamples`` sorted
    resampled values."""
    alpha = (1 - confidence) / 2
    return (int(math.floor(alpha * (n_resamples - 1))),
            int(math.ceil((1 - alpha) * (n_resamples - 1))))


def clustered_accuracy(correct: Sequence[int], answered: Sequence[int], *,
                       n_resamples: int = 10_000, seed: int = 0,
                       confidence: float = 0.95) -> Accuracy:
    """Accuracy over questions answered under several seeds, with a cluster-bootstrap
    interval: questions are resampled with replacement, each with all its answers.

    Treating question x seed as independent (Wilson on ``n x seeds``) makes the interval
    too narrow when, as in the grid, every seed answers the same questions. Counts are
    summed as integers and divided once.

    Args:
        correct: Per question, how many of its answers are right.
        answered: Per question, how many answers it has (the seeds that answered it).
        n_resamples: Bootstrap resamples. Defaults to 10,000.
        seed: Their seed. Defaults to 0.
        confidence: Interval coverage. Defaults to 0.95.
    """
    if len(correct) != len(answered) or not correct:
        raise ValueError("clustered accuracy needs one (correct, answered) count per question")
    right, total = np.asarray(correct, dtype=np.int64), np.asarray(answered, dtype=np.int64)
    if (right < 0).any() or (right > total).any():
        raise ValueError("a question has more correct answers than answers")
    draws = np.random.default_rng(seed).integers(0, len(right), (n_resamples, len(right)))
    shares = np.sort(right[draws].sum(axis=1) / total[draws].sum(axis=1))
    low_index, high_index = percentile_bounds(n_resamples, confidence)
    low, high = shares[low_index], shares[high_index]
    return Accuracy(correct=int(right.sum()), n=int(total.sum()),
                    value=float(right.sum() / total.sum()), ci_low=float(low),
                    ci_high=float(high), interval="cluster bootstrap over questions")
