"""DeepLift rationales: Captum's DeepLift on the input embeddings.

The target is the gold label's logit right after ``"The answer is ("``. The baseline
equals the input everywhere except over the question span, where embeddings are
zeroed, so only question tokens receive attribution. Token scores (summed over the
embedding dimension) are summed per word.

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
from typing import Any

import torch
from torch import nn

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.rationales.attribution import AttributionMethod
from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.words import WordAttribution, aggregate_to_words


class _LabelLogitFromEmbeddings(nn.Module):
    """``inputs_embeds -> logits of the answer labels at the last position``."""

    def __init__(self, model: nn.Module, label_ids: list[int]) -> None:
        super().__init__()
        self.model = model
        self.label_ids = label_ids

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        batch, length = inputs_embeds.shape[:2]
        positions = torch.arange(length, device=inputs_embeds.device).expand(batch, -1)
        mask = torch.ones(batch, length, dtype=torch.long, device=inputs_embeds.device)
        logits = self.model(
            inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=positions
        ).logits
        return logits[:, -1, self.label_ids]


@contextlib.contextmanager
def _rescale_rule_for_hf_activations() -> Iterator[None]:
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
class DeepLiftRationale(AttributionMethod):
    """Top-k keywords by Captum DeepLift on the input embeddings.

    Args:
        slm: The model to explain (must expose its input embeddings).
        k: Number of keywords. Defaults to 5.
    """

    name = "deeplift"
    needs_gradients = True

    def __init__(self, slm: Any, k: int = 5) -> None:
        super().__init__(slm, k)

    def attribute(self, example: MCQExample) -> WordAttribution:
        """DeepLift scores of the question's words towards the gold label."""
        from captum.attr import DeepLift

        slm = self.slm
        prompt = self.question_prompt(example)
        ids = torch.tensor([prompt.input_ids], device=slm.device)
        label_ids = slm.label_token_ids(example.labels)
        target = example.labels.index(example.answer)
        in_question = torch.tensor(
            [word is not None for word in prompt.word_of_token], device=slm.device
        )
        with slm.lock, _rescale_rule_for_hf_activations():
            embeds = slm.embedding_layer(ids).detach().requires_grad_()
            baseline = embeds.detach().clone()
            baseline[0, in_question] = 0.0
            wrapper = _LabelLogitFromEmbeddings(slm.model, label_ids)
            explainer = DeepLift(wrapper)
            with torch.enable_grad():
                scores = explainer.attribute(embeds, baselines=baseline, target=target)
        token_scores = scores.sum(dim=-1)[0].tolist()
        word_scores = aggregate_to_words(prompt.word_of_token, token_scores, len(prompt.words))
        return WordAttribution(example.id, example.answer, prompt.words, word_scores)
