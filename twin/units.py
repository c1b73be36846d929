"""Parsing of durations written in scenario files (``"15min"``, ``"2h"``)."""

from __future__ import annotations

import re

#: Seconds per unit; the unit names follow pandas offset aliases where they exist.
DURATION_UNITS_S: dict[str, float] = {
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)\s*$")


def parse_duration_s(text: str) -> float:
    """``"15min"`` -> 900.0. Raises ValueError for anything else."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(text)
    return float(match.group(1)) * DURATION_UNITS_S[match.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` with the units above."""
    for unit in ("d", "h", "min", "s"):
        size = DURATION_UNITS_S[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"
