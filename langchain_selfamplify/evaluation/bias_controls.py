"""The label-bias controls' arithmetic: test-time choice rotation and contextual
calibration (Zhao et al., 2021). :func:`~.predict.answer_questions` runs them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from langchain_selfamplify.data.example import MCQExample


def rotate_choices(question: MCQExample, shift: int) -> MCQExample:
    """``question`` with its choice texts moved ``shift`` places down the labels
    (cyclically); the labels keep their order and the answer follows its text."""
    labels, texts = question.labels, list(question.choices.values())
    k = len(labels)
    rotated = {labels[j]: texts[(j + shift) % k] for j in range(k)}
    answer = labels[(labels.index(question.answer) - shift) % k]
    return question.model_copy(update={"choices": rotated, "answer": answer})


def content_free_question(labels: Sequence[str]) -> MCQExample:
    """The content-free input of contextual calibration: ``"N/A"`` everywhere."""
    return MCQExample(id="__content_free__", question="N/A",
                      choices=dict.fromkeys(labels, "N/A"), answer=labels[0])


def mean_over_rotations(question: MCQExample, runs: Sequence[Mapping[str, float]]
                        ) -> dict[str, float]:
    """Each choice's mean probability over the rotations of ``question``.

    Args:
        question: The question in its original order.
        runs: Label probabilities of each rotation, ``runs[shift]`` from
            ``rotate_choices(question, shift)``, for every shift of its choices.
    """
    k = len(question.choices)
    mean = dict.fromkeys(question.labels, 0.0)
    for shift in range(k):
        for position, prob in enumerate(runs[shift].values()):
            mean[question.labels[(position + shift) % k]] += prob / k
    return mean


def calibrated(probs: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """``probs`` divided by the content-free ``reference`` probabilities, renormalised."""
    weights = {label: p / max(reference[label], 1e-12) for label, p in probs.items()}
    total = sum(weights.values())
    return {label: w / total for label, w in weights.items()}
