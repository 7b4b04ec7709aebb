"""How faithful are the rationales? ERASER-style metrics on the model that wrote them.

* Keyword rationales (DeepLift, KernelShap, Self_topk...): **comprehensiveness** is the
  drop in the gold label's probability when the rationale's keywords are erased from
  the question; **sufficiency** is the drop when only they are kept (DeYoung et al.,
  2020). Both are compared with ``k`` random content words of the same question.
  Higher comprehensiveness and lower sufficiency than random mean more faithful.
* Every rationale (keyword or free text such as Ph-CoT): the **rationale effect** is the
  change in the gold label's probability when the rationale is put before
  ``"The answer is ("`` compared with answering straight away.

Probabilities are renormalised over the answer labels, zero-shot, as in selection.
Erased words are taken out as ``word_absence`` says (``rationales/absence.py``): by
default replaced by the mask token, as the explainers do; ``"delete"`` removes their
tokens, as in ERASER.
"""

from __future__ import annotations

import random
import re
import statistics
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import accepts_renamed_arguments
from langchain_selfamplify.models.backend import ModelBackend, require_local
from langchain_selfamplify.models.core import ModelCore
from langchain_selfamplify.models.label_scoring import score_token_lists
from langchain_selfamplify.prompting.messages import question_text
from langchain_selfamplify.rationales.absence import WordAbsence, mask_token_id, without_words
from langchain_selfamplify.rationales.attribution import QuestionPrompt, build_question_prompt
from langchain_selfamplify.strict import StrictModel
from langchain_selfamplify.wording import ANSWER_PREFIX

_QUOTED = re.compile(r"'([^']+)'")
_KEYWORD_SENTENCE = re.compile(r"^The (?:\d+ keywords|keyword) '")


class ExampleFaithfulness(StrictModel):
    """Faithfulness of one example's rationale."""

    id: str
    """Example id."""
    keywords: list[str] = Field(default_factory=list)
    """Keywords of a keyword rationale (empty for free text)."""
    p_gold: float
    """Gold-label probability with the whole question."""
    comprehensiveness: float | None = None
    """``p_gold`` minus the probability with the keywords erased."""
    sufficiency: float | None = None
    """``p_gold`` minus the probability with only the keywords kept."""
    random_comprehensiveness: float | None = None
    """Mean comprehensiveness of random content-word sets of the same size."""
    random_sufficiency: float | None = None
    """Mean sufficiency of random content-word sets of the same size."""
    rationale_effect: float
    """Gold-label probability with the rationale before the answer, minus without."""


class FaithfulnessReport(StrictModel):
    """Faithfulness of every rationale of an amplified prompt (or list of examples)."""

    method: str | None = None
    """Rationale method, when known."""
    examples: list[ExampleFaithfulness]
    """One entry per example with a rationale."""

    def means(self) -> dict[str, float]:
        """Mean of each metric over the examples that have it."""
        result: dict[str, float] = {}
        for field in ("p_gold", "comprehensiveness", "sufficiency", "random_comprehensiveness",
                      "random_sufficiency", "rationale_effect"):
            values = [getattr(e, field) for e in self.examples if getattr(e, field) is not None]
            if values:
                result[field] = statistics.fmean(values)
        return result


def keywords_of(rationale: str) -> list[str]:
    """The quoted keywords of a keyword rationale; ``[]`` for free text."""
    if not _KEYWORD_SENTENCE.match(rationale.strip()):
        return []
    return _QUOTED.findall(rationale)


def erase_words(prompt: QuestionPrompt, drop: set[int], local: ModelCore,
                absence: WordAbsence = "mask") -> list[int]:
    """Token ids of ``prompt`` with the words ``drop`` taken out (masked or deleted)."""
    return without_words(prompt.input_ids, prompt.word_of_token, drop, absence,
                         mask_token_id(local.tokenizer))


@accepts_renamed_arguments
def faithfulness_report(
    backend: ModelBackend,
    examples: Sequence[MCQExample],
    *,
    method: str | None = None,
    n_random: int = 5,
    seed: int = 0,
    word_absence: WordAbsence = "mask",
) -> FaithfulnessReport:
    """Faithfulness metrics of every example's rationale (examples without one are skipped).

    Args:
        backend: The model that wrote (or is explained by) the rationales.
        examples: Examples with rationales, e.g. ``AmplifiedPrompt.examples``.
        method: Method name recorded in the report.
        n_random: Random word sets per example for the random-k baseline. Defaults to 5.
        seed: Seed of the random word sets. Defaults to 0.
        word_absence: How erased words are taken out: ``"mask"`` (default, as the
            explainers) or ``"delete"`` (ERASER).
    """
    local = require_local(backend, "faithfulness_report")
    rng = random.Random(seed)
    explained = [ex for ex in examples if ex.rationale]
    token_lists: list[list[int]] = []
    plans: list[dict[str, Any]] = []
    for example in explained:
        prompt = build_question_prompt(local, example)
        keywords = keywords_of(example.rationale or "")
        plan: dict[str, Any] = {"keywords": keywords, "start": len(token_lists)}
        token_lists.append(list(prompt.input_ids))
        with_rationale = local.format_prompt(
            [{"role": "user", "content": question_text(example)}],
            f"{(example.rationale or '').strip()}\n{ANSWER_PREFIX}")
        token_lists.append(local.tokenize([with_rationale])[0])
        if keywords:
            chosen = _word_indices(prompt, keywords)
            candidates = [i for i, w in enumerate(prompt.words) if w.is_candidate]
            everything = set(range(len(prompt.words)))
            token_lists.append(erase_words(prompt, chosen, local, word_absence))
            token_lists.append(erase_words(prompt, everything - chosen, local, word_absence))
            size = min(len(keywords), len(candidates))
            for _ in range(n_random):
                random_words = _expand(prompt, rng.sample(candidates, size))
                token_lists.append(erase_words(prompt, random_words, local, word_absence))
                token_lists.append(erase_words(prompt, everything - random_words, local,
                                               word_absence))
        plans.append(plan)
    labels = [ex.labels for ex in explained for _ in range(_rows(ex, n_random))]
    scores = score_token_lists(local, token_lists, labels, desc="Faithfulness")
    results = []
    for example, plan in zip(explained, plans, strict=True):
        at = plan["start"]
        gold = [s.prob(example.answer) for s in scores[at : at + _rows(example, n_random)]]
        entry = ExampleFaithfulness(id=example.id, keywords=plan["keywords"], p_gold=gold[0],
                                    rationale_effect=gold[1] - gold[0])
        if plan["keywords"]:
            entry.comprehensiveness = gold[0] - gold[2]
            entry.sufficiency = gold[0] - gold[3]
            randoms = gold[4:]
            entry.random_comprehensiveness = statistics.fmean(gold[0] - p for p in randoms[::2])
            entry.random_sufficiency = statistics.fmean(gold[0] - p for p in randoms[1::2])
        results.append(entry)
    return FaithfulnessReport(method=method, examples=results)


def _rows(example: MCQExample, n_random: int) -> int:
    return 2 + (2 + 2 * n_random if keywords_of(example.rationale or "") else 0)


def _word_indices(prompt: QuestionPrompt, keywords: Sequence[str]) -> set[int]:
    wanted = {k.lower() for k in keywords}
    return {i for i, w in enumerate(prompt.words) if w.text.lower() in wanted}


def _expand(prompt: QuestionPrompt, indices: Sequence[int]) -> set[int]:
    """Every occurrence of the chosen words (as keywords count every occurrence)."""
    return _word_indices(prompt, [prompt.words[i].text for i in indices])
