"""The one place that decides how a question and a demonstration are laid out (the
answer prefixes and stop strings themselves are in :mod:`langchain_selfamplify.wording`).

Demonstrations and test questions share these functions, so the text a model sees
after a demonstration's question is exactly the prefix it continues at test time
(a fault of the reference implementation was that the two differed).
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.data.formats import split_inline_options
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.models.chat_format import Message, Prompt
from langchain_selfamplify.wording import ANSWER_PREFIX, CLOZE_PREFIX, AnswerFormat, answer_prefix
from langchain_selfamplify.wording import RATIONALE_STOP as RATIONALE_STOP  # its first home


def answer_line(example: MCQExample, answer_format: AnswerFormat = "letter") -> str:
    """A demonstration's last line: ``"The answer is (B)."`` or, in the cloze format,
    ``"The answer is: carbon dioxide."``."""
    if answer_format == "cloze":
        return f"{CLOZE_PREFIX} {example.answer_text}."
    return f"{ANSWER_PREFIX}{example.answer})."


def question_text(question: str | MCQExample) -> str:
    """The user-turn text of a question.

    An :class:`MCQExample` is rendered; a string with inline ``(A) ... (B) ...``
    options is laid out the same way (one option per line), so user questions look
    like the demonstrations. Other strings are used as they are.
    """
    if isinstance(question, MCQExample):
        return question.render()
    parsed = split_inline_options(question)
    if parsed is None:
        return question.strip()
    stem, choices = parsed
    options = "\n".join(f"({label}) {text}" for label, text in choices.items())
    return f"{stem}\n{options}" if stem else options


def zero_shot_prompt(backend: ModelBackend, question: str | MCQExample,
                     assistant_prefix: str = ANSWER_PREFIX) -> Prompt:
    """The question alone in a user turn, the answer turn opened with ``assistant_prefix``
    (by default ``"The answer is ("``): how the pool is scored and examples explained."""
    return backend.format_prompt([{"role": "user", "content": question_text(question)}],
                                 assistant_prefix)


def answer_turn(example: MCQExample, answer_format: AnswerFormat = "letter") -> str:
    """The assistant turn of a demonstration: its rationale, then the answer line."""
    answer = answer_line(example, answer_format)
    if example.rationale:
        return f"{example.rationale.strip()}\n{answer}"
    return answer


def template_example(example: MCQExample,
                     answer_format: AnswerFormat = "letter") -> dict[str, str]:
    """A demonstration as the ``question``/``answer`` dict LangChain few-shot templates fill."""
    return {"question": question_text(example), "answer": answer_turn(example, answer_format)}


def escape_braces(text: str) -> str:
    """``text`` with ``{`` and ``}`` doubled, for templates that format it again."""
    return text.replace("{", "{{").replace("}", "}}")


def few_shot_messages(
    demonstrations: Sequence[MCQExample],
    question: str | MCQExample,
    system_prompt: str | None = None,
    answer_format: AnswerFormat = "letter",
) -> list[Message]:
    """System message (optional), one user/assistant pair per demonstration, the question."""
    messages: list[Message] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    for demo in demonstrations:
        messages.append({"role": "user", "content": demo.render()})
        messages.append({"role": "assistant", "content": answer_turn(demo, answer_format)})
    messages.append({"role": "user", "content": question_text(question)})
    return messages


def test_time_prefix(demonstrations: Sequence[MCQExample],
                     answer_format: AnswerFormat = "letter") -> str:
    """What the assistant turn starts with at test time.

    With rationales the model writes its own rationale first, so the turn starts
    empty; without (IO prompting) it starts with the format's answer prefix.
    """
    return "" if any(d.rationale for d in demonstrations) else answer_prefix(answer_format)
