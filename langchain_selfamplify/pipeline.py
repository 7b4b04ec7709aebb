"""The main job: select, explain, build the amplified prompt, compare it with IO.

``selfamplify run`` is a thin shell around :func:`run_self_amplify`, so notebooks and
scripts get the same job with the same outputs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from langchain_selfamplify.amplify import amplify
from langchain_selfamplify.baselines.io import io_prompt
from langchain_selfamplify.checkpoint import guard_resume
from langchain_selfamplify.data.loaders import load_pool_and_test
from langchain_selfamplify.deprecation import accepts_renamed_arguments
from langchain_selfamplify.errors import PromptFileError
from langchain_selfamplify.evaluation.budget import check_context
from langchain_selfamplify.evaluation.checkpointed import answer_with_checkpoint
from langchain_selfamplify.evaluation.predict import (
    EvalResult,
    check_answer_options,
    summarize_predictions,
)
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.models.embedded import DEFAULT_MODEL_NAME
from langchain_selfamplify.models.factory import check_backend_source, load_backend
from langchain_selfamplify.rationales.base import get_method
from langchain_selfamplify.selection.strategies import get_strategy
from langchain_selfamplify.settings import AmplifySettings
from langchain_selfamplify.stages import measure_stages
from langchain_selfamplify.strict import StrictModel

logger = logging.getLogger(__name__)

RESULTS_FORMAT = "langchain-selfamplify/run-results"
"""The ``format`` field of ``results.json``."""


class RunConfig(AmplifySettings):
    """Settings of one Self-AMPLIFY run (the options of ``selfamplify run``); the shared
    ones are in :class:`~langchain_selfamplify.settings.AmplifySettings`."""

    model: str | None = None
    """Embedded model (``smollm2-135m``, ``gemma3-270m``), HF id, local directory or
    ``.gguf`` file; ``None`` for the embedded default."""
    base_url: str | None = None
    """OpenAI-compatible API root of a served model (``http://host:port/v1``); when set,
    ``model`` is not loaded."""
    served_model: str | None = None
    """The served model's name (with ``base_url``)."""
    tokenizer: str | None = None
    """The served model's tokenizer (Hub id, directory or ``.gguf`` file), for its chat
    template and token counts (with ``base_url``)."""
    dataset: str = "demo"
    """Registered dataset name, file path or Hub id. Defaults to the bundled demo set."""
    pool_split: str = "train"
    """Split to select demonstrations from."""
    test_split: str = "test"
    """Split to measure accuracy on."""
    method: str = "ph_cot"
    """Rationale method."""
    strategy: str = "success"
    """Selection strategy."""
    test_size: int | None = Field(default=64, ge=1)
    """Number of test questions (the first of the test split). Defaults to 64."""
    batch_size: int = Field(default=16, ge=1)
    """Most prompts per forward pass (fewer when their tokens pass the memory bound)."""
    seed: int = 0
    """Seed of every random choice."""
    device: str | None = None
    """``cpu``/``cuda``; defaults to CUDA when available."""
    output_dir: str = "selfamplify_output"
    """Where ``amplified_prompt.json`` and ``results.json`` are written."""


class RunResult(StrictModel):
    """What a run measured: ``results.json``, byte-identical for the same seed, model and data.

    Timings live apart, in ``timings.json``, so they do not break that guarantee.
    """

    format: Literal["langchain-selfamplify/run-results"] = "langchain-selfamplify/run-results"
    """File type marker."""
    version: Literal[1] = 1
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
    timings: dict[str, float] = Field(default_factory=dict, exclude=True)
    """Seconds per step of this process (written to ``timings.json``)."""

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunResult:
        """Read and validate a ``results.json``.

        Raises:
            PromptFileError: the file is unreadable, of another format or version, or
                has invalid fields.
        """
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValidationError) as exc:
            raise PromptFileError(f"{path}: not a valid run results file ({exc})") from exc


@accepts_renamed_arguments
def run_self_amplify(config: RunConfig, backend: ModelBackend | None = None, *,
                     overwrite: bool = False) -> RunResult:
    """Run the whole job and write its outputs into ``config.output_dir``.

    Every input (method, strategy, model path, dataset and its rows, answer format,
    output directory) is checked before any checkpoint is touched and before the model
    is loaded. Every finished unit is checkpointed under ``output_dir/checkpoint``
    (pool scores per chunk, rationales per batch, predictions per chunk); rerunning the
    same configuration after an interruption, even a SIGKILL, redoes none of them and
    gives the same results. The amplified prompt is saved as soon as it exists, before
    the evaluation.

    Args:
        config: The run's settings.
        backend: An already-loaded model; loaded from ``config.model`` when ``None``.
        overwrite: When ``output_dir`` holds a run with other settings, move it aside
            (into ``output_dir/previous-<timestamp>/``, never deleted) and start
            afresh. Without it such a directory is refused.

    Raises:
        SelfAmplifyError: a bad input, or ``output_dir`` holds a run with other settings
            (and ``overwrite`` is off); nothing has been written then.
    """
    get_method(config.method)  # fail on unknown names before any long work
    get_strategy(config.strategy)
    if backend is None:
        check_backend_source(config.model, base_url=config.base_url,
                             tokenizer=config.tokenizer)
    timings: dict[str, float] = {}
    out = Path(config.output_dir)

    started = time.perf_counter()
    pool, test = load_pool_and_test(
        config.dataset, pool_split=config.pool_split, test_split=config.test_split,
        pool_size=config.pool_size, test_size=config.test_size, seed=config.seed,
        data_dir=config.data_dir,
    )
    timings["load_data"] = time.perf_counter() - started
    check_answer_options(config.answer_format, [*pool, *test])
    checkpoint = _checkpoint_dir(out, config, overwrite)

    started = time.perf_counter()
    if backend is None:
        kwargs: dict[str, Any] = {"device": config.device, "batch_size": config.batch_size,
                                  "seed": config.seed}
        backend = load_backend(config.model, base_url=config.base_url,
                               served_model=config.served_model, tokenizer=config.tokenizer,
                               **kwargs)
    timings["load_model"] = time.perf_counter() - started

    # The grid's select-and-explain step: an example the method can make no rationale
    # for (an unusable Self_topk reply) is replaced by the next-ranked one and recorded.
    with measure_stages() as stages:
        prompt, _ = amplify(backend, pool, method=config.method, strategy=config.strategy,
                            shots=config.shots, k=config.k, steps=config.steps,
                            seed=config.seed, answer_format=config.answer_format,
                            balance_labels=config.balance_labels, store=checkpoint)
    timings["rationales"] = stages.seconds.get("demo_rationales", 0.0)
    timings["selection"] = sum(stages.seconds.values()) - timings["rationales"]
    prompt.metadata = {"model": backend.name, **prompt.metadata, "shots": config.shots,
                       "seed": config.seed, "dataset": config.dataset}
    prompt.save(out / "amplified_prompt.json")
    # Fails now, naming it, if a test question cannot fit even alone; questions too long
    # for the full prompt get fewer demonstrations, with a warning.
    check_context(backend, prompt, test, reserve=config.max_rationale_tokens + 8,
                  on_overflow="drop")

    started = time.perf_counter()
    baseline = summarize_predictions(answer_with_checkpoint(
        backend, io_prompt(pool, config.shots, config.seed, answer_format=config.answer_format,
                           balance=config.balance_labels), test, checkpoint / "io.jsonl",
        desc="IO baseline", on_overflow="drop"), "IO")
    timings["evaluate_io"] = time.perf_counter() - started
    started = time.perf_counter()
    amplified = summarize_predictions(answer_with_checkpoint(
        backend, prompt, test, checkpoint / "self_amplify.jsonl", desc="Self-AMPLIFY",
        max_rationale_tokens=config.max_rationale_tokens, on_overflow="drop",
    ), f"Self-AMPLIFY ({config.method}, {config.strategy})")
    timings["evaluate_self_amplify"] = time.perf_counter() - started

    result = RunResult(
        config=config, model_name=backend.name or DEFAULT_MODEL_NAME, pool_size=len(pool),
        io=baseline, self_amplify=amplified, timings=timings,
    )
    _write_json(out / "results.json", result.model_dump(mode="json"))
    _write_json(out / "timings.json", timings)
    return result


RUN_OUTPUTS = ("checkpoint", "amplified_prompt.json", "results.json", "timings.json")
"""What a run writes into its output directory (moved aside together by ``overwrite``)."""


def _checkpoint_dir(out: Path, config: RunConfig, overwrite: bool) -> Path:
    """The checkpoint folder of ``config``: resumed when it holds the same settings;
    refused, or with ``overwrite`` moved aside with the run's outputs, when not."""
    checkpoint = out / "checkpoint"
    # Unset served-model options are left out, so local runs keep their earlier marker.
    served = {"base_url", "served_model", "tokenizer"} if config.base_url is None else set()
    settings = config.model_dump(mode="json",
                                 exclude={"output_dir", "device", "batch_size", *served})
    marker = checkpoint / "config.json"
    guard_resume(out, marker, settings, outputs=RUN_OUTPUTS, started=checkpoint.exists(),
                 overwrite=overwrite, what="a run")
    checkpoint.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings, sort_keys=True), encoding="utf-8")
    return checkpoint


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)  # atomic: a kill never leaves a half-written file
