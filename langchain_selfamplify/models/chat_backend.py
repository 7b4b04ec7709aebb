"""A generation-only backend over any LangChain chat model.

Any ``BaseChatModel`` (``ChatOpenAI``, ``ChatOllama``, ``ChatAnthropic``...) can write
Ph-CoT and Self_topk rationales, Auto-CoT chains, test-time rationales and answers in
generate mode. It returns no log-probabilities here, so the steps that score labels
(success/error selection, score-mode answers, perturbation explainers) fail when they
are built, saying that ``strategy="random"`` and ``mode="generate"`` work.

Prompts stay conversations: :meth:`ChatModelBackend.format_prompt` returns a
:class:`~langchain_selfamplify.models.chat_format.ChatPrompt` (the messages and the
assistant prefix), and :meth:`ChatModelBackend.generate` sends them as chat messages,
the prefix as a final assistant message. Servers that take a
final assistant message as a prefill (llama.cpp, vLLM, Anthropic) continue it; others
answer afresh, and a reply that repeats the prefix has it removed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from tqdm.auto import tqdm

from langchain_selfamplify.models.backend import Capabilities, cut_at_stop, estimate_tokens
from langchain_selfamplify.models.chat_format import (
    ChatPrompt,
    Message,
    Prompt,
    with_system_prompt,
)
from langchain_selfamplify.models.choice_scores import ChoiceScores


class ChatModelBackend:
    """Generation through a LangChain chat model; no scoring.

    Args:
        chat_model: Any ``langchain_core`` ``BaseChatModel``.
        name: Name in saved prompts and results. Defaults to the model's identifying
            name and parameters, so rationales of different models never mix.
        context_length: The model's context in tokens. Defaults to 8192.
        max_concurrency: Requests in flight at once. Defaults to 8.
        system_prompt: Optional system message put before every conversation.
        batch_size: Prompts handed over per call by batched steps. Defaults to 64.
        show_progress: Show progress bars on long calls. Defaults to True.
    """

    def __init__(self, chat_model: BaseChatModel, *, name: str | None = None,
                 context_length: int = 8192, max_concurrency: int = 8,
                 system_prompt: str | None = None, batch_size: int = 64,
                 show_progress: bool = True) -> None:
        if not isinstance(chat_model, BaseChatModel):
            raise TypeError("ChatModelBackend needs a LangChain BaseChatModel, not "
                            f"{type(chat_model).__name__}")
        self.chat_model = chat_model
        params = sorted(chat_model._identifying_params.items())
        self.name = name or f"{chat_model._llm_type}:{params}"
        self._context_length = context_length
        self.max_concurrency = max_concurrency
        self.system_prompt = system_prompt
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.lock = threading.RLock()

    @property
    def capabilities(self) -> Capabilities:
        """Generation only."""
        return Capabilities()

    @property
    def local_model(self) -> None:
        """None: the model's tensors are not here."""
        return None

    @property
    def context_length(self) -> int:
        """The context given at construction."""
        return self._context_length

    def format_prompt(self, messages: Sequence[Message], assistant_prefix: str = ""
                      ) -> ChatPrompt:
        """The conversation and the assistant prefix, kept as messages."""
        return ChatPrompt.of(with_system_prompt(messages, self.system_prompt), assistant_prefix)

    def count_tokens(self, text: Prompt, *, prompt: bool = True) -> int:
        """An estimate, ``len / 3`` rounded up, of the text (a conversation counts its
        messages' contents and the assistant prefix)."""
        if isinstance(text, ChatPrompt):
            text = "".join(content for _, content in text.turns) + text.assistant_prefix
        return estimate_tokens(text)

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 64,
                 stop: Sequence[str] | None = None, desc: str | None = None,
                 on_reply: Callable[[int, str], None] | None = None) -> list[str]:
        """Each conversation's reply, ``max_concurrency`` requests at a time (each
        handed to ``on_reply`` as it comes back)."""
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        conversations: list[Any] = []
        prefixes: list[str] = []
        for prompt in prompts:
            if not isinstance(prompt, ChatPrompt):
                raise TypeError("ChatModelBackend.generate takes the ChatPrompts of its own "
                                f"format_prompt, not {type(prompt).__name__}")
            turns = [kinds[role](content=content) for role, content in prompt.turns]
            if prompt.assistant_prefix:
                turns.append(AIMessage(content=prompt.assistant_prefix))
            conversations.append(turns)
            prefixes.append(prompt.assistant_prefix)
        model = self.chat_model.bind(stop=list(stop)) if stop else self.chat_model
        show = bool(desc) and self.show_progress and len(prompts) > 1
        texts: dict[int, str] = {}
        with tqdm(total=len(prompts), desc=desc, disable=not show, leave=False) as bar:
            for index, reply in model.batch_as_completed(
                    conversations, config={"max_concurrency": self.max_concurrency},
                    max_tokens=max_new_tokens):
                texts[index] = self._reply_text(reply, prefixes[index], stop)
                if on_reply is not None:
                    on_reply(index, texts[index])
                bar.update(1)
        return [texts[index] for index in range(len(conversations))]

    @staticmethod
    def _reply_text(reply: Any, prefix: str, stop: Sequence[str] | None) -> str:
        """A reply's text, the assistant prefix it may repeat removed, cut at ``stop``."""
        text = reply.text if hasattr(reply, "text") else str(reply.content)
        stripped = text.lstrip()
        if prefix.strip() and stripped.startswith(prefix.strip()):
            text = stripped[len(prefix.strip()):]
        return cut_at_stop(text, stop)

    def score_choices(self, prompts: Sequence[Prompt], labels: Sequence[Sequence[str]], *,
                      desc: str | None = None) -> list[ChoiceScores]:
        """Not available: a chat model returns no log-probabilities here."""
        from langchain_selfamplify.models.backend import require

        require(self, "label_log_probs", "Scoring answer labels",
                "Use strategy='random' for selection and mode='generate' for answers.")
        raise AssertionError("unreachable")  # require raised

    def __repr__(self) -> str:
        return f"ChatModelBackend({self.name!r})"
