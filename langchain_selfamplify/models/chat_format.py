"""Turning chat messages into the exact text a causal LM continues.

With a chat template we let the tokenizer render the conversation and open an
assistant turn that the model continues from a given prefix
(``continue_final_message``). Models without a template get a plain
``Question:/Answer:`` layout, so base models (GPT-2...) work too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_selfamplify.errors import ChatTemplateError

Message = dict[str, str]
ChatFormat = Literal["auto", "chat", "plain"]


@dataclass(frozen=True)
class ChatPrompt:
    """A conversation and the text the assistant's reply starts with, kept as messages
    for backends that take messages (a LangChain chat model), not rendered text."""

    turns: tuple[tuple[str, str], ...]
    """``(role, content)`` of each message, in order."""
    assistant_prefix: str = ""
    """Text the assistant's reply starts with; the model continues it."""

    @classmethod
    def of(cls, messages: Sequence[Message], assistant_prefix: str = "") -> ChatPrompt:
        """The prompt of ``messages`` (``{"role": ..., "content": ...}`` dicts)."""
        return cls(tuple((m["role"], m["content"]) for m in messages), assistant_prefix)

    @property
    def messages(self) -> list[Message]:
        """The turns as ``{"role": ..., "content": ...}`` dicts."""
        return [{"role": role, "content": content} for role, content in self.turns]

    def __str__(self) -> str:
        return render_plain(self.messages, self.assistant_prefix)


Prompt = str | ChatPrompt
"""What a backend's ``format_prompt`` returns and its ``generate`` and
``score_choices`` take: rendered text (local and served models) or a
:class:`ChatPrompt` (chat models)."""


def prompt_text(prompt: Prompt, render: Callable[[Sequence[Message], str], str]) -> str:
    """``prompt`` as text: itself, or a :class:`ChatPrompt` rendered by ``render``
    (a backend's ``format_prompt``)."""
    if isinstance(prompt, ChatPrompt):
        return render(prompt.messages, prompt.assistant_prefix)
    return prompt


def has_chat_template(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def render_chat(
    tokenizer: Any,
    messages: Sequence[Message],
    assistant_prefix: str = "",
    chat_format: ChatFormat = "auto",
) -> tuple[str, bool]:
    """Render ``messages`` and open an assistant turn starting with ``assistant_prefix``.

    Args:
        tokenizer: A Hugging Face tokenizer.
        messages: ``{"role": "system"|"user"|"assistant", "content": ...}`` dicts.
        assistant_prefix: Text the assistant turn starts with; the model continues it.
        chat_format: ``"chat"`` requires a chat template, ``"plain"`` never uses one,
            ``"auto"`` (default) uses it when the tokenizer has one.

    Returns:
        The prompt text, and whether it already holds the tokenizer's special tokens
        (so it must be encoded with ``add_special_tokens=False``).

    Raises:
        ChatTemplateError: ``chat_format="chat"`` and the tokenizer has no template.
    """
    use_template = chat_format == "chat" or (
        chat_format == "auto" and has_chat_template(tokenizer)
    )
    if use_template and not has_chat_template(tokenizer):
        raise ChatTemplateError(
            f"The tokenizer of {getattr(tokenizer, 'name_or_path', 'this model')!r} has no "
            "chat template; use chat_format='plain' (or 'auto') or set tokenizer.chat_template."
        )
    if not use_template:
        return render_plain(messages, assistant_prefix), False
    conversation = [dict(m) for m in messages]
    if assistant_prefix:
        conversation.append({"role": "assistant", "content": assistant_prefix})
        text = tokenizer.apply_chat_template(
            conversation, tokenize=False, continue_final_message=True
        )
    else:
        text = tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True
        )
    return str(text), True


def render_plain(messages: Sequence[Message], assistant_prefix: str = "") -> str:
    """Plain-text layout for models without a chat template.

    System text comes first, then ``Question: ...`` / ``Answer: ...`` pairs; the
    final ``Answer:`` is followed by ``assistant_prefix``.
    """
    parts: list[str] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            parts.append(f"{content}\n\n")
        elif role == "user":
            parts.append(f"Question: {content}\n")
        elif role == "assistant":
            parts.append(f"Answer: {content}\n\n")
        else:
            raise ValueError(f"unknown message role {role!r}")
    parts.append(f"Answer: {assistant_prefix}" if assistant_prefix else "Answer:")
    return "".join(parts)


def with_system_prompt(messages: Sequence[Message], system_prompt: str | None
                       ) -> Sequence[Message]:
    """``messages`` with ``system_prompt`` put first, unless it is empty or the
    conversation already opens with a system message."""
    if system_prompt and (not messages or messages[0]["role"] != "system"):
        return [{"role": "system", "content": system_prompt}, *messages]
    return messages
