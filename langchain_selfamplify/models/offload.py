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

from collections.abc import Callable, Sequence
from typing import Any

from langchain_selfamplify.models.backend import generate_then_score_in_two_passes
from langchain_selfamplify.models.choice_scores import ChoiceScores


class GenerationOffload:
    """``local`` for everything but :meth:`generate`, which ``generator`` answers.

    Args:
        local: The local model (scores, tensors, tokenizer, prompt format).
        generator: Any backend that generates text from the same prompts, e.g. an
            :class:`~langchain_selfamplify.models.served.OpenAICompatibleBackend`
            serving the same model.
    """

    def __init__(self, local: Any, generator: Any) -> None:
        self.local = local
        self.generator = generator

    @property
    def name(self) -> str:
        """The local model's name (saved prompts and checkpoints stay comparable)."""
        return str(self.local.name)

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 64,
                 stop: Sequence[str] | None = None, desc: str | None = None) -> list[str]:
        """The generator's greedy continuations of ``prompts`` (see
        :meth:`ModelBackend.generate`)."""
        return list(self.generator.generate(prompts, max_new_tokens=max_new_tokens, stop=stop,
                                            desc=desc))

    def generate_then_score(
        self,
        prompts: Sequence[str],
        follow_up: Callable[[int, str], str],
        labels: Sequence[Sequence[str]],
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] | None = None,
        desc: str | None = None,
    ) -> list[tuple[str, ChoiceScores]]:
        """Replies from the generator, then labels scored locally after each follow-up
        (two passes: see :meth:`SLM.generate_then_score`)."""
        return generate_then_score_in_two_passes(self, prompts, follow_up, labels,
                                                 max_new_tokens=max_new_tokens, stop=stop,
                                                 desc=desc)

    def __getattr__(self, attribute: str) -> Any:
        # Everything else (scoring, tensors, tokenizer, settings) is the local model's.
        if attribute in ("local", "generator"):  # not yet set: during unpickling
            raise AttributeError(attribute)
        return getattr(self.local, attribute)

    def __repr__(self) -> str:
        return f"GenerationOffload(local={self.local!r}, generator={self.generator!r})"
