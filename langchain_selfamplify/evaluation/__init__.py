"""Evaluation: answer parsing, accuracy with intervals, paired tests, label-bias
diagnostics, the IO baseline."""

from langchain_selfamplify.evaluation.diagnostics import CellDiagnostics, cell_diagnostics
from langchain_selfamplify.evaluation.faithfulness import (
    ExampleFaithfulness,
    FaithfulnessReport,
    faithfulness_report,
)
from langchain_selfamplify.evaluation.metrics import Accuracy, accuracy
from langchain_selfamplify.evaluation.predict import (
    EvalResult,
    Prediction,
    answer_questions,
    evaluate_prompt,
)
from langchain_selfamplify.evaluation.statistics import (
    PairedComparison,
    compare_across_seeds,
    compare_paired,
    mcnemar_exact,
    paired_bootstrap,
)

__all__ = [
    "Accuracy",
    "CellDiagnostics",
    "PairedComparison",
    "cell_diagnostics",
    "compare_across_seeds",
    "compare_paired",
    "mcnemar_exact",
    "paired_bootstrap",
    "EvalResult",
    "ExampleFaithfulness",
    "FaithfulnessReport",
    "Prediction",
    "accuracy",
    "answer_questions",
    "evaluate_prompt",
    "faithfulness_report",
]
