"""DSPy's own few-shot optimisers as baseline rows: BootstrapFewShot and LabeledFewShot.

What a practitioner picks instead of Self-AMPLIFY: ``dspy.ChainOfThought`` over a
multiple-choice signature, compiled with ``dspy.BootstrapFewShot`` on the same pool
that Self-AMPLIFY selects from. The optimiser runs the program (its teacher holds
``shots`` labelled examples) over the pool in order and keeps the traces whose answer
is the gold label, up to ``shots`` of them; when fewer pass, random labelled examples
fill the rest. That is success selection with a chain of thought written before the
answer, where Self-AMPLIFY writes its rationale after, towards the known answer.
``LabeledFewShot`` (``dspy_labeled``) is DSPy's no-model baseline: ``shots`` random
labelled examples.

DSPy's optimiser runs unchanged, on this project's backend (:mod:`.dspy_lm`). Its
compiled demonstrations (question, reasoning, answer) become an
:class:`~langchain_selfamplify.prompting.amplified.AmplifiedPrompt`, so the row is
answered, scored and compared exactly as every other row.
:func:`program_from_prompt` rebuilds the compiled program from that prompt, and
:func:`program_predictions` measures the program's own accuracy (its prompt and its
parsing) on the same questions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from langchain_selfamplify.baselines.dspy_lm import (
    DEFAULT_MAX_NEW_TOKENS,
    batched_replies,
    dspy_lm,
    engine_of,
    require_dspy,
    run_with_prefetch,
)
from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import accepts_renamed_arguments
from langchain_selfamplify.models.backend import ModelBackend
from langchain_selfamplify.models.chat_format import Prompt
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.prompting.messages import question_text
from langchain_selfamplify.prompting.parsing import parse_answer
from langchain_selfamplify.wording import AnswerFormat

DSPY_METHODS = {"dspy_bootstrap": "bootstrap", "dspy_labeled": "labeled"}
"""The DSPy baseline rows and the selection each stands for (the grid's strategy)."""


@cache
def multiple_choice_signature() -> Any:
    """The DSPy signature of a multiple-choice question (built once DSPy is imported)."""
    dspy = require_dspy()

    class MultipleChoice(dspy.Signature):  # type: ignore[misc, name-defined]
        """Answer the multiple-choice question with the label of the correct option."""

        question: str = dspy.InputField(desc="the question and its labelled options")
        answer: str = dspy.OutputField(desc="the label of the correct option, e.g. B")

    return MultipleChoice


def chain_of_thought() -> Any:
    """An uncompiled ``dspy.ChainOfThought`` over :func:`multiple_choice_signature`."""
    return require_dspy().ChainOfThought(multiple_choice_signature())


def failed_trace() -> str:
    """A reply in DSPy's chat format whose answer is no label: a trace the metric
    rejects, without the JSON-adapter retry an unparseable reply costs."""
    signature = chain_of_thought().predictors()[0].signature
    return require_dspy().ChatAdapter().format_assistant_message_content(
        signature, {}, missing_field_message="-")


def to_dspy_example(question: MCQExample) -> Any:
    """A pool question as a ``dspy.Example``: ``question`` (the rendered question, the
    input) and ``answer`` (the gold label); ``id`` ties a demonstration back to it."""
    dspy = require_dspy()
    return dspy.Example(id=question.id, question=question_text(question),
                        answer=question.answer).with_inputs("question")


def answer_label(answer: object, question: MCQExample) -> str | None:
    """The label a DSPy answer field commits to (``"B"``, ``"(B)"``, ``"B) text"``, the
    choice text), or ``None``."""
    return parse_answer(answer, question.labels, list(question.choices.values()))


class DSPyBaseline:
    """DSPy's BootstrapFewShot (``bootstrap=True``) or LabeledFewShot as a prompt builder.

    Args:
        backend: The model backend the program runs on.
        n: Demonstrations (``max_bootstrapped_demos = max_labeled_demos = n``).
        seed: Seed of the pool's order (the optimiser walks it in order).
        answer_format: Answer format of the built prompt. Defaults to ``"letter"``.
        bootstrap: BootstrapFewShot; ``False`` for LabeledFewShot. Defaults to True.
        max_new_tokens: Token cap of each program reply. Defaults to 512.
        prefetch: Bootstrapping replies generated together, ahead of the optimiser's
            one-at-a-time requests (:func:`~.dspy_lm.run_with_prefetch`): the same
            program, in a fraction of the decoding steps, for up to ``prefetch - 1``
            replies the optimiser never reads. ``0`` answers each request as it comes.
            Defaults to ``2 * n``.
    """

    @accepts_renamed_arguments
    def __init__(self, backend: ModelBackend, n: int, seed: int = 0,
                 answer_format: AnswerFormat = "letter", bootstrap: bool = True,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 prefetch: int | None = None) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if prefetch is not None and prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        self.backend, self.n, self.seed = backend, n, seed
        self.answer_format: AnswerFormat = answer_format
        self.bootstrap = bootstrap
        self.max_new_tokens = max_new_tokens
        self.prefetch = 2 * n if prefetch is None else prefetch

    @property
    def method(self) -> str:
        """The row's name: ``dspy_bootstrap`` or ``dspy_labeled``."""
        return "dspy_bootstrap" if self.bootstrap else "dspy_labeled"

    def compile(self, pool: Sequence[MCQExample], *,
                written: Iterable[Mapping[str, str]] = (),
                on_written: Callable[[list[dict[str, str]]], None] | None = None,
                ) -> tuple[Any, dict[str, Any]]:
        """The compiled program and its cost: ``model_calls`` (the optimiser's
        requests), ``replies_generated`` and ``model_seconds``.

        Args:
            pool: The labelled pool the optimiser bootstraps from.
            written: Reply records of an earlier compile (``on_written``'s), reused
                where their key matches: same model, prompt, cap and stops. Defaults
                to none. Used with prefetching only (the default).
            on_written: Called with each new ``{"key", "reply"}`` record as soon as its
                reply ends, e.g. to checkpoint it. Defaults to none.
        """
        dspy = require_dspy()
        trainset = [to_dspy_example(q) for q in pool]
        random.Random(self.seed).shuffle(trainset)
        by_id = {q.id: q for q in pool}

        def exact_label(example: Any, prediction: Any, trace: Any = None) -> bool:
            return answer_label(prediction.answer, by_id[example.id]) == example.answer

        def compiled(lm: Any) -> Any:
            if self.bootstrap:
                # A reply DSPy cannot parse counts as an error; one per pool item is
                # allowed, so a model that never follows the format falls back to
                # labelled examples instead of stopping the optimiser.
                optimizer = dspy.BootstrapFewShot(
                    metric=exact_label, max_bootstrapped_demos=self.n,
                    max_labeled_demos=self.n, max_rounds=1, max_errors=len(trainset) + 1)
            else:
                optimizer = dspy.LabeledFewShot(k=self.n)
            with dspy.context(lm=lm):
                return optimizer.compile(chain_of_thought(), trainset=trainset)

        if self.bootstrap and self.prefetch:
            # BootstrapFewShot's prompt for a pool item holds the teacher's labelled
            # examples, never an earlier reply, so its requests can be answered in
            # batches with the same result.
            return run_with_prefetch(self.backend, compiled, batch=self.prefetch,
                                     placeholder=failed_trace(), desc="DSPy bootstrap replies",
                                     max_new_tokens=self.max_new_tokens,
                                     written={r["key"]: r["reply"] for r in written},
                                     on_written=on_written)
        lm = dspy_lm(self.backend, self.max_new_tokens)
        program = compiled(lm)
        engine = engine_of(lm)
        return program, {"model_calls": engine.calls, "replies_generated": engine.calls,
                         "model_seconds": engine.seconds}

    def build(self, pool: Sequence[MCQExample], *,
              written: Iterable[Mapping[str, str]] = (),
              on_written: Callable[[list[dict[str, str]]], None] | None = None,
              ) -> AmplifiedPrompt:
        """Compile on ``pool`` and return the demonstrations as a prompt.

        The prompt's metadata records how many demonstrations are bootstrapped traces
        and how many are labelled fill, ``fallback`` when no trace passed (the row is
        then DSPy's labelled examples only), and the optimiser's model calls and seconds.
        ``written`` and ``on_written`` checkpoint the optimiser's replies, as
        :meth:`compile`'s.
        """
        program, cost = self.compile(pool, written=written, on_written=on_written)
        by_id = {q.id: q for q in pool}
        by_text = {question_text(q): q for q in pool}
        examples = []
        for demo in program.predictors()[0].demos:
            source = by_id.get(demo.get("id")) or by_text[demo["question"]]
            reasoning = demo.get("reasoning") if demo.get("augmented") else None
            examples.append(source.with_rationale(reasoning, method=self.method)
                            if reasoning else source)
        bootstrapped = sum(ex.rationale is not None for ex in examples)
        return AmplifiedPrompt(examples=examples, answer_format=self.answer_format, metadata={
            "method": self.method, "strategy": DSPY_METHODS[self.method],
            "bootstrapped": bootstrapped, "labeled": len(examples) - bootstrapped,
            "fallback": self.bootstrap and bootstrapped == 0, **cost})


def program_from_prompt(prompt: AmplifiedPrompt) -> Any:
    """The compiled ``ChainOfThought`` whose demonstrations are ``prompt``'s: a
    demonstration with a rationale is a bootstrapped trace (question, reasoning,
    answer), one without is a labelled example."""
    dspy = require_dspy()
    program = chain_of_thought()
    demos = []
    for example in prompt.examples:
        fields = {"question": question_text(example), "answer": example.answer}
        if example.rationale:
            demos.append(dspy.Example(augmented=True, reasoning=example.rationale, **fields))
        else:
            demos.append(dspy.Example(id=example.id, **fields))
    program.predictors()[0].demos = demos
    return program


def program_prompts(backend: ModelBackend, program: Any,
                    questions: Sequence[MCQExample]) -> list[Prompt]:
    """The prompt text the program sends for each question (DSPy's chat adapter, the
    backend's chat template)."""
    dspy = require_dspy()
    predictor = program.predictors()[0]
    adapter = dspy.ChatAdapter()
    return [backend.format_prompt(adapter.format(predictor.signature, predictor.demos,
                                                 {"question": question_text(q)}))
            for q in questions]


def program_predictions(backend: ModelBackend, program: Any, questions: Sequence[MCQExample],
                        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                        desc: str | None = None) -> list[dict[str, Any]]:
    """The program's own answers: its prompts (DSPy's chat adapter), one batched
    generation, its parser. A reply DSPy cannot parse is an unanswered question.

    Returns:
        One record per question: ``question_id``, ``gold``, ``parsed``, ``correct``,
        ``raw_output``.
    """
    adapter = require_dspy().ChatAdapter()
    signature = program.predictors()[0].signature
    replies = batched_replies(backend, program_prompts(backend, program, questions), max_new_tokens,
                              desc=desc)
    records = []
    for question, reply in zip(questions, replies, strict=True):
        try:
            parsed = answer_label(adapter.parse(signature, reply).get("answer"), question)
        except Exception:  # DSPy's AdapterParseError and kin: the reply has no answer field
            parsed = None
        records.append({"question_id": question.id, "gold": question.answer,
                        "parsed": parsed, "correct": parsed == question.answer,
                        "raw_output": reply})
    return records
