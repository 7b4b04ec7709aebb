"""The evaluation grid: datasets x methods x strategies x seeds on one model, resumable.

Each cell builds its prompt from the pool split only (saved under ``prompts/``), then
answers the same test questions as every other cell of its dataset, whatever the seed:
the test set is fixed per dataset, and each seed draws its own pool sample, and so its
own demonstrations. Cells are compared question by question (see ``summary.py``). Every
prediction is appended to ``predictions.jsonl`` as soon as it is made, and
each finished or failed cell to ``cells.jsonl``: after an interruption, a new run with
the same settings skips finished cells and finished questions, so nothing is redone or
duplicated. A cell whose method cannot run on the model fails with its reason and the
grid goes on; a failure of the environment (server down, out of memory) stops the grid,
and the same command resumes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from langchain_selfamplify.amplify import amplify
from langchain_selfamplify.baselines import (
    BASELINES,
    DSPY_METHODS,
    Amplify,
    AutoCoT,
    DSPyBaseline,
    io_prompt,
)
from langchain_selfamplify.baselines.dspy_lm import require_dspy
from langchain_selfamplify.checkpoint import append_jsonl, guard_resume, read_jsonl
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.errors import (
    HANDLED_FAILURES,
    GridStoppedError,
    PromptFileError,
    UnknownNameError,
    is_transient,
)
from langchain_selfamplify.evaluation.predict import (
    Prediction,
    answer_questions,
    check_answer_options,
)
from langchain_selfamplify.evaluation.summary import summarize
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.rationales.base import METHODS
from langchain_selfamplify.selection.strategies import get_strategy
from langchain_selfamplify.settings import AmplifySettings
from langchain_selfamplify.stages import peak_rss_mib, stage
from langchain_selfamplify.strict import StrictModel

logger = logging.getLogger(__name__)

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
    """Extra settings per rationale method (e.g. ``{"kernelshap": {"n_samples": 64}}``)."""
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


def build_prompt(backend: ModelBackend, cell: Cell, pool: list[Any], config: GridConfig,
                 pool_scores: PoolScores | None = None) -> AmplifiedPrompt:
    """The cell's prompt, built from the pool only.

    Args:
        backend: The model.
        cell: The cell.
        pool: Its pool.
        config: The grid.
        pool_scores: Pool scores already computed by other cells of the same dataset and
            seed (reused, so the pool is scored once), and filled in by this one.
    """

    fmt = config.answer_format
    shared = (cell.dataset, cell.seed)
    known = pool_scores.get(shared, []) if pool_scores is not None else []
    if cell.method == "io":
        return io_prompt(pool, config.shots, cell.seed, answer_format=fmt,
                         balance=config.balance_labels)
    if cell.method == "auto_cot":
        with stage("baseline_setup"):
            return AutoCoT(backend, n=config.shots, max_new_tokens=config.max_rationale_tokens,
                           seed=cell.seed, answer_format=fmt).build(pool)
    if cell.method in DSPY_METHODS:
        with stage("baseline_setup"):
            # a DSPy reply holds reasoning and an answer field: twice a rationale's cap
            return DSPyBaseline(backend, n=config.shots, seed=cell.seed, answer_format=fmt,
                                bootstrap=cell.method == "dspy_bootstrap",
                                max_new_tokens=2 * config.max_rationale_tokens).build(pool)
    if cell.method == "amplify":
        builder = Amplify(backend, n=config.shots, k=config.k, seed=cell.seed, answer_format=fmt,
                          balance=config.balance_labels)
        try:
            with stage("baseline_setup"):
                return builder.build(pool, pool_scores=known)
        finally:  # kept even when the pool has too few errors for AMPLIFY
            if pool_scores is not None and builder.pool_scores:
                pool_scores[shared] = builder.pool_scores
    prompt, scores = amplify(backend, pool, method=cell.method, strategy=cell.strategy,
                             shots=config.shots, k=config.k, steps=config.steps,
                             seed=cell.seed, answer_format=fmt,
                             balance_labels=config.balance_labels,
                             method_kwargs=config.method_kwargs.get(cell.method, {}),
                             pool_scores=known)
    if pool_scores is not None and scores:
        pool_scores[shared] = scores
    return prompt


def prompt_hash(prompt: AmplifiedPrompt) -> str:
    """Short content hash of a prompt's demonstrations."""
    blob = json.dumps([ex.model_dump(exclude={"metadata"}) for ex in prompt.examples],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


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


def run_grid(config: GridConfig, backend: ModelBackend, *, chunk_size: int = 64,
             splits: Splits | None = None, retry_failed: bool = False) -> dict[str, Any]:
    """Run (or resume) the grid and write its outputs; returns :func:`summarize`'s result.

    A cell whose method cannot run here (a capability the backend lacks, an option that
    does not apply) fails with its reason and the grid goes on; a rerun leaves it alone
    unless ``retry_failed``. A failure of the environment (the server unreachable, out
    of memory; see :func:`~langchain_selfamplify.errors.is_transient`) stops the grid
    at once with :class:`GridStoppedError`; the cell is not recorded, so a rerun
    resumes it from its first unanswered question.

    Args:
        config: The grid.
        backend: The model.
        chunk_size: Questions answered between two writes. Defaults to 64.
        splits: :func:`load_grid_splits`'s result, when the caller checked it already.
        retry_failed: Run the cells that failed in an earlier run again. Defaults to False.

    Raises:
        GridStoppedError: the environment failed; the same call resumes.
    """
    state = GridState.open(config, splits, retry_failed=retry_failed)
    pool_scores: PoolScores = {}
    for cell in state.todo:
        pool, test = state.splits[(cell.dataset, cell.seed)]
        started = time.perf_counter()
        try:
            prompt = state.saved_prompt(cell) or state.save_prompt(
                cell, timed_prompt(backend, cell, pool, config, pool_scores))
            answer_cell(backend, cell, prompt, state.unanswered(cell, test), config,
                        lambda record: append_jsonl(state.predictions_path, [record]),
                        chunk_size)
            state.finish(cell, "done", time.perf_counter() - started, prompt=prompt)
        except HANDLED_FAILURES as exc:
            if is_transient(exc):
                raise GridStoppedError(cell.key, exc) from exc
            state.finish(cell, "failed", time.perf_counter() - started, reason=str(exc))
    return summarize(state.out)


class GridState:
    """An output directory being filled: what is finished, and where each record goes.

    The local runner and the Ray driver (``ray_grid.py``) write through it, so their
    files have the same layout, order and content.
    """

    def __init__(self, config: GridConfig, splits: Splits, out: Path,
                 answered: dict[str, set[str]], finished: set[str]) -> None:
        self.config, self.splits, self.out = config, splits, out
        self.answered, self.finished = answered, finished
        self.predictions_path = out / "predictions.jsonl"
        self.cells_path = out / "cells.jsonl"

    @classmethod
    def open(cls, config: GridConfig, splits: Splits | None = None, *,
             retry_failed: bool = False) -> GridState:
        """Check the directory (see :func:`check_output_dir`), write ``config.json`` and
        read what an earlier run finished: its done cells, and its failed ones unless
        ``retry_failed``."""
        check_output_dir(config)
        splits = splits if splits is not None else load_grid_splits(config)
        out = Path(config.output_dir)
        (out / "prompts").mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(config.model_dump_json(indent=2) + "\n",
                                         encoding="utf-8")
        answered: dict[str, set[str]] = defaultdict(set)
        for record in read_jsonl(out / "predictions.jsonl"):
            answered[record["cell"]].add(record["question_id"])
        last = {record["cell"]: record["status"] for record in read_jsonl(out / "cells.jsonl")}
        finished = {cell for cell, status in last.items()
                    if status == "done" or (status == "failed" and not retry_failed)}
        return cls(config, splits, out, answered, finished)

    @property
    def todo(self) -> list[Cell]:
        """The cells not finished yet, in grid order."""
        return [cell for cell in grid_cells(self.config) if cell.key not in self.finished]

    def unanswered(self, cell: Cell, test: list[Any]) -> list[Any]:
        """The cell's test questions without a saved prediction."""
        return [q for q in test if q.id not in self.answered[cell.key]]

    def prompt_path(self, cell: Cell) -> Path:
        return self.out / "prompts" / f"{cell.key}.json"

    def saved_prompt(self, cell: Cell) -> AmplifiedPrompt | None:
        """The cell's prompt saved by an earlier run, if readable."""
        path = self.prompt_path(cell)
        if path.exists():
            try:
                return AmplifiedPrompt.load(path)
            except PromptFileError:
                logger.warning("%s is unreadable; building the prompt again", path)
        return None

    def save_prompt(self, cell: Cell, prompt: AmplifiedPrompt) -> AmplifiedPrompt:
        prompt.save(self.prompt_path(cell))
        return prompt

    def finish(self, cell: Cell, status: str, seconds: float, reason: str | None = None,
               prompt: AmplifiedPrompt | None = None) -> None:
        """Record a finished (``"done"``) or failed cell that took ``seconds``, and how
        many selected examples its ``prompt`` skipped for want of a usable rationale."""
        skipped = len(prompt.metadata.get("skipped", [])) if prompt is not None else 0
        record: dict[str, Any] = {"cell": cell.key, **cell.model_dump(), "status": status,
                                  "skipped": skipped}
        if reason is not None:
            logger.warning("cell %s failed: %s", cell.key, reason)
            record["reason"] = reason
        record["seconds"] = seconds
        record["peak_rss_mib"] = peak_rss_mib()  # of the process, so far
        append_jsonl(self.cells_path, [record])
        self.finished.add(cell.key)


def timed_prompt(backend: ModelBackend, cell: Cell, pool: list[Any], config: GridConfig,
                 pool_scores: PoolScores | None = None) -> AmplifiedPrompt:
    """:func:`build_prompt`, with its build time and the cell in the metadata."""
    started, cpu_started = time.perf_counter(), time.process_time()
    prompt = build_prompt(backend, cell, pool, config, pool_scores)
    prompt.metadata = {**prompt.metadata, "build_seconds": time.perf_counter() - started,
                       "build_cpu_seconds": time.process_time() - cpu_started,
                       "cell": cell.key}
    return prompt


def answer_cell(backend: ModelBackend, cell: Cell, prompt: AmplifiedPrompt, todo: list[Any],
                config: GridConfig, write: Callable[[dict[str, Any]], None],
                chunk_size: int = 64) -> None:
    """Answer ``todo`` and hand each ``predictions.jsonl`` record to ``write`` as soon
    as its prediction is made (see ``answer_questions``' ``on_prediction``), so a stop
    keeps every answer already read.

    ``chunk_size`` questions are answered together; a record's ``seconds`` is the wall
    time since the previous record of its chunk (or the chunk's start), so a chunk's
    records sum to its wall time, and ``chunk_started`` (Unix time) tells its chunk.
    ``cpu_seconds`` is the process's CPU time over the same span: against ``seconds``
    it tells how many cores the work had, so a chunk slowed by other work on the
    machine, or by the process being stopped, shows as such in the cost reports.
    A rerun after a stop mid-chunk decodes the chunk's remaining questions together: other
    rows beside them can move a float's last bits, not the greedy text of a confident
    model (the capable model's table rerun 24 questions at another batch size: 24/24
    identical rationales, ``docs/results/offload_agreement.md``).
    """
    fields = {"cell": cell.key, **cell.model_dump(), "prompt_hash": prompt_hash(prompt)}
    choices = {q.id: len(q.choices) for q in todo}
    for start in range(0, len(todo), chunk_size):
        answer_questions(backend, prompt, todo[start : start + chunk_size],
                         mode=config.answer_mode,
                         max_rationale_tokens=config.max_rationale_tokens,
                         on_overflow="drop", permute=config.permute,
                         calibrate=config.calibrate,
                         on_prediction=_ChunkRecords(fields, choices, write))


class _ChunkRecords:
    """Turns a chunk's predictions into ``predictions.jsonl`` records as they come."""

    def __init__(self, fields: dict[str, Any], choices: dict[str, int],
                 write: Callable[[dict[str, Any]], None]) -> None:
        self.fields, self.choices, self.write = fields, choices, write
        self.started, self.last = round(time.time(), 3), time.perf_counter()
        self.last_cpu = time.process_time()

    def __call__(self, p: Prediction) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.write({**self.fields, "question_id": p.id, "raw_output": p.rationale,
                    "parsed": p.predicted, "gold": p.gold, "correct": p.correct,
                    "truncated": p.truncated, "n_choices": self.choices[p.id],
                    "seconds": now - self.last, "cpu_seconds": cpu - self.last_cpu,
                    "chunk_started": self.started})
        self.last, self.last_cpu = now, cpu


def check_output_dir(config: GridConfig, *, overwrite: bool = False) -> None:
    """Refuse an output directory that holds a grid run with other settings, or with
    ``overwrite`` move that run aside (see :func:`guard_resume`).

    Raises:
        SelfAmplifyError: resuming it would mix two settings.
    """
    out = Path(config.output_dir)
    guard_resume(out, out / "config.json", _result_settings(config), outputs=GRID_OUTPUTS,
                 started=(out / "predictions.jsonl").exists(), what="a grid run",
                 overwrite=overwrite,
                 read=lambda text: _result_settings(GridConfig.model_validate_json(text)))


GRID_OUTPUTS = ("config.json", "predictions.jsonl", "cells.jsonl", "prompts")
"""What a grid writes into its output directory, besides its report."""

CELL_LISTS = {"datasets", "methods", "strategies", "seeds", "output_dir"}
"""Settings that say which cells a grid has, not how a cell is computed: a grid may be
resumed with more (or fewer) of them, e.g. its most informative rows first."""


def _result_settings(config: GridConfig) -> dict[str, Any]:
    return config.model_dump(exclude=CELL_LISTS)
