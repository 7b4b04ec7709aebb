"""Paired comparisons of two prompts answered on the same test questions.

An accuracy claim ("Self-AMPLIFY beats IO") stands only on a paired test: both prompts
answer the same questions under the same seed, and what is tested is the difference
question by question, not whether two accuracy intervals overlap.

* :func:`mcnemar_exact`: the exact (binomial) McNemar test on the discordant pairs;
* :func:`paired_bootstrap`: a percentile interval of the mean paired difference,
  resampling questions;
* :func:`paired_permutation_p`: the sign-flip permutation p-value of that difference;
* :func:`compare_paired`: interval and McNemar p, for one seed;
* :func:`compare_across_seeds`: the mean difference over seeds. Seeds draw the
  demonstrations, so they are a random factor: with 3 or more seeds the interval and
  the p-value come from a two-level bootstrap (seeds, then questions); with fewer the
  comparison falls back to questions only, and says so;
* :func:`holm_significant`: Holm's step-down correction over a family of tests.

Correct answers are counts, so the arithmetic is on integers: per-question differences
are whole numbers (summed over seeds), resampled sums are whole numbers, and the
division by the number of answers comes last. A verdict therefore never rests on a
rounding residue such as ``-6e-18``.

A verdict of "beats" or "worse than" needs both the 95% interval to exclude 0 and the
p-value to be under the (Holm-corrected) alpha; see :meth:`PairedComparison.decide`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from langchain_selfamplify.evaluation.metrics import percentile_bounds
from langchain_selfamplify.strict import StrictModel

Verdict = Literal["beats", "no detectable difference", "worse than"]
IntervalLevel = Literal["questions", "seeds and questions", "questions (fewer than 3 seeds)"]

MIN_SEEDS_FOR_SEED_LEVEL = 3
"""From this many seeds the across-seed comparison resamples seeds as well as questions."""
ALPHA = 0.05
"""Family-wise significance level of every verdict."""
EXACT_SIGN_FLIPS = 16
"""Up to this many non-zero differences the sign-flip test enumerates every sign vector."""


class PairedComparison(StrictModel):
    """Accuracy difference ``method - baseline`` on the same questions."""

    n: int
    """Test questions answered by both prompts (the same questions in every seed)."""
    difference: float
    """Accuracy of the method minus that of the baseline (mean over seeds when pooled)."""
    ci_low: float
    """Lower bound of the 95% percentile-bootstrap interval of the difference."""
    ci_high: float
    """Upper bound of the 95% percentile-bootstrap interval of the difference."""
    interval_level: IntervalLevel = "questions"
    """What the interval resamples: questions, or seeds then questions."""
    p_value: float
    """Two-sided p-value of the test named in ``test``."""
    test: str = "exact McNemar"
    """The test behind ``p_value``."""
    method_only: int
    """Question-seed pairs the method gets right and the baseline wrong."""
    baseline_only: int
    """Question-seed pairs the baseline gets right and the method wrong."""
    seeds: int = 1
    """Seeds pooled."""

    def decide(self, significant: bool | None = None) -> Verdict:
        """The verdict: "beats" (or "worse than") needs the interval to exclude 0 on
        that side *and* the p-value to pass.

        Args:
            significant: Whether ``p_value`` passed the family's correction (see
                :func:`holm_significant`). Defaults to ``p_value < 0.05``, for a
                comparison that stands alone.
        """
        if not (self.p_value < ALPHA if significant is None else significant):
            return "no detectable difference"
        if self.ci_low > 0:
            return "beats"
        if self.ci_high < 0:
            return "worse than"
        return "no detectable difference"

    @property
    def verdict(self) -> Verdict:
        """:meth:`decide` for a comparison that stands alone (p < 0.05)."""
        return self.decide()


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
    Whole-number scores (correct counts) are summed as integers and divided once, so
    the bounds are exact fractions.

    Args:
        method: Per-question scores of the method (1 right, 0 wrong, or any score).
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
    a, b = np.asarray(method), np.asarray(baseline)
    whole = all(float(x).is_integer() for x in itertools.chain(a.tolist(), b.tolist()))
    diffs = (a.astype(np.int64) - b.astype(np.int64)) if whole else a.astype(float) - b
    rng = np.random.default_rng(seed)
    sums = np.sort(diffs[rng.integers(0, len(diffs), (n_resamples, len(diffs)))].sum(axis=1))
    low, high = percentile_bounds(len(sums), confidence)
    n = len(diffs)
    return float(diffs.sum() / n), float(sums[low] / n), float(sums[high] / n)


def paired_permutation_p(diffs: Sequence[float], *, n_resamples: int = 10_000,
                         seed: int = 0) -> float:
    """Two-sided p-value of a mean paired difference by sign flips.

    Under the null each question's difference is as likely to have either sign. Up to
    :data:`EXACT_SIGN_FLIPS` non-zero differences every sign vector is enumerated (the
    exact p-value); beyond, ``n_resamples`` random ones are drawn and the p-value is
    ``(extreme + 1) / (n_resamples + 1)``.

    Args:
        diffs: Per-question differences (zeros carry no sign and are dropped).
        n_resamples: Random sign vectors when the test is not exact. Defaults to 10,000.
        seed: Their seed. Defaults to 0.
    """
    nonzero = np.asarray([d for d in diffs if d], dtype=float)
    if not len(nonzero):
        return 1.0
    observed = abs(nonzero.sum())
    tolerance = 1e-9 * max(1.0, float(np.abs(nonzero).sum()))
    if len(nonzero) <= EXACT_SIGN_FLIPS:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=len(nonzero))))
        return float((np.abs(signs @ nonzero) >= observed - tolerance).mean())
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_resamples, len(nonzero)))
    extreme = int((np.abs(signs @ nonzero) >= observed - tolerance).sum())
    return (extreme + 1) / (n_resamples + 1)


def two_level_bootstrap(
    diffs: np.ndarray,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Interval and p-value of a mean difference whose rows are seeds, resampling seeds
    then questions.

    Each resample draws ``S`` seeds and ``n`` questions with replacement and sums the
    drawn cells, ``sum_s sum_q diffs[s, q]`` (integers), so both the demonstrations' draw
    and the questions' draw vary as they would in a new run.

    Args:
        diffs: ``(seeds, questions)`` whole-number differences (method - baseline).
        n_resamples: Resamples. Defaults to 10,000.
        seed: Their seed. Defaults to 0.
        confidence: Interval coverage. Defaults to 0.95.

    Returns:
        ``(ci_low, ci_high, p_value)``: the percentile interval of the mean difference
        and the two-sided bootstrap p-value, twice the smaller share of resamples on
        either side of 0 (resamples at exactly 0 count on both sides).
    """
    seeds, questions = diffs.shape
    rng = np.random.default_rng(seed)
    seed_counts = np.zeros((n_resamples, seeds), dtype=np.int64)
    np.add.at(seed_counts, (np.arange(n_resamples)[:, None],
                            rng.integers(0, seeds, (n_resamples, seeds))), 1)
    question_counts = np.zeros((n_resamples, questions), dtype=np.int64)
    np.add.at(question_counts, (np.arange(n_resamples)[:, None],
                                rng.integers(0, questions, (n_resamples, questions))), 1)
    sums = np.sort(((seed_counts @ diffs.astype(np.int64)) * question_counts).sum(axis=1))
    low, high = percentile_bounds(len(sums), confidence)
    total = seeds * questions
    tail = min((sums <= 0).sum(), (sums >= 0).sum())
    p_value = min(1.0, 2 * (tail + 1) / (n_resamples + 1))
    return float(sums[low] / total), float(sums[high] / total), p_value


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
    a = [int(method[i]) for i in ids]
    b = [int(baseline[i]) for i in ids]
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

    Each seed has its own demonstrations and the test questions are fixed per dataset.
    With at least :data:`MIN_SEEDS_FOR_SEED_LEVEL` seeds, the interval and p-value come
    from :func:`two_level_bootstrap`, so the claim covers new draws of demonstrations,
    not only these. With fewer, the per-question differences summed over seeds are
    bootstrapped over questions and tested by sign flips, and ``interval_level`` says
    that the seeds were held fixed.

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
    diffs = np.array([[int(method[s][i]) - int(baseline[s][i]) for i in ids] for s in seeds],
                     dtype=np.int64)
    difference = float(diffs.sum() / diffs.size)
    level: IntervalLevel
    if len(seeds) >= MIN_SEEDS_FOR_SEED_LEVEL:
        low, high, p = two_level_bootstrap(diffs, n_resamples=n_resamples, seed=seed)
        level, test = "seeds and questions", "two-level bootstrap (seeds, then questions)"
    else:
        per_question = diffs.sum(axis=0)
        _, low, high = paired_bootstrap(per_question.tolist(), [0] * len(ids),
                                        n_resamples=n_resamples, seed=seed)
        low, high = low / len(seeds), high / len(seeds)
        p = paired_permutation_p(per_question.tolist(), n_resamples=n_resamples, seed=seed)
        level = "questions" if len(seeds) == 1 else "questions (fewer than 3 seeds)"
        test = "sign-flip permutation over questions"
    return PairedComparison(
        n=len(ids), difference=difference, ci_low=low, ci_high=high, interval_level=level,
        p_value=p, test=test, method_only=int((diffs > 0).sum()),
        baseline_only=int((diffs < 0).sum()), seeds=len(seeds))


def holm_significant(p_values: Sequence[float], alpha: float = ALPHA,
                     family_size: int | None = None) -> list[bool]:
    """Which tests of a family Holm's step-down procedure rejects at ``alpha``.

    The k-th smallest p-value (k from 0) is compared with ``alpha / (m - k)``; the
    first that fails stops the procedure, and it and every larger p-value are kept.

    Args:
        p_values: The p-values of the family's tests run so far, in any order.
        alpha: Family-wise error rate. Defaults to 0.05.
        family_size: ``m``, the tests the family was planned with. Those not run yet
            count as never rejected (p = 1). Holm's procedure is monotone, so a finished
            test rejected now stays rejected as the others finish: the verdicts of a
            table filled in over days do not flip with the order its cells finish in.
            Defaults to ``len(p_values)``.

    Raises:
        ValueError: ``family_size`` is smaller than the number of p-values.
    """
    m = len(p_values) if family_size is None else family_size
    if m < len(p_values):
        raise ValueError(f"family_size={m} is smaller than the {len(p_values)} tests given")
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    significant = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] >= alpha / (m - rank):
            break
        significant[index] = True
    return significant
