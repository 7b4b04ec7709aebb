"""shap Partition rationales: ``shap.PartitionExplainer`` over the question's words.

Words are grouped by a hierarchy over their positions (neighbouring words merge
first), as shap's own Text masker groups tokens, and Owen values are estimated
within ``max_evals`` model evaluations.
"""

from __future__ import annotations

import numpy as np
import torch

from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.perturbation import CoalitionValue, PerturbationMethod


@register_method
class ShapPartitionRationale(PerturbationMethod):
    """Top-k keywords by shap's Partition explainer (hierarchical Owen values).

    Args:
        backend: The model to explain.
        k: Number of keywords. Defaults to 5.
        max_evals: Budget of model evaluations per example. Defaults to 200.
        seed: Unused (the method is deterministic); kept for a uniform interface.
    """

    name = "shap_partition"
    description = "shap PartitionExplainer over words (position hierarchy)"

    def __init__(
        self, backend: ModelBackend, k: int = 5, max_evals: int = 200, seed: int = 0
    ) -> None:
        super().__init__(backend, k, seed)
        if max_evals < 4:
            raise ValueError(f"max_evals must be >= 4, got {max_evals}")
        self.max_evals = max_evals

    def forward_passes(self, n_words: int) -> int:
        """At most ``max_evals`` evaluations."""
        return self.max_evals

    def feature_attributions(self, value: CoalitionValue, n_features: int) -> list[float]:
        """Owen values of the word features."""
        if n_features == 1:
            full, empty = value(torch.tensor([[1.0], [0.0]])).tolist()
            return [full - empty]
        import shap
        from scipy.cluster.hierarchy import linkage

        positions = np.arange(n_features, dtype=float)[:, None]
        masker = shap.maskers.Partition(np.zeros((1, n_features)),
                                        clustering=linkage(positions, method="ward"))

        def model(masks: np.ndarray) -> np.ndarray:
            return value(torch.as_tensor(masks, dtype=torch.float32)).cpu().numpy()

        explanation = shap.PartitionExplainer(model, masker)(
            np.ones((1, n_features)), max_evals=max(self.max_evals, 2 * n_features + 1),
            silent=True,
        )
        return [float(v) for v in explanation.values[0]]
