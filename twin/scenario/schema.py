"""A small typed reader over a TOML table that reports errors with their full key path, and
the reading of a scenario file (:func:`read_scenario_text`).

Every accessor names the key, the value found and what was expected; ``finish`` rejects
keys that nobody asked for (a typo must not be silently ignored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin.errors import ScenarioError
from twin.units import format_duration, parse_duration_s

_MISSING = object()
#: Largest scenario file read, bytes (the shipped ones have a few KB).
MAX_SCENARIO_BYTES = 4 * 2**20
#: Largest integer any key takes: what numpy's int64 arrays of a run hold.
MAX_INTEGER = 2**63 - 1
#: Shortest period of a process that repeats through the run (batch analytics, rekeys,
#: random drops and failures, the power controller's step), s: a period of a microsecond
#: would keep a run busy without end.
MIN_PERIOD_S = 60.0
#: Longest duration any key takes, s (100 years): longer ones only overflow the integer
#: arithmetic of schedules.
MAX_ANY_DURATION_S = 36525 * 86400.0


class Table:
    """Read-only view of one TOML table at ``path`` (e.g. ``fleet.pv.meter``)."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ScenarioError(path, data, "a table")
        self.data = data
        self.path = path
        self._used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        self._used.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise ScenarioError(self.key(name), None, "a value (the key is required)")
        return default

    def table(self, name: str, default_empty: bool = True) -> Table:
        value = self.raw(name, {} if default_empty else _MISSING)
        return Table(value, self.key(name))

    def tables(self, name: str) -> list[Table]:
        value = self.raw(name, [])
        if not isinstance(value, list):
            raise ScenarioError(self.key(name), value, f"an array of tables ([[{name}]])")
        return [Table(item, self._item_path(name, i, item)) for i, item in enumerate(value)]

    def _item_path(self, name: str, index: int, item: Any) -> str:
        """``fleet.pv`` for an item with a name (as ``--set`` addresses it), else ``fault.0``."""
        label = item.get("name") if isinstance(item, Mapping) else None
        return f"{self.key(name)}.{label if isinstance(label, str) else index}"

    def string(self, name: str, default: Any = _MISSING, choices: Sequence[str] = ()) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str):
            raise ScenarioError(self.key(name), value, "a string")
        if choices and value not in choices:
            raise ScenarioError(self.key(name), value, "one of " + ", ".join(map(repr, choices)))
        return value

    def integer(
        self,
        name: str,
        default: Any = _MISSING,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        value = self.raw(name, default)
        maximum = MAX_INTEGER if maximum is None else maximum
        expected = _range_text("an integer", minimum, maximum)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(self.key(name), value, expected)
        if (minimum is not None and value < minimum) or value > maximum:
            raise ScenarioError(self.key(name), value, expected)
        return value

    def number(
        self,
        name: str,
        default: Any = _MISSING,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
    ) -> float:
        value = self.raw(name, default)
        return check_number(self.key(name), value, minimum, maximum, exclusive_minimum)

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise ScenarioError(self.key(name), value, "true or false")
        return value

    def duration_s(
        self,
        name: str,
        default: Any = _MISSING,
        positive: bool = True,
        minimum_s: float | None = None,
    ) -> float:
        """A duration string in s: finite, at most :data:`MAX_ANY_DURATION_S`, above zero
        if ``positive``, at least ``minimum_s`` if given (for the intervals of processes
        that would otherwise run without end: an event every microsecond)."""
        key, value = self.key(name), self.raw(name, default)
        expected = 'a duration string such as "90s", "15min", "2h" or "1d"'
        if not isinstance(value, str):
            raise ScenarioError(key, value, expected)
        try:
            seconds = parse_duration_s(value)
        except ValueError:
            raise ScenarioError(key, value, expected) from None
        if not math.isfinite(seconds):
            raise ScenarioError(key, value, f"a finite duration ({expected})")
        if seconds > MAX_ANY_DURATION_S:
            most = format_duration(MAX_ANY_DURATION_S)
            raise ScenarioError(key, value, f"a duration of at most {most} (100 years)")
        if positive and seconds <= 0:
            raise ScenarioError(key, value, "a duration greater than zero")
        if minimum_s is not None and seconds < minimum_s:
            least = format_duration(minimum_s)
            raise ScenarioError(key, value, f"a duration of at least {least}")
        return seconds

    def timestamp_utc(self, name: str) -> datetime:
        value = self.raw(name)
        expected = 'an ISO 8601 time with a zone, e.g. "2026-06-21T00:00:00Z"'
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ScenarioError(self.key(name), value, expected) from None
        else:
            raise ScenarioError(self.key(name), value, expected)
        if parsed.tzinfo is None:
            raise ScenarioError(self.key(name), value, expected)
        return parsed.astimezone(UTC)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self._used)
        if unknown:
            allowed = ", ".join(sorted(self._used)) or "(none)"
            raise ScenarioError(
                self.key(unknown[0]), self.data[unknown[0]], f"a known key here: {allowed}"
            )


def check_number(
    key: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """Validate a real number within bounds."""
    expected = _range_text("a number", minimum, maximum, exclusive_minimum)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(key, value, expected)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        raise ScenarioError(key, value, f"a finite number ({expected})") from None
    if not math.isfinite(number):
        raise ScenarioError(key, value, f"a finite number ({expected})")
    too_low = minimum is not None and (number <= minimum if exclusive_minimum else number < minimum)
    if too_low or (maximum is not None and number > maximum):
        raise ScenarioError(key, value, expected)
    return number


def _range_text(
    what: str, minimum: float | None, maximum: float | None, exclusive_minimum: bool = False
) -> str:
    if minimum is not None and maximum is not None:
        return f"{what} in {'(' if exclusive_minimum else '['}{minimum}, {maximum}]"
    if minimum is not None:
        return f"{what} {'>' if exclusive_minimum else '>='} {minimum}"
    if maximum is not None:
        return f"{what} <= {maximum}"
    return what


def read_scenario_text(path: Path) -> str:
    """The text of the scenario file at ``path``; a :class:`ScenarioError` (key
    ``SCENARIO``) saying why when it is missing, not a regular file, too large for a
    scenario, unreadable or not UTF-8."""

    def refuse(why: str) -> ScenarioError:
        return ScenarioError("SCENARIO", str(path), f"a readable UTF-8 scenario file ({why})")

    try:
        if path.is_dir():
            raise refuse("it is a folder")
        if not path.exists():
            raise ScenarioError("SCENARIO", str(path), "an existing scenario file")
        if not path.is_file():
            raise refuse("it is not a regular file")
        if path.stat().st_size > MAX_SCENARIO_BYTES:
            raise refuse(f"it has over {MAX_SCENARIO_BYTES // 2**20} MiB")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte {exc.object[exc.start]:#04x} at offset {exc.start}"
        raise refuse(f"{where} is not UTF-8") from None
    except OSError as exc:
        raise refuse((exc.strerror or type(exc).__name__).lower()) from None
