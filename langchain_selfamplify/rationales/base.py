"""Rationale methods: the base class and the registry they register into.

Each method is one class in one module, registered by name with
:func:`register_method` (the way inseq registers attribution methods): adding a
method is adding a file and importing it in ``rationales/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.errors import UnknownNameError


class RationaleMethod(ABC):
    """Explains labelled examples post hoc with the same SLM, towards the gold answer.

    Subclasses set :attr:`name`, :attr:`needs_gradients` and implement
    :meth:`explain`. Constructor parameters are the method's settings, with defaults.
    """

    name: ClassVar[str]
    """Registered name, e.g. ``"deeplift"``."""
    needs_gradients: ClassVar[bool] = False
    """Whether the method back-propagates through the model."""

    def __init__(self, slm: Any) -> None:
        self.slm = slm

    @abstractmethod
    def explain(self, examples: Sequence[MCQExample]) -> list[str]:
        """One rationale text per example, in order."""

    def settings(self) -> dict[str, Any]:
        """The method's settings, recorded with every rationale (for caching and provenance)."""
        return {
            key: value for key, value in vars(self).items()
            if key != "slm" and not key.startswith("_")
        }


M = TypeVar("M", bound=type[RationaleMethod])

METHODS: dict[str, type[RationaleMethod]] = {}
"""Registered rationale methods by name."""


def register_method(cls: M) -> M:
    """Class decorator adding a :class:`RationaleMethod` to :data:`METHODS`."""
    if cls.name in METHODS:
        raise ValueError(f"a rationale method named {cls.name!r} is already registered")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[RationaleMethod]:
    """The method class called ``name``; :class:`UnknownNameError` lists the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownNameError("rationale method", name, METHODS) from None


MethodFactory = Callable[..., RationaleMethod]
