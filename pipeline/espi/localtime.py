"""ESPI LocalTimeParameters: a usage point's standard-time offset and daylight saving rules.

A Green Button feed gives the local time of its usage points with a LocalTimeParameters
resource (ESPI ``TimeConfiguration``, espiDerived.xsd)::

    <LocalTimeParameters xmlns="http://naesb.org/espi">
      <dstEndRule>B40E2000</dstEndRule>      DstRuleType: when DST ends
      <dstOffset>3600</dstOffset>            TimeType, s: DST offset from standard time
      <dstStartRule>360E2000</dstStartRule>  DstRuleType: when DST starts
      <tzOffset>-18000</tzOffset>            TimeType, s: standard time offset from UTC
    </LocalTimeParameters>

DstRuleType (espiDerived.xsd annotation, NAESB REQ.21) is a 32-bit word written as 8 hex
digits (HexBinary32)::

    bits 31-28  month 1..12
    bits 27-25  operator 0..7 (see `OPERATORS`)
    bits 24-20  day of month, 0 = not applicable, 1..31
    bits 19-17  day of week, 0 = not applicable, 1..7 (Monday = 1 ... Sunday = 7)
    bits 16-12  hour 0..23
    bits 11-0   seconds 0..3599 within the hour
    0xFFFFFFFF  rule processing / DST correction disabled

The operators (same source): 0 on the day of the month; 1 on the day of the week on or
after the day of the month; 2..6 on the first..fifth occurrence of the day of the week in
the month; 7 on its last occurrence. So ``360E2000`` is "second (operator 3) Sunday (7) of
March (3) at 02:00:00" and ``B40E2000`` "first (2) Sunday of November (11) at 02:00:00": the
US rules since 2007 (Energy Policy Act of 2005 §110, 15 U.S.C. §260a), which every NIST, GBA
and PG&E sample file carries.

Conventions the schema leaves open, and the choice made here:

- the rule's time is the wall-clock time in the local time in force just before the change
  (standard time for the start rule, daylight time for the end rule), as in US law ("2:00
  a.m. local time" at both changes), POSIX TZ rules (POSIX.1-2017 §8.3) and the tz database;
  the start is then at ``local - tzOffset`` UTC and the end at ``local - tzOffset -
  dstOffset`` UTC;
- the rules of a UTC instant are those of its year in local standard time;
- a fifth occurrence that a month does not have (operator 6) falls back to the last one, as
  POSIX's week 5 does; "on or after" and a day of month past the month's end (Feb 29 of a
  common year) roll into the next month, as the tz database's ``Sun>=29`` does;
- DST is off when either rule is 0xFFFFFFFF or dstOffset is 0;
- the schema asks that the end rule fall after the start rule in the year; a rule pair the
  other way round (southern-hemisphere DST, October to April) is read the way such a feed
  means it: DST from the start rule to the end of the year and from the start of the year
  to the end rule.

`LocalTime.utc_offset_s` is vectorised: the rules are evaluated with numpy date arithmetic
once per distinct year, never per reading. The store keeps each meter's local time
(`pipeline.store.local_times`).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from lxml import etree

from pipeline.espi.namespaces import ESPI

__all__ = [
    "DST_RULE_DISABLED",
    "LOCAL_TIME_TAG",
    "OPERATORS",
    "DstRule",
    "LocalTime",
    "local_time_of",
]

#: DstRuleType value meaning "rule processing / DST correction disabled" (espiDerived.xsd).
DST_RULE_DISABLED = 0xFFFFFFFF

#: Largest magnitude of tzOffset and dstOffset accepted, s: strictly less than a day, the
#: bound Python's `datetime.timezone` puts on a UTC offset (real zones span -12 h..+14 h).
MAX_OFFSET_S = 86_399

#: (field, lowest bit, width in bits) of the DstRuleType layout (module docstring).
RULE_BITS: tuple[tuple[str, int, int], ...] = (
    ("seconds", 0, 12),
    ("hour", 12, 5),
    ("day_of_week", 17, 3),
    ("day_of_month", 20, 5),
    ("operator", 25, 3),
    ("month", 28, 4),
)

#: DstRuleType operators (espiDerived.xsd): code -> meaning.
OPERATORS: Mapping[int, str] = MappingProxyType(
    {
        0: "on the day of the month",
        1: "on the day of the week on or after the day of the month",
        2: "on the first occurrence of the day of the week in the month",
        3: "on the second occurrence of the day of the week in the month",
        4: "on the third occurrence of the day of the week in the month",
        5: "on the fourth occurrence of the day of the week in the month",
        6: "on the fifth occurrence of the day of the week in the month",
        7: "on the last occurrence of the day of the week in the month",
    }
)

_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # most days of each month
_DAY_S = 86_400


def _iso_weekday(days: np.ndarray) -> np.ndarray:
    """ISO 8601 day of week (Monday = 1 ... Sunday = 7) of days since 1970-01-01, a
    Thursday (4)."""
    return (days + 3) % 7 + 1


# Day (days since 1970-01-01) of a rule in each year, by operator. Arguments: the rule, the
# first day of its month in each year, the first day of the next month.
_RuleDay = Callable[["DstRule", np.ndarray, np.ndarray], np.ndarray]


def _on_day_of_month(rule: DstRule, first: np.ndarray, _next: np.ndarray) -> np.ndarray:
    return first + (rule.day_of_month - 1)


def _weekday_on_or_after(rule: DstRule, first: np.ndarray, _next: np.ndarray) -> np.ndarray:
    day = first + (rule.day_of_month - 1)
    return day + (rule.day_of_week - _iso_weekday(day)) % 7


def _nth_weekday(n: int) -> _RuleDay:
    def day_of(rule: DstRule, first: np.ndarray, next_first: np.ndarray) -> np.ndarray:
        day = first + (rule.day_of_week - _iso_weekday(first)) % 7 + 7 * (n - 1)
        return np.where(day >= next_first, day - 7, day)  # no fifth one: the last one

    return day_of


def _last_weekday(rule: DstRule, _first: np.ndarray, next_first: np.ndarray) -> np.ndarray:
    last = next_first - 1
    return last - (_iso_weekday(last) - rule.day_of_week) % 7


#: Registry: DstRuleType operator -> day of the rule in each year (see `OPERATORS`).
RULE_DAY: Mapping[int, _RuleDay] = MappingProxyType(
    {0: _on_day_of_month, 1: _weekday_on_or_after}
    | {op: _nth_weekday(op - 1) for op in range(2, 7)}
    | {7: _last_weekday}
)


@dataclass(frozen=True)
class DstRule:
    """One decoded ESPI DstRuleType (bit layout in the module docstring).

    Attributes:
        month: 1..12.
        operator: 0..7 (`OPERATORS`).
        day_of_month: 0 (not applicable) or 1..31; required by operators 0 and 1.
        day_of_week: 0 (not applicable) or 1..7, Monday = 1; required by operators 1..7.
        hour: 0..23, and seconds: 0..3599, the wall-clock time of the change in the local
            time in force just before it.
    """

    month: int
    operator: int
    day_of_month: int = 0
    day_of_week: int = 0
    hour: int = 0
    seconds: int = 0

    def __post_init__(self) -> None:
        bounds = {
            "month": (1, 12),
            "operator": (0, 7),
            "day_of_month": (0, 31),
            "day_of_week": (0, 7),
            "hour": (0, 23),
            "seconds": (0, 3599),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"DstRule {name} must be an int in {low}..{high}, got {value!r}")
        if self.operator <= 1 and not 1 <= self.day_of_month <= _MONTH_DAYS[self.month - 1]:
            raise ValueError(
                f"DstRule operator {self.operator} ({OPERATORS[self.operator]}) needs a day of "
                f"month 1..{_MONTH_DAYS[self.month - 1]} in month {self.month}, got "
                f"{self.day_of_month}"
            )
        if self.operator >= 1 and self.day_of_week == 0:
            raise ValueError(
                f"DstRule operator {self.operator} ({OPERATORS[self.operator]}) needs a day of "
                "week 1..7"
            )

    @property
    def code(self) -> int:
        """The 32-bit DstRuleType value."""
        return sum(getattr(self, name) << shift for name, shift, _ in RULE_BITS)

    @classmethod
    def from_code(cls, code: int) -> DstRule:
        """Decode a DstRuleType value other than `DST_RULE_DISABLED`.

        Raises:
            ValueError: the value is outside 0..0xFFFFFFFE or its fields are not a rule.
        """
        if isinstance(code, bool) or not isinstance(code, int):
            raise ValueError(f"DstRuleType must be an int, got {code!r}")
        if not 0 <= code < DST_RULE_DISABLED:
            raise ValueError(f"DstRuleType must be in 0..0xFFFFFFFE, got {code:#x}")
        fields = {name: (code >> shift) & ((1 << bits) - 1) for name, shift, bits in RULE_BITS}
        try:
            return cls(**fields)
        except ValueError as exc:
            raise ValueError(f"DstRuleType {code:08X}: {exc}") from None

    def local_s(self, year: np.ndarray | int) -> np.ndarray:
        """Wall-clock time of the change in each `year`, as seconds since 1970-01-01T00:00
        of that wall clock (int64, shape of `year`)."""
        years = np.asarray(year, dtype=np.int64)
        month_index = (years - 1970) * 12 + (self.month - 1)
        first = month_index.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        next_first = (
            (month_index + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        )
        day = RULE_DAY[self.operator](self, first, next_first)
        return np.asarray(day * _DAY_S + (self.hour * 3600 + self.seconds), dtype=np.int64)

    def describe(self) -> str:
        """The rule in words, e.g. ``"second Sunday of March at 02:00:00"``."""
        weekday = _WEEKDAY_NAMES
        month = _MONTH_NAMES[self.month - 1]
        minutes, seconds = divmod(self.seconds, 60)
        at = f"at {self.hour:02d}:{minutes:02d}:{seconds:02d}"
        if self.operator == 0:
            return f"{month} {self.day_of_month} {at}"
        if self.operator == 1:
            return f"{weekday[self.day_of_week]} on or after {month} {self.day_of_month} {at}"
        nth = ("first", "second", "third", "fourth", "fifth", "last")[self.operator - 2]
        return f"{nth} {weekday[self.day_of_week]} of {month} {at}"


#: Names by ISO 8601 day of week (index 0: not applicable) and by month - 1.
_WEEKDAY_NAMES: tuple[str, ...] = (
    "-", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
)  # fmt: skip
_MONTH_NAMES: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def _rule(code: int) -> DstRule | None:
    return None if code == DST_RULE_DISABLED else DstRule.from_code(code)


@dataclass(frozen=True)
class LocalTime:
    """The local time of a usage point (ESPI LocalTimeParameters).

    Attributes:
        tz_offset_s: standard time minus UTC, s, east positive (ESPI tzOffset; -18000 for
            US Eastern, 3600 for Central Europe).
        dst_offset_s: daylight time minus standard time, s (ESPI dstOffset; 3600).
        dst_start_rule, dst_end_rule: DstRuleType codes (`DstRule`), `DST_RULE_DISABLED`
            for none.

    Raises:
        ValueError: offsets of a day or more, or a rule code that is not a rule.
    """

    tz_offset_s: int
    dst_offset_s: int = 0
    dst_start_rule: int = DST_RULE_DISABLED
    dst_end_rule: int = DST_RULE_DISABLED
    start_rule: DstRule | None = field(init=False, repr=False, compare=False)
    end_rule: DstRule | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("tz_offset_s", "dst_offset_s", "dst_start_rule", "dst_end_rule"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"LocalTime {name} must be an int, got {value!r}")
        for name in ("tz_offset_s", "dst_offset_s"):
            if abs(getattr(self, name)) > MAX_OFFSET_S:
                raise ValueError(
                    f"LocalTime {name} = {getattr(self, name)} s is a day or more "
                    f"(|offset| <= {MAX_OFFSET_S} s)"
                )
        object.__setattr__(self, "start_rule", _rule(self.dst_start_rule))
        object.__setattr__(self, "end_rule", _rule(self.dst_end_rule))

    def __repr__(self) -> str:
        return (
            f"LocalTime(tz_offset_s={self.tz_offset_s}, dst_offset_s={self.dst_offset_s}, "
            f"dst_start_rule=0x{self.dst_start_rule:08X}, "
            f"dst_end_rule=0x{self.dst_end_rule:08X})"
        )

    @property
    def has_dst(self) -> bool:
        """True when daylight saving time applies: both rules set and a non-zero offset."""
        return self.start_rule is not None and self.end_rule is not None and bool(
            self.dst_offset_s
        )

    def transitions_utc(self, year: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Epoch seconds (UTC) of the start and of the end of DST in each `year` (int64
        arrays of `year`'s shape). Without DST (`has_dst` False) both are ``INT64_MIN``."""
        years = np.asarray(year, dtype=np.int64)
        if not self.has_dst:
            none = np.full(years.shape, np.iinfo(np.int64).min, dtype=np.int64)
            return none, none.copy()
        assert self.start_rule is not None and self.end_rule is not None
        start = self.start_rule.local_s(years) - self.tz_offset_s
        end = self.end_rule.local_s(years) - self.tz_offset_s - self.dst_offset_s
        return start, end

    def dst_transitions_utc(self, year: int) -> tuple[int, int] | None:
        """Epoch seconds (UTC) of the start and end of DST in `year`; None without DST."""
        if not self.has_dst:
            return None
        start, end = self.transitions_utc(np.array(year, dtype=np.int64))
        return int(start), int(end)

    def utc_offset_s(self, epoch_s: np.ndarray) -> np.ndarray:
        """Local time minus UTC at each instant, s (int64, shape of `epoch_s`).

        Args:
            epoch_s: instants, epoch seconds (UTC), any integer array.

        Vectorised: the rules are evaluated once per distinct year (in local standard
        time) of the instants, with numpy date arithmetic.
        """
        t = np.asarray(epoch_s, dtype=np.int64)
        offset = np.full(t.shape, self.tz_offset_s, dtype=np.int64)
        if not self.has_dst or t.size == 0:
            return offset
        days = (t + self.tz_offset_s) // _DAY_S
        years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        distinct, index = np.unique(years, return_inverse=True)
        start_d, end_d = self.transitions_utc(distinct)
        start, end = start_d[index.reshape(t.shape)], end_d[index.reshape(t.shape)]
        in_dst = np.where(start <= end, (t >= start) & (t < end), (t >= start) | (t < end))
        offset[in_dst] += self.dst_offset_s
        return offset

    def local_s(self, epoch_s: np.ndarray) -> np.ndarray:
        """Local wall-clock time of each instant, as seconds since 1970-01-01T00:00 of the
        wall clock (int64): ``epoch_s + utc_offset_s(epoch_s)``."""
        t = np.asarray(epoch_s, dtype=np.int64)
        return t + self.utc_offset_s(t)

    def describe(self) -> str:
        """The rules in words, e.g. ``"UTC-05:00, DST +3600 s from the second Sunday of
        March at 02:00:00 to the first Sunday of November at 02:00:00"``."""
        sign = "-" if self.tz_offset_s < 0 else "+"
        hours, rest = divmod(abs(self.tz_offset_s), 3600)
        text = f"UTC{sign}{hours:02d}:{rest // 60:02d}"
        if rest % 60:
            text += f":{rest % 60:02d}"
        if not self.has_dst:
            return text + ", no DST"
        assert self.start_rule is not None and self.end_rule is not None
        return (
            f"{text}, DST {self.dst_offset_s:+d} s from the {self.start_rule.describe()} to the "
            f"{self.end_rule.describe()}"
        )


# --- the XML resource ------------------------------------------------------------------------

#: Tag of the resource in an entry's content.
LOCAL_TIME_TAG = ESPI + "LocalTimeParameters"


#: xs:long's lexical form: an optional sign and ASCII digits (XML Schema Part 2 §3.3.16).
_XS_INTEGER = re.compile(r"[+-]?[0-9]+")


def _text(resource: etree._Element, name: str) -> str | None:
    element = resource.find(ESPI + name)
    if element is None:
        return None
    text = "".join(str(part) for part in element.itertext()).strip(" \t\r\n")  # XML S
    return text or None


def _hex32(name: str, text: str | None) -> int:
    """A HexBinary32 text (1 to 8 hex digits, either case) as an int; absent: disabled."""
    if text is None:
        return DST_RULE_DISABLED
    if not 1 <= len(text) <= 8 or not all(c in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(f"bad_local_time: {name} {text[:40]!r} is not 1 to 8 hex digits")
    return int(text, 16)


def _seconds(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not _XS_INTEGER.fullmatch(text):  # not int(): it also takes "1_000" and "١٢"
        raise ValueError(f"bad_local_time: {name} {text[:40]!r} is not an integer (xs:long)")
    value = int(text)
    if abs(value) > MAX_OFFSET_S:
        raise ValueError(
            f"bad_local_time: {name} = {value} s is a day or more (|offset| <= {MAX_OFFSET_S})"
        )
    return value


def local_time_of(resource: etree._Element) -> LocalTime:
    """The `LocalTime` of an ESPI ``LocalTimeParameters`` element.

    tzOffset is required; an absent dstOffset is 0 and an absent rule is disabled (the
    schema requires all four; a feed without DST information has no DST). Fields are
    matched by namespace URI and local name, in any order, with surrounding white space.

    Raises:
        ValueError: with a message ``"bad_local_time: ..."`` naming the field.
    """
    tz_offset = _seconds("tzOffset", _text(resource, "tzOffset"))
    if tz_offset is None:
        raise ValueError("bad_local_time: LocalTimeParameters has no tzOffset")
    dst_offset = _seconds("dstOffset", _text(resource, "dstOffset")) or 0
    start = _hex32("dstStartRule", _text(resource, "dstStartRule"))
    end = _hex32("dstEndRule", _text(resource, "dstEndRule"))
    try:
        return LocalTime(tz_offset, dst_offset, start, end)
    except ValueError as exc:
        raise ValueError(f"bad_local_time: {exc}") from None
