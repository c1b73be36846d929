"""Multi-series extraction from real Green Button (ESPI) files: every UsagePoint and
ReadingType of a feed, with the ESPI links resolved as the standard does.

`pipeline.process.extract_readings` handles the twin's single-series uploads on the hot
path; a utility's Green Button download holds several series (several UsagePoints, net
metering with a forward and a reverse ReadingType, ...). `extract_series` takes the root
returned by `pipeline.fetch.parse_upload` and returns one `Series` per (UsagePoint,
ReadingType), plus every part it had to reject, with a reason.

Link resolution (ESPI REQ.21 resource URIs, for example ``.../UsagePoint/01/MeterReading/01/
IntervalBlock/0173``):

- an IntervalBlock belongs to the MeterReading whose ``self`` href is the parent of the
  block's ``up`` link (without an ``up`` link: the grandparent of its ``self`` link);
- a MeterReading names its ReadingType with a ``related`` link (older feeds instead put the
  ReadingType under the MeterReading: a ReadingType whose ``up`` is the MeterReading);
- a MeterReading belongs to the UsagePoint whose ``self`` href is the longest prefix of the
  MeterReading's ``up`` link (without one: of its ``self`` link).

Hrefs are compared by path (scheme, host and surrounding slashes ignored), so
``https://host/espi/1_1/resource/ReadingType/07`` and ``/espi/1_1/resource/ReadingType/07``
match.

Tolerance for known deviations of real feeds, each used only when the standard rule finds
nothing or is ambiguous:

- several MeterReadings with the same ``self`` href (seen in redacted PG&E feeds, where
  every id became ``REDACTED``): an IntervalBlock goes to the nearest MeterReading before it
  in document order among those, which is how such feeds are written;
- a MeterReading whose ``related`` links name no ReadingType of the document (also a
  redaction artefact): the one ReadingType of the document that no other MeterReading
  claims, if there is exactly one;
- a MeterReading whose links name no UsagePoint: the document's only UsagePoint if it has
  exactly one, else the UsagePoint the ESPI URI implies (the href before ``/MeterReading``);
- an IntervalBlock whose links name no MeterReading: the document's only MeterReading, if
  it has exactly one.

Anything else that cannot be resolved is rejected as a part with a reason; the rest of the
document is still extracted.

Per the schema (espiDerived.xsd) every ReadingType field is optional: ``uom``,
``powerOfTenMultiplier`` and ``flowDirection`` default to 0 ("none"); a missing
``intervalLength`` is taken as the most common reading duration of the series. An
IntervalReading without ``timePeriod`` follows the previous one of its block ("readings for
each intervalLength in ReadingType are present"; the first starts at the block's
``interval/start``). A reading without ``value``, or with a start outside [0, 253402300799]
(years 1970 to 9999) or a duration <= 0, is rejected on its own.

Element order inside entries and resources, namespace prefixes (default namespaces
redeclared on each resource, ``ns0``/``ns1`` prefixes, ``xsi:type`` attributes) do not
matter: elements are matched by namespace URI and local name.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import numpy as np
from lxml import etree

from pipeline.fetch import ATOM_NS, ESPI_NS
from pipeline.process import ReadingBatch

__all__ = ["Extraction", "RejectedPart", "Series", "extract_series", "store_meter_id"]

_A = f"{{{ATOM_NS}}}"
_E = f"{{{ESPI_NS}}}"
_FEED = _A + "feed"
_ENTRY = _A + "entry"
_LINK = _A + "link"
_CONTENT = _A + "content"
_ID = _A + "id"
_USAGE_POINT = _E + "UsagePoint"
_METER_READING = _E + "MeterReading"
_READING_TYPE = _E + "ReadingType"
_INTERVAL_BLOCK = _E + "IntervalBlock"
_INTERVAL_READING = _E + "IntervalReading"
_TIME_PERIOD = _E + "timePeriod"
_INTERVAL = _E + "interval"
_START = _E + "start"
_DURATION = _E + "duration"
_VALUE = _E + "value"

#: Latest accepted interval start, epoch s (9999-12-31T23:59:59Z).
MAX_START_S = 253_402_300_799

_NS = {"espi": ESPI_NS}
_Strings = Callable[[etree._Element], list[str]]
_Number = Callable[[etree._Element], float]


def _xpath(expr: str) -> etree.XPath:
    return etree.XPath(expr, namespaces=_NS, smart_strings=False, regexp=False)


#: From an IntervalBlock: its readings' fields, in document order (the fast path).
_N_READINGS = cast(_Number, _xpath("count(espi:IntervalReading)"))
_STARTS = cast(_Strings, _xpath("espi:IntervalReading/espi:timePeriod/espi:start/text()"))
_DURATIONS = cast(_Strings, _xpath("espi:IntervalReading/espi:timePeriod/espi:duration/text()"))
_VALUES = cast(_Strings, _xpath("espi:IntervalReading/espi:value/text()"))

#: ReadingType fields read, their defaults when absent, and their ESPI ranges
#: (UnitSymbolKind and FlowDirectionKind UInt16, UnitMultiplierKind Int16, UInt32).
_RT_FIELDS = ("uom", "powerOfTenMultiplier", "intervalLength", "flowDirection")
_RT_RANGES = {
    "uom": (0, 2**16 - 1),
    "powerOfTenMultiplier": (-(2**15), 2**15 - 1),
    "intervalLength": (1, 2**32 - 1),
    "flowDirection": (0, 2**16 - 1),
}


@dataclass(frozen=True)
class RejectedPart:
    """A part of a document that was not ingested: `part` names it (resource kind and
    href), `reason` is ``"<code>: <text>"``."""

    part: str
    reason: str


@dataclass(frozen=True)
class Series:
    """The interval readings of one (UsagePoint, ReadingType) of a document.

    Attributes:
        usage_point: the UsagePoint's ``self`` href as written (or the href the ESPI URI of
            its MeterReadings implies, see the module docstring).
        reading_type: the ReadingType's ``self`` href as written; a ReadingType without
            one is named by its fields, ``ReadingType(uom=72,p10=-3,interval=3600,flow=1)``.
        uom, power_of_ten_multiplier, interval_length_s, flow_direction: the ReadingType
            fields (see `pipeline.process.ReadingBatch`).
        start_s, duration_s, value: int64 columns, one element per IntervalReading, in
            document order (all blocks of all MeterReadings of the series).
    """

    usage_point: str
    reading_type: str
    uom: int
    power_of_ten_multiplier: int
    interval_length_s: int
    flow_direction: int
    start_s: np.ndarray
    duration_s: np.ndarray
    value: np.ndarray

    @property
    def count(self) -> int:
        return int(self.start_s.shape[0])

    @property
    def total(self) -> float:
        """Sum of the values in the ReadingType's unit (powerOfTenMultiplier applied),
        from the exact integer sum."""
        raw = sum(self.value.tolist())
        p10 = self.power_of_ten_multiplier
        return float(raw * 10**p10) if p10 >= 0 else raw / 10 ** (-p10)

    def batch(self) -> ReadingBatch:
        """The series as a `ReadingBatch` for `pipeline.store.Store`, meter id from
        `store_meter_id`."""
        return ReadingBatch(
            meter_id=store_meter_id(
                self.usage_point, self.reading_type, self.uom, self.power_of_ten_multiplier
            ),
            sequence_no=None,
            uom=self.uom,
            power_of_ten_multiplier=self.power_of_ten_multiplier,
            interval_length_s=self.interval_length_s,
            flow_direction=self.flow_direction,
            start_s=self.start_s,
            duration_s=self.duration_s,
            value=self.value,
        )


def store_meter_id(usage_point: str, reading_type: str, uom: int, p10: int) -> str:
    """The Store's meter id of a series: ``"{usage_point}|{reading_type}|{uom}e{p10}"``.

    The ReadingType is part of the id because the Store keys readings by (meter_id,
    flow_direction, start_s) and keeps one uom and powerOfTenMultiplier per meter id: two
    ReadingTypes of one UsagePoint with the same flow direction (energy and demand, hourly
    and monthly) would otherwise collide or be refused as a conflict. Its unit and
    multiplier are part of it too because hrefs are often relative and reused between
    files (the NIST samples name a temperature series and an energy series both
    ``RetailCustomer/9b6c7063/UsagePoint/01`` + ``ReadingType/07``): series in different
    units never share a meter id, so a file never conflicts with another file's units."""
    return f"{usage_point}|{reading_type}|{uom}e{p10}"


@dataclass
class Extraction:
    """What `extract_series` found: the series (in order of first appearance) and the
    rejected parts."""

    series: list[Series] = field(default_factory=list)
    rejected: list[RejectedPart] = field(default_factory=list)


# --- document model ---------------------------------------------------------------------------


def _key(href: str) -> str:
    """Comparison key of an href: its path (and query), without scheme, host or
    surrounding slashes."""
    parts = urlsplit(href.strip())
    key = parts.path.strip("/")
    return f"{key}?{parts.query}" if parts.query else key


def _parent(key: str) -> str:
    return key.rpartition("/")[0]


@dataclass
class _Entry:
    index: int
    self_href: str  # as written, stripped; "" when absent
    up_href: str
    related: list[str]
    name: str  # for messages: self href, else atom:id, else position


@dataclass
class _ReadingType:
    entry: _Entry
    fields: tuple[int, int, int | None, int] | None  # None when rejected
    name: str


@dataclass
class _MeterReading:
    entry: _Entry
    blocks: list[tuple[_Entry, etree._Element]] = field(default_factory=list)


def _entry_meta(entry: etree._Element, index: int) -> _Entry:
    self_href = up_href = ""
    related: list[str] = []
    entry_id = ""
    for child in entry.iterchildren(_LINK, _ID):
        if child.tag == _ID:
            entry_id = (child.text or "").strip()
            continue
        href = (child.get("href") or "").strip()
        rel = (child.get("rel") or "alternate").strip()
        if rel == "self":
            self_href = self_href or href
        elif rel == "up":
            up_href = up_href or href
        elif rel == "related":
            related.append(href)
    name = self_href or entry_id or f"entry #{index + 1}"
    return _Entry(index, self_href, up_href, related, name)


def _int_text(element: etree._Element | None) -> int | None:
    """The integer text of `element`, None when the element is absent or empty; raises
    ValueError when the text is not an integer."""
    if element is None:
        return None
    text = (element.text or "").strip()
    return int(text) if text else None


def _reading_type(entry: _Entry, resource: etree._Element, out: Extraction) -> _ReadingType:
    values: dict[str, int | None] = {}
    try:
        for name in _RT_FIELDS:
            values[name] = _int_text(resource.find(_E + name))
    except ValueError:
        texts = {n: (resource.findtext(_E + n) or "").strip()[:20] for n in _RT_FIELDS}
        out.rejected.append(
            RejectedPart(
                f"ReadingType {entry.name}",
                f"non_integer: uom, powerOfTenMultiplier, intervalLength and flowDirection "
                f"must be integers, got {texts}",
            )
        )
        return _ReadingType(entry, None, entry.name)
    for name, number in values.items():
        low, high = _RT_RANGES[name]
        if number is not None and not low <= number <= high:
            out.rejected.append(
                RejectedPart(
                    f"ReadingType {entry.name}",
                    f"out_of_range: {name} = {number} is outside [{low}, {high}]",
                )
            )
            return _ReadingType(entry, None, entry.name)
    fields = (
        values["uom"] or 0,
        values["powerOfTenMultiplier"] or 0,
        values["intervalLength"],
        values["flowDirection"] or 0,
    )
    name = entry.self_href or (
        f"ReadingType(uom={fields[0]},p10={fields[1]},interval={fields[2]},flow={fields[3]})"
    )
    return _ReadingType(entry, fields, name)


# --- readings ---------------------------------------------------------------------------------


def _block_readings(
    block: etree._Element, interval_length: int | None, part: str, out: Extraction
) -> tuple[list[int], list[int], list[int]]:
    """(starts, durations, values) of one IntervalBlock; bad readings go to `out`."""
    n = int(_N_READINGS(block))
    starts = _STARTS(block)
    if len(starts) == n:
        durations = _DURATIONS(block)
        values = _VALUES(block)
        if len(durations) == n and len(values) == n:
            try:  # fast path: every reading complete and integer
                return (
                    [int(s) for s in starts],
                    [int(d) for d in durations],
                    [int(v) for v in values],
                )
            except ValueError:
                pass
    return _block_readings_slow(block, interval_length, part, out)


def _block_readings_slow(
    block: etree._Element, interval_length: int | None, part: str, out: Extraction
) -> tuple[list[int], list[int], list[int]]:
    starts: list[int] = []
    durations: list[int] = []
    values: list[int] = []
    try:
        next_start = _int_text(block.find(f"{_INTERVAL}/{_START}"))
    except ValueError:
        next_start = None
    for k, reading in enumerate(block.iterchildren(_INTERVAL_READING)):
        where = f"IntervalReading #{k + 1} of IntervalBlock {part}"
        try:
            value = _int_text(reading.find(_VALUE))
            period = reading.find(_TIME_PERIOD)
            if period is not None:
                start = _int_text(period.find(_START))
                duration = _int_text(period.find(_DURATION))
            else:
                start, duration = next_start, interval_length
        except ValueError as exc:
            out.rejected.append(RejectedPart(where, f"non_integer: {exc}"))
            next_start = None
            continue
        if value is None:
            out.rejected.append(RejectedPart(where, "no_value: the reading has no value"))
        elif start is None or duration is None:
            out.rejected.append(
                RejectedPart(
                    where,
                    "no_time_period: the reading has no timePeriod start and duration, and "
                    "none follows from the previous reading and the ReadingType's "
                    "intervalLength",
                )
            )
        else:
            starts.append(start)
            durations.append(duration)
            values.append(value)
        next_start = None if start is None or duration is None else start + duration
    return starts, durations, values


def _columns(
    starts: list[int], durations: list[int], values: list[int], part: str, out: Extraction
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int64 columns of the readings, without those out of range (rejected to `out`)."""
    n = len(starts)
    try:
        columns = np.array(starts + durations + values, dtype=np.int64).reshape(3, n)
    except OverflowError:
        keep = [
            i
            for i in range(n)
            if all(-(2**63) <= x < 2**63 for x in (starts[i], durations[i], values[i]))
        ]
        out.rejected.append(
            RejectedPart(part, f"out_of_range: {n - len(keep)} readings beyond 64-bit integers")
        )
        columns = np.array(
            [[starts[i] for i in keep], [durations[i] for i in keep], [values[i] for i in keep]],
            dtype=np.int64,
        ).reshape(3, len(keep))
    start_s, duration_s, value = columns
    bad = (start_s < 0) | (start_s > MAX_START_S) | (duration_s <= 0)
    if bad.any():
        for i in np.flatnonzero(bad).tolist():
            out.rejected.append(
                RejectedPart(
                    f"reading at start {int(start_s[i])} of {part}",
                    f"out_of_range: start must be in [0, {MAX_START_S}] and duration > 0, got "
                    f"start {int(start_s[i])}, duration {int(duration_s[i])}",
                )
            )
        good = ~bad
        start_s, duration_s, value = start_s[good], duration_s[good], value[good]
    return start_s, duration_s, value


# --- resolution -------------------------------------------------------------------------------


def _resolve_blocks(
    meter_readings: list[_MeterReading],
    blocks: list[tuple[_Entry, etree._Element]],
    out: Extraction,
) -> None:
    by_key: dict[str, list[_MeterReading]] = {}
    for mr in meter_readings:
        if mr.entry.self_href:
            by_key.setdefault(_key(mr.entry.self_href), []).append(mr)
    for entry, block in blocks:
        if entry.up_href:
            owner_key = _parent(_key(entry.up_href))
        elif entry.self_href:
            owner_key = _parent(_parent(_key(entry.self_href)))
        else:
            owner_key = ""
        candidates = by_key.get(owner_key, [])
        if len(candidates) == 1:
            owner = candidates[0]
        elif candidates:  # ids not unique (redacted feeds): the nearest one before the block
            before = [mr for mr in candidates if mr.entry.index < entry.index]
            owner = before[-1] if before else candidates[0]
        elif len(meter_readings) == 1:
            owner = meter_readings[0]
        else:
            out.rejected.append(
                RejectedPart(
                    f"IntervalBlock {entry.name}",
                    f"unresolved_meter_reading: no MeterReading with href {owner_key!r} "
                    f"(the parent of the block's up link)",
                )
            )
            continue
        owner.blocks.append((entry, block))


def _resolve_reading_types(
    meter_readings: list[_MeterReading], reading_types: list[_ReadingType], out: Extraction
) -> dict[int, _ReadingType]:
    """MeterReading entry index -> its ReadingType (rejections to `out`)."""
    by_key = {_key(rt.entry.self_href): rt for rt in reading_types if rt.entry.self_href}
    by_up: dict[str, list[_ReadingType]] = {}
    for rt in reading_types:
        if rt.entry.up_href:
            by_up.setdefault(_key(rt.entry.up_href), []).append(rt)
    resolved: dict[int, _ReadingType] = {}
    unresolved: list[_MeterReading] = []
    for mr in meter_readings:
        linked: dict[int, _ReadingType] = {}
        for href in mr.entry.related:
            match = by_key.get(_key(href))
            if match is not None:
                linked[id(match)] = match
        if not linked and mr.entry.self_href:  # older style: ReadingType under MeterReading
            linked = {id(rt): rt for rt in by_up.get(_key(mr.entry.self_href), [])}
        if len(linked) == 1:
            resolved[mr.entry.index] = next(iter(linked.values()))
        elif linked:
            out.rejected.append(
                RejectedPart(
                    f"MeterReading {mr.entry.name}",
                    f"ambiguous_reading_type: links to {len(linked)} ReadingTypes",
                )
            )
        elif mr.blocks:
            unresolved.append(mr)
    if unresolved:
        claimed = {id(rt) for rt in resolved.values()}
        free = [rt for rt in reading_types if id(rt) not in claimed]
        for mr in unresolved:
            if len(free) == 1 and len(unresolved) == 1:
                resolved[mr.entry.index] = free[0]
            else:
                out.rejected.append(
                    RejectedPart(
                        f"MeterReading {mr.entry.name}",
                        "unresolved_reading_type: no ReadingType of the document matches "
                        f"its related links {mr.entry.related!r:.300}",
                    )
                )
    return resolved


def _resolve_usage_point(
    mr: _MeterReading, usage_points: dict[str, str], n_usage_points: int
) -> str | None:
    """The UsagePoint href of a MeterReading, None when unresolvable."""
    href = mr.entry.up_href or mr.entry.self_href
    key = _parent(_key(href)) if href else ""
    while key:
        found = usage_points.get(key)
        if found is not None:
            return found
        key = _parent(key)
    if n_usage_points == 1:
        return next(iter(usage_points.values()))
    cut = href.rfind("/MeterReading")
    if cut > 0:
        return href[:cut]
    return None


# --- extraction -------------------------------------------------------------------------------


def extract_series(root: etree._Element) -> Extraction:
    """Every (UsagePoint, ReadingType) series of a parsed Green Button document.

    Args:
        root: ``atom:feed`` or a lone ``atom:entry``, from `pipeline.fetch.parse_upload`.

    Returns:
        The series with at least one reading, and the rejected parts (see the module
        docstring for the rules). Never raises for bad content.

    Cost: one pass over the entries, a dictionary lookup per link, and per IntervalBlock
    four compiled XPaths (a per-reading loop only for blocks with incomplete readings).
    """
    out = Extraction()
    entries = [root] if root.tag == _ENTRY else list(root.iterchildren(_ENTRY))
    usage_points: dict[str, str] = {}
    n_usage_points = 0
    meter_readings: list[_MeterReading] = []
    reading_types: list[_ReadingType] = []
    blocks: list[tuple[_Entry, etree._Element]] = []
    for index, entry in enumerate(entries):
        content = entry.find(_CONTENT)
        if content is None:
            continue
        meta: _Entry | None = None
        for resource in content.iterchildren(
            _USAGE_POINT, _METER_READING, _READING_TYPE, _INTERVAL_BLOCK
        ):
            if meta is None:
                meta = _entry_meta(entry, index)
            tag = resource.tag
            if tag == _INTERVAL_BLOCK:
                blocks.append((meta, resource))
            elif tag == _METER_READING:
                meter_readings.append(_MeterReading(meta))
            elif tag == _READING_TYPE:
                reading_types.append(_reading_type(meta, resource, out))
            else:
                n_usage_points += 1
                if meta.self_href:
                    usage_points.setdefault(_key(meta.self_href), meta.self_href)
    if not blocks:
        return out
    _resolve_blocks(meter_readings, blocks, out)
    rt_of = _resolve_reading_types(meter_readings, reading_types, out)

    # (usage point, reading type) -> (fields, [(part name, starts, durations, values)])
    grouped: dict[tuple[str, str], tuple[_ReadingType, list[np.ndarray]]] = {}
    for mr in meter_readings:
        if not mr.blocks:
            continue
        rt = rt_of.get(mr.entry.index)
        if rt is None:
            continue
        if rt.fields is None:
            out.rejected.append(
                RejectedPart(
                    f"MeterReading {mr.entry.name}",
                    f"bad_reading_type: its ReadingType {rt.name} was rejected",
                )
            )
            continue
        usage_point = _resolve_usage_point(mr, usage_points, n_usage_points)
        if usage_point is None:
            out.rejected.append(
                RejectedPart(
                    f"MeterReading {mr.entry.name}",
                    "unresolved_usage_point: no UsagePoint href is a prefix of its up link "
                    f"{mr.entry.up_href!r:.200}",
                )
            )
            continue
        interval_length = rt.fields[2]
        group = grouped.setdefault((usage_point, rt.name), (rt, []))[1]
        for block_entry, block in mr.blocks:
            part = block_entry.name
            starts, durations, values = _block_readings(block, interval_length, part, out)
            group.append(np.vstack(_columns(starts, durations, values, part, out)))
    for (usage_point, rt_name), (rt, pieces) in grouped.items():
        assert rt.fields is not None
        columns = np.hstack(pieces) if len(pieces) > 1 else pieces[0]
        if columns.shape[1] == 0:
            continue
        columns = np.ascontiguousarray(columns)
        columns.flags.writeable = False
        uom, p10, interval_length, flow = rt.fields
        if interval_length is None:  # optional in the schema: the usual reading duration
            interval_length = Counter(columns[1].tolist()).most_common(1)[0][0]
        out.series.append(
            Series(
                usage_point=usage_point,
                reading_type=rt_name,
                uom=uom,
                power_of_ten_multiplier=p10,
                interval_length_s=int(interval_length),
                flow_direction=flow,
                start_s=columns[0],
                duration_s=columns[1],
                value=columns[2],
            )
        )
    return out
