"""Shared machinery of gradient attributions on the input embeddings.

In the letter format the explained function maps input embeddings to the answer
labels' logits right after ``"The answer is ("``, and the target is the gold label. In
the cloze format it maps them to the summed log-probability of the gold choice's text
after ``"The answer is:"`` (its tokens are appended to the input). Baselines equal the
input outside the question span and the mask token's embedding over it (an absent
word, as ``absence.py`` defines it), so only question tokens receive attribution.
Token scores (summed over the embedding dimension) are summed per word.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.models.core import ModelCore
from langchain_selfamplify.models.label_scoring import label_token_id, label_token_ids
from langchain_selfamplify.rationales.absence import mask_token_id
from langchain_selfamplify.rationales.attribution import AttributionMethod
from langchain_selfamplify.rationales.words import (
    WordAttribution,
    aggregate_to_words,
    question_words,
)


class LabelLogitsFromEmbeddings(nn.Module):
    """``(inputs_embeds, attention_mask) -> logits of the answer labels at the last
    position``. Rows are left-padded; positions count from each row's first token."""

    def __init__(self, local: ModelCore, label_ids: list[int]) -> None:
        super().__init__()
        self.model = local.model  # a submodule, so Captum's DeepLift hooks reach its layers
        self.run = local.forward
        self.label_ids = label_ids

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
        logits = self.run(1, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                          position_ids=positions).logits
        return logits[:, -1, self.label_ids]


class ContinuationLogProb(nn.Module):
    """``(inputs_embeds, attention_mask) -> (rows, 1)``: each row's summed log-probability
    of its own continuation, whose tokens end the (left-padded) row."""

    def __init__(self, local: ModelCore, continuations: Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.model = local.model  # a submodule, so Captum's DeepLift hooks reach its layers
        self.run = local.forward
        width = max(len(c) for c in continuations)
        self.width = width
        tokens = torch.zeros(len(continuations), width, dtype=torch.long)
        mask = torch.zeros(len(continuations), width)
        for row, continuation in enumerate(continuations):
            tokens[row, width - len(continuation):] = torch.tensor(list(continuation))
            mask[row, width - len(continuation):] = 1.0
        self.targets = tokens.to(local.device)
        self.target_mask = mask.to(local.device)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
        logits = self.run(self.width + 1, inputs_embeds=inputs_embeds,
                          attention_mask=attention_mask, position_ids=positions).logits
        log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        # Captum repeats rows (baselines, path steps): tile the row constants to match.
        repeat = inputs_embeds.shape[0] // self.targets.shape[0]
        tokens = self.targets.repeat(repeat, 1)
        mask = self.target_mask.repeat(repeat, 1)
        picked = log_probs.gather(2, tokens.unsqueeze(-1)).squeeze(-1)
        return (picked * mask).sum(dim=1, keepdim=True)


@dataclass
class GradientInputs:
    """What a gradient method attributes: a left-padded batch of examples."""

    forward: nn.Module
    """The explained function: logits of the union of the examples' label tokens
    (:class:`LabelLogitsFromEmbeddings`), or each row's continuation log-probability
    (:class:`ContinuationLogProb`, target 0)."""
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
    requires = ("gradients", "token_ids")
    max_rows = 8
    """Most rows (examples, or path steps) in one backward pass: back-propagation keeps
    every layer's activations, about 1 MB per token on a 135M model."""

    def examples_per_batch(self) -> int:
        """``backend.batch_size``, at most half of :attr:`max_rows` (DeepLift runs each
        example next to its baseline)."""
        return max(1, min(self.backend.batch_size, self.max_rows // 2))

    @abstractmethod
    def token_attributions(self, inputs: GradientInputs) -> torch.Tensor:
        """Attribution per token, ``(examples, tokens)``."""

    def attribute(self, example: MCQExample) -> WordAttribution:
        """Scores of the question's words towards the gold label."""
        return self.attribute_batch([example])[0]

    def attribute_batch(self, examples: Sequence[MCQExample]) -> list[WordAttribution]:
        """:meth:`attribute` for several examples in one batch of model calls."""
        local = self.local
        prompts = [self.question_prompt(example) for example in examples]
        cloze = self.answer_format == "cloze"
        # In the cloze format each row ends with its target text, after the prompt.
        tails = [self.target_tokens(ex) if cloze else [] for ex in examples]
        rows = [prompt.input_ids + tail for prompt, tail in zip(prompts, tails, strict=True)]
        batch = local.pad_left(rows)
        width = batch.input_ids.shape[1]
        in_question = torch.zeros(len(prompts), width, dtype=torch.bool, device=local.device)
        for row, (prompt, tail) in enumerate(zip(prompts, tails, strict=True)):
            in_question[row, width - len(rows[row]):] = torch.tensor(
                [w is not None for w in prompt.word_of_token] + [False] * len(tail))
        forward: nn.Module
        if cloze:
            forward, target = ContinuationLogProb(local, tails), [0] * len(examples)
        else:
            gold_ids = [label_token_id(local, example.answer) for example in examples]
            label_ids = sorted({i for example in examples
                                for i in label_token_ids(local, example.labels)})
            forward = LabelLogitsFromEmbeddings(local, label_ids)
            target = [label_ids.index(gold) for gold in gold_ids]
        with self.backend.lock:
            embeds = local.embedding_layer(batch.input_ids).detach().requires_grad_()
            baseline = embeds.detach().clone()
            # An absent word is the mask token (absence.py), as in the perturbation methods.
            mask = torch.tensor([mask_token_id(local.tokenizer)], device=local.device)
            baseline[in_question] = local.embedding_layer(mask).detach()[0]
            inputs = GradientInputs(
                forward=forward, embeds=embeds, baseline=baseline,
                attention_mask=batch.attention_mask, target=target, in_question=in_question,
            )
            with torch.enable_grad():
                token_scores = self.token_attributions(inputs).detach() * in_question
        attributions = []
        for row, (example, prompt) in enumerate(zip(examples, prompts, strict=True)):
            start = width - len(rows[row])
            scores = token_scores[row, start : start + len(prompt.input_ids)].tolist()
            word_scores = aggregate_to_words(prompt.word_of_token, scores, len(prompt.words))
            attributions.append(WordAttribution(example.id, example.answer,
                                                question_words(example), word_scores))
        return attributions
