"""Evaluation: answer parsing, accuracy with intervals, paired tests, label-bias
diagnostics, the IO baseline."""

from langchain_selfamplify.evaluation.diagnostics import CellDiagnostics, cell_diagnostics
from langchain_selfamplify.evaluation.faithfulness import (
    ExampleFaithfulness,
    FaithfulnessReport,
    faithfulness_report,
)
from langchain_selfamplify.evaluation.metrics import Accuracy, accuracy, clustered_accuracy
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
    holm_significant,
    mcnemar_exact,
    paired_bootstrap,
    paired_permutation_p,
    two_level_bootstrap,
)

__all__ = [
    "Accuracy",
    "CellDiagnostics",
    "PairedComparison",
    "cell_diagnostics",
    "compare_across_seeds",
    "compare_paired",
    "clustered_accuracy",
    "holm_significant",
    "mcnemar_exact",
    "paired_bootstrap",
    "paired_permutation_p",
    "two_level_bootstrap",
    "EvalResult",
    "ExampleFaithfulness",
    "FaithfulnessReport",
    "Prediction",
    "accuracy",
    "answer_questions",
    "evaluate_prompt",
    "faithfulness_report",
]
