"""Shared machinery of perturbation attributions over the question's words.

Each content word (stop words excluded, so evaluations are not spent on them) is one
binary feature. A coalition keeps some words and takes the others out, as the method's
``word_absence`` says (``absence.py``: by default their tokens become a mask token,
positions fixed; or they are deleted); its value is the log-probability of the
attribution target (``target_tokens``: the gold label after ``"The answer is ("``, or
the gold choice's text after ``"The answer is:"`` in the cloze format). Coalitions are
evaluated many per forward pass (the model's ``batch_size``), without autograd, under a fixed
seed. The prompt is run once
and its KV cache kept: a coalition's tokens before its first masked word are never
run again, and only the last position is projected to the vocabulary.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import torch

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import RationaleError
from langchain_selfamplify.models.answer_formats import continuation_log_probs
from langchain_selfamplify.models.backend import ModelBackend, require
from langchain_selfamplify.models.prefix_cache import output_cache
from langchain_selfamplify.models.shared_prefix import common_prefix_length
from langchain_selfamplify.rationales.absence import erase_words, mask_token_id, without_words
from langchain_selfamplify.rationales.attribution import AttributionMethod
from langchain_selfamplify.rationales.words import WordAttribution, question_words
from langchain_selfamplify.wording import answer_prefix

CoalitionValue = Callable[[torch.Tensor], torch.Tensor]
"""``(coalitions, features) 0/1 -> (coalitions,)`` log-probabilities of the target."""


class PerturbationMethod(AttributionMethod):
    """Base of methods that explain by evaluating the model on word coalitions.

    Args:
        backend: The model to explain.
        k: Number of keywords. Defaults to 5.
        seed: Seed for sampled coalitions. Defaults to 0.
    """

    requires = ("label_log_probs",)

    def __init__(self, backend: ModelBackend, k: int = 5, seed: int = 0) -> None:
        super().__init__(backend, k)
        self.seed = seed

    def examples_per_chunk(self) -> int:
        """1: an example's coalitions are its own batch, and one example can take minutes
        (KernelShap's 200 coalitions on the 1.5B model: about 5 minutes on two cores,
        ``docs/results/kernelshap_cost.md``), so each is checkpointed once explained.
        The coalitions' seed is set per example, so the rationales do not depend on it."""
        return 1

    @abstractmethod
    def feature_attributions(self, value: CoalitionValue, n_features: int) -> list[float]:
        """One score per feature, given the coalition value function."""

    def attribute(self, example: MCQExample) -> WordAttribution:
        """Scores of the question's content words towards the gold label."""
        words = question_words(example)
        features = [i for i, word in enumerate(words) if word.is_candidate]
        if not features:
            raise RationaleError(f"example {example.id!r}: no content words to attribute to")
        if self.backend.capabilities.token_ids:
            value = self._token_value(example, features)
        else:
            value = self._text_value(example, words, features)
        with self.backend.lock, torch.no_grad():
            torch.manual_seed(self.seed)
            feature_scores = self.feature_attributions(value, len(features))
        scores = [0.0] * len(words)
        for feature, word in enumerate(features):
            scores[word] = float(feature_scores[feature])
        return WordAttribution(example.id, example.answer, words, scores)

    def _token_value(self, example: MCQExample, features: list[int]) -> CoalitionValue:
        """Coalition values on the local model's token ids (absent words masked or
        deleted, see ``absence.py``)."""
        prompt = self.question_prompt(example)
        target = self.target_tokens(example)
        if self.word_absence == "delete":
            return self._deletion_value(prompt.input_ids, prompt.word_of_token, features,
                                        target)
        return self._coalition_value(prompt.input_ids, prompt.word_of_token, features, target)

    def _text_value(self, example: MCQExample, words: list[Any],
                    features: list[int]) -> CoalitionValue:
        """Coalition values on a backend that takes text only (a served model): each
        coalition is the question rewritten without its absent words (see
        ``absence.erase_words``), scored through ``score_choices``; coalitions repeated
        by the sampler are asked once."""
        if self.answer_format != "letter":
            require(self.backend, "continuation_log_probs",
                    f"{self.name} with answer_format={self.answer_format!r}",
                    "Use answer_format='letter' with this backend.")
        rendered, prefix = example.render(), answer_prefix(self.answer_format)
        known: dict[tuple[int, ...], float] = {}

        def value(coalitions: torch.Tensor) -> torch.Tensor:
            rows = [tuple(int(keep > 0.5) for keep in row)
                    for row in coalitions.reshape(-1, len(features)).tolist()]
            new = sorted(set(rows) - set(known))
            prompts = [self.backend.format_prompt(
                [{"role": "user", "content": erase_words(
                    rendered, words, {features[f] for f, keep in enumerate(row) if not keep},
                    self.word_absence)}], prefix) for row in new]
            scores = self.backend.score_choices(prompts, [example.labels] * len(new)) if new else []
            for row, score in zip(new, scores, strict=True):
                known[row] = score.log_probs[score.labels.index(example.answer)]
            return torch.tensor([known[row] for row in rows])

        return value

    def _shared_head(self, prompt: list[int], first: list[int], last: list[int],
                     limit: int) -> tuple[int, Any]:
        """Length and KV cache (batch 1) of the tokens shared by a sorted chunk's rows.

        ``first`` and ``last`` are the chunk's first and last rows in lexicographic
        order, so their common head is every row's; it stops at ``limit`` tokens, so
        every position whose logits are read is run.
        """
        local = self.local
        shared = min(common_prefix_length(first, last), limit)
        if not local.prefix_cache or shared == 0:
            return 0, None
        untouched = min(common_prefix_length(first, prompt), shared)
        if untouched:
            cache = local.repeated_kv_cache(prompt[:untouched], 1)
            if shared > untouched:
                head = torch.tensor([first[untouched:shared]], device=local.device)
                local.forward(1, input_ids=head, cache=cache)  # extends ``cache``
            return shared, cache
        head = torch.tensor([first[:shared]], device=local.device)
        return shared, output_cache(local.forward(1, input_ids=head, use_cache=True))

    def _coalition_value(
        self, prompt_ids: list[int], word_of_token: list[int | None], features: list[int],
        target: list[int],
    ) -> CoalitionValue:
        local = self.local
        # The target's tokens follow the prompt; they are never masked, and the logits
        # of the positions before each of them are read.
        input_ids = list(prompt_ids) + list(target)
        ids = torch.tensor(input_ids, device=local.device)
        target_ids = torch.tensor(target, device=local.device)
        feature_of_word = {word: f for f, word in enumerate(features)}
        token_feature = torch.tensor(
            [feature_of_word.get(w, -1) if w is not None else -1 for w in word_of_token]
            + [-1] * len(target),
            device=local.device,
        )
        removable = token_feature >= 0
        mask_id = mask_token_id(local.tokenizer)

        def value(coalitions: torch.Tensor) -> torch.Tensor:
            coalitions = coalitions.to(local.device).reshape(-1, len(features))
            keep = torch.ones(coalitions.shape[0], ids.shape[0], dtype=torch.bool,
                              device=local.device)
            keep[:, removable] = coalitions[:, token_feature[removable]] > 0.5
            perturbed = torch.where(keep, ids.expand_as(keep), torch.full_like(ids, mask_id))
            rows = perturbed.tolist()
            # Coalitions in lexicographic order of their tokens: each forward pass runs
            # a chunk whose rows share the longest head. That head is run once, on top
            # of the cached prompt up to its first masked token; the rows run only their
            # own tails; and only the last position is projected to the vocabulary.
            order = sorted(range(len(rows)), key=rows.__getitem__)
            if local.prefix_cache:
                local.kv_cache_of(input_ids)  # the whole prompt, once; heads are cropped from it
            values = torch.empty(len(rows), device=local.device)
            for start in range(0, len(order), local.batch_size):
                chunk = order[start : start + local.batch_size]
                shared, cache = self._shared_head(input_ids, rows[chunk[0]], rows[chunk[-1]],
                                                  limit=len(prompt_ids) - 1)
                if cache is not None and len(chunk) > 1:
                    cache.batch_repeat_interleave(len(chunk))
                logits = local.forward(len(target) + 1, input_ids=perturbed[chunk, shared:],
                                       cache=cache).logits[:, :-1, :].float()
                log_probs = torch.log_softmax(logits, dim=-1)
                values[chunk] = log_probs.gather(
                    2, target_ids.expand(len(chunk), -1).unsqueeze(-1)).squeeze(-1).sum(-1)
            return values

        return value


    def _deletion_value(
        self, prompt_ids: list[int], word_of_token: list[int | None], features: list[int],
        target: list[int],
    ) -> CoalitionValue:
        """Coalition values with absent words deleted: rows differ in length, so each
        chunk is scored from the cache of the prompt's head before the question."""
        local = self.local
        head = next(i for i, word in enumerate(word_of_token) if word is not None)

        def value(coalitions: torch.Tensor) -> torch.Tensor:
            rows = []
            for coalition in coalitions.reshape(-1, len(features)).tolist():
                absent = {features[f] for f, keep in enumerate(coalition) if keep < 0.5}
                rows.append(without_words(prompt_ids, word_of_token, absent, "delete", 0))
            values = []
            for start in range(0, len(rows), local.batch_size):
                chunk = rows[start : start + local.batch_size]
                values += continuation_log_probs(local, chunk, [target] * len(chunk), head)
            return torch.tensor(values, device=local.device)

        return value


