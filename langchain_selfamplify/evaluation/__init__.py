"""Evaluation: answer parsing, accuracy with intervals, the IO baseline."""

from langchain_selfamplify.evaluation.faithfulness import (
    ExampleFaithfulness,
    FaithfulnessReport,
    faithfulness_report,
)
from langchain_selfamplify.evaluation.metrics import Accuracy, accuracy
from langchain_selfamplify.evaluation.parsing import parse_answer
from langchain_selfamplify.evaluation.predict import (
    EvalResult,
    Prediction,
    answer_questions,
    evaluate_prompt,
    io_prompt,
)

__all__ = [
    "Accuracy",
    "EvalResult",
    "ExampleFaithfulness",
    "FaithfulnessReport",
    "Prediction",
    "accuracy",
    "answer_questions",
    "evaluate_prompt",
    "faithfulness_report",
    "io_prompt",
    "parse_answer",
]
