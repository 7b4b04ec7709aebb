"""LIME rationales: Captum's Lime over the question's content words."""

from __future__ import annotations

import torch

from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.perturbation import CoalitionValue, PerturbationMethod


@register_method
class LimeRationale(PerturbationMethod):
    """Top-k keywords by Captum Lime (a linear surrogate fitted on word coalitions).

    The surrogate is a ridge regression: Captum's default lasso (alpha 0.01) zeroes
    every coefficient when log-probabilities move by less than its penalty, as they
    do for small models.

    Args:
        backend: The model to explain.
        k: Number of keywords. Defaults to 5.
        n_samples: Coalitions sampled per example. Defaults to 200.
        seed: Seed for coalition sampling. Defaults to 0.
        ridge_alpha: L2 penalty of the surrogate. Defaults to 1e-3.
    """

    name = "lime"
    description = "Captum Lime over words (sampled coalitions, lasso surrogate)"

    def __init__(self, backend: ModelBackend, k: int = 5, n_samples: int = 200, seed: int = 0,
                 ridge_alpha: float = 1e-3) -> None:
        super().__init__(backend, k, seed)
        if n_samples < 2:
            raise ValueError(f"n_samples must be >= 2, got {n_samples}")
        self.n_samples = n_samples
        self.ridge_alpha = ridge_alpha

    def forward_passes(self, n_words: int) -> int:
        """One evaluation per sampled coalition."""
        return self.n_samples

    def feature_attributions(self, value: CoalitionValue, n_features: int) -> list[float]:
        """Lime coefficients of the word features."""
        from captum._utils.models.linear_model import SkLearnRidge
        from captum.attr import Lime

        present = torch.ones(1, n_features)
        lime = Lime(value, interpretable_model=SkLearnRidge(alpha=self.ridge_alpha))
        scores = lime.attribute(
            present, baselines=torch.zeros_like(present), n_samples=self.n_samples,
            perturbations_per_eval=self.n_samples,
        )
        return scores[0].tolist()
