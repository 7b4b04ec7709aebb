"""What "a word is absent" means, one choice for every method that removes words.

Three places take words out of a question: the gradient explainers' baseline (DeepLift,
Integrated Gradients), the perturbation explainers' coalitions (KernelShap, Lime...)
and the faithfulness metrics' erasure (comprehensiveness, sufficiency). They used to
mean three different things (a zero embedding, a mask token, deletion); now one
setting, :data:`WordAbsence`, decides for all of them:

* ``"mask"`` (default): each token of an absent word is replaced by the mask token
  (the tokenizer's unk, else pad, else eos token; :func:`mask_token_id`). Positions
  stay fixed. The gradient explainers' baseline is that token's embedding over the
  question, so every method compares the same two inputs.
* ``"delete"``: the absent word's tokens are removed (as in ERASER, DeYoung et al.,
  2020). Perturbation methods and the faithfulness metrics support it; gradient
  methods cannot (their baseline must have the input's shape) and refuse it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

WordAbsence = Literal["mask", "delete"]
"""How an absent word is represented: ``"mask"`` (default) or ``"delete"``."""

WORD_ABSENCES: tuple[WordAbsence, ...] = ("mask", "delete")
"""The choices, the default first."""

TEXT_MASK = "_"
"""What stands for an absent word when words are erased from text (:func:`erase_words`)."""


def mask_token_id(tokenizer: Any) -> int:
    """The token that stands for a removed word: unk, else pad, else eos."""
    for token_id in (tokenizer.unk_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


def without_words(input_ids: Sequence[int], word_of_token: Sequence[int | None],
                  absent: set[int], absence: WordAbsence, mask_id: int) -> list[int]:
    """``input_ids`` with the tokens of the ``absent`` words masked or deleted.

    Args:
        input_ids: The prompt's tokens.
        word_of_token: The word index of each token (``None`` outside the question).
        absent: Indices of the words to take out.
        absence: ``"mask"`` or ``"delete"``.
        mask_id: The mask token (see :func:`mask_token_id`).
    """
    if absence not in WORD_ABSENCES:
        raise ValueError(f"word_absence must be one of {WORD_ABSENCES}, not {absence!r}")
    kept = []
    for token, word in zip(input_ids, word_of_token, strict=True):
        if word is None or word not in absent:
            kept.append(token)
        elif absence == "mask":
            kept.append(mask_id)
    return kept


def erase_words(text: str, words: Sequence[Any], absent: set[int],
                absence: WordAbsence) -> str:
    """``text`` with the ``absent`` words (indices into ``words``, each with ``start`` and
    ``end`` offsets in ``text``) replaced by :data:`TEXT_MASK` or deleted."""
    if absence not in WORD_ABSENCES:
        raise ValueError(f"word_absence must be one of {WORD_ABSENCES}, not {absence!r}")
    parts, position = [], 0
    for index in sorted(absent):
        word = words[index]
        parts.append(text[position : word.start])
        if absence == "mask":
            parts.append(TEXT_MASK)
        position = word.end
        if absence == "delete" and text[position : position + 1] == " ":
            position += 1  # no double space where the word was
    parts.append(text[position:])
    return "".join(parts)
