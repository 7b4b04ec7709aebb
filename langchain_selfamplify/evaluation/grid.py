"""The evaluation grid: datasets x methods x strategies x seeds on one model, resumable.

Each cell builds its prompt from the pool split only (saved under ``prompts/``), then
answers the same test questions as every other cell of its dataset and seed. Every
prediction is appended to ``predictions.jsonl`` as soon as its chunk is answered, and
each finished or failed cell to ``cells.jsonl``: after an interruption, a new run with
the same settings skips finished cells and finished questions, so nothing is redone or
duplicated. A cell whose method cannot run on the model fails with its reason and the
grid goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from langchain_selfamplify.checkpoint import append_jsonl, read_jsonl
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.errors import PromptFileError, SelfAmplifyError, UnknownNameError
from langchain_selfamplify.evaluation.metrics import accuracy
from langchain_selfamplify.evaluation.predict import answer_questions, io_prompt
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.rationales.base import METHODS
from langchain_selfamplify.rationales.generator import RationaleGenerator
from langchain_selfamplify.selection.selector import SelfAmplifySelector
from langchain_selfamplify.selection.strategies import get_strategy

logger = logging.getLogger(__name__)

BASELINES = {"io": "random", "auto_cot": "clusters", "amplify": "proxy_mcs"}
"""Baseline methods and the fixed selection each uses."""


class GridConfig(BaseModel):
    """Settings of an evaluation grid (the options of ``selfamplify evaluate``)."""

    model_config = ConfigDict(extra="forbid")

    datasets: list[str] = ["demo"]
    """Registered names or files."""
    methods: list[str] = ["io", "auto_cot", "amplify", "deeplift", "kernelshap", "self_topk",
                          "ph_cot"]
    """Baselines (io, auto_cot, amplify) and rationale methods."""
    strategies: list[str] = ["success", "error"]
    """Selection strategies for the rationale methods."""
    seeds: list[int] = [0]
    """Seeds: each changes the pool/test carving, selection ties and sampling."""
    shots: int = Field(default=8, ge=1)
    """Demonstrations per prompt."""
    k: int = Field(default=5, ge=1)
    """Keywords per keyword rationale."""
    steps: int = Field(default=3, ge=1)
    """Steps per Ph-CoT rationale."""
    pool_size: int | None = 200
    """Cap on the selection pool."""
    test_size: int | None = 100
    """Test questions per dataset."""
    data_dir: str | None = None
    """Local directory of the registered datasets."""
    max_rationale_tokens: int = 64
    """Token cap of test-time rationales."""
    answer_mode: Literal["score", "generate"] = "score"
    """How answers are read (see ``answer_questions``)."""
    method_kwargs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Extra settings per rationale method (e.g. ``{"kernelshap": {"n_samples": 64}}``)."""
    output_dir: str = "selfamplify_eval"
    """Where predictions, cells, prompts, the table and the figure go."""

    def validate_names(self) -> None:
        """Fail on unknown method or strategy names before any work."""
        for method in self.methods:
            if method not in BASELINES and method not in METHODS:
                raise UnknownNameError("method", method, [*BASELINES, *METHODS])
        for strategy in self.strategies:
            get_strategy(strategy)


class Cell(BaseModel):
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


def build_prompt(slm: Any, cell: Cell, pool: list[Any], config: GridConfig) -> AmplifiedPrompt:
    """The cell's prompt, built from the pool only."""
    from langchain_selfamplify.baselines import Amplify, AutoCoT

    if cell.method == "io":
        return io_prompt(pool, config.shots, cell.seed)
    if cell.method == "auto_cot":
        return AutoCoT(slm, n=config.shots, max_new_tokens=config.max_rationale_tokens,
                       seed=cell.seed).build(pool)
    if cell.method == "amplify":
        return Amplify(slm, n=config.shots, k=config.k, seed=cell.seed).build(pool)
    selector = SelfAmplifySelector(slm=slm, examples=pool, strategy=cell.strategy,
                                   n=config.shots, seed=cell.seed)
    generator = RationaleGenerator(slm=slm, method=cell.method, k=config.k,
                                   n_steps=config.steps,
                                   method_kwargs=config.method_kwargs.get(cell.method, {}))
    return AmplifiedPrompt(examples=generator.explain(selector.select()),
                           metadata={"method": cell.method, "strategy": cell.strategy})


def prompt_hash(prompt: AmplifiedPrompt) -> str:
    """Short content hash of a prompt's demonstrations."""
    blob = json.dumps([ex.model_dump(exclude={"metadata"}) for ex in prompt.examples],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_grid(config: GridConfig, slm: Any, *, chunk_size: int = 64) -> dict[str, Any]:
    """Run (or resume) the grid and write its outputs; returns :func:`summarize`'s result.

    Args:
        config: The grid.
        slm: The model.
        chunk_size: Questions answered between two writes. Defaults to 64.
    """
    config.validate_names()
    out = Path(config.output_dir)
    (out / "prompts").mkdir(parents=True, exist_ok=True)
    settings = config.model_dump_json(indent=2) + "\n"
    saved = out / "config.json"
    if saved.exists() and saved.read_text(encoding="utf-8") != settings and (
            out / "predictions.jsonl").exists():
        raise SelfAmplifyError(
            f"{out} holds a grid run with other settings; resuming it would mix them. Use "
            "another output directory, or delete this one to start afresh.")
    saved.write_text(settings, encoding="utf-8")
    predictions_path, cells_path = out / "predictions.jsonl", out / "cells.jsonl"
    answered: dict[str, set[str]] = defaultdict(set)
    for record in read_jsonl(predictions_path):
        answered[record["cell"]].add(record["question_id"])
    finished = {record["cell"] for record in read_jsonl(cells_path)}
    splits: dict[tuple[str, int], tuple[list[Any], list[Any]]] = {}
    for cell in grid_cells(config):
        if cell.key in finished:
            continue
        split_key = (cell.dataset, cell.seed)
        if split_key not in splits:
            splits[split_key] = load_pool_and_test(
                cell.dataset, pool_size=config.pool_size, test_size=config.test_size,
                seed=cell.seed, data_dir=config.data_dir)
        pool, test = splits[split_key]
        started = time.perf_counter()
        try:
            prompt = _cell_prompt(slm, cell, pool, config, out / "prompts" / f"{cell.key}.json")
            todo = [q for q in test if q.id not in answered[cell.key]]
            digest = prompt_hash(prompt)
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start : start + chunk_size]
                began = time.perf_counter()
                predictions = answer_questions(slm, prompt, chunk, mode=config.answer_mode,
                                               max_rationale_tokens=config.max_rationale_tokens,
                                               on_overflow="drop")
                share = (time.perf_counter() - began) / len(chunk)
                append_jsonl(predictions_path, [
                    {"cell": cell.key, **cell.model_dump(), "question_id": p.id,
                     "prompt_hash": digest, "raw_output": p.rationale, "parsed": p.predicted,
                     "gold": p.gold, "correct": p.correct, "seconds": share}
                    for p in predictions])
                answered[cell.key].update(p.id for p in predictions)
            append_jsonl(cells_path, [{"cell": cell.key, **cell.model_dump(), "status": "done",
                                  "seconds": time.perf_counter() - started}])
        except (SelfAmplifyError, RuntimeError, ValueError) as exc:
            logger.warning("cell %s failed: %s", cell.key, exc)
            append_jsonl(cells_path, [{"cell": cell.key, **cell.model_dump(), "status": "failed",
                                  "reason": str(exc), "seconds": time.perf_counter() - started}])
    return summarize(out)


def _cell_prompt(slm: Any, cell: Cell, pool: list[Any], config: GridConfig,
                 path: Path) -> AmplifiedPrompt:
    if path.exists():
        try:
            return AmplifiedPrompt.load(path)
        except PromptFileError:
            logger.warning("%s is unreadable; building the prompt again", path)
    started = time.perf_counter()
    prompt = build_prompt(slm, cell, pool, config)
    prompt.metadata = {**prompt.metadata, "build_seconds": time.perf_counter() - started,
                       "cell": cell.key}
    prompt.save(path)
    return prompt


def summarize(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Per-cell and per-(dataset, method, strategy) accuracy from a grid's files."""
    out = Path(out)
    cells = {r["cell"]: r for r in read_jsonl(out / "cells.jsonl")}
    by_cell: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for record in read_jsonl(out / "predictions.jsonl"):
        if (record["cell"], record["question_id"]) in seen:
            continue
        seen.add((record["cell"], record["question_id"]))
        by_cell[record["cell"]].append(record)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for key, cell in cells.items():
        row = rows.setdefault((cell["dataset"], cell["method"], cell["strategy"]), {
            "dataset": cell["dataset"], "method": cell["method"], "strategy": cell["strategy"],
            "correct": 0, "n": 0, "unparsed": 0, "seconds": 0.0, "failed": [], "seeds": []})
        row["seeds"].append(cell["seed"])
        row["seconds"] += cell.get("seconds", 0.0)
        if cell["status"] == "failed":
            row["failed"].append(cell.get("reason", ""))
            continue
        predictions = by_cell.get(key, [])
        row["correct"] += sum(bool(p["correct"]) for p in predictions)
        row["n"] += len(predictions)
        row["unparsed"] += sum(p["parsed"] is None for p in predictions)
    for row in rows.values():
        if row["n"]:
            row["accuracy"] = accuracy(row["correct"], row["n"]).model_dump()
    return {"rows": list(rows.values()),
            "predictions": sum(len(v) for v in by_cell.values())}
