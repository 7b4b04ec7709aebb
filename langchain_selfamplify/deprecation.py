"""Renamed arguments, accepted under their old names for one release with a warning.

The model parameter was called ``slm`` although it takes any backend (a served model, a
LangChain chat model, an offload wrapper), while the class ``SLM`` is the local Hugging
Face model only. It is now ``backend``; ``slm=`` still works, and warns.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

RENAMED = {"slm": "backend"}
"""Old argument name -> new name."""

F = TypeVar("F", bound=Callable[..., Any])


def rename_arguments(owner: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with each old name of :data:`RENAMED` replaced by its new one.

    Raises:
        TypeError: both the old and the new name were given.
    """
    for old, new in RENAMED.items():
        if old in kwargs:
            if new in kwargs:
                raise TypeError(f"{owner} got both {old}= and {new}=; pass {new}= only")
            warnings.warn(f"{owner}: {old}= is deprecated and will be removed in the next "
                          f"release; pass {new}= instead", DeprecationWarning, stacklevel=3)
            kwargs[new] = kwargs.pop(old)
    return kwargs


def accepts_renamed_arguments(func: F) -> F:
    """Let ``func`` be called with the old argument names of :data:`RENAMED`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **rename_arguments(func.__qualname__, kwargs))

    return wrapper  # type: ignore[return-value]


def deprecated_alias(old: str, new: str) -> property:
    """A read-only property ``old`` that returns ``self.<new>``, with a warning."""

    def read(self: Any) -> Any:
        warnings.warn(f"{type(self).__name__}.{old} is deprecated; use .{new}",
                      DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    return property(read, doc=f"Deprecated alias of :attr:`{new}`.")


def moved_module(old: str, new: str) -> Callable[[str], Any]:
    """The module ``__getattr__`` of a renamed module's old name: warns once, on
    import, and reads every name from the module's new name."""
    warnings.warn(f"{old} is deprecated; import {new}", DeprecationWarning, stacklevel=3)

    def read(name: str) -> Any:
        return getattr(importlib.import_module(new), name)

    return read
