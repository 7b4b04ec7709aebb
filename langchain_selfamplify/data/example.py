"""The multiple-choice example every part of the pipeline passes around."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from langchain_selfamplify.strict import StrictModel


class MCQExample(StrictModel):
    """One multiple-choice question with its ordered choices and gold answer.

    Example:
        .. code-block:: python

            ex = MCQExample(
                id="q1",
                question="Which gas do plants absorb?",
                choices={"A": "oxygen", "B": "carbon dioxide", "C": "helium", "D": "neon"},
                answer="B",
            )
            print(ex.render())
    """

    model_config = ConfigDict(frozen=True)

    id: str
    """Stable identifier, unique within a dataset."""
    question: str
    """The question stem, without the answer options."""
    choices: dict[str, str]
    """Answer options in display order, label -> text (e.g. ``{"A": "...", "B": "..."}``)."""
    answer: str
    """Label of the gold answer; must be one of ``choices``."""
    rationale: str | None = None
    """Optional rationale (post hoc explanation) shown before the answer in a prompt."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form provenance (source file, row number, method that wrote the rationale...)."""

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, value: str) -> str:
        if not value or not value.strip():
            raise ValueError("question is empty or whitespace")
        return value.strip()

    @field_validator("choices")
    @classmethod
    def _at_least_two_choices(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) < 2:
            raise ValueError(f"needs at least two choices, got {len(value)}")
        cleaned: dict[str, str] = {}
        for label, text in value.items():
            label = str(label).strip()
            if not label:
                raise ValueError("a choice label is empty")
            if text is None or not str(text).strip():
                raise ValueError(f"choice ({label}) has empty text")
            cleaned[label] = str(text).strip()
        return cleaned

    @model_validator(mode="after")
    def _answer_among_choices(self) -> MCQExample:
        if self.answer not in self.choices:
            raise ValueError(
                f"answer {self.answer!r} is not among the choice labels {list(self.choices)}"
            )
        return self

    @property
    def labels(self) -> list[str]:
        """The choice labels in display order."""
        return list(self.choices)

    @property
    def answer_text(self) -> str:
        """Text of the gold choice."""
        return self.choices[self.answer]

    def render(self) -> str:
        """The question followed by one ``(X) text`` line per choice.

        This exact text is what the model sees, and what attribution rationales
        attribute over.
        """
        options = "\n".join(f"({label}) {text}" for label, text in self.choices.items())
        return f"{self.question}\n{options}"

    def with_rationale(self, rationale: str | None, **metadata: Any) -> MCQExample:
        """A copy of this example carrying ``rationale`` (and extra metadata)."""
        return self.model_copy(
            update={"rationale": rationale, "metadata": {**self.metadata, **metadata}}
        )
