"""The five paper datasets load from the local copies in ../shared/datasets."""

from __future__ import annotations

import pytest

from langchain_selfamplify import load_dataset
from tests.conftest import SHARED_DATASETS

pytestmark = pytest.mark.skipif(not SHARED_DATASETS.is_dir(),
                                reason="../shared/datasets is not beside the project")


@pytest.mark.parametrize(
    ("name", "split", "rows", "n_choices"),
    [
        ("arc_challenge", "train", 1119, {3, 4, 5}),
        ("arc_challenge", "test", 1172, {3, 4, 5}),
        ("commonsense_qa", "validation", 1221, {5}),
        ("snarks", "all", 181, {2}),
        ("causal_judgment", "all", 190, {2}),
        ("social_iqa", "all", 1954, {2, 3}),  # 4 source rows list two choices
    ],
)
def test_registered_dataset_loads_every_row(name, split, rows, n_choices):
    examples = load_dataset(name, split=split, data_dir=SHARED_DATASETS)
    assert len(examples) == rows
    assert {len(e.choices) for e in examples} <= n_choices
    assert len({e.id for e in examples}) == rows
