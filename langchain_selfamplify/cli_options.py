"""Command-line option values: parsed, and their errors told in the user's own terms.

A setting refused by the pydantic models behind ``run`` and ``evaluate`` is reported
as the option the user typed, e.g. ``--shots must be at least 1 (got 0)``, not as
pydantic's dump of the model and field.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

_RULES = {
    "greater_than_equal": lambda ctx: f"must be at least {ctx['ge']}",
    "greater_than": lambda ctx: f"must be greater than {ctx['gt']}",
    "less_than_equal": lambda ctx: f"must be at most {ctx['le']}",
    "less_than": lambda ctx: f"must be less than {ctx['lt']}",
    "literal_error": lambda ctx: f"must be {ctx['expected']}",
    "too_short": lambda ctx: f"needs at least {ctx['min_length']} value(s)",
    "int_parsing": lambda ctx: "must be a whole number",
    "int_type": lambda ctx: "must be a whole number",
}


def option_name(field: str) -> str:
    """``"pool_size"`` -> ``"--pool-size"``."""
    return "--" + field.replace("_", "-")


def option_message(error: ValidationError) -> str:
    """One line per refused setting, naming its option: ``--shots must be at least 1
    (got 0)``."""
    lines = []
    for item in error.errors():
        ctx: dict[str, Any] = item.get("ctx") or {}
        rule = _RULES.get(item["type"])
        if not item["loc"]:  # a check across settings: its own message says it all
            lines.append(str(ctx.get("error", item["msg"])))
            continue
        text = rule(ctx) if rule else str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{option_name(str(item['loc'][0]))} {text} (got {item['input']!r})")
    return "; ".join(lines)


def parse_integers(text: str, option: str) -> list[int]:
    """Comma-separated whole numbers, e.g. ``--seeds 0,1,2``.

    Raises:
        ValueError: a value is not a whole number, naming ``option``.
    """
    values = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        try:
            values.append(int(part))
        except ValueError:
            raise ValueError(f"{option} must be comma-separated whole numbers "
                             f"(got {text!r})") from None
    return values
