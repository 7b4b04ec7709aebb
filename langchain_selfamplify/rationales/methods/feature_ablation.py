"""Feature-ablation rationales: Captum's FeatureAblation, one word removed at a time."""

from __future__ import annotations

import torch

from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.perturbation import CoalitionValue, PerturbationMethod


@register_method
class FeatureAblationRationale(PerturbationMethod):
    """Top-k keywords by the drop in the gold label's log-probability when each word is
    masked alone (Captum FeatureAblation; deterministic).

    Args:
        backend: The model to explain.
        k: Number of keywords. Defaults to 5.
        seed: Unused (the method is deterministic); kept for a uniform interface.
    """

    name = "feature_ablation"
    description = "Captum FeatureAblation over words (one word masked at a time)"

    def forward_passes(self, n_words: int) -> int:
        """The full question plus one evaluation per word."""
        return n_words + 1

    def feature_attributions(self, value: CoalitionValue, n_features: int) -> list[float]:
        """Ablation effect of each word feature."""
        from captum.attr import FeatureAblation

        present = torch.ones(1, n_features)
        scores = FeatureAblation(value).attribute(
            present, baselines=torch.zeros_like(present), perturbations_per_eval=n_features,
        )
        return scores[0].tolist()
