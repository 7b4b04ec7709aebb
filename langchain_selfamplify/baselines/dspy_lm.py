"""DSPy on this project's model backends: a DSPy engine that answers with any backend.

DSPy 3.4 reaches a model through an *engine*, an object with ``complete(Request) ->
Response`` handed to ``dspy.LM(engine=...)`` (the older ``BaseLM.forward`` plug-in is
deprecated for removal in 3.5). :class:`BackendEngine` is that engine over a
:class:`~langchain_selfamplify.models.backend.ModelBackend`: it renders DSPy's messages
with the backend's chat template and generates greedily. So the local model, a served
model and the offload wrapper all run DSPy programs, nothing is loaded twice, and no
request leaves the machine (LiteLLM is never called).

Example:
    .. code-block:: python

        import dspy
        from langchain_selfamplify import SLM
        from langchain_selfamplify.baselines.dspy_lm import dspy_lm

        lm = dspy_lm(SLM.from_default())
        with dspy.context(lm=lm):
            print(dspy.Predict("question -> answer")(question="2 + 2?").answer)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from langchain_selfamplify.errors import MissingDependencyError
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.models.chat_format import Message, Prompt

COMPLETED = "[[ ## completed ## ]]"
"""The marker DSPy's chat adapter ends a reply with: generation stops there."""

DEFAULT_MAX_NEW_TOKENS = 512
"""Token cap of a reply when the request sets none (DSPy's default of 4,000 would let
a small model that never writes the end marker run for minutes)."""


def require_dspy() -> Any:
    """The ``dspy`` module.

    Raises:
        MissingDependencyError: DSPy is not installed (the ``[dspy]`` extra).
    """
    try:
        import dspy
    except ImportError as exc:
        raise MissingDependencyError(
            "the DSPy baselines (dspy_bootstrap, dspy_labeled) need DSPy: "
            "pip install 'langchain-selfamplify[dspy]'") from exc
    return dspy


class BackendEngine:
    """A DSPy engine that generates with a model backend, greedily.

    Sampling settings in a request (``temperature``, ``top_p``) are ignored: every
    reply is the backend's greedy continuation, as in the rest of the project. The
    engine counts its calls and seconds, so a DSPy optimiser's cost can be reported.

    Args:
        backend: The model backend.
        max_new_tokens: Token cap of a reply; a request's own ``max_tokens`` lowers it.
            Defaults to :data:`DEFAULT_MAX_NEW_TOKENS`.
    """

    def __init__(self, backend: ModelBackend,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> None:
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.calls = 0
        """Requests answered so far."""
        self.seconds = 0.0
        """Seconds spent answering them."""

    def render(self, request: Any) -> Prompt:
        """The prompt text of a DSPy request: its system text and messages in the
        backend's chat template, an assistant turn opened."""
        return self.backend.format_prompt(request_messages(request))

    def cap(self, request: Any) -> int:
        """The request's token cap, at most :attr:`max_new_tokens`."""
        asked = request.config.max_tokens
        return min(asked, self.max_new_tokens) if asked else self.max_new_tokens

    def stops(self, request: Any) -> list[str]:
        """The request's stop strings and DSPy's end-of-reply marker."""
        return [*request.config.stop, COMPLETED]

    def complete(self, request: Any) -> Any:
        """Answer one DSPy request."""
        prompt = self.render(request)
        started = time.perf_counter()
        reply = self.backend.generate([prompt], max_new_tokens=self.cap(request),
                                      stop=self.stops(request))[0]
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return response(self.backend, prompt, reply)

    def stream(self, request: Any) -> Any:
        """The reply as one block of stream events (generation is not streamed)."""
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        """Nothing to close: the backend belongs to the caller."""


def request_messages(request: Any) -> list[Message]:
    """A DSPy request as chat messages: the system text first, a ``developer`` turn as
    a system one."""
    messages: list[Message] = []
    if request.system is not None:
        system = (request.system if isinstance(request.system, str)
                  else "".join(part.text for part in request.system))
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": message.text or ""})
    return messages


def response(backend: ModelBackend, prompt: Prompt, reply: str) -> Any:
    """A DSPy response holding ``reply``."""
    from dspy.lm15 import Message as DSPyMessage
    from dspy.lm15 import Response, TextPart, Usage

    return Response(id=None, model=backend.name, message=DSPyMessage.assistant([TextPart(reply)]),
                    finish_reason="stop",
                    usage=Usage(input_tokens=backend.count_tokens(prompt),
                                output_tokens=backend.count_tokens(reply, prompt=False)))


def dspy_lm(backend: ModelBackend, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> Any:
    """A ``dspy.LM`` answering with ``backend`` through :class:`BackendEngine`.

    DSPy's response cache is off: a cached reply would hide the model's cost and could
    come from another model of the same name.

    Args:
        backend: The model backend.
        max_new_tokens: Token cap of a reply. Defaults to :data:`DEFAULT_MAX_NEW_TOKENS`.

    Raises:
        MissingDependencyError: DSPy is not installed.
    """
    dspy = require_dspy()
    return dspy.LM(f"selfamplify/{backend.name}", engine=BackendEngine(backend, max_new_tokens),
                   cache=False, temperature=0.0)


def engine_of(lm: Any) -> BackendEngine:
    """The :class:`BackendEngine` behind a ``dspy.LM`` made by :func:`dspy_lm`."""
    engine = getattr(lm, "engine", None)
    if not isinstance(engine, BackendEngine):
        raise TypeError("not a dspy.LM made by dspy_lm()")
    return engine


def batched_replies(backend: ModelBackend, prompts: Sequence[Prompt],
                    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                    desc: str | None = None) -> list[str]:
    """Replies to many rendered DSPy prompts in one batched call (the prompts of a
    program over many questions share its demonstrations, so the backend's prefix
    cache applies)."""
    return backend.generate(list(prompts), max_new_tokens=max_new_tokens, stop=[COMPLETED],
                            desc=desc)
