"""Multi-series extraction from real Green Button (ESPI) files: every UsagePoint and
ReadingType of a feed, with the ESPI links resolved as the standard does.

`pipeline.process.upload.extract_batches` reads meter uploads on the hot path, strictly (one
UsagePoint, channels linked as ``docs/upload-format.md`` says, all or nothing); a utility's Green
Button download holds several series (several UsagePoints, net metering with a forward and
a reverse ReadingType, ...) and deviates from the standard in known ways. `extract_series`
takes the root returned by `pipeline.fetch.parse.parse_upload` and returns one
`GreenButtonSeries` per (UsagePoint, ReadingType), plus every part it had to reject, with a
reason. Both share `pipeline.process.columns`' ReadingType parsing, column conversion and
ReadingQuality handling, and `ReadingBatch`: a `GreenButtonSeries` is a batch plus the
hrefs that name it.

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
``powerOfTenMultiplier``, ``flowDirection`` and the other identity fields of
`pipeline.espi.reading_type.ReadingType` default to 0 ("none"); a missing
``intervalLength`` is taken as the most common reading duration of the series. A reading's
ESPI ReadingQuality (or the ReadingType's ``defaultQuality``) is kept as its quality code.
An IntervalReading without ``timePeriod`` follows the previous one of its block ("readings
for each intervalLength in ReadingType are present"; the first starts at the block's
``interval/start``). A reading without ``value``, with a field given twice (two values, two
timePeriods, ...), or with a start outside [0, 253402300799] (years 1970 to 9999) or a
duration <= 0, is rejected on its own; no reading ever takes another's field. Numbers must
be XML Schema integers (`xs_integer`): ``1_000`` or non-ASCII digits, which Python's
``int`` would take, reject the reading (or the ReadingType).

Local time: a UsagePoint's LocalTimeParameters (`pipeline.espi.localtime.LocalTime`: standard
time offset and DST rules) is the one its entry names with a ``related`` link (compared by
path, as above); else one whose ``up`` link is the UsagePoint (the NIST multi-UsagePoint
sample puts them under their UsagePoint); else the document's only LocalTimeParameters, if
it has exactly one. A LocalTimeParameters that does not decode is rejected as a part (its
usage points then have no local time); the readings, in UTC, are ingested all the same.

Bounded work on hostile documents: link resolution is linear in the number of entries (a
block among many MeterReadings of one href, as in redacted feeds, is placed by binary
search), and the walk up an href's parents looks at most `MAX_HREF_LEVELS` levels.

Element order inside entries and resources, namespace prefixes (default namespaces
redeclared on each resource, ``ns0``/``ns1`` prefixes, ``xsi:type`` attributes) do not
matter: elements are matched by namespace URI and local name.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import numpy as np
from lxml import etree

from pipeline.espi.codes import QUALITY_MIXED
from pipeline.espi.localtime import LOCAL_TIME_TAG, LocalTime, local_time_of
from pipeline.espi.namespaces import ATOM, ESPI
from pipeline.espi.reading_type import ReadingType
from pipeline.process.batch import QUALITY_NONE, ReadingBatch
from pipeline.process.columns import (
    ReadingTypeValues,
    block_quality,
    block_strings,
    concat_quality,
    int64_columns,
    reading_type_values,
    xpath,
    xs_integer,
)

__all__ = [
    "MAX_HREF_LEVELS",
    "Extraction",
    "GreenButtonSeries",
    "RejectedPart",
    "extract_series",
]

_A = ATOM
_E = ESPI
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

#: Most parent levels of a MeterReading href searched for its UsagePoint. ESPI resource URIs
#: are about 11 segments deep (``espi/1_1/resource/Subscription/{id}/UsagePoint/{id}/
#: MeterReading/{id}/IntervalBlock/{id}``); the bound keeps a hostile href of a million
#: segments from costing a million string copies per MeterReading.
MAX_HREF_LEVELS = 32

_Number = Callable[[etree._Element], float]

#: From an IntervalBlock: the number of its readings (the rest comes from
#: `pipeline.process.columns.block_strings`).
_N_READINGS = cast(_Number, xpath("count(espi:IntervalReading)"))
#: From an IntervalBlock: the number of its readings with exactly one timePeriod start,
#: one duration and one value, each a single text node. `block_strings` aligns the three
#: lists by position, which is right only when every reading is such a reading: equal
#: totals alone let a reading without a value take the next reading's.
_N_WELL_FORMED_READINGS = cast(
    _Number,
    xpath(
        "count(espi:IntervalReading[count(espi:timePeriod/espi:start/text()) = 1"
        " and count(espi:timePeriod/espi:duration/text()) = 1"
        " and count(espi:value/text()) = 1])"
    ),
)
#: From an IntervalBlock: its readings that do not carry exactly one ReadingQuality with
#: one quality code. `pipeline.process.columns.block_quality` aligns codes by position when
#: the totals match, right only when there is none of these among readings with codes.
_N_IRREGULAR_QUALITY = cast(
    _Number,
    xpath(
        "count(espi:IntervalReading[espi:ReadingQuality][count(espi:ReadingQuality) != 1"
        " or count(espi:ReadingQuality/espi:quality/text()) != 1])"
    ),
)
_QUALITY = _E + "ReadingQuality/" + _E + "quality"
_READING_QUALITY = _E + "ReadingQuality"


@dataclass(frozen=True)
class RejectedPart:
    """A part of a document that was not ingested: `part` names it (resource kind and
    href), `reason` is ``"<code>: <text>"``."""

    part: str
    reason: str


@dataclass(frozen=True)
class GreenButtonSeries:
    """The interval readings of one (UsagePoint, ReadingType) of a document.

    Attributes:
        usage_point: the UsagePoint's ``self`` href as written (or the href the ESPI URI of
            its MeterReadings implies, see the module docstring).
        reading_type: the ReadingType's ``self`` href as written; a ReadingType without
            one is named by its fields, ``ReadingType(uom=72,p10=-3,interval=3600,flow=1)``.
        batch: the readings, in document order (all blocks of all MeterReadings of the
            series), ready for `pipeline.store.store.Store`: its meter id is `usage_point`, its
            `ReadingType` the series' fields, its sequence number None.
        local_time: the usage point's LocalTimeParameters (see the module docstring), None
            when the document gives none for it.

    The store keys a reading by (meter, ReadingType fields, interval start), so two
    ReadingTypes of one UsagePoint (energy and demand, delivered and received) never mix,
    and series of different units that reuse relative hrefs between files (the NIST
    samples name a temperature series and an energy series both
    ``RetailCustomer/9b6c7063/UsagePoint/01`` + ``ReadingType/07``) never collide.
    """

    usage_point: str
    reading_type: str
    batch: ReadingBatch
    local_time: LocalTime | None = None


@dataclass
class Extraction:
    """What `extract_series` found: the series (in order of first appearance), the
    rejected parts, and the local time of each usage point that has one (usage point href
    as in `GreenButtonSeries.usage_point` -> `LocalTime`)."""

    series: list[GreenButtonSeries] = field(default_factory=list)
    rejected: list[RejectedPart] = field(default_factory=list)
    local_times: dict[str, LocalTime] = field(default_factory=dict)


# --- document model ---------------------------------------------------------------------------


def href_key(href: str) -> str:
    """Comparison key of an href: its path (and query), without scheme, host or
    surrounding slashes."""
    parts = urlsplit(href.strip())
    key = parts.path.strip("/")
    return f"{key}?{parts.query}" if parts.query else key


def href_parent(key: str) -> str:
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
    values: ReadingTypeValues | None  # READING_TYPE_ELEMENTS order, None when rejected
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


_XML_SPACE = " \t\r\n"


def _plain_integers(element: etree._Element) -> bool:
    """True when no text inside `element` can be read differently by Python's ``int`` and
    by XML Schema: all of it ASCII and without ``_``. In ASCII, ``int`` then takes exactly
    the xs:integer forms, because the other white space it strips (vertical tab, form
    feed, U+001C..U+001F) cannot occur in XML 1.0. One C-level serialisation: the check of
    a block costs no per-reading Python work."""
    text = etree.tostring(element, method="text", encoding="unicode")
    return text.isascii() and "_" not in text


def _int_text(element: etree._Element | None) -> int | None:
    """The integer text of `element`, None when the element is absent or empty; raises
    ValueError when the text is not an integer (`xs_integer`)."""
    if element is None:
        return None
    if len(element):
        raise ValueError(f"{element.tag.rpartition('}')[2]} holds elements, not an integer")
    text = element.text or ""
    return xs_integer(text) if text.strip(_XML_SPACE) else None


def _ambiguity(reading: etree._Element) -> str | None:
    """Why a reading is ambiguous (a field given twice, which the schema forbids), else
    None."""
    counts = {"value": len(reading.findall(_VALUE))}
    periods = reading.findall(_TIME_PERIOD)
    counts["timePeriod"] = len(periods)
    if periods:
        counts["start"] = len(periods[0].findall(_START))
        counts["duration"] = len(periods[0].findall(_DURATION))
    twice = [name for name, count in counts.items() if count > 1]
    return f"ambiguous_reading: more than one {', '.join(twice)}" if twice else None


def _reading_type(entry: _Entry, resource: etree._Element, out: Extraction) -> _ReadingType:
    values, reason = reading_type_values(resource)
    if values is not None and not _plain_integers(resource):
        values, reason = (
            None,
            (
                "non_integer: a ReadingType field holds non-ASCII characters or '_' (not an "
                "xs:integer)"
            ),
        )
    if values is None:
        out.rejected.append(RejectedPart(f"ReadingType {entry.name}", reason or "non_integer"))
        return _ReadingType(entry, None, entry.name)
    name = entry.self_href or (
        f"ReadingType(uom={values[0] or 0},p10={values[1] or 0},interval={values[2]},"
        f"flow={values[3] or 0})"
    )
    return _ReadingType(entry, values, name)


# --- readings ---------------------------------------------------------------------------------

_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


def _block_readings(
    block: etree._Element,
    interval_length: int | None,
    default_quality: int | None,
    part: str,
    out: Extraction,
) -> _Columns:
    """(start_s, duration_s, value, quality) of one IntervalBlock; bad readings go to `out`.

    Fast path, when every reading has exactly one start, duration and value, all XML
    Schema integers, and every reading with a ReadingQuality has one code: the shared
    column primitives of `pipeline.process` (five XPaths, a text serialisation, one more
    XPath when there are ReadingQualities, and one numpy conversion); else a loop over the
    block's readings that rejects the bad ones one by one."""
    n = int(_N_READINGS(block))
    starts, durations, values = block_strings(block)
    if (
        len(starts) == n
        and len(durations) == n
        and len(values) == n
        and int(_N_WELL_FORMED_READINGS(block)) == n
        and _plain_integers(block)
        and (
            next(block.iter(_READING_QUALITY), None) is None
            or int(_N_IRREGULAR_QUALITY(block)) == 0
        )
    ):
        try:
            start_s, duration_s, value = int64_columns(starts, durations, values)
            quality = block_quality(block, n, default_quality)
        except (ValueError, OverflowError):
            pass
        else:
            return _in_range(start_s, duration_s, value, quality, part, out)
    return _block_readings_slow(block, interval_length, default_quality, part, out)


def _reading_quality(reading: etree._Element, default: int) -> int:
    """The QualityOfReading of one IntervalReading (see
    `pipeline.process.columns.block_quality`)."""
    codes = {xs_integer(q.text or "") for q in reading.iterfind(_QUALITY)}
    if not codes:
        return default
    code = codes.pop() if len(codes) == 1 else QUALITY_MIXED
    if not 0 <= code < 2**16:
        raise ValueError(f"ReadingQuality quality {code} is outside [0, 65535]")
    return code


def _block_readings_slow(
    block: etree._Element,
    interval_length: int | None,
    default_quality: int | None,
    part: str,
    out: Extraction,
) -> _Columns:
    rows: list[tuple[int, int, int, int]] = []
    default = QUALITY_NONE if default_quality is None else default_quality
    try:
        next_start = _int_text(block.find(f"{_INTERVAL}/{_START}"))
    except ValueError:
        next_start = None
    for k, reading in enumerate(block.iterchildren(_INTERVAL_READING)):
        where = f"IntervalReading #{k + 1} of IntervalBlock {part}"
        ambiguous = _ambiguity(reading)
        if ambiguous is not None:
            out.rejected.append(RejectedPart(where, ambiguous))
            next_start = None
            continue
        try:
            value = _int_text(reading.find(_VALUE))
            period = reading.find(_TIME_PERIOD)
            if period is not None:
                start = _int_text(period.find(_START))
                duration = _int_text(period.find(_DURATION))
            else:
                start, duration = next_start, interval_length
            quality = _reading_quality(reading, default)
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
        elif not all(-(2**63) <= x < 2**63 for x in (start, duration, value)):
            out.rejected.append(RejectedPart(where, "out_of_range: beyond 64-bit integers"))
        else:
            rows.append((start, duration, value, quality))
        next_start = None if start is None or duration is None else start + duration
    columns = np.array(rows, dtype=np.int64).reshape(len(rows), 4).T
    quality_column = columns[3] if (columns[3] != QUALITY_NONE).any() else None
    return _in_range(columns[0], columns[1], columns[2], quality_column, part, out)


def _in_range(
    start_s: np.ndarray,
    duration_s: np.ndarray,
    value: np.ndarray,
    quality: np.ndarray | None,
    part: str,
    out: Extraction,
) -> _Columns:
    """The columns without the readings whose start or duration is out of range (rejected
    to `out`)."""
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
        quality = None if quality is None else quality[good]
    return start_s, duration_s, value, quality


# --- resolution -------------------------------------------------------------------------------


def _resolve_blocks(
    meter_readings: list[_MeterReading],
    blocks: list[tuple[_Entry, etree._Element]],
    out: Extraction,
) -> None:
    by_key: dict[str, list[_MeterReading]] = {}
    for mr in meter_readings:  # in document order: each list's entry indices ascend
        if mr.entry.self_href:
            by_key.setdefault(href_key(mr.entry.self_href), []).append(mr)
    for entry, block in blocks:
        if entry.up_href:
            owner_key = href_parent(href_key(entry.up_href))
        elif entry.self_href:
            owner_key = href_parent(href_parent(href_key(entry.self_href)))
        else:
            owner_key = ""
        candidates = by_key.get(owner_key, [])
        if len(candidates) == 1:
            owner = candidates[0]
        elif candidates:  # ids not unique (redacted feeds): the nearest one before the block
            at = bisect.bisect_left(candidates, entry.index, key=lambda mr: mr.entry.index)
            owner = candidates[at - 1] if at else candidates[0]
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
    by_key = {href_key(rt.entry.self_href): rt for rt in reading_types if rt.entry.self_href}
    by_up: dict[str, list[_ReadingType]] = {}
    for rt in reading_types:
        if rt.entry.up_href:
            by_up.setdefault(href_key(rt.entry.up_href), []).append(rt)
    resolved: dict[int, _ReadingType] = {}
    unresolved: list[_MeterReading] = []
    for mr in meter_readings:
        linked: dict[int, _ReadingType] = {}
        for href in mr.entry.related:
            match = by_key.get(href_key(href))
            if match is not None:
                linked[id(match)] = match
        if not linked and mr.entry.self_href:  # older style: ReadingType under MeterReading
            linked = {id(rt): rt for rt in by_up.get(href_key(mr.entry.self_href), [])}
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
    key = href_parent(href_key(href)) if href else ""
    for _ in range(MAX_HREF_LEVELS):
        if not key:
            break
        found = usage_points.get(key)
        if found is not None:
            return found
        key = href_parent(key)
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
        root: ``atom:feed`` or a lone ``atom:entry``, from `pipeline.fetch.parse.parse_upload`.

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
    up_entries: list[_Entry] = []
    local_time_resources: list[tuple[_Entry, etree._Element]] = []
    for index, entry in enumerate(entries):
        content = entry.find(_CONTENT)
        if content is None:
            continue
        meta: _Entry | None = None
        for resource in content.iterchildren(
            _USAGE_POINT, _METER_READING, _READING_TYPE, _INTERVAL_BLOCK, LOCAL_TIME_TAG
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
            elif tag == LOCAL_TIME_TAG:
                local_time_resources.append((meta, resource))
            else:
                up_entries.append(meta)
                n_usage_points += 1
                if meta.self_href:
                    usage_points.setdefault(href_key(meta.self_href), meta.self_href)
    if not blocks:
        return out
    _resolve_blocks(meter_readings, blocks, out)
    rt_of = _resolve_reading_types(meter_readings, reading_types, out)

    # (usage point, reading type) -> (its ReadingType, [columns of each block])
    grouped: dict[tuple[str, str], tuple[_ReadingType, list[_Columns]]] = {}
    for mr in meter_readings:
        if not mr.blocks:
            continue
        rt = rt_of.get(mr.entry.index)
        if rt is None:
            continue
        if rt.values is None:
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
        interval_length, default_quality = rt.values[2], rt.values[9]
        group = grouped.setdefault((usage_point, rt.name), (rt, []))[1]
        for block_entry, block in mr.blocks:
            group.append(
                _block_readings(block, interval_length, default_quality, block_entry.name, out)
            )
    for (usage_point, rt_name), (rt, pieces) in grouped.items():
        assert rt.values is not None
        start_s, duration_s, value = (
            np.concatenate([piece[i] for piece in pieces]) for i in range(3)
        )
        if start_s.shape[0] == 0:
            continue
        quality = concat_quality([p[3] for p in pieces], [p[0].shape[0] for p in pieces])
        for column in (start_s, duration_s, value):
            column.flags.writeable = False
        fields = [0 if v is None else v for v in rt.values[:9]]
        if rt.values[2] is None:  # optional in the schema: the usual reading duration
            fields[2] = int(Counter(duration_s.tolist()).most_common(1)[0][0])
        batch = ReadingBatch.of(
            usage_point, None, ReadingType(*fields), start_s, duration_s, value, quality
        )
        out.series.append(GreenButtonSeries(usage_point, rt_name, batch))
    if local_time_resources:
        _attach_local_times(up_entries, local_time_resources, out)
    return out


def _attach_local_times(
    up_entries: list[_Entry],
    resources: list[tuple[_Entry, etree._Element]],
    out: Extraction,
) -> None:
    """Decode the LocalTimeParameters (bad ones to `out.rejected`), find each usage point's
    (module docstring), fill `out.local_times` and the series' `local_time`."""
    by_self: dict[str, LocalTime | None] = {}
    by_up: dict[str, LocalTime | None] = {}
    decoded: list[LocalTime | None] = []
    for meta, resource in resources:
        try:
            local_time: LocalTime | None = local_time_of(resource)
        except ValueError as exc:
            out.rejected.append(RejectedPart(f"LocalTimeParameters {meta.name}", str(exc)))
            local_time = None
        decoded.append(local_time)
        if meta.self_href:
            by_self.setdefault(href_key(meta.self_href), local_time)
        if meta.up_href:
            by_up.setdefault(href_key(meta.up_href), local_time)
    only = decoded[0] if len(decoded) == 1 else None

    def of(usage_point: str, related: list[str]) -> LocalTime | None:
        for href in related:
            key = href_key(href)
            if key in by_self:
                return by_self[key]
        key = href_key(usage_point)
        if key in by_up:
            return by_up[key]
        return only

    related_of = {href_key(meta.self_href): meta.related for meta in up_entries if meta.self_href}
    for meta in up_entries:
        if meta.self_href:
            found = of(meta.self_href, meta.related)
            if found is not None:
                out.local_times.setdefault(meta.self_href, found)
    for index, series in enumerate(out.series):
        usage_point = series.usage_point
        if usage_point not in out.local_times:
            found = of(usage_point, related_of.get(href_key(usage_point), []))
            if found is None:
                continue
            out.local_times[usage_point] = found
        out.series[index] = GreenButtonSeries(
            usage_point, series.reading_type, series.batch, out.local_times[usage_point]
        )
