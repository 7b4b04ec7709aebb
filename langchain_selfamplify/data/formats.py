"""Row schemas: turning one raw dataset row into an :class:`MCQExample`.

Each public dataset stores multiple-choice questions its own way. One function per
schema converts a row; :func:`row_to_example` picks it by name and turns any
validation problem into a :class:`DatasetError` that names the source and row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ConfigDict, ValidationError

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import DatasetError, UnknownNameError
from langchain_selfamplify.strict import StrictModel

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_INLINE_OPTION = re.compile(r"\(([A-Za-z]|[1-9])\)\s*")
# AI2 files number the options of a few questions 1-4; we letter them like the rest.
_NUMERIC_TO_LETTER = {str(i + 1): LETTERS[i] for i in range(9)}


class ColumnMap(StrictModel):
    """Where a generic CSV/JSONL file keeps each field of a question.

    Example:
        ``ColumnMap(question="q", choices=["opt1", "opt2", "opt3"], answer="gold")``
        reads rows like ``{"q": ..., "opt1": ..., "opt2": ..., "opt3": ..., "gold": "B"}``.
    """

    model_config = ConfigDict(frozen=True)

    question: str = "question"
    """Column holding the question stem (inline ``(A) ...`` options are split off)."""
    choices: str | list[str] = "choices"
    """One column holding a list/dict of choices, or several columns, one per choice
    (lettered A, B, ... in the given order)."""
    answer: str = "answer"
    """Column holding the gold answer: a label, a 0-based index or the choice text."""
    id: str | None = "id"
    """Column holding the row id; row numbers are used when absent."""


def split_inline_options(text: str) -> tuple[str, dict[str, str]] | None:
    """Split ``"stem (A) x (B) y"`` into the stem and ``{"A": "x", "B": "y"}``.

    Labels must run consecutively from ``A``/``a``/``1``; numeric and lower-case
    labels are turned into upper-case letters. Returns ``None`` when the text has no
    such run of at least two options.
    """
    matches = list(_INLINE_OPTION.finditer(text))
    for start, first in enumerate(matches):
        if first.group(1) not in ("A", "a", "1"):
            continue
        run = [first]
        for match in matches[start + 1 :]:
            if _label_index(match.group(1)) == _label_index(run[-1].group(1)) + 1:
                run.append(match)
        if len(run) < 2:
            continue
        choices: dict[str, str] = {}
        for i, match in enumerate(run):
            end = run[i + 1].start() if i + 1 < len(run) else len(text)
            choices[LETTERS[i]] = text[match.end() : end].strip()
        return text[: first.start()].strip(), choices
    return None


def _label_index(label: str) -> int:
    if label.isdigit():
        return int(label) - 1
    return LETTERS.index(label.upper())


def normalise_label(label: Any) -> str:
    """Upper-case letter for a label given as ``"b"``, ``"(B)"`` or ``"2"``."""
    text = str(label).strip().strip("()").strip()
    if text in _NUMERIC_TO_LETTER:
        return _NUMERIC_TO_LETTER[text]
    return text.upper()


def _resolve_answer(answer: Any, choices: Mapping[str, str]) -> str:
    """Map an answer given as label, 1-based numeric label, index or text to a label."""
    # Checked here, before the text comparison below, so a malformed choice is reported
    # as a dataset problem rather than crashing on a non-string.
    for key, text in choices.items():
        if not isinstance(text, str):
            raise ValueError(f"choice {key!r} must be text, got {type(text).__name__}")
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise ValueError("the answer is missing")
    if isinstance(answer, int) and not isinstance(answer, bool):
        if 0 <= answer < len(choices):
            return list(choices)[answer]
        raise ValueError(f"answer index {answer} is out of range for {len(choices)} choices")
    label = normalise_label(answer)
    if label in choices:
        return label
    for key, text in choices.items():
        if str(answer).strip().lower() == text.lower():
            return key
    raise ValueError(f"answer {answer!r} is not among the choices {list(choices)}")


def _arc_csv(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """AI2's ARC CSV: options inline in ``question``, gold in ``AnswerKey``."""
    parsed = split_inline_options(str(row.get("question") or ""))
    if parsed is None:
        raise ValueError("no inline '(A) ... (B) ...' options in the question")
    stem, choices = parsed
    return {
        "id": str(row.get("questionID") or index),
        "question": stem,
        "choices": choices,
        "answer": _resolve_answer(row.get("AnswerKey"), choices),
    }


def _hf_choices(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Hugging Face schema of ARC and CommonsenseQA: ``choices: {label, text}``."""
    raw = row.get("choices")
    if not isinstance(raw, Mapping) or "label" not in raw or "text" not in raw:
        raise ValueError("'choices' must be a mapping with 'label' and 'text' lists")
    labels = [normalise_label(label) for label in raw["label"]]
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate choice labels {list(raw['label'])}")
    if len(labels) != len(raw["text"]):
        raise ValueError("'choices.label' and 'choices.text' differ in length")
    choices = dict(zip(labels, raw["text"], strict=True))
    return {
        "id": str(row.get("id") or index),
        "question": row.get("question") or "",
        "choices": choices,
        "answer": _resolve_answer(row.get("answerKey"), choices),
    }


def _bigbench(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """BIG-bench ``task.json`` example: ``input`` and ``target_scores``."""
    scores = row.get("target_scores")
    if not isinstance(scores, Mapping) or len(scores) < 2:
        raise ValueError("'target_scores' must map at least two choices to scores")
    texts = list(scores)
    values = [float(v) for v in scores.values()]
    if max(values) <= 0:
        raise ValueError("no choice in 'target_scores' has a positive score")
    best = values.index(max(values))
    question = str(row.get("input") or "")
    # Snarks-style tasks already list "(a) ... (b) ..." inside the input.
    parsed = split_inline_options(question)
    if parsed is not None and all(_INLINE_OPTION.fullmatch(t + " ") for t in texts):
        stem, choices = parsed
        if len(choices) == len(texts):
            return {
                "id": str(row.get("idx", index)),
                "question": stem,
                "choices": choices,
                "answer": normalise_label(texts[best]),
            }
    choices = {LETTERS[i]: text for i, text in enumerate(texts)}
    return {
        "id": str(row.get("idx", index)),
        "question": question,
        "choices": choices,
        "answer": LETTERS[best],
    }


def _tasksource_bigbench(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """``tasksource/bigbench`` on the Hub: ``multiple_choice_targets`` and ``..._scores``."""
    return _bigbench(
        {
            "input": row.get("inputs"),
            "idx": row.get("idx", index),
            "target_scores": dict(
                zip(row.get("multiple_choice_targets") or [],
                    row.get("multiple_choice_scores") or [], strict=False)
            ),
        },
        index,
    )


def _social_iqa(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """``allenai/social_i_qa`` on the Hub: context, question, answerA-C, label 1-3."""
    choices = {label: str(row.get(f"answer{label}") or "") for label in "ABC"}
    question = f"{row.get('context') or ''} {row.get('question') or ''}".strip()
    return {
        "id": str(row.get("id", index)),
        "question": question,
        "choices": choices,
        "answer": _resolve_answer(row.get("label"), choices),
    }


def _columns(row: Mapping[str, Any], index: int, columns: ColumnMap) -> dict[str, Any]:
    """A generic row read through a :class:`ColumnMap`."""
    missing = [c for c in _mapped_columns(columns) if c not in row]
    if missing:
        raise ValueError(f"missing column(s) {missing}; the row has {sorted(row)}")
    question = str(row[columns.question] or "")
    if isinstance(columns.choices, list):
        choices = {LETTERS[i]: row[c] for i, c in enumerate(columns.choices)}
    else:
        raw = row[columns.choices]
        if isinstance(raw, Mapping) and "label" in raw and "text" in raw:
            return _hf_choices({**row, "choices": raw, "answerKey": row[columns.answer],
                                "question": question}, index)
        if isinstance(raw, Mapping):
            choices = {normalise_label(k): v for k, v in raw.items()}
        elif isinstance(raw, list):
            choices = {LETTERS[i]: v for i, v in enumerate(raw)}
        elif raw is None or raw == "":
            parsed = split_inline_options(question)
            if parsed is None:
                raise ValueError(f"column {columns.choices!r} is empty and the question "
                                 "has no inline options")
            question, choices = parsed
        else:
            raise ValueError(f"column {columns.choices!r} must hold a list or a mapping")
    row_id = row.get(columns.id) if columns.id else None
    return {
        "id": str(row_id if row_id not in (None, "") else index),
        "question": question,
        "choices": choices,
        "answer": _resolve_answer(row[columns.answer], choices),
    }


def _mapped_columns(columns: ColumnMap) -> list[str]:
    names = [columns.question, columns.answer]
    names += columns.choices if isinstance(columns.choices, list) else [columns.choices]
    return names


SCHEMAS: dict[str, Callable[[Mapping[str, Any], int], dict[str, Any]]] = {
    "arc_csv": _arc_csv,
    "hf_choices": _hf_choices,
    "bigbench": _bigbench,
    "tasksource_bigbench": _tasksource_bigbench,
    "social_iqa": _social_iqa,
}
"""Named row schemas; ``"columns"`` (generic, with a :class:`ColumnMap`) is handled apart."""


def row_to_example(
    row: Mapping[str, Any],
    index: int,
    schema: str,
    source: str,
    columns: ColumnMap | None = None,
    location: str | None = None,
) -> MCQExample:
    """Convert one raw row, raising :class:`DatasetError` naming ``source`` and where the
    row is.

    Args:
        row: The raw row (a dict from CSV, JSON or a Hugging Face dataset).
        index: 0-based row number, used as a fallback id.
        schema: A key of :data:`SCHEMAS`, or ``"columns"``.
        source: File path or dataset id, for error messages.
        columns: Column mapping, required for the ``"columns"`` schema.
        location: Where the row is, as an editor shows it (``"line 3"``, ``"example
            index 0"``). Defaults to ``"row index <index>"``.
    """
    where = f"{source}, {location or f'row index {index}'}"
    if not isinstance(row, Mapping):
        raise DatasetError(f"{where}: expected an object, got {type(row).__name__}")
    try:
        if schema == "columns":
            fields = _columns(row, index, columns or ColumnMap())
        elif schema in SCHEMAS:
            fields = SCHEMAS[schema](row, index)
        else:
            raise UnknownNameError("row schema", schema, [*SCHEMAS, "columns"])
        return MCQExample(**fields, metadata={"source": source, "row": index})
    except UnknownNameError:
        raise
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'row'}: {err['msg']}"
            for err in exc.errors()
        )
        raise DatasetError(f"{where}: {problems}") from exc
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise DatasetError(f"{where}: {exc}") from exc


def detect_schema(row: Mapping[str, Any]) -> str:
    """Guess the schema of a row from its keys (``"columns"`` when nothing fits)."""
    keys = set(row)
    if {"AnswerKey", "question"} <= keys:
        return "arc_csv"
    if {"choices", "answerKey"} <= keys:
        return "hf_choices"
    if "target_scores" in keys:
        return "bigbench"
    if {"multiple_choice_targets", "multiple_choice_scores"} <= keys:
        return "tasksource_bigbench"
    if {"answerA", "answerB", "answerC", "label"} <= keys:
        return "social_iqa"
    return "columns"
