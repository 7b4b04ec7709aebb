"""KernelShap rationales: Captum's KernelShap over the question's content words."""

from __future__ import annotations

import torch

from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.perturbation import CoalitionValue, PerturbationMethod

PAPER_SAMPLES = 200
"""Coalitions sampled per demonstration in the paper's experiments: the default."""


@register_method
class KernelShapRationale(PerturbationMethod):
    """Top-k keywords by Captum KernelShap; value = log-prob of the gold label.

    Args:
        backend: The model to explain.
        k: Number of keywords. Defaults to 5.
        n_samples: Coalitions sampled per example. Defaults to :data:`PAPER_SAMPLES` (200).
        seed: Seed for coalition sampling. Defaults to 0.
    """

    name = "kernelshap"
    description = "Captum KernelShap over words (sampled coalitions)"

    def __init__(
        self, backend: ModelBackend, k: int = 5, n_samples: int = PAPER_SAMPLES, seed: int = 0
    ) -> None:
        super().__init__(backend, k, seed)
        if n_samples < 2:
            raise ValueError(f"n_samples must be >= 2, got {n_samples}")
        self.n_samples = n_samples

    def forward_passes(self, n_words: int) -> int:
        """One evaluation per sampled coalition."""
        return self.n_samples

    def feature_attributions(self, value: CoalitionValue, n_features: int) -> list[float]:
        """KernelShap values of the word features."""
        from captum.attr import KernelShap

        present = torch.ones(1, n_features)
        scores = KernelShap(value).attribute(
            present, baselines=torch.zeros_like(present), n_samples=self.n_samples,
            perturbations_per_eval=self.n_samples,
        )
        return scores[0].tolist()
