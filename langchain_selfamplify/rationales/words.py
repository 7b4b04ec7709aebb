"""Words of a question: segmentation, token-to-word aggregation, keyword rationales.

Attribution methods score tokens (DeepLift) or words (KernelShap). Both end here:
token scores are summed per word (sub-tokens merged), stop words and punctuation are
dropped from the candidates (not zeroed), and the top-k words by importance become
the rationale sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from langchain_selfamplify.data.example import MCQExample

WORD_PATTERN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
"""What counts as a word: letters/digits, with inner apostrophes or hyphens."""


@dataclass(frozen=True)
class Word:
    """A word of a rendered question, with its character span in that text."""

    text: str
    """The word as written."""
    start: int
    """Offset of its first character in the rendered question."""
    end: int
    """Offset one past its last character."""

    @property
    def is_candidate(self) -> bool:
        """Whether the word may appear in a keyword rationale (not a stop word)."""
        lowered = self.text.lower()
        return lowered not in stop_words() and (len(lowered) > 1 or lowered.isdigit())


@dataclass(frozen=True)
class WordAttribution:
    """Importance of every word of a question towards one answer label."""

    example_id: str
    """Id of the explained example."""
    label: str
    """The label the scores explain (the gold answer)."""
    words: list[Word]
    """The words of the question, in text order, with spans in ``example.render()``."""
    scores: list[float]
    """One score per word; positive supports ``label``."""

    def top_k(self, k: int) -> list[str]:
        """The ``k`` most important candidate words, most important first, no duplicates."""
        return top_k_words(self.words, self.scores, k)


@cache
def stop_words() -> frozenset[str]:
    """The English stop words left out of keyword rationales."""
    path = Path(__file__).with_name("stopwords.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def question_words(example: MCQExample) -> list[Word]:
    """The words of ``example.render()`` that belong to the stem and the choice texts.

    Option markers such as ``(A)`` are layout, not words of the question, and are
    left out.
    """
    text = example.render()
    spans = [(0, len(example.question))]
    offset = len(example.question) + 1
    for label, choice in example.choices.items():
        marker = f"({label}) "
        spans.append((offset + len(marker), offset + len(marker) + len(choice)))
        offset += len(marker) + len(choice) + 1
    words: list[Word] = []
    for start, end in spans:
        for match in WORD_PATTERN.finditer(text, start, end):
            words.append(Word(match.group(), match.start(), match.end()))
    return words


def token_word_index(
    token_spans: Sequence[tuple[int, int]], words: Sequence[Word], text: str
) -> list[int | None]:
    """Index of the word each token belongs to, ``None`` for tokens outside every word.

    A token belongs to the word containing its first non-space character, so
    sub-tokens of one word share its index and punctuation, option markers and
    chat-template tokens map to ``None``.

    Args:
        token_spans: ``(start, end)`` character span of each token in ``text``.
        words: Words with spans in ``text``'s frame.
        text: The text the spans index.
    """
    owner: dict[int, int] = {}
    for index, word in enumerate(words):
        for char in range(word.start, word.end):
            owner[char] = index
    result: list[int | None] = []
    for start, end in token_spans:
        while start < end and text[start].isspace():
            start += 1
        result.append(owner.get(start) if start < end else None)
    return result


def aggregate_to_words(
    word_of_token: Sequence[int | None], token_scores: Sequence[float], n_words: int
) -> list[float]:
    """Sum token scores per word (sub-tokens merged); tokens outside words are dropped."""
    totals = [0.0] * n_words
    for word, score in zip(word_of_token, token_scores, strict=True):
        if word is not None:
            totals[word] += float(score)
    return totals


def top_k_words(words: Sequence[Word], scores: Sequence[float], k: int) -> list[str]:
    """The ``k`` highest-scoring candidate words, best first, each word once.

    Ranking uses the raw scores: normalising by their signed sum (as the reference
    implementation did) flips the order whenever that sum is negative.
    """
    order = sorted(range(len(words)), key=lambda i: (-scores[i], i))
    chosen: list[str] = []
    seen: set[str] = set()
    for index in order:
        word = words[index]
        if not word.is_candidate or word.text.lower() in seen:
            continue
        seen.add(word.text.lower())
        chosen.append(word.text)
        if len(chosen) == k:
            break
    return chosen


def quoted_list(words: Sequence[str]) -> str:
    """``"'a', 'b' and 'c'"``."""
    if not words:
        raise ValueError("no keywords to render")
    quoted = [f"'{word}'" for word in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" and {quoted[-1]}"


def keyword_rationale(keywords: Sequence[str], label: str, answer_text: str | None = None
                      ) -> str:
    """``"The 3 keywords 'a', 'b' and 'c' suggest that the answer is (X)."``

    With ``answer_text`` (the cloze format) the sentence names the answer's text
    instead of its label.
    """
    listed = quoted_list(keywords)
    stated = answer_text if answer_text is not None else f"({label})"
    if len(keywords) == 1:
        return f"The keyword {listed} suggests that the answer is {stated}."
    return f"The {len(keywords)} keywords {listed} suggest that the answer is {stated}."
