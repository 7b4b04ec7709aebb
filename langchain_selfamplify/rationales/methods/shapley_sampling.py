"""Shapley value sampling rationales: Captum's ShapleyValueSampling over words."""

from __future__ import annotations

import torch

from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.perturbation import CoalitionValue, PerturbationMethod


@register_method
class ShapleySamplingRationale(PerturbationMethod):
    """Top-k keywords by Shapley values estimated from random word permutations.

    Args:
        backend: The model to explain.
        k: Number of keywords. Defaults to 5.
        n_permutations: Random permutations of the words. Defaults to 4.
        seed: Seed for the permutations. Defaults to 0.
    """

    name = "shapley_sampling"
    description = "Captum ShapleyValueSampling over words (random permutations)"

    def __init__(
        self, backend: ModelBackend, k: int = 5, n_permutations: int = 4, seed: int = 0
    ) -> None:
        super().__init__(backend, k, seed)
        if n_permutations < 1:
            raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
        self.n_permutations = n_permutations

    def forward_passes(self, n_words: int) -> int:
        """One evaluation per word per permutation, plus the baseline."""
        return self.n_permutations * n_words + 1

    def feature_attributions(self, value: CoalitionValue, n_features: int) -> list[float]:
        """Sampled Shapley values of the word features."""
        from captum.attr import ShapleyValueSampling

        present = torch.ones(1, n_features)
        scores = ShapleyValueSampling(value).attribute(
            present, baselines=torch.zeros_like(present), n_samples=self.n_permutations,
            perturbations_per_eval=n_features,
        )
        return scores[0].tolist()
