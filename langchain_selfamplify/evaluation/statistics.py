"""Paired comparisons of two prompts answered on the same test questions.

An accuracy claim ("Self-AMPLIFY beats IO") stands only on a paired test: both prompts
answer the same questions under the same seed, and what is tested is the difference
question by question, not whether two accuracy intervals overlap.

* :func:`mcnemar_exact`: the exact (binomial) McNemar test on the discordant pairs;
* :func:`paired_bootstrap`: a percentile interval of the accuracy difference,
  resampling questions;
* :func:`compare_paired`: both, for one seed;
* :func:`compare_across_seeds`: the mean difference over seeds, with a bootstrap
  interval that resamples the (fixed) test questions jointly for every seed, and a
  paired sign-flip permutation p-value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from langchain_selfamplify.strict import StrictModel

Verdict = Literal["beats", "no detectable difference", "worse than"]


class PairedComparison(StrictModel):
    """Accuracy difference ``method - baseline`` on the same questions."""

    n: int
    """Questions answered by both (per seed; summed over seeds in the across-seed case)."""
    difference: float
    """Accuracy of the method minus that of the baseline (mean over seeds when pooled)."""
    ci_low: float
    """Lower bound of the 95% paired-bootstrap interval of the difference."""
    ci_high: float
    """Upper bound of the 95% paired-bootstrap interval of the difference."""
    p_value: float
    """Exact McNemar p-value (one seed) or paired permutation p-value (across seeds)."""
    method_only: int
    """Questions (x seeds) the method gets right and the baseline wrong."""
    baseline_only: int
    """Questions (x seeds) the baseline gets right and the method wrong."""
    seeds: int = 1
    """Seeds pooled."""

    @property
    def verdict(self) -> Verdict:
        """``"beats"``/``"worse than"`` when the 95% interval excludes 0, else
        ``"no detectable difference"``."""
        if self.ci_low > 0:
            return "beats"
        if self.ci_high < 0:
            return "worse than"
        return "no detectable difference"


def mcnemar_exact(method_only: int, baseline_only: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts.

    Under the null each discordant question is equally likely to favour either
    prompt, so ``method_only ~ Binomial(b + c, 1/2)``; the p-value doubles the smaller
    tail, capped at 1. With no discordant question it is 1.

    Args:
        method_only: Questions only the method answers correctly (``b``).
        baseline_only: Questions only the baseline answers correctly (``c``).
    """
    if method_only < 0 or baseline_only < 0:
        raise ValueError("discordant counts must be non-negative")
    total = method_only + baseline_only
    if total == 0:
        return 1.0
    smaller = min(method_only, baseline_only)
    tail = sum(math.comb(total, i) for i in range(smaller + 1)) / 2**total
    return min(1.0, 2 * tail)


def paired_bootstrap(
    method: Sequence[float],
    baseline: Sequence[float],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Mean of ``method - baseline`` and its percentile bootstrap interval.

    Questions are resampled with replacement, keeping each question's pair together.

    Args:
        method: Per-question scores of the method (1 right, 0 wrong, or a mean over seeds).
        baseline: The baseline's scores on the same questions, in the same order.
        n_resamples: Bootstrap resamples. Defaults to 10,000.
        seed: Seed of the resampling. Defaults to 0.
        confidence: Interval coverage. Defaults to 0.95.

    Returns:
        ``(difference, ci_low, ci_high)``.
    """
    if len(method) != len(baseline):
        raise ValueError(f"paired scores differ in length: {len(method)} vs {len(baseline)}")
    if not method:
        raise ValueError("a paired comparison needs at least one question")
    diffs = np.asarray(method, dtype=float) - np.asarray(baseline, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.sort(diffs[rng.integers(0, len(diffs), (n_resamples, len(diffs)))].mean(axis=1))
    alpha = (1 - confidence) / 2
    low = means[int(math.floor(alpha * (n_resamples - 1)))]
    high = means[int(math.ceil((1 - alpha) * (n_resamples - 1)))]
    return float(diffs.mean()), float(low), float(high)


def paired_permutation_p(diffs: Sequence[float], *, n_resamples: int = 10_000,
                         seed: int = 0) -> float:
    """Two-sided p-value of a mean paired difference by random sign flips."""
    nonzero = np.asarray([d for d in diffs if d], dtype=float)
    if not len(nonzero):
        return 1.0
    observed = abs(nonzero.sum())
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_resamples, len(nonzero)))
    extreme = int((np.abs(signs @ nonzero) >= observed - 1e-12).sum())
    return (extreme + 1) / (n_resamples + 1)


def compare_paired(method: Mapping[str, bool], baseline: Mapping[str, bool], *,
                   n_resamples: int = 10_000, seed: int = 0) -> PairedComparison:
    """Compare two prompts on the questions both answered (one seed).

    Args:
        method: Question id -> whether the method answered it correctly.
        baseline: Question id -> whether the baseline answered it correctly.
        n_resamples: Bootstrap resamples. Defaults to 10,000.
        seed: Bootstrap seed. Defaults to 0.

    Raises:
        ValueError: the two share no question.
    """
    ids = sorted(set(method) & set(baseline))
    if not ids:
        raise ValueError("the two prompts share no answered question")
    a = [float(method[i]) for i in ids]
    b = [float(baseline[i]) for i in ids]
    diff, low, high = paired_bootstrap(a, b, n_resamples=n_resamples, seed=seed)
    only_a = sum(x > y for x, y in zip(a, b, strict=True))
    only_b = sum(y > x for x, y in zip(a, b, strict=True))
    return PairedComparison(n=len(ids), difference=diff, ci_low=low, ci_high=high,
                            p_value=mcnemar_exact(only_a, only_b), method_only=only_a,
                            baseline_only=only_b)


def compare_across_seeds(
    method: Mapping[int, Mapping[str, bool]],
    baseline: Mapping[int, Mapping[str, bool]],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Mean accuracy difference over seeds, on the test questions every seed shares.

    Each seed has its own demonstrations, and the test questions are fixed per
    dataset, so the per-question difference averaged over seeds is one paired score
    per question. The interval resamples questions (the same resample for every
    seed); the p-value flips the signs of those per-question differences.

    Args:
        method: Seed -> question id -> correct, for the method.
        baseline: Seed -> question id -> correct, for the baseline.
        n_resamples: Resamples of the bootstrap and the permutation test.
        seed: Their seed.

    Raises:
        ValueError: no seed or no question is common to both.
    """
    seeds = sorted(set(method) & set(baseline))
    if not seeds:
        raise ValueError("the two prompts share no seed")
    ids = sorted(set.intersection(*(set(method[s]) & set(baseline[s]) for s in seeds)))
    if not ids:
        raise ValueError("the two prompts share no answered question across seeds")
    a = [sum(float(method[s][i]) for s in seeds) / len(seeds) for i in ids]
    b = [sum(float(baseline[s][i]) for s in seeds) / len(seeds) for i in ids]
    diff, low, high = paired_bootstrap(a, b, n_resamples=n_resamples, seed=seed)
    only_a = sum(method[s][i] and not baseline[s][i] for s in seeds for i in ids)
    only_b = sum(baseline[s][i] and not method[s][i] for s in seeds for i in ids)
    p = paired_permutation_p([x - y for x, y in zip(a, b, strict=True)],
                             n_resamples=n_resamples, seed=seed)
    return PairedComparison(n=len(ids), difference=diff, ci_low=low, ci_high=high, p_value=p,
                            method_only=only_a, baseline_only=only_b, seeds=len(seeds))
