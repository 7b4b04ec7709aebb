"""langchain-selfamplify: Self-AMPLIFY (Bhan et al., EMNLP 2024) as LangChain components.

Small language models amplify their own few-shot prompts: select demonstrations by
the model's predictions, explain them post hoc with the same model, and build the
few-shot prompt from (question, rationale, answer)::

    chain = selector | rationales | AmplifiedPrompt() | llm
"""

from langchain_selfamplify.baselines import Amplify, AutoCoT, io_prompt
from langchain_selfamplify.data import (
    ColumnMap,
    MCQExample,
    load_dataset,
    load_demo_set,
    train_test_split,
)
from langchain_selfamplify.errors import (
    BackendCapabilityError,
    BackendConnectionError,
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
    FaithfulnessReport,
    PairedComparison,
    accuracy,
    compare_across_seeds,
    compare_paired,
    evaluate_prompt,
    faithfulness_report,
)
from langchain_selfamplify.models import (
    SLM,
    Capabilities,
    ChatModelBackend,
    ChoiceScores,
    GenerationOffload,
    ModelBackend,
    OpenAICompatibleBackend,
    load_backend,
)
from langchain_selfamplify.prompting import AmplifiedPrompt
from langchain_selfamplify.prompting.parsing import parse_answer
from langchain_selfamplify.rationales import (
    METHODS,
    AttributionMethod,
    RationaleGenerator,
    RationaleMethod,
    WordAttribution,
    register_method,
)
from langchain_selfamplify.selection import STRATEGIES, SelfAmplifySelector, balance_labels
from langchain_selfamplify.visualize import heatmap_figure, heatmap_html, save_heatmap_html

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "SLM",
    "STRATEGIES",
    "Amplify",
    "AmplifiedPrompt",
    "AttributionMethod",
    "AutoCoT",
    "BackendCapabilityError",
    "BackendConnectionError",
    "Capabilities",
    "ChatModelBackend",
    "ChatTemplateError",
    "ChoiceScores",
    "ColumnMap",
    "ContextLengthError",
    "DatasetError",
    "EvalResult",
    "FaithfulnessReport",
    "MCQExample",
    "ModelBackend",
    "ModelLoadError",
    "GenerationOffload",
    "OpenAICompatibleBackend",
    "PairedComparison",
    "PromptFileError",
    "RationaleError",
    "RationaleGenerator",
    "RationaleMethod",
    "SelectionError",
    "SelfAmplifyError",
    "SelfAmplifySelector",
    "UnknownNameError",
    "WordAttribution",
    "accuracy",
    "balance_labels",
    "compare_across_seeds",
    "compare_paired",
    "evaluate_prompt",
    "faithfulness_report",
    "heatmap_figure",
    "heatmap_html",
    "io_prompt",
    "load_backend",
    "load_dataset",
    "load_demo_set",
    "parse_answer",
    "register_method",
    "save_heatmap_html",
    "train_test_split",
]
