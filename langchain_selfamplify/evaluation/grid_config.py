"""What an evaluation grid is: its settings, its cells in run order, and its data.

A grid is datasets x methods x strategies x seeds on one model (see ``grid.py`` for
running it). Its pool and test splits are loaded and checked against its answer options
here, before any model is loaded, so what can be refused is refused first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from langchain_selfamplify.baselines import BASELINES, DSPY_METHODS
from langchain_selfamplify.baselines.dspy_lm import require_dspy
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.errors import UnknownNameError
from langchain_selfamplify.evaluation.predict import check_answer_options
from langchain_selfamplify.rationales.base import METHODS
from langchain_selfamplify.selection.strategies import get_strategy
from langchain_selfamplify.settings import AmplifySettings
from langchain_selfamplify.strict import StrictModel

AMPLIFY_SETTINGS = ("encoder", "epochs", "learning_rate", "folds")
"""AMPLIFY's proxy-training settings a grid may set through ``method_kwargs``."""


class GridConfig(AmplifySettings):
    """Settings of an evaluation grid (the options of ``selfamplify evaluate``); the
    shared ones are in :class:`~langchain_selfamplify.settings.AmplifySettings`."""

    datasets: list[str] = Field(default=["demo"], min_length=1)
    """Registered names or files."""
    methods: list[str] = Field(default=["io", "auto_cot", "amplify", "deeplift",
                                        "kernelshap", "self_topk", "ph_cot"], min_length=1)
    """Baselines (io, auto_cot, amplify, dspy_bootstrap, dspy_labeled) and rationale
    methods."""
    strategies: list[str] = ["success", "error"]
    """Selection strategies for the rationale methods."""
    seeds: list[int] = Field(default=[0, 1, 2], min_length=1)
    """Seeds, a random factor of the grid: each draws its own pool sample (so its own
    demonstrations), selection ties and sampling; the test questions stay fixed."""
    pool_size: int | None = Field(default=100, ge=1)
    """Selection pool sampled per seed (at most half of a dataset carved into pool and
    test)."""
    test_size: int | None = Field(default=200, ge=1)
    """Test questions per dataset (every question outside the pool region where fewer)."""
    answer_mode: Literal["score", "generate"] = "score"
    """How answers are read (see ``answer_questions``)."""
    permute: bool = False
    """Test-time choice permutation: one pass per cyclic order of the choices."""
    calibrate: bool = False
    """Contextual calibration of label scores (letter format, score mode)."""
    method_kwargs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Extra settings per method: a rationale method's own (e.g. ``{"kernelshap":
    {"n_samples": 64}}``) or AMPLIFY's proxy training (``{"amplify": {"folds": 2,
    "epochs": 1}}``; see :data:`AMPLIFY_SETTINGS`)."""
    output_dir: str = "selfamplify_eval"
    """Where predictions, cells, prompts, the table and the figure go."""

    def validate_names(self) -> None:
        """Fail on unknown method or strategy names, or a DSPy row without DSPy, before
        any work."""
        for method in self.methods:
            if method not in BASELINES and method not in METHODS:
                raise UnknownNameError("method", method, [*BASELINES, *METHODS])
        if any(method in DSPY_METHODS for method in self.methods):
            require_dspy()
        for strategy in self.strategies:
            get_strategy(strategy)
        for name in self.method_kwargs.get("amplify", {}):
            if name not in AMPLIFY_SETTINGS:
                raise UnknownNameError("AMPLIFY setting", name, list(AMPLIFY_SETTINGS))

    def rows(self) -> list[tuple[str, str, str]]:
        """Every (dataset, method, strategy) row of the grid, in run order: a baseline
        with its fixed selection, a rationale method with each strategy."""
        return list(dict.fromkeys((cell.dataset, cell.method, cell.strategy)
                                  for cell in grid_cells(self.model_copy(update={"seeds": [0]}))))


class Cell(StrictModel):
    """One (dataset, method, strategy, seed) cell."""

    dataset: str
    method: str
    strategy: str
    seed: int

    @property
    def key(self) -> str:
        """Stable identifier, safe as a file name."""
        name = Path(self.dataset).stem if os.sep in self.dataset else self.dataset
        return f"{name}__{self.method}__{self.strategy}__seed{self.seed}"

    @classmethod
    def from_key(cls, key: str) -> Cell | None:
        """The cell a :attr:`key` names (a dataset file's path reads back as its stem),
        or None when ``key`` is not one."""
        parts = key.rsplit("__", 3)
        if len(parts) != 4 or not parts[3].startswith("seed") or not parts[3][4:].isdigit():
            return None
        dataset, method, strategy, seed = parts
        return cls(dataset=dataset, method=method, strategy=strategy, seed=int(seed[4:]))


def grid_cells(config: GridConfig) -> list[Cell]:
    """Every cell of the grid, in run order."""
    cells = []
    for dataset in config.datasets:
        for seed in config.seeds:
            for method in config.methods:
                strategies = [BASELINES[method]] if method in BASELINES else config.strategies
                cells += [Cell(dataset=dataset, method=method, strategy=s, seed=seed)
                          for s in strategies]
    return cells


PoolScores = dict[tuple[str, int], list[Any]]
"""(dataset, seed) -> the pool's zero-shot scores, shared by the cells of that dataset
and seed: AMPLIFY and every success and error row select from the same scores."""


Splits = dict[tuple[str, int], tuple[list[Any], list[Any]]]
"""(dataset, seed) -> (pool, test)."""


def load_grid_splits(config: GridConfig) -> Splits:
    """Every dataset's pool and test questions per seed, with the grid's answer options
    checked on them: what can be refused is refused here, before any model is loaded.

    Raises:
        SelfAmplifyError: a dataset cannot be loaded.
        ValueError: an answer option does not apply to a dataset (cloze on bare labels...).
    """
    config.validate_names()
    splits = {(dataset, seed): load_pool_and_test(
                  dataset, pool_size=config.pool_size, test_size=config.test_size,
                  seed=seed, data_dir=config.data_dir)
              for dataset in config.datasets for seed in config.seeds}
    for pool, test in splits.values():
        check_answer_options(config.answer_format, [*pool, *test], mode=config.answer_mode,
                             permute=config.permute, calibrate=config.calibrate)
    return splits
