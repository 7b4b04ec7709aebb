"""``RationaleGenerator``: the Runnable that explains selected examples (step 2)."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.models.answer_scoring import AnswerFormat
from langchain_selfamplify.rationales.absence import WordAbsence
from langchain_selfamplify.rationales.base import RationaleMethod, get_method
from langchain_selfamplify.strict import reject_unknown_arguments

logger = logging.getLogger(__name__)


class RationaleGenerator(RunnableSerializable[Any, Any]):
    """Explain examples post hoc with the SLM, towards their gold answers.

    Input: a list of :class:`MCQExample` (returns them with ``rationale`` set), or
    the selector's output dict ``{"question": ..., "examples": [...]}`` (returns the
    dict with explained examples). Rationales are cached per example and settings, so
    a chain invoked on many questions explains its demonstrations once.

    Example:
        .. code-block:: python

            rationales = RationaleGenerator(slm=slm, method="deeplift", k=5)
            explained = rationales.invoke(selector.select())
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    slm: Any = Field(exclude=True)
    """The :class:`SLM` that explains (the same model that is amplified)."""
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
    _cache: dict[str, str] = PrivateAttr(default_factory=dict)
    _lock: threading.RLock = PrivateAttr(default_factory=threading.RLock)

    def __init__(self, **kwargs: Any) -> None:
        # Checked before pydantic, which would wrap these errors in a ValidationError.
        reject_unknown_arguments(type(self), kwargs)
        get_method(kwargs.get("method", "ph_cot"))
        super().__init__(**kwargs)

    @model_validator(mode="after")
    def _build_explainer(self) -> RationaleGenerator:
        cls = get_method(self.method)
        kwargs = dict(self.method_kwargs)
        parameters = inspect.signature(cls).parameters
        if "k" in parameters:
            kwargs.setdefault("k", self.k)
        if "n_steps" in parameters:
            kwargs.setdefault("n_steps", self.n_steps)
        self._explainer = cls(self.slm, **kwargs)
        self._explainer.answer_format = self.answer_format
        if self.word_absence != "mask" and cls.needs_gradients:
            raise ValueError(
                f"{self.method} compares the input with a baseline of the same length, so "
                "it cannot delete words; use word_absence='mask', or a perturbation method "
                "(kernelshap, lime, feature_ablation...) to delete them")
        self._explainer.word_absence = self.word_absence
        return self

    @property
    def explainer(self) -> RationaleMethod:
        """The method instance doing the work."""
        return self._explainer

    def explain(
        self,
        examples: Sequence[MCQExample],
        on_chunk: Callable[[list[dict[str, str]]], None] | None = None,
    ) -> list[MCQExample]:
        """The examples with their rationales (computed once per example and settings).

        Examples are explained in batches of ``slm.batch_size`` and each batch is cached
        as soon as it is done, so an error on one example loses no finished batch.

        Args:
            examples: The examples to explain.
            on_chunk: Called with ``{"key": ..., "example_id": ..., "rationale": ...}``
                records of each newly explained batch, e.g. to checkpoint them (reload
                them with :meth:`preload`).
        """
        with self._lock:
            keys = [self._key(ex) for ex in examples]
            todo = [(ex, key) for ex, key in zip(examples, keys, strict=True)
                    if key not in self._cache]
            chunk_size = max(1, getattr(self.slm, "batch_size", 1))
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start : start + chunk_size]
                texts = self._explainer.explain([ex for ex, _ in chunk])
                for (_, key), text in zip(chunk, texts, strict=True):
                    self._cache[key] = text
                if on_chunk is not None:
                    on_chunk([{"key": key, "example_id": ex.id, "rationale": text}
                              for (ex, key), text in zip(chunk, texts, strict=True)])
            return [
                ex.with_rationale(self._cache[key], rationale_method=self.method)
                for ex, key in zip(examples, keys, strict=True)
            ]

    def explain_selection(self, selector: Any) -> tuple[list[MCQExample], list[str]]:
        """Explain a selector's demonstrations, replacing any the method can make no
        rationale for (an unusable Self_topk reply) by the next-ranked example.

        Args:
            selector: A :class:`SelfAmplifySelector`.

        Returns:
            The explained demonstrations and the ids of the skipped examples.

        Raises:
            SelectionError: too few examples remain once the unusable are skipped.
        """
        skipped: list[str] = []
        while True:
            demos = selector.select(exclude=skipped)
            with self._lock:
                keys = [self._key(ex) for ex in demos]
                todo = [ex for ex, key in zip(demos, keys, strict=True) if key not in self._cache]
                unusable = []
                texts = self._explainer.explain_each(todo) if todo else []
                for example, text in zip(todo, texts, strict=True):
                    if text is None:
                        unusable.append(example.id)
                    else:
                        self._cache[self._key(example)] = text
            if not unusable:
                return self.explain(demos), skipped
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

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Explain a list of examples, or the ``"examples"`` of a selector's output."""
        return self._call_with_config(self._explain_input, input, config, run_type="chain")

    def _explain_input(self, input: Any) -> Any:
        if isinstance(input, MCQExample):
            return self.explain([input])[0]
        if isinstance(input, dict) and "examples" in input:
            return {**input, "examples": self.explain(input["examples"])}
        if isinstance(input, list | tuple):
            return self.explain(list(input))
        raise TypeError(
            "expected an MCQExample, a list of them, or a dict with 'examples', "
            f"got {type(input).__name__}"
        )

    def _key(self, example: MCQExample) -> str:
        payload = {
            "method": self.method,
            "settings": self._explainer.settings(),
            "example": example.model_dump(exclude={"rationale", "metadata"}),
            "model": getattr(self.slm, "name", ""),
        }
        blob = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()
