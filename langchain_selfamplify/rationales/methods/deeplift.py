"""DeepLift rationales: Captum's DeepLift on the input embeddings.

Captum applies DeepLift's rescale rule to the non-linear *modules* it knows; we add
the elementwise activations of Hugging Face models (SiLU, GELU) for the duration of
the call, so transformer MLPs are treated by the rule rather than by plain gradients.
Attention softmax is a function, not a module, and falls back to gradients, as in
every Captum DeepLift of a transformer; so do RMSNorm and the product of a gated MLP.
Attributions therefore sum to the logit difference only approximately.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.gradient import GradientInputs, GradientMethod


@contextlib.contextmanager
def rescale_rule_for_hf_activations() -> Iterator[None]:
    """Let Captum's DeepLift treat Hugging Face activation modules by the rescale rule."""
    from captum.attr._core import deep_lift
    from transformers import activations

    added = []
    for name in ("SiLUActivation", "GELUActivation", "NewGELUActivation", "FastGELUActivation",
                 "QuickGELUActivation", "GELUTanh", "PytorchGELUTanh"):
        cls = getattr(activations, name, None)
        if isinstance(cls, type) and cls not in deep_lift.SUPPORTED_NON_LINEAR:
            added.append(cls)
    added += [c for c in (nn.SiLU, nn.GELU) if c not in deep_lift.SUPPORTED_NON_LINEAR]
    for cls in added:
        deep_lift.SUPPORTED_NON_LINEAR[cls] = deep_lift.nonlinear
    try:
        yield
    finally:
        for cls in added:
            deep_lift.SUPPORTED_NON_LINEAR.pop(cls, None)


@register_method
class DeepLiftRationale(GradientMethod):
    """Top-k keywords by Captum DeepLift on the input embeddings.

    Target: the gold label's logit at the answer position (letter format) or the gold
    text's log-likelihood (cloze); baseline: the mask token's embedding over the
    question span only (an absent word, see ``absence.py``).

    Args:
        backend: The model to explain (must expose its input embeddings).
        k: Number of keywords. Defaults to 5.
    """

    name = "deeplift"
    description = "Captum DeepLift (rescale rule) on the input embeddings"

    def forward_passes(self, n_words: int) -> int:
        """One forward and one backward pass over input and baseline."""
        return 4

    def token_attributions(self, inputs: GradientInputs) -> torch.Tensor:
        """DeepLift attribution per token."""
        import warnings

        from captum.attr import DeepLift

        with rescale_rule_for_hf_activations(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            scores = DeepLift(inputs.forward).attribute(
                inputs.embeds, baselines=inputs.baseline, target=inputs.target,
                additional_forward_args=inputs.additional_forward_args)
        return scores.sum(dim=-1)
