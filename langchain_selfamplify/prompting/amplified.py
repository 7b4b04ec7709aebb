"""``AmplifiedPrompt``: rationale-enriched demonstrations as a LangChain prompt (step 3)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import SystemMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    PromptTemplate,
)
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import PromptFileError
from langchain_selfamplify.models.chat_format import Message
from langchain_selfamplify.prompting.messages import (
    escape_braces,
    few_shot_messages,
    question_text,
    template_example,
    test_time_prefix,
)
from langchain_selfamplify.schemas import PromptInput, PromptOutput
from langchain_selfamplify.strict import StrictModel, reject_unknown_arguments
from langchain_selfamplify.wording import AnswerFormat

PROMPT_FILE_FORMAT = "langchain-selfamplify/amplified-prompt"
"""The ``format`` field of saved prompt files."""
PROMPT_FILE_VERSION = 1
"""Current version of the saved prompt file layout."""


class AmplifiedPrompt(RunnableSerializable[Any, PromptValue]):
    """Few-shot prompt of (question, rationale, answer) demonstrations.

    As a ``Runnable`` it maps ``{"question": ..., "examples": [...]}`` (the output of
    ``selector | rationales``) or just ``{"question": ...}`` (using its own fixed
    :attr:`examples`) to a prompt value any LangChain chat model or LLM accepts.

    Example:
        .. code-block:: python

            chain = selector | rationales | AmplifiedPrompt() | backend.as_chat_model()
            chain.invoke({"question": "Which gas ... (A) ... (B) ... (C) ... (D) ..."})

            prompt = AmplifiedPrompt(examples=rationales.invoke(selector.select()))
            prompt.save("amplified.json")
            same = AmplifiedPrompt.load("amplified.json")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    def __init__(self, **kwargs: Any) -> None:
        reject_unknown_arguments(type(self), kwargs)
        super().__init__(**kwargs)

    examples: list[MCQExample] = Field(default_factory=list)
    """Fixed demonstrations, used when the input carries none."""
    system_prompt: str | None = None
    """Optional system message opening the conversation."""
    style: Literal["chat", "text"] = "chat"
    """``"chat"`` builds chat messages (``FewShotChatMessagePromptTemplate``) for chat
    models; ``"text"`` one string (``FewShotPromptTemplate``) for plain LLMs."""
    answer_format: AnswerFormat = "letter"
    """How demonstrations end and answers are read: ``"letter"`` ("The answer is (B).")
    or ``"cloze"`` ("The answer is: carbon dioxide.")."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Provenance: model, method, strategy, seed... (saved with the prompt)."""

    # ------------------------------------------------------------------ building
    def demonstrations(self, input: Any = None) -> list[MCQExample]:
        """The demonstrations of an input dict, else the fixed :attr:`examples`."""
        if isinstance(input, dict) and input.get("examples") is not None:
            return list(input["examples"])
        return list(self.examples)

    def to_messages(self, question: str | MCQExample,
                    examples: list[MCQExample] | None = None) -> list[Message]:
        """The conversation as role/content dicts, as :class:`SLM` renders it."""
        demos = self.examples if examples is None else examples
        return few_shot_messages(demos, question, self.system_prompt, self.answer_format)

    def assistant_prefix(self, examples: list[MCQExample] | None = None) -> str:
        """What the answer turn starts with at test time (see ``test_time_prefix``)."""
        return test_time_prefix(self.examples if examples is None else examples,
                                self.answer_format)

    def to_chat_prompt_template(
        self, examples: list[MCQExample] | None = None
    ) -> ChatPromptTemplate:
        """A ``ChatPromptTemplate`` (system, few-shot pairs, ``{question}``)."""
        demos = self.examples if examples is None else examples
        few_shot = FewShotChatMessagePromptTemplate(
            examples=[template_example(d, self.answer_format) for d in demos],
            example_prompt=ChatPromptTemplate.from_messages(
                [("human", "{question}"), ("ai", "{answer}")]
            ),
        )
        messages: list[Any] = []
        if self.system_prompt:
            messages.append(SystemMessage(content=self.system_prompt))
        messages += [few_shot, ("human", "{question}")]
        return ChatPromptTemplate.from_messages(messages)

    def to_few_shot_prompt_template(
        self, examples: list[MCQExample] | None = None
    ) -> FewShotPromptTemplate:
        """A ``FewShotPromptTemplate`` laid out like ``Question: ...\\nAnswer: ...``."""
        demos = self.examples if examples is None else examples
        # FewShotPromptTemplate formats the joined examples once more: escape braces.
        return FewShotPromptTemplate(
            examples=[{key: escape_braces(value)
                       for key, value in template_example(d, self.answer_format).items()}
                      for d in demos],
            example_prompt=PromptTemplate.from_template("Question: {question}\nAnswer: {answer}"),
            prefix=escape_braces(self.system_prompt or ""),
            suffix="Question: {question}\nAnswer:",
            input_variables=["question"],
            example_separator="\n\n",
        )

    # ------------------------------------------------------------------ Runnable
    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """``{"question": ..., ["examples": [...]]}``."""
        return PromptInput

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """Chat messages or one string, by :attr:`style`."""
        return PromptOutput

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> PromptValue:
        """``{"question": ..., ["examples": ...]}`` or a question string -> prompt value."""
        return self._call_with_config(self._format, input, config, run_type="prompt")

    def _format(self, input: Any) -> PromptValue:
        if isinstance(input, str | MCQExample):
            input = {"question": input}
        if not isinstance(input, dict) or "question" not in input:
            raise TypeError("AmplifiedPrompt expects a question string or a dict with "
                            f"'question', got {type(input).__name__}")
        demos = self.demonstrations(input)
        question = question_text(input["question"])
        if self.style == "chat":
            return self.to_chat_prompt_template(demos).invoke({"question": question})
        return self.to_few_shot_prompt_template(demos).invoke({"question": question})

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the prompt as versioned JSON (never pickle). Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = PromptFile(
            format="langchain-selfamplify/amplified-prompt",
            version=PROMPT_FILE_VERSION,
            examples=self.examples,
            system_prompt=self.system_prompt,
            style=self.style,
            answer_format=self.answer_format,
            metadata=self.metadata,
        )
        tmp = path.with_suffix(path.suffix + ".tmp")
        # Sorted keys: the same prompt is the same bytes, however it was assembled.
        text = json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True)
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)  # atomic: a crash never leaves a half-written prompt
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AmplifiedPrompt:
        """Read a prompt saved by :meth:`save`, validating every field.

        Raises:
            PromptFileError: the file is missing, not JSON, of another format or
                version, or has invalid fields.
        """
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PromptFileError(f"{path}: cannot read an amplified prompt ({exc})") from exc
        if not isinstance(raw, dict) or raw.get("format") != PROMPT_FILE_FORMAT:
            raise PromptFileError(f"{path}: not a langchain-selfamplify amplified prompt file")
        if raw.get("version") != PROMPT_FILE_VERSION:
            raise PromptFileError(f"{path}: prompt file version {raw.get('version')!r}; this "
                                  f"release reads version {PROMPT_FILE_VERSION}")
        try:
            record = PromptFile.model_validate(raw)
        except ValidationError as exc:
            raise PromptFileError(f"{path}: invalid amplified prompt: {exc}") from exc
        return cls(examples=record.examples, system_prompt=record.system_prompt,
                   style=record.style, answer_format=record.answer_format,
                   metadata=record.metadata)


class PromptFile(StrictModel):
    """On-disk layout of a saved :class:`AmplifiedPrompt`."""

    format: Literal["langchain-selfamplify/amplified-prompt"]
    """File type marker."""
    version: int
    """Layout version."""
    examples: list[MCQExample]
    """The demonstrations, with their rationales."""
    system_prompt: str | None = None
    """Optional system message."""
    style: Literal["chat", "text"] = "chat"
    """Prompt style."""
    answer_format: AnswerFormat = "letter"
    """Answer format (files written before it existed are letter prompts)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Provenance."""

