"""The one select-and-explain step: a pool in, an amplified prompt out.

:func:`amplify` is what ``selfamplify run``, every Self-AMPLIFY cell of
``selfamplify evaluate`` and the cookbook call (as DSPy has one ``compile``): it scores
the pool (when the strategy needs it), selects, explains, replaces an example the
method can make no rationale for by the next-ranked one (recording the skip), and,
given a ``store`` directory, checkpoints the pool scores and the rationales batch by
batch, so an interrupted call resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_selfamplify.checkpoint import append_jsonl, read_jsonl
from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import accepts_renamed_arguments
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.rationales.absence import WordAbsence
from langchain_selfamplify.rationales.generator import RationaleGenerator
from langchain_selfamplify.selection.selector import SelfAmplifySelector
from langchain_selfamplify.selection.strategies import ScoredExample, get_strategy
from langchain_selfamplify.wording import AnswerFormat

SCORES_FILE = "pool_scores.jsonl"
"""Where a store keeps the pool's zero-shot scores."""

RATIONALES_FILE = "rationales.jsonl"
"""Where a store keeps the rationales written so far."""


@accepts_renamed_arguments
def amplify(
    backend: ModelBackend,
    pool: Sequence[MCQExample],
    *,
    method: str = "ph_cot",
    strategy: str = "success",
    shots: int = 8,
    k: int = 5,
    steps: int = 3,
    seed: int = 0,
    answer_format: AnswerFormat = "letter",
    balance_labels: bool = False,
    word_absence: WordAbsence = "mask",
    method_kwargs: dict[str, Any] | None = None,
    store: str | os.PathLike[str] | None = None,
    pool_scores: Sequence[ScoredExample] = (),
) -> tuple[AmplifiedPrompt, list[ScoredExample]]:
    """Select ``shots`` demonstrations from ``pool`` and explain them.

    Args:
        backend: The model that predicts, and explains its own predictions.
        pool: Labelled examples to select from.
        method: Rationale method. Defaults to ``"ph_cot"``.
        strategy: ``"success"``, ``"error"`` or ``"random"``. Defaults to ``"success"``.
        shots: Demonstrations. Defaults to 8.
        k: Keywords of a keyword rationale. Defaults to 5.
        steps: Steps of a Ph-CoT rationale. Defaults to 3.
        seed: Seed of sampling and ties. Defaults to 0.
        answer_format: ``"letter"`` or ``"cloze"``. Defaults to ``"letter"``.
        balance_labels: Spread the demonstrations' gold labels. Defaults to False.
        word_absence: How attribution methods take a word out. Defaults to ``"mask"``.
        method_kwargs: The method's own settings. Defaults to none.
        store: A directory for the pool scores and rationales (read back, so a rerun
            resumes). Defaults to none.
        pool_scores: Pool scores computed already (by another cell on the same pool).

    Returns:
        The prompt (its metadata: ``method``, ``strategy``, ``skipped``) and the pool's
        scores (empty for a strategy that needs none).

    Raises:
        SelectionError: too few examples qualify, once the unusable are skipped.
    """
    folder = Path(store) if store is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    selector = SelfAmplifySelector(backend=backend, examples=list(pool), strategy=strategy, n=shots,
                                   seed=seed, answer_format=answer_format,
                                   balance_labels=balance_labels)
    selector.preload_scores(pool_scores)
    scores: list[ScoredExample] = []
    if folder is not None:
        selector.preload_scores(stored_pool_scores(folder))
    if get_strategy(strategy) is not None:
        scores = selector.score_pool(on_chunk=None if folder is None else lambda chunk: (
            store_pool_scores(folder, chunk)))
    generator = RationaleGenerator(backend=backend, method=method, k=k, n_steps=steps,
                                   answer_format=answer_format, word_absence=word_absence,
                                   method_kwargs=method_kwargs or {})
    if folder is not None:
        generator.preload(read_jsonl(folder / RATIONALES_FILE))
    examples, skipped = generator.explain_selection(
        selector, on_chunk=None if folder is None else lambda records: (
            append_jsonl(folder / RATIONALES_FILE, records)))
    prompt = AmplifiedPrompt(examples=examples, answer_format=answer_format,
                             metadata={"method": method, "strategy": strategy,
                                       "skipped": skipped})
    return prompt, scores


def stored_pool_scores(store: str | os.PathLike[str]) -> list[ScoredExample]:
    """The pool scores a ``store`` directory holds (none when it has none yet)."""
    return [ScoredExample.model_validate(record)
            for record in read_jsonl(Path(store) / SCORES_FILE)]


def store_pool_scores(store: str | os.PathLike[str], scores: Sequence[ScoredExample]) -> None:
    """Append ``scores`` to a ``store`` directory (read back by :func:`stored_pool_scores`)."""
    append_jsonl(Path(store) / SCORES_FILE, [item.model_dump(mode="json") for item in scores])
