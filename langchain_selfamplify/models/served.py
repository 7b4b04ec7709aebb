"""A model served behind an OpenAI-compatible completions endpoint (vLLM, llama.cpp's
server, TGI, OpenAI), reached through ``langchain-openai``.

Prompts are rendered here, with the model's chat template when a local tokenizer is
given (``tokenizer=``: a Hub id, a directory or a ``.gguf`` file) and in the plain
``Question:/Answer:`` layout otherwise, then sent to ``/v1/completions``: the prompt
can end with ``"The answer is ("``, which a chat endpoint cannot prefill (lm-eval's
``local-completions`` and Captum's vLLM provider work the same way).

* **Label scoring** asks for one token with ``top_logprobs`` (``logprobs=k`` on the
  completions API) and reads the labels' log-probabilities there. A label outside the
  top ``k`` gets an upper bound of its log-probability: the smaller of the lowest
  returned log-probability and the log of the probability mass left over. Raise
  ``top_logprobs`` (up to what the server allows; OpenAI allows 5 on completions, vLLM
  and llama.cpp 20 or more) when that happens often; it is logged.
* **Generation** is greedy (``temperature=0``, a fixed ``seed``) with the server's
  stop strings and token cap.
* Requests run ``max_concurrency`` at a time. Timeouts, connection errors and HTTP
  5xx are retried by the OpenAI client with exponential backoff, ``max_retries``
  times; after that a :class:`BackendConnectionError` names the endpoint.

Continuation log-probabilities (the cloze format) and gradients are not available:
llama.cpp ignores ``echo``, so a prompt's own log-probabilities cannot be read
portably. Steps that need them fail when they are built, naming what works.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr
from tqdm.auto import tqdm

from langchain_selfamplify.errors import BackendConnectionError, ModelLoadError
from langchain_selfamplify.models.backend import Capabilities, cut_at_stop, estimate_tokens
from langchain_selfamplify.models.chat_format import (
    ChatFormat,
    Message,
    Prompt,
    has_chat_template,
    prompt_text,
    render_chat,
    render_plain,
    with_system_prompt,
)
from langchain_selfamplify.models.choice_scores import ChoiceScores, softmax
from langchain_selfamplify.models.gguf_cache import existing_conversion

logger = logging.getLogger(__name__)

API_KEY_VARIABLES = ("SELFAMPLIFY_API_KEY", "OPENAI_API_KEY")
"""Environment variables the API key is read from, in this order."""

T = TypeVar("T")


class OpenAICompatibleBackend:
    """A served model behind ``/v1/completions``, with label scoring and generation.

    Example:
        .. code-block:: python

            backend = OpenAICompatibleBackend(
                base_url="http://127.0.0.1:8080/v1", model="smollm2",
                tokenizer="SmolLM2-135M-Instruct.Q4_1.gguf")
            selector = SelfAmplifySelector(backend=backend, examples=pool, n=8)

    Args:
        base_url: The server's OpenAI API root, e.g. ``"http://127.0.0.1:8000/v1"``.
        model: The served model's name, as the server knows it.
        api_key: API key; defaults to ``$SELFAMPLIFY_API_KEY``, then ``$OPENAI_API_KEY``,
            then ``"none"`` (local servers ignore it).
        tokenizer: The model's tokenizer for its chat template and exact token counts: a
            loaded tokenizer, a Hub id, a directory or a ``.gguf`` file. Without it,
            prompts use the plain layout and token counts are estimated.
        chat_format: ``"auto"`` (default), ``"chat"`` or ``"plain"``, as for ``SLM``.
        system_prompt: Optional system message put before every conversation.
        context_length: The server's context in tokens; asked of the server when
            ``None`` (vLLM's ``max_model_len``, llama.cpp's ``n_ctx``), else 4096.
        top_logprobs: Log-probabilities returned per position when scoring labels.
            Defaults to 20.
        max_concurrency: Requests in flight at once. Defaults to 8.
        max_retries: Retries of a timed-out or failed (5xx) request, with exponential
            backoff. Defaults to 3.
        timeout: Seconds before a request times out. Defaults to 120.
        batch_size: Prompts handed over per call by batched steps. Defaults to 64.
        seed: Sampling seed sent with every request. Defaults to 0.
        show_progress: Show progress bars on long calls. Defaults to True.
        name: Name in saved prompts and results; defaults to ``"<model> @ <base_url>"``,
            so cached rationales of different servers never mix.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        tokenizer: Any = None,
        chat_format: ChatFormat = "auto",
        system_prompt: str | None = None,
        context_length: int | None = None,
        top_logprobs: int = 20,
        max_concurrency: int = 8,
        max_retries: int = 3,
        timeout: float = 120.0,
        batch_size: int = 64,
        seed: int = 0,
        show_progress: bool = True,
        name: str | None = None,
    ) -> None:
        try:
            from langchain_openai import OpenAI
        except ImportError as exc:
            raise ModelLoadError("Served models need langchain-openai: pip install "
                                 "'langchain-selfamplify[served]'") from exc
        if max_concurrency < 1 or top_logprobs < 1 or max_retries < 0:
            raise ValueError("max_concurrency and top_logprobs must be >= 1, max_retries >= 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.tokenizer = load_tokenizer(tokenizer) if isinstance(tokenizer, str | Path) \
            else tokenizer
        self.chat_format: ChatFormat = chat_format
        self.system_prompt = system_prompt
        self.top_logprobs = top_logprobs
        self.max_concurrency = max_concurrency
        self.batch_size = batch_size
        self.seed = seed
        self.show_progress = show_progress
        self.name = name or f"{model} @ {self.base_url}"
        self._context_length = context_length
        key = api_key or next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)),
                              "none")
        self._llm = OpenAI(base_url=self.base_url, api_key=SecretStr(key), model=model,
                           temperature=0,
                           max_retries=max_retries, timeout=timeout, seed=seed)
        self.lock = threading.RLock()  # the selector and generator expect one

    # ------------------------------------------------------------------ facts
    @property
    def capabilities(self) -> Capabilities:
        """Label log-probs and generation; no continuation log-probs, no gradients."""
        return Capabilities(label_log_probs=True)

    @property
    def local_model(self) -> None:
        """None: the model's tensors are not here."""
        return None

    @property
    def context_length(self) -> int:
        """The server's context in tokens (asked once, see the class docs)."""
        if self._context_length is None:
            self._context_length = self._ask_context_length()
        return self._context_length

    def _ask_context_length(self) -> int:
        import httpx

        root = self.base_url.removesuffix("/v1")
        try:
            models = httpx.get(f"{self.base_url}/models", timeout=10).json()
            for entry in models.get("data", []):
                if isinstance(entry.get("max_model_len"), int):  # vLLM
                    return int(entry["max_model_len"])
            props = httpx.get(f"{root}/props", timeout=10)
            if props.status_code == 200:  # llama.cpp
                n_ctx = props.json().get("default_generation_settings", {}).get("n_ctx")
                if isinstance(n_ctx, int) and n_ctx > 0:
                    return n_ctx
        except (httpx.HTTPError, ValueError) as exc:
            raise BackendConnectionError(
                f"Could not reach the model server at {self.base_url}: {exc}") from exc
        logger.warning("%s does not say its context length; assuming 4096 tokens "
                       "(pass context_length=)", self.base_url)
        return 4096

    # ------------------------------------------------------------------ prompts
    def format_prompt(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        """Render a conversation with the local tokenizer's chat template, or the plain
        layout when there is no tokenizer, and open an assistant turn."""
        messages = with_system_prompt(messages, self.system_prompt)
        if self.tokenizer is None:
            return render_plain(messages, assistant_prefix)
        return render_chat(self.tokenizer, messages, assistant_prefix, self.chat_format)[0]

    def count_tokens(self, text: Prompt, *, prompt: bool = True) -> int:
        """Exact with a local tokenizer; otherwise ``len(text) / 3``, rounded up."""
        text = prompt_text(text, self.format_prompt)
        if self.tokenizer is None:
            return estimate_tokens(text)
        templated = self.chat_format == "chat" or (
            self.chat_format == "auto" and has_chat_template(self.tokenizer))
        special = prompt and not templated
        return len(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    # ------------------------------------------------------------------ calls
    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 64,
                 stop: Sequence[str] | None = None, desc: str | None = None,
                 on_reply: Callable[[int, str], None] | None = None) -> list[str]:
        """Greedy continuation of each prompt, ``max_concurrency`` requests at a time
        (each handed to ``on_reply`` as its request returns)."""
        def complete(prompt: Prompt) -> str:
            result = self._llm.generate([prompt_text(prompt, self.format_prompt)],
                                        stop=list(stop) if stop else None,
                                        max_tokens=max_new_tokens)
            text = result.generations[0][0].text
            return cut_at_stop(text, stop)

        return self._map(complete, prompts, desc, on_result=on_reply)

    def score_choices(self, prompts: Sequence[Prompt], labels: Sequence[Sequence[str]], *,
                      desc: str | None = None) -> list[ChoiceScores]:
        """Probability of each label as the token after each prompt, from the server's
        top log-probabilities (see the class docs for labels outside them)."""
        if len(prompts) != len(labels):
            raise ValueError("prompts and labels differ in length")

        def score(index: int) -> tuple[ChoiceScores, int]:
            result = self._llm.generate([prompt_text(prompts[index], self.format_prompt)],
                                        max_tokens=1,
                                        logprobs=self.top_logprobs)
            info = result.generations[0][0].generation_info or {}
            top = top_log_probs(info.get("logprobs"))
            if not top:
                raise BackendConnectionError(
                    f"The server at {self.base_url} returned no log-probabilities; label "
                    "scoring needs a completions endpoint that honours 'logprobs'.")
            values, missing = label_log_probs(top, labels[index])
            return ChoiceScores(labels=list(labels[index]), probs=softmax(values),
                                log_probs=values), missing

        scored = self._map(score, range(len(prompts)), desc)
        outside = sum(missing for _, missing in scored)
        if outside:
            logger.warning("%d label(s) fell outside the server's top %d log-probabilities "
                           "and were given an upper bound; raise top_logprobs", outside,
                           self.top_logprobs)
        return [choice_scores for choice_scores, _ in scored]

    def _map(self, call: Callable[[Any], T], items: Sequence[Any] | range,
             desc: str | None, on_result: Callable[[int, T], None] | None = None
             ) -> list[T]:
        """``call`` on every item, ``max_concurrency`` at a time, results in order (each
        handed to ``on_result`` with its item's index as soon as it is back); a failure
        stops the rest and is raised naming the endpoint."""
        import openai

        items = list(items)
        show = bool(desc) and self.show_progress and len(items) > 1
        with ThreadPoolExecutor(self.max_concurrency) as pool, \
                tqdm(total=len(items), desc=desc, disable=not show, leave=False) as bar:
            futures = {pool.submit(call, item): index for index, item in enumerate(items)}
            results: dict[int, T] = {}
            try:
                for future in as_completed(futures):
                    index = futures[future]
                    results[index] = future.result()
                    if on_result is not None:
                        on_result(index, results[index])
                    bar.update(1)
            except (openai.APIConnectionError, openai.APIStatusError) as exc:
                for future in futures:
                    future.cancel()
                raise BackendConnectionError(
                    f"The model server at {self.base_url} failed ({type(exc).__name__}: "
                    f"{exc}) after the retries; finished work is kept in the checkpoint, "
                    "and rerunning the same command resumes once the server is back.") from exc
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return [results[index] for index in range(len(items))]

    # ------------------------------------------------------------------ LangChain
    def as_chat_model(self, max_new_tokens: int = 128, **kwargs: Any) -> Any:
        """This served model as a ``langchain_openai.ChatOpenAI`` chat model."""
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(base_url=self.base_url, api_key=self._llm.openai_api_key,
                          model=self.model, temperature=0,
                          max_completion_tokens=max_new_tokens, **kwargs)

    def __repr__(self) -> str:
        return f"OpenAICompatibleBackend(model={self.model!r}, base_url={self.base_url!r})"


def load_tokenizer(source: str | Path) -> Any:
    """A Hugging Face tokenizer from a Hub id, a directory or a ``.gguf`` file (read from
    the file's conversion when an earlier model load wrote one: the same tokenizer,
    without parsing the GGUF's vocabulary again).

    Raises:
        ModelLoadError: it cannot be loaded.
    """
    from transformers import AutoTokenizer

    path = Path(str(source)).expanduser()
    try:
        if path.suffix == ".gguf":
            converted = existing_conversion(path)
            if converted is not None:
                return AutoTokenizer.from_pretrained(str(converted))
            return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        return AutoTokenizer.from_pretrained(str(source))
    except Exception as exc:  # transformers raises OSError, ValueError...
        raise ModelLoadError(f"Could not load the tokenizer {source!s}: {exc}") from exc


def top_log_probs(logprobs: Any) -> dict[str, float]:
    """Token -> log-probability at the first generated position, from either shape a
    server returns: OpenAI's legacy ``top_logprobs: [{token: logprob}]`` or the
    chat-style ``content: [{top_logprobs: [{token, logprob}]}]`` (llama.cpp)."""
    if not isinstance(logprobs, dict):
        return {}
    content = logprobs.get("content")
    if content:
        return {entry["token"]: float(entry["logprob"])
                for entry in content[0].get("top_logprobs") or []}
    legacy = logprobs.get("top_logprobs")
    if legacy:
        return {token: float(value) for token, value in legacy[0].items()}
    return {}


def label_log_probs(top: dict[str, float], labels: Sequence[str]) -> tuple[list[float], int]:
    """Each label's log-probability from a position's top log-probabilities, and how
    many labels were missing from them (given an upper bound, see the module docs)."""
    left_over = max(1e-12, 1.0 - sum(math.exp(v) for v in top.values()))
    bound = min(min(top.values()), math.log(left_over))
    values, missing = [], 0
    for label in labels:
        exact = top.get(label)
        if exact is None:  # a tokenizer that glues a space to the label
            near = [v for token, v in top.items() if token.strip() == label]
            exact = max(near) if near else None
        if exact is None:
            missing += 1
            exact = bound
        values.append(exact)
    return values, missing

