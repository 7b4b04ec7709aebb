"""The main job: select, explain, build the amplified prompt, compare it with IO.

``selfamplify run`` is a thin shell around :func:`run_self_amplify`, so notebooks and
scripts get the same job with the same outputs.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.evaluation.predict import (
    EvalResult,
    check_context,
    evaluate_prompt,
    io_prompt,
)
from langchain_selfamplify.models.default import DEFAULT_MODEL_NAME
from langchain_selfamplify.models.slm import SLM
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.rationales.base import get_method
from langchain_selfamplify.rationales.generator import RationaleGenerator
from langchain_selfamplify.selection.selector import SelfAmplifySelector
from langchain_selfamplify.selection.strategies import get_strategy

logger = logging.getLogger(__name__)

RESULTS_FORMAT = "langchain-selfamplify/run-results"
"""The ``format`` field of ``results.json``."""


class RunConfig(BaseModel):
    """Settings of one Self-AMPLIFY run (the options of ``selfamplify run``)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    """HF id, local directory or ``.gguf`` file; ``None`` for the embedded default."""
    dataset: str = "demo"
    """Registered dataset name, file path or Hub id. Defaults to the bundled demo set."""
    data_dir: str | None = None
    """Local directory of the registered datasets (else ``$SELFAMPLIFY_DATA_DIR``, else Hub)."""
    pool_split: str = "train"
    """Split to select demonstrations from."""
    test_split: str = "test"
    """Split to measure accuracy on."""
    method: str = "ph_cot"
    """Rationale method."""
    strategy: str = "success"
    """Selection strategy."""
    shots: int = Field(default=8, ge=1)
    """Number of demonstrations. Defaults to 8."""
    k: int = Field(default=5, ge=1)
    """Keywords per keyword rationale."""
    steps: int = Field(default=3, ge=1)
    """Steps per Ph-CoT rationale."""
    pool_size: int | None = Field(default=None, ge=1)
    """Cap on the selection pool (seeded sample). Defaults to the whole split."""
    test_size: int | None = Field(default=64, ge=1)
    """Number of test questions (the first of the test split). Defaults to 64."""
    max_rationale_tokens: int = Field(default=64, ge=1)
    """Token cap of test-time rationales."""
    batch_size: int = Field(default=8, ge=1)
    """Prompts per forward pass."""
    seed: int = 0
    """Seed of every random choice."""
    device: str | None = None
    """``cpu``/``cuda``; defaults to CUDA when available."""
    output_dir: str = "selfamplify_output"
    """Where ``amplified_prompt.json`` and ``results.json`` are written."""


class RunResult(BaseModel):
    """What a run measured (also written to ``results.json``)."""

    format: str = RESULTS_FORMAT
    """File type marker."""
    version: int = 1
    """Layout version."""
    config: RunConfig
    """The settings."""
    model_name: str
    """Name of the model that ran."""
    pool_size: int
    """Examples in the selection pool."""
    io: EvalResult
    """The IO baseline (random demonstrations, no rationale)."""
    self_amplify: EvalResult
    """The amplified prompt."""
    timings: dict[str, float]
    """Seconds per step."""


def run_self_amplify(config: RunConfig, slm: Any | None = None) -> RunResult:
    """Run the whole job and write its outputs into ``config.output_dir``.

    Names and data are checked before the model is loaded; the amplified prompt is
    saved as soon as it exists, before the (long) evaluation.

    Args:
        config: The run's settings.
        slm: An already-loaded model; loaded from ``config.model`` when ``None``.
    """
    get_method(config.method)  # fail on unknown names before any long work
    get_strategy(config.strategy)
    timings: dict[str, float] = {}
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    pool, test = load_pool_and_test(
        config.dataset, pool_split=config.pool_split, test_split=config.test_split,
        pool_size=config.pool_size, test_size=config.test_size, seed=config.seed,
        data_dir=config.data_dir,
    )
    timings["load_data"] = time.perf_counter() - started

    started = time.perf_counter()
    if slm is None:
        kwargs: dict[str, Any] = {"device": config.device, "batch_size": config.batch_size,
                                  "seed": config.seed}
        slm = SLM.from_pretrained(config.model, **kwargs) if config.model else \
            SLM.from_default(**kwargs)
    timings["load_model"] = time.perf_counter() - started

    started = time.perf_counter()
    selector = SelfAmplifySelector(slm=slm, examples=pool, strategy=config.strategy,
                                   n=config.shots, seed=config.seed)
    demos = selector.select()
    timings["selection"] = time.perf_counter() - started

    started = time.perf_counter()
    generator = RationaleGenerator(slm=slm, method=config.method, k=config.k,
                                   n_steps=config.steps)
    explained = generator.explain(demos)
    timings["rationales"] = time.perf_counter() - started

    prompt = AmplifiedPrompt(
        examples=explained,
        metadata={"model": slm.name, "method": config.method, "strategy": config.strategy,
                  "shots": config.shots, "seed": config.seed, "dataset": config.dataset},
    )
    prompt.save(out / "amplified_prompt.json")
    check_context(slm, prompt, test, reserve=config.max_rationale_tokens + 8)

    started = time.perf_counter()
    baseline = evaluate_prompt(slm, io_prompt(pool, config.shots, config.seed), test, "IO")
    timings["evaluate_io"] = time.perf_counter() - started
    started = time.perf_counter()
    amplified = evaluate_prompt(
        slm, prompt, test, f"Self-AMPLIFY ({config.method}, {config.strategy})",
        max_rationale_tokens=config.max_rationale_tokens,
    )
    timings["evaluate_self_amplify"] = time.perf_counter() - started

    result = RunResult(
        config=config, model_name=slm.name or DEFAULT_MODEL_NAME, pool_size=len(pool),
        io=baseline, self_amplify=amplified, timings=timings,
    )
    path = out / "results.json"
    path.write_text(json.dumps(result.model_dump(mode="json"), indent=2) + "\n",
                    encoding="utf-8")
    return result
