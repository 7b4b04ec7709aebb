"""Shared machinery of gradient attributions on the input embeddings.

The explained function maps input embeddings to the answer labels' logits right after
``"The answer is ("``; the target is the gold label. Baselines equal the input outside
the question span and zero over it, so only question tokens receive attribution.
Token scores (summed over the embedding dimension) are summed per word.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.rationales.attribution import AttributionMethod
from langchain_selfamplify.rationales.words import (
    WordAttribution,
    aggregate_to_words,
    question_words,
)


class LabelLogitsFromEmbeddings(nn.Module):
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


@dataclass
class GradientInputs:
    """What a gradient method attributes: embeddings, baseline, target, question mask."""

    forward: LabelLogitsFromEmbeddings
    """The explained function."""
    embeds: torch.Tensor
    """Input embeddings, ``(1, tokens, dim)``, requiring gradients."""
    baseline: torch.Tensor
    """The input with the question span zeroed."""
    target: int
    """Index of the gold label among the labels."""
    in_question: torch.Tensor
    """Boolean mask of the question's tokens."""


class GradientMethod(AttributionMethod):
    """Base of attribution methods that back-propagate to the input embeddings."""

    needs_gradients = True

    @abstractmethod
    def token_attributions(self, inputs: GradientInputs) -> torch.Tensor:
        """Attribution per token, ``(tokens,)``, zero outside the question."""

    def attribute(self, example: MCQExample) -> WordAttribution:
        """Scores of the question's words towards the gold label."""
        slm = self.slm
        prompt = self.question_prompt(example)
        ids = torch.tensor([prompt.input_ids], device=slm.device)
        in_question = torch.tensor([w is not None for w in prompt.word_of_token],
                                   device=slm.device)
        with slm.lock:
            embeds = slm.embedding_layer(ids).detach().requires_grad_()
            baseline = embeds.detach().clone()
            baseline[0, in_question] = 0.0
            inputs = GradientInputs(
                forward=LabelLogitsFromEmbeddings(slm.model, slm.label_token_ids(example.labels)),
                embeds=embeds, baseline=baseline, target=example.labels.index(example.answer),
                in_question=in_question,
            )
            with torch.enable_grad():
                token_scores = self.token_attributions(inputs).detach()
        token_scores = token_scores * in_question
        word_scores = aggregate_to_words(prompt.word_of_token, token_scores.tolist(),
                                         len(prompt.words))
        return WordAttribution(example.id, example.answer, question_words(example), word_scores)
