"""``RationaleGenerator``: the Runnable that explains selected examples (step 2)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForChainRun
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from tqdm.auto import tqdm

from langchain_selfamplify.checkpoint import content_key
from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import deprecated_alias, rename_arguments
from langchain_selfamplify.models.backend import BackendField
from langchain_selfamplify.rationales.absence import WordAbsence
from langchain_selfamplify.rationales.base import RationaleMethod, build_method, get_method
from langchain_selfamplify.schemas import ExplainInput
from langchain_selfamplify.stages import stage
from langchain_selfamplify.strict import reject_unknown_arguments
from langchain_selfamplify.wording import AnswerFormat

logger = logging.getLogger(__name__)


class _NoRun:
    """Stands for a child run when there is no run manager."""

    def on_chain_end(self, outputs: Any) -> None:
        """Nothing to report."""


class RationaleGenerator(RunnableSerializable[Any, Any]):
    """Explain examples post hoc with the SLM, towards their gold answers.

    Input: a list of :class:`MCQExample` (returns them with ``rationale`` set), or
    the selector's output dict ``{"question": ..., "examples": [...]}`` (returns the
    dict with explained examples). Rationales are cached per example and settings, so
    a chain invoked on many questions explains its demonstrations once.

    Example:
        .. code-block:: python

            rationales = RationaleGenerator(backend=backend, method="deeplift", k=5)
            explained = rationales.invoke(selector.select())
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid",
                              validate_by_name=True, validate_by_alias=True)

    backend: BackendField = Field(exclude=True)
    """The model that explains (the same model that is amplified): an :class:`SLM` or
    any model backend (a served model runs the generated and perturbation methods);
    ``slm=`` is its deprecated name."""
    method: str = "ph_cot"
    """Registered method name: ``deeplift``, ``kernelshap``, ``self_topk``, ``ph_cot``."""
    k: int = Field(default=5, ge=1)
    """Keywords per rationale for keyword methods. Defaults to 5."""
    n_steps: int = Field(default=3, ge=1)
    """Steps per Ph-CoT rationale. Defaults to 3."""
    method_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra settings of the method (e.g. ``{"n_samples": 500}`` for KernelShap)."""
    answer_format: AnswerFormat = "letter"
    """Answer format of the prompt the rationales go into: attribution methods explain
    the gold label (``"letter"``) or the gold choice's text (``"cloze"``), and keyword
    rationales name it the same way."""
    word_absence: WordAbsence = "mask"
    """How attribution methods take a word out: ``"mask"`` (default: a mask token in
    its place; the gradient methods' baseline) or ``"delete"`` (perturbation methods
    only). See ``rationales/absence.py``."""

    _explainer: RationaleMethod = PrivateAttr()
    _explainer_settings: tuple[Any, ...] | None = PrivateAttr(default=None)
    _cache: dict[str, str] = PrivateAttr(default_factory=dict)
    _in_flight: dict[str, threading.Event] = PrivateAttr(default_factory=dict)
    _lock: threading.RLock = PrivateAttr(default_factory=threading.RLock)

    slm = deprecated_alias("slm", "backend")

    def __init__(self, **kwargs: Any) -> None:
        kwargs = rename_arguments(type(self).__name__, kwargs)
        # Checked before pydantic, which would wrap these errors in a ValidationError.
        reject_unknown_arguments(type(self), kwargs)
        get_method(kwargs.get("method", "ph_cot"))
        super().__init__(**kwargs)

    @model_validator(mode="after")
    def _build_explainer(self) -> RationaleGenerator:
        self._explainer_settings = None
        _ = self.explainer  # fail on bad settings at construction
        return self

    def _settings(self) -> tuple[Any, ...]:
        return (self.method, self.k, self.n_steps,
                json.dumps(self.method_kwargs, sort_keys=True, default=str),
                self.answer_format, self.word_absence, id(self.backend))

    @property
    def explainer(self) -> RationaleMethod:
        """The method instance doing the work, rebuilt when a setting changed since
        (``generator.method = "kernelshap"`` takes effect at once)."""
        with self._lock:
            settings = self._settings()
            if self._explainer_settings != settings:
                explainer = build_method(self.backend, self.method, k=self.k,
                                         n_steps=self.n_steps, answer_format=self.answer_format,
                                         word_absence=self.word_absence,
                                         method_kwargs=self.method_kwargs)
                self._explainer, self._explainer_settings = explainer, settings
            return self._explainer

    def explain(
        self,
        examples: Sequence[MCQExample],
        on_chunk: Callable[[list[dict[str, str]]], None] | None = None,
        *,
        run_manager: CallbackManagerForChainRun | None = None,
    ) -> list[MCQExample]:
        """The examples with their rationales (computed once per example and settings).

        Examples are explained in chunks (the method's
        :meth:`~.base.RationaleMethod.examples_per_chunk`: a batch for batched methods,
        one example for perturbation methods) and each chunk is cached, and handed to
        ``on_chunk``, as soon as it is done, so an error or a stop loses no finished chunk;
        a generated rationale (Ph-CoT, Self_topk) is kept as soon as its reply ends, before
        the rest of its batch. The generator's lock guards only its cache: concurrent
        calls interleave, and an example another call is explaining is waited for, not
        explained twice.

        Args:
            examples: The examples to explain.
            on_chunk: Called with ``{"key": ..., "example_id": ..., "rationale": ...}``
                records of each newly explained chunk (of each rationale, where the
                method makes them one by one), e.g. to checkpoint them (reload them
                with :meth:`preload`).
            run_manager: The calling run, under which each rationale is reported as a
                child run (``rationale:<id>``) to LangChain callbacks and tracing.

        Raises:
            RationaleError: the method could make no rationale for an example.
        """
        texts = self._compute(examples, on_chunk, run_manager, skip_unusable=False)
        return [ex.with_rationale(texts[self._key(ex)], rationale_method=self.method)
                for ex in examples]

    def explain_usable(self, examples: Sequence[MCQExample]
                       ) -> tuple[list[MCQExample], list[str]]:
        """:meth:`explain`, leaving out the examples the method can make no rationale for
        (an unusable Self_topk reply) instead of raising.

        Returns:
            The explained examples, in order, and the ids of those left out.
        """
        texts = self._compute(examples, None, None, skip_unusable=True)
        explained = [ex.with_rationale(texts[self._key(ex)], rationale_method=self.method)
                     for ex in examples if texts[self._key(ex)] is not None]
        return explained, [ex.id for ex in examples if texts[self._key(ex)] is None]

    def _compute(self, examples: Sequence[MCQExample],
                 on_chunk: Callable[[list[dict[str, str]]], None] | None,
                 run_manager: CallbackManagerForChainRun | None,
                 skip_unusable: bool) -> dict[str, str | None]:
        """Key -> rationale (``None`` when unusable and ``skip_unusable``) of every example."""
        explainer = self.explainer
        wanted = {self._key(ex): ex for ex in examples}
        unusable: dict[str, None] = {}
        while True:
            with self._lock:
                missing = [k for k in wanted if k not in self._cache and k not in unusable]
                mine = [k for k in missing if k not in self._in_flight]
                others = [self._in_flight[k] for k in missing if k in self._in_flight]
                for key in mine:
                    self._in_flight[key] = threading.Event()
            if not missing:
                break
            try:
                explainer.check([wanted[k] for k in mine])
                chunk_size = max(1, explainer.examples_per_chunk())
                progress = tqdm(total=len(mine), desc=f"{self.method} rationales", leave=False,
                                disable=not self.backend.show_progress or len(mine) <= chunk_size)
                for start in range(0, len(mine), chunk_size):
                    chunk = mine[start : start + chunk_size]
                    children = self._report_start(run_manager, [wanted[k] for k in chunk])
                    texts = self._explain_chunk(explainer, chunk, wanted, on_chunk,
                                                skip_unusable)
                    with self._lock:
                        for key, text in zip(chunk, texts, strict=True):
                            if text is None:
                                unusable[key] = None
                            self._in_flight.pop(key).set()
                    for child, text in zip(children, texts, strict=True):
                        child.on_chain_end({"rationale": text})
                    progress.update(len(chunk))
                progress.close()
            finally:
                with self._lock:  # on an error, release what this call had claimed
                    for key in mine:
                        event = self._in_flight.pop(key, None)
                        if event is not None:
                            event.set()
            for event in others:
                event.wait()
        with self._lock:
            return {key: self._cache.get(key) for key in wanted}

    def _explain_chunk(self, explainer: RationaleMethod, chunk: list[str],
                       wanted: dict[str, MCQExample],
                       on_chunk: Callable[[list[dict[str, str]]], None] | None,
                       skip_unusable: bool) -> list[str | None]:
        """The rationales of one chunk of keys, each cached and handed to ``on_chunk``
        as soon as the method makes it: a stop mid-batch (a batch of long Ph-CoT
        replies takes minutes) keeps the finished ones.

        Raises:
            RationaleError: an example has no usable rationale and not ``skip_unusable``.
        """
        batch = [wanted[key] for key in chunk]
        kept: set[str] = set()

        def keep(position: int, text: str | None) -> None:
            if text is not None:
                self._keep([(chunk[position], text)], wanted, on_chunk)
                kept.add(chunk[position])

        with stage("demo_rationales"):
            texts = explainer.explain_each(batch, on_each=keep)
        self._keep([(key, text) for key, text in zip(chunk, texts, strict=True)
                    if text is not None and key not in kept], wanted, on_chunk)
        if not skip_unusable:
            explainer.require_usable(batch, texts)
        return texts

    def _keep(self, finished: list[tuple[str, str]], wanted: dict[str, MCQExample],
              on_chunk: Callable[[list[dict[str, str]]], None] | None) -> None:
        """Cache finished ``(key, rationale)`` pairs and hand their records to ``on_chunk``."""
        if not finished:
            return
        with self._lock:
            self._cache.update(finished)
        if on_chunk is not None:
            on_chunk([{"key": key, "example_id": wanted[key].id, "rationale": text}
                      for key, text in finished])

    @staticmethod
    def _report_start(run_manager: CallbackManagerForChainRun | None,
                      batch: Sequence[MCQExample]) -> list[Any]:
        if run_manager is None:
            return [_NoRun() for _ in batch]
        children = run_manager.get_child()
        return [children.on_chain_start({"name": "rationale"}, {"example_id": ex.id},
                                        name=f"rationale:{ex.id}") for ex in batch]

    def explain_selection(self, selector: Any, *,
                          on_chunk: Callable[[list[dict[str, str]]], None] | None = None,
                          run_manager: CallbackManagerForChainRun | None = None
                          ) -> tuple[list[MCQExample], list[str]]:
        """Explain a selector's demonstrations, replacing any the method can make no
        rationale for (an unusable Self_topk reply) by the next-ranked example.

        Args:
            selector: A :class:`SelfAmplifySelector`.
            on_chunk: Called with each finished chunk's records, as :meth:`explain`'s
                (a checkpoint that :meth:`preload` reads back). Defaults to none.
            run_manager: The calling run, for callbacks (see :meth:`explain`).

        Returns:
            The explained demonstrations and the ids of the skipped examples.

        Raises:
            SelectionError: too few examples remain once the unusable are skipped.
        """
        skipped: list[str] = []
        while True:
            demos = selector.select(exclude=skipped)
            texts = self._compute(demos, on_chunk, run_manager, skip_unusable=True)
            unusable = [ex.id for ex in demos if texts[self._key(ex)] is None]
            if not unusable:
                return [ex.with_rationale(texts[self._key(ex)], rationale_method=self.method)
                        for ex in demos], skipped
            logger.warning("%s: no rationale for example(s) %s; taking the next-ranked ones",
                           self.method, ", ".join(unusable))
            skipped += unusable

    def preload(self, records: Iterable[dict[str, str]]) -> int:
        """Reuse rationales from :meth:`explain`'s ``on_chunk`` records; returns the count.

        Records are keyed by method, settings, model and example content, so a record
        written under other settings is never reused.
        """
        with self._lock:
            count = 0
            for record in records:
                if isinstance(record.get("key"), str) and isinstance(record.get("rationale"),
                                                                     str):
                    self._cache[record["key"]] = record["rationale"]
                    count += 1
            return count

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """Examples, a selector's output, or one example."""
        return ExplainInput

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """The same shape as the input, the examples explained."""
        return ExplainInput

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Explain a list of examples, or the ``"examples"`` of a selector's output."""
        return self._call_with_config(self._explain_input, input, config, run_type="chain")

    def _explain_input(self, input: Any, run_manager: CallbackManagerForChainRun) -> Any:
        if isinstance(input, MCQExample):
            return self.explain([input], run_manager=run_manager)[0]
        if isinstance(input, dict) and "examples" in input:
            return {**input, "examples": self.explain(input["examples"],
                                                      run_manager=run_manager)}
        if isinstance(input, list | tuple):
            return self.explain(list(input), run_manager=run_manager)
        raise TypeError(
            "expected an MCQExample, a list of them, or a dict with 'examples', "
            f"got {type(input).__name__}"
        )

    def _key(self, example: MCQExample) -> str:
        return content_key({
            "method": self.method,
            "settings": self.explainer.settings(),
            "example": example.model_dump(exclude={"rationale", "metadata"}),
            "model": self.backend.name,
        })
