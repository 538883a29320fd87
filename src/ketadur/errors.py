"""The one error type raised for bad user input."""

from __future__ import annotations

from typing import Any


class KetadurInputError(ValueError):
    """Invalid input: names the field path, the rule broken and the value received.

    Raised at the boundary (Python API arguments, CLI options, files). The CLI turns it into a
    one-line message and exit code 2.
    """

    def __init__(self, field: str, rule: str, value: Any = ...) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        shown = "" if value is ... else f" (got {_short(value)})"
        super().__init__(f"{field}: {rule}{shown}")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field_path(loc: tuple[Any, ...]) -> str:
    """``("arms", 0, "phases", 1, "name")`` -> ``"arms[0].phases[1].name"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def from_validation_error(exc: Any, prefix: str = "") -> KetadurInputError:
    """The first error of a pydantic ``ValidationError`` as a :class:`KetadurInputError` whose
    field is the full dotted path (``prefix`` first) and whose rule is pydantic's message."""
    first = exc.errors()[0]
    path = field_path(tuple(first["loc"]))
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, KetadurInputError):  # raised by a cross-field check: keep its path
        path = ".".join(x for x in (path, inner.field) if x)
        return KetadurInputError(".".join(x for x in (prefix, path) if x), inner.rule, inner.value)
    field = ".".join(x for x in (prefix, path) if x) or "input"
    message = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input", ...)
    return KetadurInputError(field, message, ... if isinstance(value, dict) else value)
