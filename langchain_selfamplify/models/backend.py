"""The model-backend protocol: what every step of the pipeline asks of a model.

Two tiers, as lm-evaluation-harness and Captum split them:

* :class:`ModelBackend` is text in, text or scores out: prompt formatting, token
  counting, batched generation with stop strings and a token cap, and scoring of the
  answer labels after ``"The answer is ("``. A served model (an OpenAI-compatible
  endpoint, :class:`~langchain_selfamplify.models.served.OpenAICompatibleBackend`)
  and a LangChain chat model
  (:class:`~langchain_selfamplify.models.chat_backend.ChatModelBackend`) provide it.
* The local Hugging Face backend, :class:`~langchain_selfamplify.models.slm.SLM`,
  adds the tensors: tokenizer, forward pass with KV cache, input-embedding layer.
  Gradient explainers, cached token-level perturbation, the cloze format and the
  faithfulness metrics use that tier.

What a backend can do is data, :class:`Capabilities`, read when a step is built: a
rationale method or answer format that needs something the backend lacks fails
before any model call, with an error that says what would work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, Protocol, runtime_checkable

from pydantic import SkipValidation, WithJsonSchema

from langchain_selfamplify.errors import BackendCapabilityError
from langchain_selfamplify.models.chat_format import Message, Prompt
from langchain_selfamplify.models.choice_scores import ChoiceScores

if TYPE_CHECKING:
    from langchain_selfamplify.models.core import ModelCore


@dataclass(frozen=True)
class Capabilities:
    """What a model backend can compute. Every backend can generate text."""

    label_log_probs: bool = False
    """Log-probabilities of the answer labels after ``"The answer is ("``
    (letter-format scoring, success/error selection, perturbation explainers)."""
    continuation_log_probs: bool = False
    """Log-probabilities of a given continuation's tokens (the cloze answer format)."""
    gradients: bool = False
    """Gradients through an input-embedding layer (DeepLift, Integrated Gradients,
    Gradient x Input)."""
    token_ids: bool = False
    """A local tokenizer and forward pass over token ids (token-level perturbation with
    a KV cache, the faithfulness metrics): :attr:`ModelBackend.local_model` is set."""
    fused_generate_score: bool = False
    """A reply and the answer labels after it computed in one decoding pass
    (:func:`~langchain_selfamplify.models.generation.generate_then_score` on
    :attr:`ModelBackend.local_model`); without it they take two calls."""

    def names(self) -> list[str]:
        """The capabilities this backend has, by name."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


@runtime_checkable
class ModelBackend(Protocol):
    """The text-level calls the pipeline makes on a model."""

    # Read-only members: a plain attribute or a property satisfies each.
    @property
    def name(self) -> str:
        """Name used in saved prompts, checkpoints and results."""
        ...

    @property
    def show_progress(self) -> bool:
        """Whether long calls show progress bars."""
        ...

    @property
    def batch_size(self) -> int:
        """Prompts handed to the backend per call by batched steps."""
        ...

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Held around a sequence of calls that must not interleave with another
        thread's (a re-entrant lock: LangChain's ``batch`` runs chains in threads)."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can compute."""
        ...

    @property
    def context_length(self) -> int:
        """Longest prompt + continuation the model accepts, in tokens."""
        ...

    @property
    def local_model(self) -> ModelCore | None:
        """The local Hugging Face model behind this backend, for the tensor-level steps
        (``None`` for a served or chat model)."""
        ...

    def format_prompt(self, messages: Sequence[Message], assistant_prefix: str = "") -> Prompt:
        """A conversation with an assistant turn opened with the prefix: rendered text,
        or a :class:`~langchain_selfamplify.models.chat_format.ChatPrompt` for a
        backend that takes messages."""
        ...

    def count_tokens(self, text: Prompt, *, prompt: bool = True) -> int:
        """Tokens of ``text``: a prompt from :meth:`format_prompt` (``prompt=True``) or a
        bare piece of text such as a rationale."""
        ...

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 64,
                 stop: Sequence[str] | None = None, desc: str | None = None,
                 on_reply: Callable[[int, str], None] | None = None) -> list[str]:
        """Greedy continuation of each prompt, cut before the first stop string.

        ``on_reply`` is called with ``(prompt index, continuation)`` as soon as each
        one is complete, so a caller can keep it before the others end (a backend that
        only has them all at once calls it then). It may call the model itself (score
        the answer after the reply) while the others are still being generated."""
        ...

    def score_choices(self, prompts: Sequence[Prompt], labels: Sequence[Sequence[str]], *,
                      desc: str | None = None) -> list[ChoiceScores]:
        """Probability of each answer label right after each prompt."""
        ...


BackendField = Annotated[ModelBackend, SkipValidation,
                         WithJsonSchema({"type": "object",
                                         "description": "a model backend (not serialised)"})]
"""A pydantic field holding a backend: taken as given (a Protocol is not validated
field by field), and described in JSON schemas as an opaque object."""


def generate_each(backend: ModelBackend, prompts: Sequence[Prompt],
                  on_reply: Callable[[int, str], None], **kwargs: Any) -> list[str]:
    """``backend.generate(prompts, **kwargs)`` with ``on_reply`` called exactly once per
    prompt: as each reply ends where the backend hands replies over early, else when
    they are all back (a backend that does not call ``on_reply``)."""
    handed: set[int] = set()

    def hand(index: int, reply: str) -> None:
        if index not in handed:
            handed.add(index)
            on_reply(index, reply)

    replies = backend.generate(prompts, on_reply=hand, **kwargs)
    for index, reply in enumerate(replies):
        hand(index, reply)
    return replies


def require(backend: ModelBackend, capability: str, needed_for: str, instead: str = "") -> None:
    """Fail when ``backend`` lacks ``capability``.

    Args:
        backend: The model backend.
        capability: A :class:`Capabilities` field name.
        needed_for: What needs it, for the message (``"answer_format='cloze'"``).
        instead: What works on this backend instead, for the message.

    Raises:
        BackendCapabilityError: the backend does not have the capability.
    """
    if not getattr(backend.capabilities, capability):
        hint = f" {instead}" if instead else ""
        raise BackendCapabilityError(
            f"{needed_for} needs {capability.replace('_', ' ')}, which the backend "
            f"{backend.name!r} does not provide.{hint}")


def require_local(backend: ModelBackend, needed_for: str, instead: str = "") -> ModelCore:
    """The local model behind ``backend``, for a step that needs its tensors.

    Raises:
        BackendCapabilityError: the backend has no local model (a served or chat model).
    """
    require(backend, "token_ids", needed_for, instead)
    local = backend.local_model
    if local is None:  # a backend that claims token ids must hand over its model
        raise BackendCapabilityError(
            f"{needed_for}: the backend {backend.name!r} claims token ids but has no "
            "local model")
    return local


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """``text`` cut before the first of the ``stop`` strings in it."""
    if not stop:
        return text
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


CHARS_PER_TOKEN = 3
"""Characters per token assumed where no local tokenizer counts them (an over-count for
English text, so context checks err on the safe side)."""


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` estimated at :data:`CHARS_PER_TOKEN` characters each."""
    return -(-len(text) // CHARS_PER_TOKEN)
