"""Shared machinery of rationales the model writes when asked (Self_topk, Ph-CoT)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.models.backend import generate_each
from langchain_selfamplify.prompting.messages import question_text
from langchain_selfamplify.rationales.base import RationaleMethod


class PromptedRationale(RationaleMethod):
    """Ask the model about the known answer, generate greedily, turn the reply into a rationale.

    Subclasses set :attr:`max_new_tokens` and implement :meth:`request`,
    :meth:`assistant_prefix` and :meth:`to_rationale`.
    """

    max_new_tokens: int
    """Token cap of the model's reply."""

    @abstractmethod
    def request(self) -> str:
        """What to ask about the question and its answer (after the answer is given)."""

    @abstractmethod
    def assistant_prefix(self) -> str:
        """Text the model's reply starts with."""

    @abstractmethod
    def to_rationale(self, example: MCQExample, reply: str) -> str | None:
        """The rationale made from a reply, or ``None`` when the reply has nothing usable."""

    def stop(self) -> list[str]:
        """Strings that end the model's reply (it is cut before the first). None by default."""
        return []

    def forward_passes(self, n_words: int) -> int:
        """The prompt, then one decoding step per generated token (at most)."""
        return 1 + self.max_new_tokens

    def instruction(self, example: MCQExample) -> str:
        """The user turn: the question, its correct answer, and :meth:`request`."""
        return (f"{question_text(example)}\n\nThe correct answer is ({example.answer}) "
                f"{example.answer_text}. {self.request()}")

    def explain(self, examples: Sequence[MCQExample]) -> list[str]:
        """One generated rationale per example (batched greedy generation).

        Raises:
            RationaleError: the model's reply for an example has nothing usable.
        """
        return self.require_usable(examples, self.explain_each(examples))

    def explain_each(self, examples: Sequence[MCQExample],
                     on_each: Callable[[int, str | None], None] | None = None
                     ) -> list[str | None]:
        """One generated rationale per example, ``None`` where the reply has nothing
        usable; each handed to ``on_each`` as soon as its reply ends."""
        prompts = [
            self.backend.format_prompt([{"role": "user", "content": self.instruction(ex)}],
                                       self.assistant_prefix())
            for ex in examples
        ]

        rationales: list[str | None] = [None] * len(examples)

        def replied(index: int, reply: str) -> None:
            rationales[index] = self.to_rationale(examples[index], reply) or None
            if on_each is not None:
                on_each(index, rationales[index])

        generate_each(self.backend, prompts, replied, max_new_tokens=self.max_new_tokens,
                      stop=self.stop() or None, desc=f"{self.name} rationales")
        return rationales
