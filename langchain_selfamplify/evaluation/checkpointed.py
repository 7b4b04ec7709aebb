"""Answering with a checkpoint: ``selfamplify run``'s resumable answers, whole chunks
at a time, so a resumed run is byte-identical to an uninterrupted one."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from langchain_selfamplify.checkpoint import append_jsonl, read_jsonl
from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import accepts_renamed_arguments
from langchain_selfamplify.evaluation.predict import Prediction, answer_questions
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt

__all__ = ["answer_with_checkpoint"]


@accepts_renamed_arguments
def answer_with_checkpoint(
    backend: ModelBackend,
    prompt: AmplifiedPrompt,
    questions: Sequence[MCQExample],
    path: str | os.PathLike[str],
    *,
    chunk_size: int = 64,
    desc: str | None = None,
    **kwargs: Any,
) -> list[Prediction]:
    """:func:`answer_questions`, appending each chunk's predictions to a JSONL checkpoint.

    Whole chunks, so a resumed run answers the same groups of questions together as an
    uninterrupted one and its results are byte-identical (``selfamplify run``'s
    guarantee); the grid, whose cells run for hours, writes each answer as it is read
    instead (``grid.answer_cell``).

    Questions already in ``path`` (from an interrupted run) are not answered again.

    Args:
        backend: The model.
        prompt: The few-shot prompt.
        questions: Test questions.
        path: The checkpoint file.
        chunk_size: Questions per write. Defaults to 64 (the questions of one write
            are decoded together).
        desc: Progress-bar label.
        **kwargs: Passed to :func:`answer_questions`.
    """
    from tqdm.auto import tqdm

    wanted = {q.id for q in questions}
    done: dict[str, Prediction] = {}
    for record in read_jsonl(path):
        try:
            prediction = Prediction.model_validate(record)
        except ValidationError:
            continue
        if prediction.id in wanted:
            done.setdefault(prediction.id, prediction)
    todo = [q for q in questions if q.id not in done]
    chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
    for chunk in tqdm(chunks, desc=desc, disable=not (desc and backend.show_progress), leave=False):
        predictions = answer_questions(backend, prompt, chunk, **kwargs)
        append_jsonl(path, [p.model_dump() for p in predictions])
        done.update((p.id, p) for p in predictions)
    return [done[q.id] for q in questions]
