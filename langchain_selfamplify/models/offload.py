"""A local model whose text generation runs on a served copy of it.

Scoring, selection, attributions and faithfulness need the local tensors; writing
rationales only needs text. :class:`GenerationOffload` keeps the first on the local
:class:`~langchain_selfamplify.models.slm.SLM` and sends every :meth:`generate` call
to another backend, typically a llama.cpp server
(:class:`~langchain_selfamplify.models.served.OpenAICompatibleBackend`) serving the
same GGUF file. The replies come from another numeric path (quantised activations),
so this is an approximate, opt-in speed option: ``docs/results/grid.md`` measures its
agreement with the local float32 path, and its speed, on the evaluation grid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from langchain_selfamplify.models.backend import Capabilities, ModelBackend
from langchain_selfamplify.models.chat_format import Message, Prompt
from langchain_selfamplify.models.choice_scores import ChoiceScores

if TYPE_CHECKING:
    from langchain_selfamplify.models.core import ModelCore


class GenerationOffload:
    """``local`` for everything but :meth:`generate`, which ``generator`` answers.

    Args:
        local: The local model (scores, tensors, tokenizer, prompt format).
        generator: Any backend that generates text from the same prompts, e.g. an
            :class:`~langchain_selfamplify.models.served.OpenAICompatibleBackend`
            serving the same model.
    """

    def __init__(self, local: ModelBackend, generator: ModelBackend) -> None:
        self.local = local
        self.generator = generator

    @property
    def name(self) -> str:
        """The local model's name (saved prompts and checkpoints stay comparable)."""
        return self.local.name

    @property
    def show_progress(self) -> bool:
        """The local model's setting."""
        return self.local.show_progress

    @property
    def batch_size(self) -> int:
        """The local model's setting."""
        return self.local.batch_size

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """The local model's lock."""
        return self.local.lock

    @property
    def capabilities(self) -> Capabilities:
        """The local model's, but not its fused generate-then-score, which would generate
        locally: answers are scored in a second, local pass after the server's reply."""
        return dataclasses.replace(self.local.capabilities, fused_generate_score=False)

    @property
    def context_length(self) -> int:
        """The local model's context."""
        return self.local.context_length

    @property
    def local_model(self) -> ModelCore | None:
        """The local model's tensors."""
        return self.local.local_model

    def format_prompt(self, messages: Sequence[Message], assistant_prefix: str = "") -> Prompt:
        """The local model's prompt format (the server serves the same model)."""
        return self.local.format_prompt(messages, assistant_prefix)

    def count_tokens(self, text: Prompt, *, prompt: bool = True) -> int:
        """Tokens counted by the local tokenizer."""
        return self.local.count_tokens(text, prompt=prompt)

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 64,
                 stop: Sequence[str] | None = None, desc: str | None = None,
                 on_reply: Callable[[int, str], None] | None = None) -> list[str]:
        """The generator's greedy continuations of ``prompts`` (see
        :meth:`ModelBackend.generate`)."""
        return list(self.generator.generate(prompts, max_new_tokens=max_new_tokens, stop=stop,
                                            desc=desc, on_reply=on_reply))

    def score_choices(self, prompts: Sequence[Prompt], labels: Sequence[Sequence[str]], *,
                      desc: str | None = None) -> list[ChoiceScores]:
        """Labels scored by the local model."""
        return self.local.score_choices(prompts, labels, desc=desc)

    def __repr__(self) -> str:
        return f"GenerationOffload(local={self.local!r}, generator={self.generator!r})"
