"""Label-bias diagnostics of one evaluated cell.

A small model often answers one label whatever the question. Its accuracy then
measures how often that label is gold, and a prompt whose demonstrations all answer
(A) can "win" by copying. Every cell of a grid therefore reports what it would take
to see that: the share of its most predicted label, the gold-label distribution of
the test questions, the label distribution of its demonstrations, and the accuracy of
always answering the demonstrations' majority label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_selfamplify.strict import StrictModel

TOP_LABEL_FLAG = 0.8
"""A cell whose most predicted label covers more than this share is flagged."""


class CellDiagnostics(StrictModel):
    """What a cell's accuracy owes to label bias."""

    n: int
    """Test questions answered."""
    top_label: str | None
    """The label predicted most often (``None`` when no answer parsed)."""
    top_label_share: float
    """Its share of the predictions."""
    predicted_distribution: dict[str, int]
    """Predicted label -> count (unparsed answers under ``"none"``)."""
    gold_distribution: dict[str, int]
    """Gold label -> count over the test questions."""
    demo_label_distribution: dict[str, int]
    """Gold label -> count over the prompt's demonstrations."""
    demo_majority_label: str | None
    """The demonstrations' most frequent label (first in label order on ties)."""
    demo_majority_accuracy: float | None
    """Accuracy of always answering :attr:`demo_majority_label`."""
    chance: float
    """Expected accuracy of a uniform random guess (mean of 1 / choices)."""
    truncation_rate: float | None
    """Share of test-time rationales cut by their token cap (``None`` without rationales)."""

    @property
    def flagged(self) -> bool:
        """Whether the top label covers more than :data:`TOP_LABEL_FLAG` of predictions."""
        return self.top_label_share > TOP_LABEL_FLAG


def cell_diagnostics(predictions: Sequence[Mapping[str, Any]],
                     demo_labels: Sequence[str]) -> CellDiagnostics:
    """Diagnostics of one cell from its prediction records and demonstration labels.

    Args:
        predictions: Records with ``parsed``, ``gold``, ``n_choices`` and, where a
            rationale was written, ``raw_output`` and ``truncated``.
        demo_labels: Gold labels of the prompt's demonstrations, in order.

    Raises:
        ValueError: no predictions.
    """
    if not predictions:
        raise ValueError("a cell needs predictions to be diagnosed")
    predicted = Counter(str(p["parsed"]) if p["parsed"] is not None else "none"
                        for p in predictions)
    top_label, top_count = max(sorted(predicted.items()), key=lambda item: item[1])
    gold = Counter(str(p["gold"]) for p in predictions)
    demos = Counter(demo_labels)
    majority = max(sorted(demos.items()), key=lambda item: item[1])[0] if demos else None
    with_rationale = [p for p in predictions if p.get("raw_output")]
    return CellDiagnostics(
        n=len(predictions),
        top_label=None if top_label == "none" else top_label,
        top_label_share=top_count / len(predictions),
        predicted_distribution=dict(sorted(predicted.items())),
        gold_distribution=dict(sorted(gold.items())),
        demo_label_distribution=dict(sorted(demos.items())),
        demo_majority_label=majority,
        demo_majority_accuracy=(gold[majority] / len(predictions)) if majority else None,
        chance=sum(1 / p["n_choices"] for p in predictions) / len(predictions),
        truncation_rate=(sum(bool(p.get("truncated")) for p in with_rationale)
                         / len(with_rationale)) if with_rationale else None,
    )
