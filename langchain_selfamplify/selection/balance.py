"""Balanced demonstrations: spread the demonstrations' gold labels over the labels.

A small model copies the label its demonstrations favour. When the n selected
demonstrations all answer (A), the prompt teaches "answer A" rather than the task.
:func:`balance_labels` re-orders each demonstration's choices (swapping the gold
choice's text with another's) so the gold labels are spread as evenly as the label
sets allow. Question, choice texts and the answer text are unchanged; only which
label each text sits under moves. Rationales must be made *after* balancing, so that
their "(X)" names the new label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from langchain_selfamplify.data.example import MCQExample


def balance_labels(examples: Sequence[MCQExample]) -> list[MCQExample]:
    """The examples with their choices re-ordered so the gold labels are spread evenly.

    Greedy, in order: each example's gold text moves to its least-used label so far
    (its own label when that is among the least used, else the first in display
    order), by swapping two choice texts. With n examples over L labels each label
    ends up gold ``floor(n/L)`` or ``ceil(n/L)`` times when every example has the same
    labels. The original label is kept in ``metadata["original_answer"]``.

    Args:
        examples: Demonstrations, e.g. a selector's choice.
    """
    used: Counter[str] = Counter()
    balanced = []
    for example in examples:
        least = min(used[label] for label in example.labels)
        target = example.answer if used[example.answer] == least else next(
            label for label in example.labels if used[label] == least)
        used[target] += 1
        if target == example.answer:
            balanced.append(example)
            continue
        choices = dict(example.choices)
        choices[target], choices[example.answer] = choices[example.answer], choices[target]
        balanced.append(example.model_copy(update={
            "choices": choices, "answer": target,
            "metadata": {**example.metadata, "original_answer": example.answer}}))
    return balanced
