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

import contextlib
import io
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from langchain_selfamplify.checkpoint import content_key
from langchain_selfamplify.errors import MissingDependencyError
from langchain_selfamplify.models.backend import ModelBackend, generate_each
from langchain_selfamplify.models.chat_format import Message, Prompt

COMPLETED = "[[ ## completed ## ]]"
"""The marker DSPy's chat adapter ends a reply with: generation stops there."""

DEFAULT_MAX_NEW_TOKENS = 512
"""Token cap of a reply when the request sets none (DSPy's default of 4,000 would let
a small model that never writes the end marker run for minutes)."""

RequestKey = tuple[Prompt, int, tuple[str, ...]]
"""A request as the backend answers it: the rendered prompt, its token cap and its
stop strings. Greedy decoding gives one reply per key."""

T = TypeVar("T")


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

    def key(self, request: Any) -> RequestKey:
        """The request as the backend answers it."""
        return self.render(request), self.cap(request), tuple(self.stops(request))

    def reply(self, key: RequestKey) -> str:
        """The backend's reply to one request."""
        prompt, cap, stops = key
        started = time.perf_counter()
        reply = self.backend.generate([prompt], max_new_tokens=cap, stop=list(stops))[0]
        self.seconds += time.perf_counter() - started
        return reply

    def complete(self, request: Any) -> Any:
        """Answer one DSPy request."""
        key = self.key(request)
        reply = self.reply(key)
        self.calls += 1
        return response(self.backend, key[0], reply)

    def stream(self, request: Any) -> Any:
        """The reply as one block of stream events (generation is not streamed)."""
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        """Nothing to close: the backend belongs to the caller."""


class PrefetchedEngine(BackendEngine):
    """A :class:`BackendEngine` that answers only from replies generated beforehand.

    A request whose reply is not in ``replies`` is recorded in :attr:`missed`, in the
    order the program asked, and answered with ``placeholder``. See
    :func:`run_with_prefetch`, which generates the missed replies in batches and runs
    the program again.

    Args:
        backend: The model backend (its name and token counts; it generates nothing).
        replies: Replies generated so far, by request.
        placeholder: The answer to a request not in ``replies``.
        max_new_tokens: Token cap of a reply, as :class:`BackendEngine`'s.
    """

    def __init__(self, backend: ModelBackend, replies: dict[RequestKey, str], placeholder: str,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> None:
        super().__init__(backend, max_new_tokens)
        self.replies = replies
        self.placeholder = placeholder
        self.missed: list[RequestKey] = []
        """The requests answered with the placeholder, in the order they came."""

    def reply(self, key: RequestKey) -> str:
        if key in self.replies:
            return self.replies[key]
        self.missed.append(key)
        return self.placeholder


def reply_key(backend: ModelBackend, key: RequestKey) -> str:
    """A reply's checkpoint key: the model, the rendered prompt, its cap and stops."""
    prompt, cap, stops = key
    return content_key({"method": "dspy", "model": backend.name, "prompt": prompt,
                        "max_new_tokens": cap, "stop": list(stops)})


def run_with_prefetch(backend: ModelBackend, run: Callable[[Any], T], *, batch: int,
                      placeholder: str, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                      desc: str | None = None, written: Mapping[str, str] | None = None,
                      on_written: Callable[[list[dict[str, str]]], None] | None = None,
                      ) -> tuple[T, dict[str, Any]]:
    """``run(lm)`` with the model's replies generated in batches instead of one call at
    a time, and the same result as one call at a time.

    A DSPy optimiser asks one question at a time, and on a local model a lone
    generation pays a whole decoding step per token. Here the program runs first with
    every reply a ``placeholder`` (which the program must take as a failed trace), so
    it asks everything it could ask. The first ``batch`` requests it missed are
    generated together, and the program runs again from the start, answered from
    those replies, until it runs through without asking for a reply that was not
    generated. Every reply the final run saw is then the backend's own greedy reply to
    that exact request (batched generation equals one prompt at a time), so the result
    is the one ``run`` gets calling the model itself; replies generated ahead and
    never asked for are the price. ``run`` must be deterministic given its replies.

    What ``run`` prints (BootstrapFewShot's "Bootstrapped 0 full traces ...") is held
    back and only the final run's is printed: the earlier runs' accounts count
    placeholders as failed traces, and would tell a user watching that none passed.

    Args:
        backend: The model backend.
        run: Runs the program with a ``dspy.LM`` and returns its result.
        batch: Replies generated per round (at least 1).
        placeholder: The reply to a request not generated yet.
        max_new_tokens: Token cap of a reply. Defaults to :data:`DEFAULT_MAX_NEW_TOKENS`.
        desc: Progress-bar label of each round's generation.
        written: Replies of an earlier run by :func:`reply_key` (``on_written``'s
            records), taken instead of generating them again. Defaults to none.
        on_written: Called with ``[{"key": ..., "reply": ...}]`` as each reply ends,
            e.g. to checkpoint it, so a stopped run loses no finished reply.
            Defaults to none.

    Returns:
        ``run``'s result and its cost: ``model_calls`` (the requests the program made),
        ``replies_generated`` (this run's and the ``written`` ones it took, as
        ``replies_reused``), ``model_seconds`` (generating them), ``rounds``, and
        ``longest_reply_tokens`` and ``replies_at_cap``: a batch decodes until its
        longest reply ends, so one reply that runs to the cap sets a round's time.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    replies: dict[RequestKey, str] = {}
    stored = dict(written or {})
    seconds, rounds, reused = 0.0, 0, 0
    while True:
        rounds += 1
        engine = PrefetchedEngine(backend, replies, placeholder, max_new_tokens)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            result = run(lm_of(engine))
        if not engine.missed:
            sys.stdout.write(printed.getvalue())
            # Replies re-tokenised: a count near, not always equal to, the tokens made.
            lengths = {key: backend.count_tokens(reply, prompt=False)
                       for key, reply in replies.items()}
            return result, {"model_calls": engine.calls, "replies_generated": len(replies),
                            "replies_reused": reused, "model_seconds": seconds,
                            "rounds": rounds,
                            "longest_reply_tokens": max(lengths.values(), default=0),
                            "replies_at_cap": sum(length >= key[1]
                                                  for key, length in lengths.items())}
        missed = list(dict.fromkeys(engine.missed))
        checkpoint_keys = {key: reply_key(backend, key) for key in missed} if stored else {}
        found = {key: stored[checkpoint_keys[key]] for key in missed
                 if checkpoint_keys.get(key) in stored}
        if found:  # run the program on them first: it may need nothing more
            replies.update(found)
            reused += len(found)
            continue
        todo = missed[:batch]
        started = time.perf_counter()
        for (cap, stops), keys in _by_settings(todo).items():
            def keep(index: int, reply: str, keys: list[RequestKey] = keys) -> None:
                replies[keys[index]] = reply
                if on_written is not None:
                    on_written([{"key": reply_key(backend, keys[index]), "reply": reply}])

            generate_each(backend, [prompt for prompt, _, _ in keys], keep, max_new_tokens=cap,
                          stop=list(stops), desc=desc)
        seconds += time.perf_counter() - started


def _by_settings(keys: Sequence[RequestKey]) -> dict[tuple[int, tuple[str, ...]],
                                                      list[RequestKey]]:
    """Requests grouped by token cap and stop strings (one batched call per group)."""
    groups: dict[tuple[int, tuple[str, ...]], list[RequestKey]] = {}
    for key in keys:
        groups.setdefault((key[1], key[2]), []).append(key)
    return groups


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
    return lm_of(BackendEngine(backend, max_new_tokens))


def lm_of(engine: BackendEngine) -> Any:
    """A ``dspy.LM`` answering through ``engine``, greedily, DSPy's cache off.

    Raises:
        MissingDependencyError: DSPy is not installed.
    """
    return require_dspy().LM(f"selfamplify/{engine.backend.name}", engine=engine, cache=False,
                             temperature=0.0)


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
