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

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

from langchain_selfamplify.errors import BackendCapabilityError
from langchain_selfamplify.models.chat_format import Message
from langchain_selfamplify.models.choice_scores import ChoiceScores


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
    a KV cache, the faithfulness metrics)."""

    def names(self) -> list[str]:
        """The capabilities this backend has, by name."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


@runtime_checkable
class ModelBackend(Protocol):
    """The text-level calls the pipeline makes on a model."""

    name: str
    """Name used in saved prompts, checkpoints and results."""
    show_progress: bool
    """Whether long calls show progress bars."""
    batch_size: int
    """Prompts handed to the backend per call by batched steps."""

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can compute."""
        ...

    @property
    def context_length(self) -> int:
        """Longest prompt + continuation the model accepts, in tokens."""
        ...

    def format_prompt(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        """Render a conversation and open an assistant turn starting with the prefix."""
        ...

    def count_tokens(self, text: str, *, prompt: bool = True) -> int:
        """Tokens of ``text``: a prompt from :meth:`format_prompt` (``prompt=True``) or a
        bare piece of text such as a rationale."""
        ...

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 64,
                 stop: Sequence[str] | None = None, desc: str | None = None) -> list[str]:
        """Greedy continuation of each prompt, cut before the first stop string."""
        ...

    def score_choices(self, prompts: Sequence[str], labels: Sequence[Sequence[str]], *,
                      desc: str | None = None) -> list[ChoiceScores]:
        """Probability of each answer label right after each prompt."""
        ...


def require(backend: Any, capability: str, needed_for: str, instead: str = "") -> None:
    """Fail when ``backend`` lacks ``capability``.

    Args:
        backend: The model backend.
        capability: A :class:`Capabilities` field name.
        needed_for: What needs it, for the message (``"answer_format='cloze'"``).
        instead: What works on this backend instead, for the message.

    Raises:
        BackendCapabilityError: the backend does not have the capability.
    """
    if not getattr(capabilities_of(backend), capability):
        hint = f" {instead}" if instead else ""
        raise BackendCapabilityError(
            f"{needed_for} needs {capability.replace('_', ' ')}, which the backend "
            f"{getattr(backend, 'name', type(backend).__name__)!r} does not provide.{hint}")


def capabilities_of(backend: Any) -> Capabilities:
    """A backend's :class:`Capabilities` (a test double without them can do everything,
    so existing duck-typed models keep working)."""
    found = getattr(backend, "capabilities", None)
    if isinstance(found, Capabilities):
        return found
    return Capabilities(label_log_probs=True, continuation_log_probs=True,
                        gradients=bool(getattr(backend, "supports_gradients", True)),
                        token_ids=hasattr(backend, "tokenizer"))


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
