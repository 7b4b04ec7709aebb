"""Unknown arguments are errors: every public model and runnable forbids them.

Pydantic's default (``extra="ignore"``) drops a misspelt or unsupported argument
without a word, so a user believes an option is on when it is not. Every public
pydantic model here derives from :class:`StrictModel`, and every runnable calls
:func:`reject_unknown_arguments` before pydantic: the error names the unknown argument
and lists the accepted ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def accepted_arguments(cls: type[BaseModel]) -> list[str]:
    """The argument names ``cls`` accepts (field names and their aliases)."""
    names = set()
    for name, field in cls.model_fields.items():
        names.add(name)
        if field.alias:
            names.add(field.alias)
    return sorted(names)


def reject_unknown_arguments(cls: type[BaseModel], given: Iterable[str]) -> None:
    """Raise when ``given`` holds a name ``cls`` does not accept.

    Raises:
        TypeError: naming the unknown argument(s) and listing the accepted ones.
    """
    accepted = accepted_arguments(cls)
    unknown = [name for name in given if name not in accepted]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise TypeError(f"{cls.__name__} got unknown argument(s) {listed}; it accepts: "
                        f"{', '.join(accepted)}")


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown fields, naming them and the accepted ones."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_arguments(cls, data: Any) -> Any:
        if isinstance(data, dict):
            try:
                reject_unknown_arguments(cls, data)
            except TypeError as exc:
                raise ValueError(str(exc)) from None
        return data
