"""The evaluation grid: datasets x methods x strategies x seeds on one model, resumable.

Each cell builds its prompt from the pool split only (saved under ``prompts/``), then
answers the same test questions as every other cell of its dataset, whatever the seed:
the test set is fixed per dataset, and each seed draws its own pool sample, and so its
own demonstrations. Cells are compared question by question (see ``summary.py``). Every
prediction is appended to ``predictions.jsonl`` as soon as it is made, each
finished or failed cell to ``cells.jsonl``, and the pool scores and rationales of a
prompt being built to ``checkpoints/`` (the local runner's): after an interruption, a new
run with the same settings skips finished cells, finished questions and finished parts of
a prompt, so nothing is redone or duplicated. A cell whose method cannot run on the
model fails with its reason and the grid goes on; a failure of the environment (server
down, out of memory) stops the grid, and the same command resumes it.

What a grid is (settings, cells, splits) is in ``grid_config.py``; its output directory
(resume, records) in ``grid_state.py``; here, how a cell is built and answered, and the
local runner.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from langchain_selfamplify.amplify import amplify, store_pool_scores, stored_pool_scores
from langchain_selfamplify.baselines import DSPY_METHODS, Amplify, AutoCoT, DSPyBaseline, io_prompt
from langchain_selfamplify.checkpoint import append_jsonl, read_jsonl
from langchain_selfamplify.errors import HANDLED_FAILURES, GridStoppedError, is_transient
from langchain_selfamplify.evaluation.grid_config import (
    Cell,
    GridConfig,
    PoolScores,
    Splits,
    grid_cells,
    load_grid_splits,
)
from langchain_selfamplify.evaluation.grid_state import GridState, check_output_dir
from langchain_selfamplify.evaluation.predict import Prediction, answer_questions
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.stages import measure_stages, stage

__all__ = ["Cell", "GridConfig", "GridState", "PoolScores", "Splits", "answer_cell",
           "build_prompt", "check_output_dir", "grid_cells", "load_grid_splits",
           "prompt_hash", "read_jsonl", "run_grid", "timed_prompt"]


AUTO_COT_FILE = "auto_cot_rationales.jsonl"
"""Where a store keeps Auto-CoT's zero-shot rationales written so far."""

DSPY_FILE = "dspy_replies.jsonl"
"""Where a store keeps the DSPy optimiser's replies written so far."""


def _checkpointed(store: Path | None, name: str) -> dict[str, Any]:
    """A baseline builder's ``written=`` and ``on_written=``: the records of the store's
    file ``name``, and appending new ones to it (nothing without a store)."""
    if store is None:
        return {}
    path = store / name
    return {"written": read_jsonl(path),
            "on_written": lambda records: append_jsonl(path, records)}


def build_prompt(backend: ModelBackend, cell: Cell, pool: list[Any], config: GridConfig,
                 pool_scores: PoolScores | None = None,
                 store: Path | None = None) -> AmplifiedPrompt:
    """The cell's prompt, built from the pool only.

    Args:
        backend: The model.
        cell: The cell.
        pool: Its pool.
        config: The grid.
        pool_scores: Pool scores already computed by other cells of the same dataset and
            seed (reused, so the pool is scored once), and filled in by this one.
        store: A directory shared by the cells of the cell's dataset and seed (see
            :meth:`GridState.store`), where the pool scores, the Self-AMPLIFY
            rationales, Auto-CoT's zero-shot rationales and the DSPy optimiser's replies
            are checkpointed as they are made and read back, so a stopped run, or a
            later run of other rows, redoes none of them. Defaults to none.
    """

    fmt = config.answer_format
    shared = (cell.dataset, cell.seed)
    known = pool_scores.get(shared, []) if pool_scores is not None else []
    if cell.method == "io":
        return io_prompt(pool, config.shots, cell.seed, answer_format=fmt,
                         balance=config.balance_labels)
    if cell.method == "auto_cot":
        auto_cot = AutoCoT(backend, n=config.shots, max_new_tokens=config.max_rationale_tokens,
                           seed=cell.seed, answer_format=fmt)
        with stage("baseline_setup"):
            return auto_cot.build(pool, **_checkpointed(store, AUTO_COT_FILE))
    if cell.method in DSPY_METHODS:
        with stage("baseline_setup"):
            # a DSPy reply holds reasoning and an answer field: twice a rationale's cap
            dspy = DSPyBaseline(backend, n=config.shots, seed=cell.seed, answer_format=fmt,
                                bootstrap=cell.method == "dspy_bootstrap",
                                max_new_tokens=2 * config.max_rationale_tokens)
            return dspy.build(pool, **_checkpointed(store, DSPY_FILE))
    if cell.method == "amplify":
        if not known and store is not None:  # amplify() below reads its store itself
            known = stored_pool_scores(store)
        builder = Amplify(backend, n=config.shots, k=config.k, seed=cell.seed, answer_format=fmt,
                          balance=config.balance_labels, **config.method_kwargs.get("amplify", {}))
        try:
            with stage("baseline_setup"):
                return builder.build(pool, pool_scores=known, on_scored=None if store is None
                                     else lambda chunk: store_pool_scores(store, chunk))
        finally:  # kept even when the pool has too few errors for AMPLIFY
            if pool_scores is not None and builder.pool_scores:
                pool_scores[shared] = builder.pool_scores
    prompt, scores = amplify(backend, pool, method=cell.method, strategy=cell.strategy,
                             shots=config.shots, k=config.k, steps=config.steps,
                             seed=cell.seed, answer_format=fmt,
                             balance_labels=config.balance_labels,
                             method_kwargs=config.method_kwargs.get(cell.method, {}),
                             store=store, pool_scores=known)
    if pool_scores is not None and scores:
        pool_scores[shared] = scores
    return prompt


def prompt_hash(prompt: AmplifiedPrompt) -> str:
    """Short content hash of a prompt's demonstrations."""
    blob = json.dumps([ex.model_dump(exclude={"metadata"}) for ex in prompt.examples],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_grid(config: GridConfig, backend: ModelBackend, *, chunk_size: int = 64,
             splits: Splits | None = None, retry_failed: bool = False,
             planned: Iterable[tuple[str, str, str]] | None = None) -> dict[str, Any]:
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
        planned: The rows of the whole table this grid is part of, which size the
            summary's Holm families (see :func:`summarize`). Defaults to the grid's own
            rows (:meth:`GridConfig.rows`).

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
                cell, timed_prompt(backend, cell, pool, config, pool_scores, state.store(cell)))
            todo = state.unanswered(cell, test)
            stages = answer_cell(backend, cell, prompt, todo, config,
                                 lambda record: append_jsonl(state.predictions_path, [record]),
                                 chunk_size)
            state.finish(cell, "done", time.perf_counter() - started, prompt=prompt,
                         answered=len(todo), stage_seconds=stages)
        except HANDLED_FAILURES as exc:
            if is_transient(exc):
                raise GridStoppedError(cell.key, exc) from exc
            state.finish(cell, "failed", time.perf_counter() - started, reason=str(exc))
    return state.summary(planned)


def timed_prompt(backend: ModelBackend, cell: Cell, pool: list[Any], config: GridConfig,
                 pool_scores: PoolScores | None = None,
                 store: Path | None = None) -> AmplifiedPrompt:
    """:func:`build_prompt`, with its build time (wall, CPU and per stage, see
    :mod:`~langchain_selfamplify.stages`) and the cell in the metadata."""
    started, cpu_started = time.perf_counter(), time.process_time()
    with measure_stages() as stages:
        prompt = build_prompt(backend, cell, pool, config, pool_scores, store)
    prompt.metadata = {**prompt.metadata, "build_seconds": time.perf_counter() - started,
                       "build_cpu_seconds": time.process_time() - cpu_started,
                       "build_stage_seconds": stages.totals(), "cell": cell.key}
    return prompt


def answer_cell(backend: ModelBackend, cell: Cell, prompt: AmplifiedPrompt, todo: list[Any],
                config: GridConfig, write: Callable[[dict[str, Any]], None],
                chunk_size: int = 64) -> dict[str, float]:
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

    Returns:
        The seconds ``todo`` took per stage (test rationales, answer scoring...), for
        the cell's record.
    """
    fields = {"cell": cell.key, **cell.model_dump(), "prompt_hash": prompt_hash(prompt)}
    choices = {q.id: len(q.choices) for q in todo}
    with measure_stages() as stages:
        for start in range(0, len(todo), chunk_size):
            answer_questions(backend, prompt, todo[start : start + chunk_size],
                             mode=config.answer_mode,
                             max_rationale_tokens=config.max_rationale_tokens,
                             on_overflow="drop", permute=config.permute,
                             calibrate=config.calibrate,
                             on_prediction=_ChunkRecords(fields, choices, write))
    return stages.totals()


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
