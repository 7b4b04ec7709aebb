"""The evaluation grid on a Ray cluster: cells as tasks, the model loaded once per worker.

Each worker is a Ray actor that loads the model once (from a picklable ``load``
callable, e.g. ``functools.partial(load_backend, "smollm2-135m", device="cuda")``) and
runs whole cells: it builds the cell's prompt (unless the driver has it saved already)
and answers the cell's unanswered questions. The driver alone writes the output
directory, through the same :class:`~langchain_selfamplify.evaluation.grid_state.GridState`
as the local runner, and in grid order: a cell that finishes early waits until the
cells before it are written. So ``predictions.jsonl``, ``cells.jsonl`` and ``prompts/``
hold what a local run writes, timings aside, and an interrupted run resumes the same
way, locally or on Ray.

Ray is an optional extra: ``pip install "langchain-selfamplify[ray]"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from langchain_selfamplify.checkpoint import append_jsonl
from langchain_selfamplify.errors import (
    HANDLED_FAILURES,
    GridStoppedError,
    SelfAmplifyError,
    describe_transient,
    is_transient,
)
from langchain_selfamplify.evaluation.grid import (
    Cell,
    GridConfig,
    GridState,
    PoolScores,
    Splits,
    answer_cell,
    timed_prompt,
)
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.stages import process_facts


def run_cell(backend: ModelBackend, cell: Cell, pool: list[Any], todo: list[Any],
             config: GridConfig, prompt_json: str | None, pool_scores: PoolScores | None = None
             ) -> dict[str, Any]:
    """One cell's work, as a worker runs it: the prompt (built unless given as JSON)
    and the prediction records, or the reason it failed. Plain data, for Ray to ship.
    ``pool_scores`` is the worker's own store of pool scores (see ``build_prompt``)."""
    started = time.perf_counter()
    result: dict[str, Any] = {"status": "done", "prompt": None, "records": []}
    try:
        if prompt_json:
            prompt = AmplifiedPrompt.model_validate_json(prompt_json)
        else:
            prompt = timed_prompt(backend, cell, pool, config, pool_scores)
            result["prompt"] = prompt.model_dump_json()
        # Answer by answer, so a failure keeps what was answered, as the local runner does.
        result["stage_seconds"] = answer_cell(backend, cell, prompt, todo, config,
                                              result["records"].append)
        result["answered"] = len(todo)
    except HANDLED_FAILURES as exc:
        if is_transient(exc):  # the driver stops the grid; a rerun resumes this cell
            result.update(status="stopped", reason=describe_transient(exc))
        else:
            result.update(status="failed", reason=str(exc))
    result["seconds"] = time.perf_counter() - started
    result["facts"] = process_facts()
    return result


def run_grid_on_ray(config: GridConfig, load: Callable[[], ModelBackend], *,
                    address: str | None = None, workers: int | None = None,
                    num_cpus: float = 1, num_gpus: float = 0,
                    splits: Splits | None = None, retry_failed: bool = False,
                    planned: Iterable[tuple[str, str, str]] | None = None) -> dict[str, Any]:
    """Run (or resume) the grid with its cells spread over Ray workers.

    Failures are handled as by :func:`run_grid`: a worker whose server or memory fails
    stops the driver with :class:`GridStoppedError` once the cells before it are
    written, and the stopped cell's answered questions are kept for the rerun.

    Args:
        config: The grid.
        load: Builds the model backend in a worker (picklable; called once per worker).
        address: The Ray cluster (``"auto"``, ``"ray://host:10001"``); ``None`` or
            ``"local"`` starts a local one.
        workers: Model-holding workers. Defaults to the cluster's CPUs divided by
            ``num_cpus`` (or its GPUs by ``num_gpus``), at most the number of cells.
        num_cpus: CPUs each worker reserves. Defaults to 1.
        num_gpus: GPUs each worker reserves (e.g. 1 for a GPU worker). Defaults to 0.
        splits: :func:`load_grid_splits`'s result, when the caller checked it already.
        retry_failed: Run the cells that failed in an earlier run again. Defaults to False.
        planned: The rows of the whole table this grid is part of, as :func:`run_grid`
            takes them. Defaults to the grid's own rows.

    Returns:
        :func:`summarize`'s result, as :func:`run_grid` returns it.

    Raises:
        GridStoppedError: a worker's environment failed; the same call resumes.
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as exc:
        raise SelfAmplifyError("Ray is not installed: pip install "
                               "'langchain-selfamplify[ray]'") from exc
    state = GridState.open(config, splits, retry_failed=retry_failed)
    todo = state.todo
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if address in (None, "local") else address,
                 include_dashboard=False, log_to_driver=False)
    try:
        worker_class = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(_Worker)
        if workers is None:
            resources = ray.cluster_resources()
            slots = (resources.get("GPU", 0) / num_gpus if num_gpus
                     else resources.get("CPU", 1) / max(num_cpus, 1e-9))
            workers = max(1, int(slots))
        actors = [worker_class.remote(load) for _ in range(max(1, min(workers, len(todo))))]
        pool = ActorPool(actors)
        jobs = []
        for cell in todo:
            cell_pool, test = state.splits[(cell.dataset, cell.seed)]
            saved = state.saved_prompt(cell)
            jobs.append((cell, cell_pool, state.unanswered(cell, test),
                         saved.model_dump_json() if saved else None))
        done: dict[int, dict[str, Any]] = {}
        next_to_write = 0
        results = pool.map_unordered(
            lambda actor, job: actor.run.remote(*job[:4], config, job[4]),
            [(index, *job) for index, job in enumerate(jobs)])
        for index, result in results:
            done[index] = result
            while next_to_write in done:  # write in grid order, as the local runner does
                _write(state, jobs[next_to_write][0], done.pop(next_to_write))
                next_to_write += 1
    finally:
        if started_here:
            ray.shutdown()
    return state.summary(planned)


def _write(state: GridState, cell: Cell, result: dict[str, Any]) -> None:
    prompt = None
    if result["prompt"] is not None:
        prompt = state.save_prompt(cell, AmplifiedPrompt.model_validate_json(result["prompt"]))
    if result["records"]:
        append_jsonl(state.predictions_path, result["records"])
    if result["status"] == "stopped":
        raise GridStoppedError(cell.key, result["reason"])
    state.finish(cell, result["status"], result["seconds"], reason=result.get("reason"),
                 prompt=prompt or state.saved_prompt(cell), answered=result.get("answered"),
                 stage_seconds=result.get("stage_seconds"), facts=result.get("facts"))


class _Worker:
    """A Ray actor holding one loaded model."""

    def __init__(self, load: Callable[[], ModelBackend]) -> None:
        self.backend = load()
        self.pool_scores: PoolScores = {}

    def run(self, index: int, cell: Cell, pool: list[Any], todo: list[Any],
            config: GridConfig, prompt_json: str | None) -> tuple[int, dict[str, Any]]:
        return index, run_cell(self.backend, cell, pool, todo, config, prompt_json,
                               self.pool_scores)
