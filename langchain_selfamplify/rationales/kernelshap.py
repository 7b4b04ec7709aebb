"""KernelShap rationales: Captum's KernelShap over the question's words.

Each content word (stop words excluded, so samples are not spent on them) is one
feature. A coalition keeps some words and replaces the tokens of the others by a
mask token, keeping positions fixed; the value of a coalition is the gold label's
log-probability right after ``"The answer is ("``. Coalitions are evaluated many per
forward pass, without autograd, under a fixed seed.
"""

from __future__ import annotations

from typing import Any

import torch

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import RationaleError
from langchain_selfamplify.rationales.attribution import AttributionMethod
from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.words import WordAttribution


@register_method
class KernelShapRationale(AttributionMethod):
    """Top-k keywords by Captum KernelShap over words.

    Args:
        slm: The model to explain.
        k: Number of keywords. Defaults to 5.
        n_samples: Coalitions sampled per example. Defaults to 200.
        seed: Seed for coalition sampling. Defaults to 0.
    """

    name = "kernelshap"
    needs_gradients = False

    def __init__(self, slm: Any, k: int = 5, n_samples: int = 200, seed: int = 0) -> None:
        super().__init__(slm, k)
        if n_samples < 2:
            raise ValueError(f"n_samples must be >= 2, got {n_samples}")
        self.n_samples = n_samples
        self.seed = seed

    def attribute(self, example: MCQExample) -> WordAttribution:
        """KernelShap scores of the question's content words towards the gold label."""
        from captum.attr import KernelShap

        slm = self.slm
        prompt = self.question_prompt(example)
        features = [i for i, word in enumerate(prompt.words) if word.is_candidate]
        if not features:
            raise RationaleError(f"example {example.id!r}: no content words to attribute to")
        ids = torch.tensor(prompt.input_ids, device=slm.device)
        # token_feature[t] = feature index of token t, -1 for tokens never removed
        feature_of_word = {word: f for f, word in enumerate(features)}
        token_feature = torch.tensor(
            [feature_of_word.get(w, -1) if w is not None else -1 for w in prompt.word_of_token],
            device=slm.device,
        )
        gold = slm.label_token_id(example.answer)
        mask_id = _mask_token_id(slm.tokenizer)

        def value(coalitions: torch.Tensor) -> torch.Tensor:
            keep = torch.ones(coalitions.shape[0], ids.shape[0], dtype=torch.bool,
                              device=slm.device)
            removable = token_feature >= 0
            keep[:, removable] = coalitions[:, token_feature[removable]] > 0.5
            batch = torch.where(keep, ids.expand_as(keep), torch.full_like(keep, mask_id,
                                                                           dtype=ids.dtype))
            logits = slm.model(input_ids=batch).logits[:, -1, :].float()
            return torch.log_softmax(logits, dim=-1)[:, gold]

        present = torch.ones(1, len(features), device=slm.device)
        with slm.lock, torch.no_grad():
            torch.manual_seed(self.seed)
            shap_values = KernelShap(value).attribute(
                present,
                baselines=torch.zeros_like(present),
                n_samples=self.n_samples,
                perturbations_per_eval=slm.batch_size,
            )[0].tolist()
        scores = [0.0] * len(prompt.words)
        for feature, word in enumerate(features):
            scores[word] = shap_values[feature]
        return WordAttribution(example.id, example.answer, prompt.words, scores)


def _mask_token_id(tokenizer: Any) -> int:
    for token_id in (tokenizer.unk_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0
