"""Shared machinery of gradient attributions on the input embeddings.

The explained function maps input embeddings to the answer labels' logits right after
``"The answer is ("``; the target is the gold label. Baselines equal the input outside
the question span and zero over it, so only question tokens receive attribution.
Token scores (summed over the embedding dimension) are summed per word.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    """``(inputs_embeds, attention_mask) -> logits of the answer labels at the last
    position``. Rows are left-padded; positions count from each row's first token."""

    def __init__(self, slm: Any, label_ids: list[int]) -> None:
        super().__init__()
        self.model = slm.model  # a submodule, so Captum's DeepLift hooks reach its layers
        self.run = slm.forward
        self.label_ids = label_ids

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
        logits = self.run(1, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                          position_ids=positions).logits
        return logits[:, -1, self.label_ids]


@dataclass
class GradientInputs:
    """What a gradient method attributes: a left-padded batch of examples."""

    forward: LabelLogitsFromEmbeddings
    """The explained function (logits of the union of the examples' label tokens)."""
    embeds: torch.Tensor
    """Input embeddings, ``(examples, tokens, dim)``, requiring gradients."""
    baseline: torch.Tensor
    """The input with the question spans zeroed."""
    attention_mask: torch.Tensor
    """``(examples, tokens)``: 1 on real tokens, 0 on left padding."""
    target: list[int]
    """Per example, the index of its gold label among ``forward.label_ids``."""
    in_question: torch.Tensor
    """``(examples, tokens)`` boolean mask of the question tokens."""

    @property
    def additional_forward_args(self) -> tuple[torch.Tensor]:
        """What Captum passes to :attr:`forward` after the embeddings."""
        return (self.attention_mask,)


class GradientMethod(AttributionMethod):
    """Base of attribution methods that back-propagate to the input embeddings.

    Examples of similar lengths are attributed together, left-padded in one batch
    (see :meth:`examples_per_batch`).
    """

    needs_gradients = True
    max_rows = 8
    """Most rows (examples, or path steps) in one backward pass: back-propagation keeps
    every layer's activations, about 1 MB per token on a 135M model."""

    def examples_per_batch(self) -> int:
        """``slm.batch_size``, at most half of :attr:`max_rows` (DeepLift runs each
        example next to its baseline)."""
        return max(1, min(self.slm.batch_size, self.max_rows // 2))

    @abstractmethod
    def token_attributions(self, inputs: GradientInputs) -> torch.Tensor:
        """Attribution per token, ``(examples, tokens)``."""

    def attribute(self, example: MCQExample) -> WordAttribution:
        """Scores of the question's words towards the gold label."""
        return self.attribute_batch([example])[0]

    def attribute_batch(self, examples: Sequence[MCQExample]) -> list[WordAttribution]:
        """:meth:`attribute` for several examples in one batch of model calls."""
        slm = self.slm
        prompts = [self.question_prompt(example) for example in examples]
        batch = slm.pad_left([prompt.input_ids for prompt in prompts])
        width = batch.input_ids.shape[1]
        in_question = torch.zeros(len(prompts), width, dtype=torch.bool, device=slm.device)
        for row, prompt in enumerate(prompts):
            in_question[row, width - len(prompt.input_ids):] = torch.tensor(
                [w is not None for w in prompt.word_of_token])
        gold_ids = [slm.label_token_id(example.answer) for example in examples]
        label_ids = sorted({i for example in examples
                            for i in slm.label_token_ids(example.labels)})
        with slm.lock:
            embeds = slm.embedding_layer(batch.input_ids).detach().requires_grad_()
            baseline = embeds.detach().clone()
            baseline[in_question] = 0.0
            inputs = GradientInputs(
                forward=LabelLogitsFromEmbeddings(slm, label_ids), embeds=embeds,
                baseline=baseline, attention_mask=batch.attention_mask,
                target=[label_ids.index(gold) for gold in gold_ids], in_question=in_question,
            )
            with torch.enable_grad():
                token_scores = self.token_attributions(inputs).detach() * in_question
        attributions = []
        for row, (example, prompt) in enumerate(zip(examples, prompts, strict=True)):
            scores = token_scores[row, width - len(prompt.input_ids):].tolist()
            word_scores = aggregate_to_words(prompt.word_of_token, scores, len(prompt.words))
            attributions.append(WordAttribution(example.id, example.answer,
                                                question_words(example), word_scores))
        return attributions
