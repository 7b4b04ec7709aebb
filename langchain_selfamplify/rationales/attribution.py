"""Shared machinery of attribution rationales (DeepLift, KernelShap...).

An attribution method scores the words of the zero-shot question prompt towards the
gold label at the answer position; this base class turns those scores into the
keyword sentence "The k keywords ... suggest that the answer is (X)."
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import RationaleError
from langchain_selfamplify.models.answer_formats import cloze_continuation
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.models.core import ModelCore
from langchain_selfamplify.models.label_scoring import label_token_id
from langchain_selfamplify.prompting.messages import question_text
from langchain_selfamplify.rationales.base import RationaleMethod
from langchain_selfamplify.rationales.words import (
    Word,
    WordAttribution,
    keyword_rationale,
    question_words,
    token_word_index,
)
from langchain_selfamplify.wording import ANSWER_PREFIX, answer_prefix


@dataclass
class QuestionPrompt:
    """The tokenised zero-shot prompt of one example, with the question located in it."""

    text: str
    """Full prompt text (chat template + question + ``"The answer is ("``)."""
    input_ids: list[int]
    """Its token ids."""
    token_spans: list[tuple[int, int]]
    """Character span of each token in ``text``."""
    words: list[Word]
    """Question words, with spans shifted into ``text``'s frame."""
    word_of_token: list[int | None]
    """Index of the word each token belongs to (``None`` outside the question)."""


class AttributionMethod(RationaleMethod):
    """Base of methods that score question words and render the top-k as keywords.

    Args:
        backend: The model to explain.
        k: Number of keywords in the rationale. Defaults to 5.
    """

    def __init__(self, backend: ModelBackend, k: int = 5) -> None:
        super().__init__(backend)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k

    @abstractmethod
    def attribute(self, example: MCQExample) -> WordAttribution:
        """Importance of each word of ``example``'s question towards its gold label."""

    def check(self, examples: Sequence[MCQExample]) -> None:
        """Fail before any model call when an example has fewer content words than k."""
        for example in examples:
            n_words = len({w.text.lower() for w in question_words(example) if w.is_candidate})
            if n_words < self.k:
                raise RationaleError(
                    f"k={self.k} keywords were asked for, but example {example.id!r} has only "
                    f"{n_words} content word(s); use a smaller k."
                )

    def explain(self, examples: Sequence[MCQExample]) -> list[str]:
        """Keyword rationales, one per example."""
        self.check(examples)
        rationales: dict[int, str] = {}
        # Batches of similar lengths, so batched methods pad little.
        order = sorted(range(len(examples)), key=lambda i: len(examples[i].render()))
        size = self.examples_per_batch()
        progress = tqdm(total=len(examples), desc=f"{self.name} rationales", leave=False,
                        disable=not self.backend.show_progress or len(examples) < 2)
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            attributions = self.attribute_batch([examples[i] for i in chunk])
            for index, attribution in zip(chunk, attributions, strict=True):
                rationales[index] = keyword_rationale(
                    attribution.top_k(self.k), examples[index].answer,
                    self.stated_answer(examples[index]))
            progress.update(len(chunk))
        progress.close()
        return [rationales[i] for i in range(len(examples))]

    def examples_per_batch(self) -> int:
        """How many examples :meth:`explain` hands to :meth:`attribute_batch` at once."""
        return self.backend.batch_size

    def attribute_batch(self, examples: Sequence[MCQExample]) -> list[WordAttribution]:
        """:meth:`attribute` for several examples (methods that can batch override it)."""
        return [self.attribute(example) for example in examples]

    def question_prompt(self, example: MCQExample) -> QuestionPrompt:
        """Tokenise the zero-shot prompt and map its tokens to the question's words."""
        return build_question_prompt(self.local, example, answer_prefix(self.answer_format))

    def target_tokens(self, example: MCQExample) -> list[int]:
        """What the attribution explains, as tokens continuing the question prompt: the
        gold label's token (letter format) or the gold choice's text (cloze format,
        whose summed log-probability is the target)."""
        if self.answer_format == "cloze":
            return list(self.local.tokenizer.encode(cloze_continuation(example.answer_text),
                                                    add_special_tokens=False))
        return [label_token_id(self.local, example.answer)]


def build_question_prompt(local: ModelCore, example: MCQExample,
                          assistant_prefix: str = ANSWER_PREFIX) -> QuestionPrompt:
    """The zero-shot prompt of ``example`` ending in ``assistant_prefix`` (``"The answer
    is ("`` by default), tokenised, with each token mapped to the word of the question
    it belongs to.

    Raises:
        RationaleError: the chat template altered the question text.
    """
    rendered = question_text(example)
    text = local.format_prompt([{"role": "user", "content": rendered}], assistant_prefix)
    offset = text.find(rendered)
    if offset < 0:
        raise RationaleError(
            f"example {example.id!r}: the chat template altered the question text, so "
            "its words cannot be located in the prompt"
        )
    words = [Word(w.text, w.start + offset, w.end + offset) for w in question_words(example)]
    encoded = local.tokenizer(text, return_offsets_mapping=True,
                              add_special_tokens=not local.uses_template())
    spans = [tuple(span) for span in encoded["offset_mapping"]]
    word_of_token = token_word_index(spans, words, text)
    return QuestionPrompt(text, list(encoded["input_ids"]), spans, words, word_of_token)
