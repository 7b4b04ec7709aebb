"""The IO baseline: labelled demonstrations without rationales (input-output prompting)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.selection.balance import balance_labels
from langchain_selfamplify.wording import AnswerFormat


def io_prompt(pool: Sequence[MCQExample], n: int, seed: int = 0,
              system_prompt: str | None = None, *, answer_format: AnswerFormat = "letter",
              balance: bool = False) -> AmplifiedPrompt:
    """The IO baseline: ``n`` random labelled pool examples, no rationale.

    Args:
        pool: The labelled pool.
        n: Demonstrations.
        seed: Sampling seed. Defaults to 0.
        system_prompt: Optional system message.
        answer_format: ``"letter"`` (default) or ``"cloze"``.
        balance: Spread the demonstrations' gold labels (see ``balance_labels``).
    """
    if len(pool) < n:
        raise ValueError(f"the IO baseline needs n={n} examples; the pool has {len(pool)}")
    demos = [ex.with_rationale(None) for ex in random.Random(seed).sample(list(pool), n)]
    return AmplifiedPrompt(examples=balance_labels(demos) if balance else demos,
                           system_prompt=system_prompt, answer_format=answer_format,
                           metadata={"method": "io", "strategy": "random", "seed": seed})
