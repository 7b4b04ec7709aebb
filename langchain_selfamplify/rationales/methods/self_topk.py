"""Self_topk rationales: the model names its own k most important words."""

from __future__ import annotations

import re

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.rationales.base import register_method
from langchain_selfamplify.rationales.prompted import PromptedRationale
from langchain_selfamplify.rationales.words import WORD_PATTERN as _WORD
from langchain_selfamplify.rationales.words import keyword_rationale, stop_words

_SEPARATORS = re.compile(r"[,;\n]|\band\b|\s-\s")
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


@register_method
class SelfTopKRationale(PromptedRationale):
    """The model is asked for the k words that matter most for the known answer.

    Its greedy reply is split into list items (commas, semicolons, new lines, "and");
    numbering, punctuation and stop words are dropped, duplicates removed and the list
    trimmed to k words.

    Args:
        backend: The model to ask.
        k: Number of keywords. Defaults to 5.
        max_new_tokens: Token cap of the reply. Defaults to ``8 * k``.
    """

    name = "self_topk"
    description = "the model names its own k most important words"

    def __init__(
        self, backend: ModelBackend, k: int = 5, max_new_tokens: int | None = None
    ) -> None:
        super().__init__(backend)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k
        self.max_new_tokens = max_new_tokens or 8 * k

    def request(self) -> str:
        """Ask for the k most important words, comma-separated."""
        return (f"Which {self.k} words of the question matter most for this answer? "
                f"Reply with the {self.k} words only, separated by commas.")

    def assistant_prefix(self) -> str:
        """``"The k most important words are:"``."""
        return f"The {self.k} most important words are:"

    def to_rationale(self, example: MCQExample, reply: str) -> str | None:
        """The keyword sentence of the parsed words."""
        keywords = parse_keywords(reply, self.k)
        return (keyword_rationale(keywords, example.answer, self.stated_answer(example))
                if keywords else None)


def parse_keywords(reply: str, k: int) -> list[str]:
    """Up to ``k`` distinct content words from a free-text list, in the order given.

    The first paragraph of the reply is split into list items; each item contributes
    its words that are not stop words (so "- Stay safe in a crash" gives "Stay",
    "safe", "crash").
    """
    keywords: list[str] = []
    seen: set[str] = set()
    first_block = reply.strip().split("\n\n")[0]
    for piece in _SEPARATORS.split(first_block):
        for word in _WORD.findall(_NUMBERING.sub("", piece)):
            if word.lower() in stop_words() or word.lower() in seen:
                continue
            seen.add(word.lower())
            keywords.append(word)
            if len(keywords) == k:
                return keywords
    return keywords
