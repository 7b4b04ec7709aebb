"""Shared machinery of perturbation attributions over the question's words.

Each content word (stop words excluded, so evaluations are not spent on them) is one
binary feature. A coalition keeps some words and replaces the tokens of the others by
a mask token, keeping positions fixed; its value is the gold label's log-probability
right after ``"The answer is ("``. Coalitions are evaluated many per forward pass
(``slm.batch_size``), without autograd, under a fixed seed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import torch

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import RationaleError
from langchain_selfamplify.rationales.attribution import AttributionMethod
from langchain_selfamplify.rationales.words import WordAttribution, question_words

CoalitionValue = Callable[[torch.Tensor], torch.Tensor]
"""``(coalitions, features) 0/1 -> (coalitions,)`` gold-label log-probabilities."""


class PerturbationMethod(AttributionMethod):
    """Base of methods that explain by evaluating the model on word coalitions.

    Args:
        slm: The model to explain.
        k: Number of keywords. Defaults to 5.
        seed: Seed for sampled coalitions. Defaults to 0.
    """

    def __init__(self, slm: Any, k: int = 5, seed: int = 0) -> None:
        super().__init__(slm, k)
        self.seed = seed

    @abstractmethod
    def feature_attributions(self, value: CoalitionValue, n_features: int) -> list[float]:
        """One score per feature, given the coalition value function."""

    def attribute(self, example: MCQExample) -> WordAttribution:
        """Scores of the question's content words towards the gold label."""
        slm = self.slm
        prompt = self.question_prompt(example)
        features = [i for i, word in enumerate(prompt.words) if word.is_candidate]
        if not features:
            raise RationaleError(f"example {example.id!r}: no content words to attribute to")
        value = self._coalition_value(prompt.input_ids, prompt.word_of_token, features,
                                      slm.label_token_id(example.answer))
        with slm.lock, torch.no_grad():
            torch.manual_seed(self.seed)
            feature_scores = self.feature_attributions(value, len(features))
        scores = [0.0] * len(prompt.words)
        for feature, word in enumerate(features):
            scores[word] = float(feature_scores[feature])
        return WordAttribution(example.id, example.answer, question_words(example), scores)

    def _coalition_value(
        self, input_ids: list[int], word_of_token: list[int | None], features: list[int],
        gold: int,
    ) -> CoalitionValue:
        slm = self.slm
        ids = torch.tensor(input_ids, device=slm.device)
        feature_of_word = {word: f for f, word in enumerate(features)}
        token_feature = torch.tensor(
            [feature_of_word.get(w, -1) if w is not None else -1 for w in word_of_token],
            device=slm.device,
        )
        removable = token_feature >= 0
        mask_id = mask_token_id(slm.tokenizer)

        def value(coalitions: torch.Tensor) -> torch.Tensor:
            coalitions = coalitions.to(slm.device).reshape(-1, len(features))
            values = []
            for chunk in coalitions.split(slm.batch_size):
                keep = torch.ones(chunk.shape[0], ids.shape[0], dtype=torch.bool,
                                  device=slm.device)
                keep[:, removable] = chunk[:, token_feature[removable]] > 0.5
                batch = torch.where(keep, ids.expand_as(keep), torch.full_like(ids, mask_id))
                logits = slm.model(input_ids=batch).logits[:, -1, :].float()
                values.append(torch.log_softmax(logits, dim=-1)[:, gold])
            return torch.cat(values)

        return value


def mask_token_id(tokenizer: Any) -> int:
    """The token that stands for a removed word: unk, else pad, else eos."""
    for token_id in (tokenizer.unk_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0
