"""The registered datasets: the five of the Self-AMPLIFY paper and the bundled demo set."""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_selfamplify.errors import UnknownNameError

DATA_DIR_ENV = "SELFAMPLIFY_DATA_DIR"
"""Environment variable naming a local directory laid out like ``shared/datasets``."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a registered dataset lives, on the Hub and on disk."""

    name: str
    """Registered name, e.g. ``"arc_challenge"``."""
    hf_path: str | None
    """Hugging Face dataset id users load it by (``None`` for bundled data)."""
    hf_config: str | None
    """Hugging Face config name, if the dataset has several."""
    hf_schema: str
    """Row schema of the Hub version (a key of ``formats.SCHEMAS``)."""
    local_files: dict[str, str] = field(default_factory=dict)
    """Split -> file path relative to a local data directory."""
    description: str = ""
    """One line for ``--help`` and error messages."""


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "arc_challenge", "allenai/ai2_arc", "ARC-Challenge", "hf_choices",
            {"train": "arc_challenge/ARC-Challenge-Train.csv",
             "test": "arc_challenge/ARC-Challenge-Test.csv"},
            "AI2 Reasoning Challenge, grade-school science (4 options)",
        ),
        DatasetSpec(
            "commonsense_qa", "tau/commonsense_qa", None, "hf_choices",
            {"validation": "commonsense_qa/validation.jsonl"},
            "CommonsenseQA (5 options); its test split has no answers",
        ),
        DatasetSpec(
            "social_iqa", "allenai/social_i_qa", None, "social_iqa",
            {"all": "bigbench/social_iqa.json"},
            "Social IQa, social commonsense (3 options); local copy is BIG-bench's",
        ),
        DatasetSpec(
            "snarks", "tasksource/bigbench", "snarks", "tasksource_bigbench",
            {"all": "bigbench/snarks.json"},
            "BIG-bench snarks: which statement is sarcastic (2 options)",
        ),
        DatasetSpec(
            "causal_judgment", "tasksource/bigbench", "causal_judgment", "tasksource_bigbench",
            {"all": "bigbench/causal_judgment.json"},
            "BIG-bench causal judgment (Yes/No)",
        ),
        DatasetSpec(
            "demo", None, None, "hf_choices",
            {"all": "demo_mcq.jsonl", "pool": "demo_mcq.jsonl", "train": "demo_mcq.jsonl",
             "test": "demo_mcq.jsonl"},
            "Bundled demo set: 128 four-option commonsense and science questions",
        ),
    ]
}
"""Registered dataset names -> specs."""


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of a registered dataset; :class:`UnknownNameError` lists the names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownNameError("dataset", name, DATASETS) from None
