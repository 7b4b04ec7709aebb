"""A lenient parser for the answer label in free-form model output."""

from __future__ import annotations

import re
from collections.abc import Sequence

_ANSWER_IS = re.compile(r"answer\s*(?:is|:)?\s*:?\s*\(?\s*([A-Za-z0-9])\s*\)?(?![A-Za-z0-9])",
                        re.IGNORECASE)
_PAREN_LABEL = re.compile(r"\(\s*([A-Za-z0-9])\s*\)")
_BARE_LABEL = re.compile(r"^\s*\(?([A-Za-z0-9])\)?(?:[.:)\s]|$)")


def parse_answer(
    text: object, labels: Sequence[str], choices: Sequence[str] | None = None
) -> str | None:
    """The answer label a model's output commits to, or ``None``.

    Tried in order: the last "answer is (X)" / "answer: X"; an output that starts with
    a label ("B", "(B)", "B."); the last parenthesised label "(X)"; the one choice
    text the output mentions (when ``choices`` are given). Never raises.

    Args:
        text: Model output (anything; non-strings give ``None``).
        labels: Valid labels, e.g. ``["A", "B", "C", "D"]``.
        choices: Choice texts, aligned with ``labels``, for matching by text.
    """
    if not isinstance(text, str) or not labels:
        return None
    valid = {str(label).upper(): str(label) for label in labels}

    def pick(candidates: list[str]) -> str | None:
        for candidate in reversed(candidates):
            if candidate.upper() in valid:
                return valid[candidate.upper()]
        return None

    for pattern in (_ANSWER_IS,):
        found = pick(pattern.findall(text))
        if found:
            return found
    bare = _BARE_LABEL.match(text)
    if bare and bare.group(1).upper() in valid:
        return valid[bare.group(1).upper()]
    found = pick(_PAREN_LABEL.findall(text))
    if found:
        return found
    if choices:
        lowered = text.lower()
        mentioned = [label for label, choice in zip(labels, choices, strict=False)
                     if choice and choice.lower() in lowered]
        if len(mentioned) == 1:
            return str(mentioned[0])
    return None
