"""``SelfAmplifySelector``: pick demonstrations from the SLM's own predictions."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForChainRun
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import deprecated_alias, rename_arguments
from langchain_selfamplify.errors import SelectionError
from langchain_selfamplify.models.answer_formats import score_answers
from langchain_selfamplify.models.backend import BackendField, ModelBackend, require
from langchain_selfamplify.prompting.messages import (
    escape_braces,
    template_example,
    zero_shot_prompt,
)
from langchain_selfamplify.schemas import DemonstrationsOutput, QuestionInput
from langchain_selfamplify.selection.balance import balance_labels
from langchain_selfamplify.selection.strategies import ScoredExample, get_strategy
from langchain_selfamplify.stages import stage
from langchain_selfamplify.strict import reject_unknown_arguments
from langchain_selfamplify.wording import AnswerFormat, answer_prefix


class SelfAmplifySelector(BaseExampleSelector, RunnableSerializable[Any, dict[str, Any]]):
    """Select ``n`` demonstrations from a labelled pool by the SLM's own predictions.

    Strategies (Self-AMPLIFY, step 1):

    * ``"success"``: examples the model answers correctly, most confident first;
    * ``"error"``: examples it gets wrong, largest ``p(predicted) - p(gold)`` first;
    * ``"random"``: a seeded random sample (no model call).

    The pool is scored once, zero-shot and batched, and cached. As a LangChain
    ``BaseExampleSelector`` it returns example dicts; as a ``Runnable`` it maps
    ``{"question": ...}`` to ``{"question": ..., "examples": [MCQExample, ...]}``,
    ready for :class:`RationaleGenerator` and :class:`AmplifiedPrompt`.

    Example:
        .. code-block:: python

            selector = SelfAmplifySelector(backend=backend, examples=pool, strategy="success", n=8)
            demos = selector.select()
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid",
                              validate_by_name=True, validate_by_alias=True)

    backend: BackendField | None = Field(exclude=True)
    """The model whose predictions drive selection: an :class:`SLM` or any model backend
    (:class:`~langchain_selfamplify.models.backend.ModelBackend`, e.g. a served model);
    ``None`` for random selection. The success and error strategies need its label
    log-probabilities. (``slm=`` is its deprecated name.)"""
    examples: list[MCQExample]
    """The labelled pool to select from."""
    strategy: str = "success"
    """``"success"``, ``"error"`` or ``"random"``. Defaults to ``"success"``."""
    n: int = Field(default=8, ge=1)
    """Number of demonstrations. Defaults to 8."""
    seed: int = 0
    """Seed for random selection and tie-breaking. Defaults to 0."""
    answer_format: AnswerFormat = "letter"
    """How the pool is scored: the labels after ``"The answer is ("`` (``"letter"``,
    default) or the choice texts after ``"The answer is:"`` (``"cloze"``)."""
    balance_labels: bool = False
    """Re-order the selected demonstrations' choices so their gold labels are spread
    evenly (see :func:`balance_labels`). Defaults to False."""
    rationales: Any = Field(default=None, exclude=True)
    """A :class:`RationaleGenerator`: when set, :meth:`select_examples` (the hook of
    LangChain's few-shot templates), :meth:`aselect_examples` and :meth:`invoke` return
    the demonstrations *with* their rationales (Self-AMPLIFY's step 2), computed once and
    cached. Without it they return plain labelled examples (IO prompting)."""
    escape_braces: bool = False
    """Double ``{`` and ``}`` in the dicts :meth:`select_examples` returns. Set it for
    ``FewShotPromptTemplate``, which formats the joined examples a second time (a brace
    in a demonstration would break it); leave it off for
    ``FewShotChatMessagePromptTemplate``, which inserts them once. Defaults to False."""

    _scores: dict[str, ScoredExample] = PrivateAttr(default_factory=dict)
    _selection: tuple[tuple[Any, ...], list[MCQExample]] | None = PrivateAttr(default=None)
    _lock: threading.RLock = PrivateAttr(default_factory=threading.RLock)
    _skipped: list[str] = PrivateAttr(default_factory=list)

    slm = deprecated_alias("slm", "backend")

    def __init__(self, **kwargs: Any) -> None:
        kwargs = rename_arguments(type(self).__name__, kwargs)
        # Checked before pydantic, which would wrap these errors in a ValidationError.
        reject_unknown_arguments(type(self), kwargs)
        get_strategy(kwargs.get("strategy", "success"))
        super().__init__(**kwargs)
        if get_strategy(self.strategy) is not None:  # success/error rank by the model's scores
            needed = "label_log_probs" if self.answer_format == "letter" \
                else "continuation_log_probs"
            instead = ("strategy='random' needs no scores." if needed == "label_log_probs"
                       else "Use answer_format='letter', or strategy='random' (no scores).")
            require(self.scorer, needed, f"strategy={self.strategy!r} with answer_format="
                    f"{self.answer_format!r}", instead)
        if self.rationales is not None:
            from langchain_selfamplify.rationales.generator import RationaleGenerator

            if not isinstance(self.rationales, RationaleGenerator):
                raise TypeError("rationales must be a RationaleGenerator, not "
                                f"{type(self.rationales).__name__}")

    @field_validator("examples")
    @classmethod
    def _non_empty_pool(cls, value: list[MCQExample]) -> list[MCQExample]:
        if not value:
            raise ValueError("the example pool is empty")
        ids = [ex.id for ex in value]
        if len(set(ids)) != len(ids):
            raise ValueError("example ids in the pool must be unique")
        return value

    # --------------------------------------------------------------- scoring
    @property
    def scorer(self) -> ModelBackend:
        """:attr:`backend`, which scoring the pool needs.

        Raises:
            SelectionError: no backend was given.
        """
        if self.backend is None:
            raise SelectionError(f"strategy={self.strategy!r} ranks the pool by the model's "
                                 "predictions; pass backend= (only 'random' needs none)")
        return self.backend

    def score_pool(
        self, on_chunk: Callable[[list[ScoredExample]], None] | None = None
    ) -> list[ScoredExample]:
        """The model's zero-shot prediction on every pool example (computed once).

        Only examples not scored yet go to the model, so adding examples or
        recovering from an interruption (see :meth:`preload_scores`) never redoes
        finished work.

        Args:
            on_chunk: Called with each newly scored chunk (64 examples), e.g. to
                checkpoint it.
        """
        with self._lock, stage("pool_scoring"):
            todo = [ex for ex in self.examples if ex.id not in self._scores]
            for start in range(0, len(todo), 64):
                chunk = todo[start : start + 64]
                prefix = answer_prefix(self.answer_format)
                prompts = [zero_shot_prompt(self.scorer, ex, prefix) for ex in chunk]
                scores = score_answers(
                    self.scorer, prompts, [ex.choices for ex in chunk], self.answer_format,
                    desc=f"Scoring pool ({start + len(chunk)}/{len(todo)})",
                )
                scored = [
                    ScoredExample(example=ex, predicted=score.predicted,
                                  probs=dict(zip(score.labels, score.probs, strict=True)))
                    for ex, score in zip(chunk, scores, strict=True)
                ]
                for item in scored:
                    self._scores[item.example.id] = item
                if on_chunk is not None:
                    on_chunk(scored)
            return [self._scores[ex.id] for ex in self.examples]

    def preload_scores(self, scored: Iterable[ScoredExample]) -> int:
        """Reuse scores computed earlier (same model and pool); returns how many were kept.

        Scores of examples no longer in the pool, or whose content changed, are ignored.
        """
        pool = {ex.id: ex for ex in self.examples}
        kept = 0
        with self._lock:
            for item in scored:
                if pool.get(item.example.id) == item.example:
                    self._scores[item.example.id] = item
                    kept += 1
        return kept

    # --------------------------------------------------------------- selection
    def select(self, exclude: Iterable[str] = ()) -> list[MCQExample]:
        """The ``n`` demonstrations for the configured strategy (label-balanced when
        :attr:`balance_labels` is set).

        Args:
            exclude: Ids of pool examples not to select (e.g. ones no rationale could be
                made for); the next-ranked examples take their place.

        Raises:
            SelectionError: fewer than ``n`` pool examples qualify.
        """
        chosen = self._ranked_selection(set(exclude))
        return balance_labels(chosen) if self.balance_labels else chosen

    def _ranked_selection(self, exclude: set[str]) -> list[MCQExample]:
        rng = random.Random(self.seed)
        rank = get_strategy(self.strategy)
        if rank is None:
            candidates = [ex for ex in self.examples if ex.id not in exclude]
            if len(candidates) < self.n:
                raise SelectionError(
                    f"strategy 'random' needs n={self.n} examples; the pool has "
                    f"{len(candidates)}{' not excluded' if exclude else ''}."
                )
            return rng.sample(candidates, self.n)
        ranked = [item for item in rank(self.score_pool(), rng)
                  if item.example.id not in exclude]
        if len(ranked) < self.n:
            what = "answers correctly" if self.strategy == "success" else "gets wrong"
            raise SelectionError(
                f"strategy {self.strategy!r} needs n={self.n} examples the model {what}; "
                f"the pool of {len(self.examples)} has only {len(ranked)}. Use a larger pool, "
                "a smaller n, or another strategy. (The pool scores are cached on the selector.)"
            )
        return [item.example for item in ranked[: self.n]]

    # --------------------------------------------------------------- LangChain API
    def amplified_examples(self, run_manager: CallbackManagerForChainRun | None = None
                           ) -> list[MCQExample]:
        """The demonstrations, explained by :attr:`rationales` when set (computed once
        per settings; :meth:`add_example` starts afresh).

        Args:
            run_manager: The calling run: selection and each rationale are reported
                under it as child runs (``selection``, ``rationale:<id>``).
        """
        settings = (self.strategy, self.n, self.seed, self.answer_format,
                    self.balance_labels, id(self.rationales), len(self.examples))
        with self._lock:
            if self._selection is None or self._selection[0] != settings:
                child = None if run_manager is None else run_manager.get_child().on_chain_start(
                    {"name": "selection"}, {"strategy": self.strategy, "n": self.n},
                    name="selection")
                skipped: list[str] = []
                if self.rationales is None:
                    chosen = self.select()
                else:
                    chosen, skipped = self.rationales.explain_selection(self, run_manager=child)
                self._skipped = skipped
                if child is not None:
                    child.on_chain_end({"examples": [ex.id for ex in chosen],
                                        "skipped": skipped})
                self._selection = (settings, chosen)
            return list(self._selection[1])

    @property
    def skipped(self) -> list[str]:
        """Ids of selected examples replaced by the next-ranked ones in the last
        explained selection, because the method could make no rationale for them (an
        unusable Self_topk reply)."""
        return list(self._skipped)

    def add_example(self, example: dict[str, Any] | MCQExample) -> None:
        """Add an example to the pool; it is scored on the next selection, which is
        computed afresh.

        Args:
            example: An :class:`MCQExample`, its fields as a dict, or a dict that
                :meth:`select_examples` returned (a round trip; its rationale is dropped,
                as pool examples are explained when selected).
        """
        if isinstance(example, MCQExample):
            item = example
        elif isinstance(example, dict) and isinstance(example.get("example"), dict):
            item = MCQExample.model_validate(example["example"]).with_rationale(None)
        else:
            item = MCQExample(**example)
        with self._lock:
            if any(ex.id == item.id for ex in self.examples):
                raise ValueError(f"an example with id {item.id!r} is already in the pool")
            self.examples.append(item)
            self._selection = None

    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """Selected demonstrations as dicts for LangChain few-shot templates.

        Each dict has ``question`` (the rendered question), ``answer`` (the assistant
        turn: rationale, when :attr:`rationales` is set, then the answer line), ``label``,
        ``id`` and ``example`` (the demonstration's fields, which :meth:`add_example`
        takes back). Self-AMPLIFY's selection does not depend on the input question.
        """
        rows = []
        for ex in self.amplified_examples():
            shown = template_example(ex, self.answer_format)
            if self.escape_braces:
                shown = {key: escape_braces(value) for key, value in shown.items()}
            rows.append({**shown, "id": ex.id, "label": ex.answer,
                         "example": ex.model_dump(mode="json")})
        return rows

    async def aselect_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        """:meth:`select_examples` in an executor thread (model calls block)."""
        return await run_in_executor(None, self.select_examples, input_variables)

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """``{"question": ...}`` (other keys pass through)."""
        return QuestionInput

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """``{"question": ..., "examples": [MCQExample, ...]}``."""
        return DemonstrationsOutput

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """``{"question": ...}`` (or a string / MCQExample) -> adds ``"examples"``."""
        return self._call_with_config(self._attach_examples, input, config, run_type="chain")

    def _attach_examples(self, input: Any, run_manager: CallbackManagerForChainRun
                         ) -> dict[str, Any]:
        payload = as_question_payload(input)
        payload["examples"] = self.amplified_examples(run_manager)
        return payload

    @property
    def scored_pool(self) -> Sequence[ScoredExample]:
        """Scores computed so far (empty before the first selection)."""
        return list(self._scores.values())


def as_question_payload(input: Any) -> dict[str, Any]:
    """Normalise a chain input to a dict with a ``"question"`` key."""
    if isinstance(input, str | MCQExample):
        return {"question": input}
    if isinstance(input, dict) and "question" in input:
        return dict(input)
    raise TypeError(
        "expected a question string, an MCQExample or a dict with a 'question' key, "
        f"got {type(input).__name__}"
    )
