"""The one error type raised for bad user input."""

from __future__ import annotations

from typing import Any


class KetadurInputError(ValueError):
    """Invalid input: names the field path, the rule broken and the value received.

    Raised at the boundary (Python API arguments, CLI options, files). The CLI turns it into a
    one-line message and exit code 2.
    """

    def __init__(self, field: str, rule: str, value: Any) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"{field}: {rule} (got {value!r})")
