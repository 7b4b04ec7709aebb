"""Rationale methods: the base class and the registry they register into.

Each method is one class in one module, registered by name with
:func:`register_method` (the way inseq registers attribution methods): adding a
method is adding a file and importing it in ``rationales/__init__.py``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.deprecation import accepts_renamed_arguments, deprecated_alias
from langchain_selfamplify.errors import BackendCapabilityError, RationaleError, UnknownNameError
from langchain_selfamplify.models.backend import ModelBackend, require_local
from langchain_selfamplify.models.core import ModelCore
from langchain_selfamplify.rationales.absence import WordAbsence
from langchain_selfamplify.wording import AnswerFormat


class RationaleMethod(ABC):
    """Explains labelled examples post hoc with the same SLM, towards the gold answer.

    Subclasses set :attr:`name`, :attr:`needs_gradients` and :attr:`description`,
    implement :meth:`explain`, and say what one example costs in :meth:`forward_passes`.
    Constructor parameters are the method's settings, with defaults
    (:meth:`parameters` lists them).
    """

    name: ClassVar[str]
    """Registered name, e.g. ``"deeplift"``."""
    needs_gradients: ClassVar[bool] = False
    """Whether the method back-propagates through the model."""
    description: ClassVar[str] = ""
    """One line for listings and ``--help``."""
    answer_format: AnswerFormat = "letter"
    """Answer format of the prompts the rationales go into: what attribution targets
    score and how rationales state the answer. :class:`RationaleGenerator` sets it."""
    word_absence: WordAbsence = "mask"
    """How attribution methods take a word out (see ``absence.py``).
    :class:`RationaleGenerator` sets it."""

    requires: ClassVar[tuple[str, ...]] = ()
    """:class:`~langchain_selfamplify.models.backend.Capabilities` the method needs
    beyond generation; checked when the method is built."""

    def __init__(self, backend: ModelBackend) -> None:
        self._check_backend(backend)
        self.backend = backend

    def _check_backend(self, backend: ModelBackend) -> None:
        """Fail before any model call when ``backend`` lacks what this method needs."""
        have = backend.capabilities
        missing = [need for need in self.requires if not getattr(have, need)]
        if missing:
            usable = sorted(name for name, cls in METHODS.items()
                            if all(getattr(have, need) for need in cls.requires))
            reason = ("was loaded with gradients=False" if missing == ["gradients"]
                      and have.token_ids else "does not provide them" if len(missing) > 1
                      else "does not provide it")
            raise BackendCapabilityError(
                f"{self.name} needs {' and '.join(m.replace('_', ' ') for m in missing)}, "
                f"but {backend.name} {reason}. Methods that work on "
                f"this backend: {', '.join(usable) or 'none'}.")
        if self.needs_gradients:
            try:
                require_local(backend, self.name).embedding_layer  # noqa: B018 - raises when none
            except AttributeError as exc:
                raise RationaleError(
                    f"{self.name} needs the input-embedding layer: {exc}") from exc

    slm = deprecated_alias("slm", "backend")

    @property
    def local(self) -> ModelCore:
        """The local model behind :attr:`backend`, for methods that work on its tensors.

        Raises:
            BackendCapabilityError: the backend is a served or chat model.
        """
        return require_local(self.backend, self.name)

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """The method's settings and their defaults (from the constructor signature)."""
        signature = inspect.signature(cls.__init__)
        return {
            name: (None if param.default is inspect.Parameter.empty else param.default)
            for name, param in signature.parameters.items() if name not in ("self", "backend")
        }

    def forward_passes(self, n_words: int) -> int:
        """Model evaluations (forward passes, one example each) to explain a question of
        ``n_words`` content words; a backward pass counts as one more."""
        return 1

    def check(self, examples: Sequence[MCQExample]) -> None:
        """Fail before any model call on an example the method cannot explain (methods
        with such a condition override it; by default every example can be tried)."""
        return None

    def examples_per_chunk(self) -> int:
        """How many examples :class:`RationaleGenerator` hands to :meth:`explain` at once,
        and so checkpoints together: the backend's batch size by default, as methods that
        batch (generation, gradients) explain a batch in one pass."""
        return self.backend.batch_size

    @abstractmethod
    def explain(self, examples: Sequence[MCQExample]) -> list[str]:
        """One rationale text per example, in order."""

    def explain_each(self, examples: Sequence[MCQExample],
                     on_each: Callable[[int, str | None], None] | None = None
                     ) -> list[str | None]:
        """:meth:`explain`, with ``None`` for an example the method could make no
        rationale for (methods whose output can be unusable override it).

        Args:
            examples: The examples to explain.
            on_each: Called with ``(example index, rationale or None)`` as soon as each
                is made; methods that make them all at once call it at the end.
                Defaults to none.
        """
        texts: list[str | None] = list(self.explain(examples))
        if on_each is not None:
            for index, text in enumerate(texts):
                on_each(index, text)
        return texts

    def require_usable(self, examples: Sequence[MCQExample],
                       texts: Sequence[str | None]) -> list[str]:
        """The rationales of :meth:`explain_each`, every one usable.

        Raises:
            RationaleError: the method made no rationale for an example.
        """
        usable = []
        for example, text in zip(examples, texts, strict=True):
            if text is None:
                raise RationaleError(f"example {example.id!r}: no {self.name} rationale could "
                                     f"be made from the model's reply")
            usable.append(text)
        return usable

    def stated_answer(self, example: MCQExample) -> str | None:
        """The answer text a rationale names in the cloze format (``None`` for letters)."""
        return example.answer_text if self.answer_format == "cloze" else None

    def settings(self) -> dict[str, Any]:
        """The method's settings, recorded with every rationale (for caching and provenance)."""
        return {
            key: value for key, value in vars(self).items()
            if key != "backend" and not key.startswith("_")
        }


M = TypeVar("M", bound=type[RationaleMethod])

METHODS: dict[str, type[RationaleMethod]] = {}
"""Registered rationale methods by name."""


def register_method(cls: M) -> M:
    """Class decorator adding a :class:`RationaleMethod` to :data:`METHODS`."""
    if cls.name in METHODS:
        raise ValueError(f"a rationale method named {cls.name!r} is already registered")
    METHODS[cls.name] = cls
    if "__init__" in vars(cls):  # ``slm=`` still accepted, with a warning
        cls.__init__ = accepts_renamed_arguments(cls.__init__)  # type: ignore[method-assign]
    return cls


def get_method(name: str) -> type[RationaleMethod]:
    """The method class called ``name``; :class:`UnknownNameError` lists the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownNameError("rationale method", name, METHODS) from None


def check_word_absence(cls: type[RationaleMethod], word_absence: WordAbsence) -> None:
    """Fail when ``word_absence`` does not apply to the method ``cls`` (a gradient
    method cannot delete words), before any model is loaded.

    Raises:
        ValueError: it does not apply.
    """
    if word_absence != "mask" and cls.needs_gradients:
        raise ValueError(
            f"{cls.name} compares the input with a baseline of the same length, so it cannot "
            "delete words; use word_absence='mask', or a perturbation method (kernelshap, "
            "lime, feature_ablation...) to delete them")


@accepts_renamed_arguments
def build_method(backend: ModelBackend, name: str, *, k: int = 5, n_steps: int = 3,
                 answer_format: AnswerFormat = "letter", word_absence: WordAbsence = "mask",
                 method_kwargs: dict[str, Any] | None = None) -> RationaleMethod:
    """The method called ``name`` with every setting: the one place a method is built
    (the rationale generator and ``selfamplify explain`` both use it).

    Args:
        backend: The model backend.
        name: A registered method name.
        k: Keywords of a keyword rationale, where the method takes ``k``. Defaults to 5.
        n_steps: Steps of a Ph-CoT rationale, where the method takes it. Defaults to 3.
        answer_format: Answer format of the prompts the rationales go into. Defaults to
            ``"letter"``.
        word_absence: How attribution methods take a word out. Defaults to ``"mask"``.
        method_kwargs: The method's own settings (``n_samples``...). Defaults to none.

    Raises:
        UnknownNameError: no method is called ``name``.
        ValueError: ``word_absence`` does not apply to the method.
    """
    cls = get_method(name)
    check_word_absence(cls, word_absence)
    kwargs = dict(method_kwargs or {})
    parameters = inspect.signature(cls).parameters
    if "k" in parameters:
        kwargs.setdefault("k", k)
    if "n_steps" in parameters:
        kwargs.setdefault("n_steps", n_steps)
    method = cls(backend, **kwargs)
    method.answer_format = answer_format
    method.word_absence = word_absence
    return method

