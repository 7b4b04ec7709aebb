"""Integrated Gradients rationales (Captum) on the input embeddings."""

from __future__ import annotations

import torch

from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.gradient import GradientInputs, GradientMethod


@register_method
class IntegratedGradientsRationale(GradientMethod):
    """Top-k keywords by Integrated Gradients from the question-masked baseline.

    The path's steps are batched (``internal_batch_size``: ``backend.batch_size``, at most
    ``max_rows``).

    Args:
        backend: The model to explain.
        k: Number of keywords. Defaults to 5.
        path_steps: Riemann steps along the path (Captum's ``n_steps``). Defaults to 32.
    """

    name = "integrated_gradients"
    description = "Captum Integrated Gradients on the input embeddings"

    def __init__(self, backend: ModelBackend, k: int = 5, path_steps: int = 32) -> None:
        super().__init__(backend, k)
        if path_steps < 1:
            raise ValueError(f"path_steps must be >= 1, got {path_steps}")
        self.path_steps = path_steps

    def forward_passes(self, n_words: int) -> int:
        """A forward and a backward pass per step."""
        return 2 * self.path_steps

    def token_attributions(self, inputs: GradientInputs) -> torch.Tensor:
        """Integrated Gradients per token."""
        from captum.attr import IntegratedGradients

        scores = IntegratedGradients(inputs.forward).attribute(
            inputs.embeds, baselines=inputs.baseline, target=inputs.target,
            n_steps=self.path_steps,
            internal_batch_size=max(1, min(self.backend.batch_size, self.max_rows)),
            additional_forward_args=inputs.additional_forward_args,
        )
        return scores.sum(dim=-1)
