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

from collections.abc import Sequence
from typing import Any


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

    def __getattr__(self, attribute: str) -> Any:
        # Everything else (scoring, tensors, tokenizer, settings) is the local model's,
        # but its fused generate-then-score, which would generate locally: without it,
        # answers are scored in a second, local pass after the server's rationale.
        if attribute in ("local", "generator", "generate_then_score"):
            raise AttributeError(attribute)
        return getattr(self.local, attribute)

    def __repr__(self) -> str:
        return f"GenerationOffload(local={self.local!r}, generator={self.generator!r})"
