"""langchain-selfamplify: Self-AMPLIFY (Bhan et al., EMNLP 2024) as LangChain components.

Small language models amplify their own few-shot prompts: select demonstrations by
the model's predictions, explain them post hoc with the same model, and build the
few-shot prompt from (question, rationale, answer)::

    chain = selector | rationales | AmplifiedPrompt() | llm
"""

from langchain_selfamplify.data import (
    ColumnMap,
    MCQExample,
    load_dataset,
    load_demo_set,
    train_test_split,
)
from langchain_selfamplify.errors import (
    ChatTemplateError,
    ContextLengthError,
    DatasetError,
    ModelLoadError,
    PromptFileError,
    RationaleError,
    SelectionError,
    SelfAmplifyError,
    UnknownNameError,
)
from langchain_selfamplify.evaluation import (
    EvalResult,
    accuracy,
    evaluate_prompt,
    io_prompt,
    parse_answer,
)
from langchain_selfamplify.models import SLM, ChoiceScores
from langchain_selfamplify.prompting import AmplifiedPrompt
from langchain_selfamplify.rationales import METHODS, RationaleGenerator, RationaleMethod
from langchain_selfamplify.selection import STRATEGIES, SelfAmplifySelector

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "SLM",
    "STRATEGIES",
    "AmplifiedPrompt",
    "ChatTemplateError",
    "ChoiceScores",
    "ColumnMap",
    "ContextLengthError",
    "DatasetError",
    "EvalResult",
    "MCQExample",
    "ModelLoadError",
    "PromptFileError",
    "RationaleError",
    "RationaleGenerator",
    "RationaleMethod",
    "SelectionError",
    "SelfAmplifyError",
    "SelfAmplifySelector",
    "UnknownNameError",
    "accuracy",
    "evaluate_prompt",
    "io_prompt",
    "load_dataset",
    "load_demo_set",
    "parse_answer",
    "train_test_split",
]
