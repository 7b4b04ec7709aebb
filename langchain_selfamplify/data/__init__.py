"""Data: the :class:`MCQExample` model, dataset loaders and the registry."""

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.data.formats import ColumnMap, split_inline_options
from langchain_selfamplify.data.loaders import (
    load_dataset,
    load_demo_set,
    load_file,
    load_pool_and_test,
    train_test_split,
)
from langchain_selfamplify.data.registry import DATASETS, DatasetSpec

__all__ = [
    "DATASETS",
    "ColumnMap",
    "DatasetSpec",
    "MCQExample",
    "load_dataset",
    "load_demo_set",
    "load_file",
    "load_pool_and_test",
    "split_inline_options",
    "train_test_split",
]
