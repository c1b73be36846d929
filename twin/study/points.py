"""The axes of a study and the scenarios they resolve to.

An axis is ``KEY=V1,V2,...`` or an integer range ``KEY=A..B`` (``A..B:STEP``), as ``--vary``,
``--choose`` and ``--grow`` take it. ``KEY`` is a ``--set`` key (``fleet.pv.count``,
``mdc.north.servers.sku``); each value is read like a ``--set`` value (a TOML value, else a
bare string), and commas inside quotes, brackets or braces do not split values. Axes combine
as a grid (every combination, the first axis slowest) or zipped (the i-th values together).
A :class:`Point` is one combination resolved into its :class:`~twin.scenario.loader.Scenario`
by the scenario loader, so a bad key or value is the loader's one-line
:class:`~twin.errors.ScenarioError`, raised before anything runs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.errors import ScenarioError
from twin.scenario.loader import Scenario, load_scenario, override_value

_RANGE = re.compile(r"\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?::\s*(\d+)\s*)?")
_OPENERS = {"[": "]", "{": "}"}


@dataclass(frozen=True)
class Axis:
    """One study axis: the ``key`` and its value texts, in order; ``ranged`` when it was
    given as ``A..B`` (integers, ascending)."""

    key: str
    values: tuple[str, ...]
    ranged: bool = False


def parse_axis(text: str, flag: str) -> Axis:
    """Parse ``KEY=V1,V2,...`` or ``KEY=A..B[:STEP]``; an empty list or range, a missing key
    or an empty value is a :class:`ScenarioError` naming ``flag``."""
    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError(flag, text, "KEY=V1,V2,... or KEY=A..B, e.g. fleet.pv.count=200,400")
    match = _RANGE.fullmatch(spec)
    if match is not None:
        low, high, step = int(match[1]), int(match[2]), int(match[3] or 1)
        values = tuple(str(v) for v in range(low, high + 1, step)) if step > 0 else ()
        if not values:
            raise ScenarioError(flag, text, "a non-empty range A..B[:STEP] with A <= B, STEP >= 1")
        return Axis(key, values, ranged=True)
    values = tuple(v.strip() for v in _split_values(spec))
    if not values or any(not v for v in values):
        raise ScenarioError(flag, text, "a non-empty list of values V1,V2,... (none empty)")
    return Axis(key, values)


def _split_values(spec: str) -> list[str]:
    """Split at commas outside quotes, brackets and braces."""
    items, depth, quote, start = [], [], "", 0
    for i, ch in enumerate(spec):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in _OPENERS:
            depth.append(_OPENERS[ch])
        elif depth and ch == depth[-1]:
            depth.pop()
        elif ch == "," and not depth:
            items.append(spec[start:i])
            start = i + 1
    items.append(spec[start:])
    return [] if items == [""] else items


Setting = tuple[str, str]  # (key, value text)


def check_distinct(axes: Sequence[Axis], flag: str) -> None:
    seen: set[str] = set()
    for axis in axes:
        if axis.key in seen:
            raise ScenarioError(flag, axis.key, "each key on one axis only")
        seen.add(axis.key)


def grid(axes: Sequence[Axis]) -> list[tuple[Setting, ...]]:
    """Every combination of the axes' values, the first axis slowest."""
    return [
        tuple(zip([a.key for a in axes], combo, strict=True))
        for combo in itertools.product(*(a.values for a in axes))
    ]


def zipped(axes: Sequence[Axis], flag: str) -> list[tuple[Setting, ...]]:
    """The i-th values of every axis together; the axes must have equal lengths."""
    lengths = {len(a.values) for a in axes}
    if len(lengths) > 1:
        raise ScenarioError(flag, [f"{a.key}: {len(a.values)}" for a in axes], "equal lengths")
    return [
        tuple((a.key, a.values[i]) for a in axes) for i in range(len(axes[0].values) if axes else 0)
    ]


@dataclass(frozen=True)
class Point:
    """One combination of axis values (``settings``), its ``id`` (a folder name) and the
    scenario it resolves to (the base overrides, then the settings)."""

    id: str
    settings: tuple[Setting, ...]
    scenario: Scenario

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings)

    def value(self, key: str) -> Any:
        """The value of ``key`` at this point, as the loader reads it."""
        return override_value(dict(self.settings)[key])

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "settings": {k: self.value(k) for k, _ in self.settings}}


def resolve(
    path: Path, base_overrides: Sequence[str], settings: Sequence[tuple[Setting, ...]], prefix: str
) -> list[Point]:
    """Resolve each combination of ``settings`` (ids ``prefix`` + index)."""
    width = len(str(max(len(settings) - 1, 0)))
    return [
        resolve_one(path, base_overrides, s, f"{prefix}{i:0{width}d}")
        for i, s in enumerate(settings)
    ]


def resolve_one(
    path: Path, base_overrides: Sequence[str], settings: tuple[Setting, ...], point_id: str
) -> Point:
    overrides = [*base_overrides, *(f"{k}={v}" for k, v in settings)]
    return Point(point_id, settings, load_scenario(path, overrides))
