"""Input and output schemas of the runnables (``selector | rationales | prompt``).

LangChain reads them through ``runnable.input_schema`` / ``output_schema`` (and LangServe,
tracing UIs and ``chain.get_input_jsonschema()`` show them). Extra keys of a chain's
input (a chat history, say) pass through, so they are allowed.
"""

from __future__ import annotations

from typing import Union

from langchain_core.prompt_values import ChatPromptValueConcrete, StringPromptValue
from pydantic import BaseModel, ConfigDict, RootModel

from langchain_selfamplify.data.example import MCQExample


class QuestionInput(BaseModel):
    """A question to answer: the input of the selector and of a whole amplified chain."""

    model_config = ConfigDict(extra="allow")

    question: str | MCQExample
    """The question, with inline options ("... (A) ... (B) ...") or as an MCQExample."""


class DemonstrationsOutput(QuestionInput):
    """The question with the demonstrations chosen (and, downstream, explained) for it."""

    examples: list[MCQExample]
    """The demonstrations, in prompt order."""


class PromptInput(QuestionInput):
    """The prompt's input: the question, and demonstrations (else the prompt's own)."""

    examples: list[MCQExample] | None = None
    """Demonstrations to lay out; ``None`` uses the prompt's fixed examples."""


ExplainInput = RootModel[Union[list[MCQExample], DemonstrationsOutput, MCQExample]]  # noqa: UP007
"""The generator's input: examples, a selector's output, or one example."""

PromptOutput = RootModel[Union[ChatPromptValueConcrete, StringPromptValue]]  # noqa: UP007
"""The prompt's output: chat messages (``style="chat"``) or one string (``"text"``)."""
