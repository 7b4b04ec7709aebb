"""AMPLIFY (Krishna et al., 2023): rationales from a small fine-tuned proxy model.

1. A proxy (all-MiniLM-L6-v2 plus a linear head) is fine-tuned on the pool as a
   multiple-choice classifier: each (question, choice) pair gets a score, a softmax
   over the choices is trained with cross-entropy (a few CPU minutes).
2. Among the pool examples the SLM answers wrongly, those with the highest
   misclassification confidence score of the proxy, ``MCS = max p(wrong) - p(true)``,
   are selected. Each example is scored out of fold: the pool is cut into ``folds``
   parts and an example is scored by the proxy trained on the other parts, never by one
   that saw it (a proxy scored in-sample has memorised its own training answers).
3. Gradient x input on the same out-of-fold proxy towards the true choice gives word
   scores (sub-words merged, stop words dropped); the top-k words fill the template
   "The key words: 'w1', ... and 'wk' are important clues to predict (X) as the correct
   answer."
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from langchain_selfamplify.baselines.encoder import default_encoder_path
from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import accepts_renamed_arguments
from langchain_selfamplify.errors import SelectionError
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.rationales.words import (
    WORD_PATTERN,
    Word,
    aggregate_to_words,
    quoted_list,
    token_word_index,
    top_k_words,
)
from langchain_selfamplify.selection.balance import balance_labels
from langchain_selfamplify.selection.selector import SelfAmplifySelector
from langchain_selfamplify.selection.strategies import ScoredExample
from langchain_selfamplify.wording import AnswerFormat


def amplify_rationale(keywords: Sequence[str], label: str, answer_text: str | None = None
                      ) -> str:
    """AMPLIFY's template for the top-k words (naming ``answer_text`` in the cloze format)."""
    stated = f"'{answer_text}'" if answer_text is not None else f"({label})"
    return (f"The key words: {quoted_list(keywords)} are important clues to predict "
            f"{stated} as the correct answer.")


class ProxyClassifier(nn.Module):
    """A sentence encoder scoring (question, choice) pairs, trained as a MC classifier."""

    def __init__(self, encoder_path: str) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(encoder_path)
        self.encoder = AutoModel.from_pretrained(encoder_path)
        self.head = nn.Linear(self.encoder.config.hidden_size, 1)

    def encode_pairs(self, examples: Sequence[MCQExample]) -> Any:
        """Tokenised (question, choice) pairs of the examples, flattened, with offsets."""
        questions = [ex.question for ex in examples for _ in ex.choices]
        choices = [text for ex in examples for text in ex.choices.values()]
        return self.tokenizer(questions, choices, padding=True, truncation=True,
                              max_length=128, return_tensors="pt", return_offsets_mapping=True)

    def choice_logits(self, batch: Any, inputs_embeds: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """One logit per choice."""
        kwargs = {"attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        if inputs_embeds is None:
            hidden = self.encoder(input_ids=batch["input_ids"], **kwargs).last_hidden_state
        else:
            hidden = self.encoder(inputs_embeds=inputs_embeds, **kwargs).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(pooled).squeeze(-1)


class Amplify:
    """Build an AMPLIFY prompt.

    Args:
        backend: The SLM whose errors are selected from (and which is prompted later).
        n: Demonstrations. Defaults to 8.
        k: Keywords per rationale. Defaults to 5.
        encoder: Proxy encoder (Hugging Face id or directory). Defaults to the bundled
            all-MiniLM-L6-v2.
        epochs: Fine-tuning epochs. Defaults to 2.
        learning_rate: AdamW learning rate. Defaults to 5e-5.
        seed: Seed of training, folds and tie-breaking. Defaults to 0.
        folds: Out-of-fold parts of the pool (one proxy trained per part). Defaults to 5.
        answer_format: How the prompt's demonstrations end. Defaults to ``"letter"``.
        balance: Spread the demonstrations' gold labels (see ``balance_labels``).
            Defaults to False.
    """

    @accepts_renamed_arguments
    def __init__(self, backend: ModelBackend, n: int = 8, k: int = 5, encoder: str | None = None,
                 epochs: int = 2, learning_rate: float = 5e-5, seed: int = 0,
                 folds: int = 5, answer_format: AnswerFormat = "letter",
                 balance: bool = False) -> None:
        if folds < 2:
            raise ValueError(f"folds must be >= 2 (out-of-fold scoring), got {folds}")
        self.backend = backend
        self.n = n
        self.k = k
        self.encoder = encoder
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.seed = seed
        self.folds = folds
        self.answer_format: AnswerFormat = answer_format
        self.balance = balance
        self.proxy: ProxyClassifier | None = None
        self.pool_scores: list[ScoredExample] = []
        self._proxy_of: dict[str, ProxyClassifier] = {}

    def train_proxy(self, pool: Sequence[MCQExample]) -> ProxyClassifier:
        """Fine-tune the proxy on the pool (seeded)."""
        torch.manual_seed(self.seed)
        proxy = ProxyClassifier(self.encoder or str(default_encoder_path()))
        optimizer = torch.optim.AdamW(proxy.parameters(), lr=self.learning_rate)
        order = list(range(len(pool)))
        rng = random.Random(self.seed)
        proxy.train()
        for _ in range(self.epochs):
            rng.shuffle(order)
            for start in range(0, len(order), 8):
                batch = [pool[i] for i in order[start : start + 8]]
                logits = proxy.choice_logits(proxy.encode_pairs(batch))
                losses, offset = [], 0
                for example in batch:
                    scores = logits[offset : offset + len(example.choices)]
                    offset += len(example.choices)
                    target = torch.tensor([example.labels.index(example.answer)])
                    losses.append(nn.functional.cross_entropy(scores[None], target))
                optimizer.zero_grad()
                torch.stack(losses).mean().backward()
                optimizer.step()
        proxy.eval()
        self.proxy = proxy
        return proxy

    def train_out_of_fold(self, pool: Sequence[MCQExample]) -> dict[str, ProxyClassifier]:
        """One proxy per fold, trained on the other folds: example id -> the proxy that
        never saw it."""
        order = list(range(len(pool)))
        random.Random(self.seed).shuffle(order)
        proxy_of: dict[str, ProxyClassifier] = {}
        for fold in range(self.folds):
            held_out = set(order[fold :: self.folds])
            proxy = self.train_proxy([ex for i, ex in enumerate(pool) if i not in held_out])
            proxy_of.update((pool[i].id, proxy) for i in held_out)
        self._proxy_of = proxy_of
        return proxy_of

    def _proxy_for(self, example: MCQExample) -> ProxyClassifier:
        proxy = self._proxy_of.get(example.id, self.proxy)
        if proxy is None:
            raise RuntimeError("train a proxy first (train_proxy or train_out_of_fold)")
        return proxy

    def misclassification_confidence(self, example: MCQExample) -> float:
        """``max p(wrong) - p(true)`` by the proxy that did not train on ``example`` (after
        :meth:`train_out_of_fold`; else the last proxy trained)."""
        proxy = self._proxy_for(example)
        with torch.no_grad():
            probs = proxy.choice_logits(proxy.encode_pairs([example])).softmax(-1)
        true = example.labels.index(example.answer)
        wrong = max(p for i, p in enumerate(probs.tolist()) if i != true)
        return wrong - float(probs[true])

    def keywords(self, example: MCQExample) -> list[str]:
        """Top-k question words by gradient x input on the proxy towards the true choice."""
        proxy = self._proxy_for(example)
        batch = proxy.encode_pairs([example])
        embeddings = proxy.encoder.get_input_embeddings()(batch["input_ids"]).detach()
        embeddings.requires_grad_()
        logits = proxy.choice_logits(batch, inputs_embeds=embeddings)
        true = example.labels.index(example.answer)
        torch.log_softmax(logits, -1)[true].backward()
        assert embeddings.grad is not None
        token_scores = (embeddings.grad * embeddings).sum(-1)  # (pairs, tokens)
        words = [Word(m.group(), m.start(), m.end())
                 for m in WORD_PATTERN.finditer(example.question)]
        totals = [0.0] * len(words)
        for pair in range(token_scores.shape[0]):
            spans = [tuple(span) for span in batch["offset_mapping"][pair].tolist()]
            sequence = batch.sequence_ids(pair)
            # only the question segment (sequence 0) maps to the question's words
            spans = [span if seq == 0 else (0, 0) for span, seq in zip(spans, sequence,
                                                                        strict=True)]
            owners = token_word_index(spans, words, example.question)
            for index, score in enumerate(aggregate_to_words(
                    owners, token_scores[pair].tolist(), len(words))):
                totals[index] += score
        return top_k_words(words, totals, self.k)

    def build(self, pool: Sequence[MCQExample],
              pool_scores: Sequence[ScoredExample] = (),
              on_scored: Callable[[list[ScoredExample]], None] | None = None
              ) -> AmplifiedPrompt:
        """The AMPLIFY prompt: n SLM errors, highest proxy MCS first, with proxy rationales.

        Args:
            pool: The labelled pool.
            pool_scores: The SLM's zero-shot scores of pool examples, already computed
                (e.g. by a selector over the same pool and answer format); only the
                others are scored. :attr:`pool_scores` holds all of them afterwards.
            on_scored: Called with each chunk of newly scored pool examples, e.g. to
                checkpoint them (see :meth:`SelfAmplifySelector.score_pool`). Defaults
                to none.
        """
        selector = SelfAmplifySelector(backend=self.backend, examples=list(pool), strategy="error",
                                       n=1, seed=self.seed, answer_format=self.answer_format)
        selector.preload_scores(pool_scores)
        self.pool_scores = selector.score_pool(on_chunk=on_scored)
        errors = [s.example for s in self.pool_scores if not s.correct]
        if len(errors) < self.n:
            raise SelectionError(f"AMPLIFY needs n={self.n} examples the model gets wrong; "
                                 f"the pool has {len(errors)}")
        self.train_out_of_fold(pool)
        ranked = sorted(errors, key=lambda ex: -self.misclassification_confidence(ex))
        chosen = ranked[: self.n]
        demos = []
        for original, example in zip(chosen, balance_labels(chosen) if self.balance else chosen,
                                     strict=True):
            keywords = self.keywords(example)
            self._proxy_of[example.id] = self._proxy_for(original)
            stated = example.answer_text if self.answer_format == "cloze" else None
            rationale = amplify_rationale(keywords, example.answer, stated) if keywords else None
            demos.append(example.with_rationale(rationale, rationale_method="amplify"))
        return AmplifiedPrompt(examples=demos, answer_format=self.answer_format,
                               metadata={"method": "amplify", "n": self.n, "k": self.k,
                                         "seed": self.seed, "folds": self.folds})
