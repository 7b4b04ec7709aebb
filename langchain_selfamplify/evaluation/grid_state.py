"""A grid's output directory: what an earlier run finished, and where each record goes.

``predictions.jsonl`` gets every prediction as it is made, ``cells.jsonl`` every
finished or failed cell, ``prompts/`` every cell's prompt, and ``checkpoints/`` the
pool scores and rationales of prompts being built (per dataset and seed). A run with other result
settings is refused (or moved aside), so a resumed grid never mixes two settings.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langchain_selfamplify.checkpoint import append_jsonl, guard_resume, read_jsonl
from langchain_selfamplify.errors import PromptFileError
from langchain_selfamplify.evaluation.grid_config import (
    Cell,
    GridConfig,
    Splits,
    grid_cells,
    load_grid_splits,
)
from langchain_selfamplify.evaluation.summary import summarize
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.stages import process_facts

logger = logging.getLogger(__name__)


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

    def summary(self, planned: Iterable[tuple[str, str, str]] | None = None
                ) -> dict[str, Any]:
        """:func:`~.summary.summarize` of the directory, its Holm families sized by the
        ``planned`` rows of the whole table (by default the grid's own rows)."""
        return summarize(self.out, self.config.rows() if planned is None else planned)

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

    def store(self, cell: Cell) -> Path:
        """The checkpoint directory of the cell's dataset and seed, shared by the cells
        that use the same pool: the pool scores and Self-AMPLIFY rationales made so far
        (``amplify.SCORES_FILE``, ``amplify.RATIONALES_FILE``; see
        :func:`~langchain_selfamplify.amplify.amplify`'s ``store``), Auto-CoT's zero-shot
        rationales and the DSPy optimiser's replies (``grid.AUTO_COT_FILE``,
        ``grid.DSPY_FILE``)."""
        return self.out / "checkpoints" / f"{cell.dataset}__seed{cell.seed}"

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
               prompt: AmplifiedPrompt | None = None, answered: int | None = None,
               stage_seconds: dict[str, float] | None = None,
               facts: dict[str, Any] | None = None) -> None:
        """Record a finished (``"done"``) or failed cell that took ``seconds``, and how
        many selected examples its ``prompt`` skipped for want of a usable rationale.
        A done cell also records the questions this run ``answered`` (fewer than the
        cell's when an earlier run answered some) and their ``stage_seconds``. ``facts``
        are those of the process that ran the cell
        (:func:`~langchain_selfamplify.stages.process_facts`; this one's by default)."""
        skipped = len(prompt.metadata.get("skipped", [])) if prompt is not None else 0
        record: dict[str, Any] = {"cell": cell.key, **cell.model_dump(), "status": status,
                                  "skipped": skipped}
        if reason is not None:
            logger.warning("cell %s failed: %s", cell.key, reason)
            record["reason"] = reason
        if answered is not None:
            record["answered"] = answered
        record["seconds"] = seconds
        if stage_seconds is not None:
            record["answer_stage_seconds"] = stage_seconds
        # the process's memory so far, and its CPU: seconds differ between machines
        record.update(facts if facts is not None else process_facts())
        append_jsonl(self.cells_path, [record])
        self.finished.add(cell.key)


def check_output_dir(config: GridConfig, *, overwrite: bool = False) -> None:
    """Refuse an output directory that holds a grid run with other settings, or with
    ``overwrite`` move that run aside (see :func:`guard_resume`).

    Raises:
        SelfAmplifyError: resuming it would mix two settings.
    """
    out = Path(config.output_dir)
    ran = methods_run(out)
    guard_resume(out, out / "config.json", _result_settings(config, ran), outputs=GRID_OUTPUTS,
                 started=(out / "predictions.jsonl").exists(), what="a grid run",
                 overwrite=overwrite,
                 read=lambda text: _result_settings(GridConfig.model_validate_json(text), ran))


GRID_OUTPUTS = ("config.json", "predictions.jsonl", "cells.jsonl", "prompts", "checkpoints")
"""What a grid writes into its output directory, besides its report."""

CELL_LISTS = {"datasets", "methods", "strategies", "seeds", "output_dir"}
"""Settings that say which cells a grid has, not how a cell is computed: a grid may be
resumed with more (or fewer) of them, e.g. its most informative rows first."""


def _result_settings(config: GridConfig, ran: set[str]) -> dict[str, Any]:
    """The settings that decide how a cell is computed, with only the ``method_kwargs``
    of the methods in ``ran``: a method no cell has used yet may still change its own
    settings (KernelShap's samples before its first cell, say)."""
    settings = config.model_dump(exclude=CELL_LISTS)
    settings["method_kwargs"] = {method: kwargs for method, kwargs
                                 in settings["method_kwargs"].items() if method in ran}
    return settings


def methods_run(out: Path) -> set[str]:
    """The methods of every cell the grid in ``out`` has built a prompt for or
    answered with."""
    built = {cell.method for path in (out / "prompts").glob("*.json")
             if (cell := Cell.from_key(path.stem)) is not None}
    return {record["method"] for record in cell_records(out)} | built


def cell_records(out: Path) -> list[dict[str, Any]]:
    """Every record that names a cell (its dataset, method, strategy and seed): the
    cells' and the predictions'."""
    return [*read_jsonl(out / "cells.jsonl"), *read_jsonl(out / "predictions.jsonl")]


def recorded_config(out: str | Path) -> GridConfig:
    """The settings of the grid in ``out``, with the datasets and seeds of every cell
    it holds records of, for reading its results back.

    ``config.json`` names the cell lists of the directory's last run only (a grid may be
    resumed with fewer or other datasets, see :data:`CELL_LISTS`), so the splits it
    gives could miss an earlier run's questions.

    Args:
        out: A grid's output directory.
    """
    out = Path(out)
    config = GridConfig.model_validate_json((out / "config.json").read_text(encoding="utf-8"))
    records = cell_records(out)
    datasets = list(dict.fromkeys([*config.datasets, *(r["dataset"] for r in records)]))
    seeds = sorted({*config.seeds, *(int(r["seed"]) for r in records)})
    return config.model_copy(update={"datasets": datasets, "seeds": seeds})
