"""Gradient x Input rationales (Captum ``InputXGradient``) on the input embeddings."""

from __future__ import annotations

import torch

from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.gradient import GradientInputs, GradientMethod


@register_method
class GradientXInputRationale(GradientMethod):
    """Top-k keywords by gradient times input embedding (question tokens only).

    Args:
        backend: The model to explain.
        k: Number of keywords. Defaults to 5.
    """

    name = "gradient_x_input"
    description = "Captum InputXGradient on the input embeddings"

    def forward_passes(self, n_words: int) -> int:
        """One forward and one backward pass."""
        return 2

    def token_attributions(self, inputs: GradientInputs) -> torch.Tensor:
        """Gradient x input per token."""
        from captum.attr import InputXGradient

        scores = InputXGradient(inputs.forward).attribute(
            inputs.embeds, target=inputs.target,
            additional_forward_args=inputs.additional_forward_args)
        return scores.sum(dim=-1)
