"""Errors the twin reports to its users."""

from __future__ import annotations

from typing import Any


class ScenarioError(ValueError):
    """A scenario file or ``--set`` override is wrong: names the key, the value and what
    was expected, so that one message is enough to fix it."""

    def __init__(self, key: str, value: Any, expected: str) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(f"{key} = {value!r}: expected {expected}")


class UsageError(ValueError):
    """A command was misused (a missing run folder, an unknown KPI name, a gate that does
    not parse): the message is the one line the user sees, with exit code 2."""
