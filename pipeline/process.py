"""Process stage: one parsed ESPI upload to column batches of interval readings, one per series.

An upload (CONTRACTS.md "Meter upload format") is one Atom feed with one UsagePoint and
K >= 1 channels; channel k is a MeterReading, its ReadingType and its IntervalBlock(s), tied
together by Atom links (MeterReading ``related`` -> ReadingType ``self``; IntervalBlock
``up`` -> ``{MeterReading self}/IntervalBlock``). `extract_batches` returns one
`ReadingBatch` per channel. A series is identified by its meter and its `ReadingType` (uom,
powerOfTenMultiplier, intervalLength, flowDirection, kind, accumulationBehaviour,
commodity, phase, dataQualifier): energy delivered, energy received, voltage, current and
power factor of one meter are five series.

How the channels are found:

- one ReadingType in the document (a single-channel upload, or a utility's single-series
  Green Button file): every IntervalBlock belongs to it and no link is read. This is the
  hot path, kept inside the DESIGN §7 budget (fetch+process at most 2x a bare
  ``lxml.etree.fromstring``);
- several ReadingTypes: the contract's links are followed strictly. Each IntervalBlock's
  ``up`` href must be a ``related`` href of exactly one MeterReading (its IntervalBlock
  collection, ``{MeterReading self}/IntervalBlock``), and each MeterReading that owns blocks
  must name exactly one ReadingType of the document (by its ``self`` href) with another
  ``related`` link. Hrefs are compared as written. Anything else rejects the whole upload
  with a reason (an upload is accepted or rejected as a whole, so that the ledger stays
  exact); the tolerant resolution of real utility files, which may be redacted, lives in
  `pipeline.greenbutton` and shares this module's ReadingType, column and quality
  primitives.

Readings of a channel are read with module-level compiled XPaths (``smart_strings=False``)
and converted to int64 numpy columns in one call (a compiled parse of the joined texts, see
`int64_columns`): no per-reading Python loop. The optional ESPI ReadingQuality of each
IntervalReading becomes the `ReadingBatch.quality` column (see `block_quality`).

The twin's own uploads take a faster way to the same result (DESIGN §7 budget: fetch+process
at most 2x a bare ``lxml.etree.fromstring``). XPath costs about 0.2 µs per text node it
returns and 1.5 µs per link it reads, while lxml serializes a tree at about 2.5 ns a byte
and a compiled loop (numba) reads the text at about 1 ns a byte. So, when the upload is in
the canonical form of the twin's encoder (``meters.espi.encode_meter_upload`` as libxml2
writes it back; see `_scan_upload`), a multi-channel upload is serialized once and scanned
(`_extract_scanned`: resources, feed id, links, ReadingType keys and readings in one pass,
the channels resolved by the same rules as `_resolve_channels`), and the IntervalBlock of a
single-channel upload is scanned instead of its three XPaths (`_scanned_block_columns`): in
the bytes as received when the caller passes them (``extract_batches(..., source=body)``,
as `pipeline.service.Pipeline` does) and they allow it (`_source_block`), else in its
serialization. The scanner declines anything outside that form, and every
upload the general path would reject or read differently (ReadingQuality, several blocks
per channel, links it would refuse...): those take the general path, which is the
reference. Measured fetch+process against a bare ``fromstring`` of the same bytes (medians
of interleaved loops on the project's 2-core machine, 15 readings a channel; before this
fast way and the compiled conversion in brackets): 1.8x for a single-channel upload
(2.0x), 1.9x for the twin's calibration upload (2.15x), 1.9x for two channels (2.3x), 1.8x
for five (2.25x); 1.5x for one channel of 1,440 readings (1.85x). With the block read in
the bytes as received (`Pipeline.fetch_process`, bench/test_pipeline_bench.py): 1.6x for
the twin's upload and a single channel, 1.95x for a sealed twin upload (HMAC-SHA256
envelope; against ``fromstring`` of the document inside it). A differential fuzz
against the general path alone (20,000 mutated twin, test and Green Button uploads, 5,400
of them read by the feed scanner and 3,300 by the block scanner) found no difference in
batches, arrays, flags or rejection reasons.

Element order inside ESPI resources does not matter (every field is selected by name), nor
does the namespace style: default-namespace (``<IntervalBlock xmlns="http://naesb.org/espi">``)
and prefixed (``<espi:IntervalBlock xmlns:espi=...>``) documents parse the same, because the
XPaths match namespace URIs, not prefixes. Resources are looked for where Atom puts them:
``feed/entry/content/<Resource>`` (or ``entry/content/<Resource>`` for a lone entry).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import cast

import numba
import numpy as np
from lxml import etree
from numba import types as nb_types

from pipeline.fetch import ATOM_NS, ESPI_NS, RejectedUpload

__all__ = [
    "MAX_METER_ID_CHARS",
    "QUALITY_MIXED",
    "QUALITY_NONE",
    "READING_TYPE_ELEMENTS",
    "UPLOAD_ID_PREFIX",
    "ReadingBatch",
    "ReadingType",
    "block_quality",
    "block_strings",
    "concat_quality",
    "extract_batches",
    "extract_readings",
    "int64_columns",
    "reading_type_values",
    "upload_id",
    "xs_integer",
]

#: Feed id scheme of the twin's uploads: ``urn:imdc:upload:{meter_id}:{sequence_no}``.
UPLOAD_ID_PREFIX = "urn:imdc:upload:"

#: Longest meter id accepted, in characters (ids become database keys and detector state).
MAX_METER_ID_CHARS = 256

#: `ReadingBatch.quality` of a reading that carries no ReadingQuality, in a document whose
#: ReadingType has no defaultQuality (not an ESPI code: those are UInt16). Stored as NULL.
QUALITY_NONE = -1
#: ESPI QualityOfReading 13 "mixed" (espiDerived.xsd): "the quality of this reading has
#: mixed characteristics"; given to a reading that carries several different codes.
QUALITY_MIXED = 13

_NS = {"atom": ATOM_NS, "espi": ESPI_NS}
_FEED_TAG = f"{{{ATOM_NS}}}feed"
_SEP = "|"
_UINT16 = (0, 2**16 - 1)


@dataclass(frozen=True)
class ReadingType:
    """The identity of a series: the ESPI ReadingType fields that say what a value means.

    Attributes (codes of the espiDerived.xsd enumerations; 0 is ESPI "none" for the
    optional ones):
        uom: UnitSymbolKind (72 Wh, 29 V, 5 A, 38 W, 65 cosTheta, 169 therm, ...).
        power_of_ten_multiplier: UnitMultiplierKind; a value means ``value * 10**m`` uom.
        interval_length_s: intervalLength, seconds.
        flow_direction: FlowDirectionKind (1 forward/delivered, 19 reverse/received).
        kind: MeasurementKind (12 energy, 54 voltage, 4 current, ...).
        accumulation_behaviour: AccumulationKind (4 deltaData, 3 cumulative, ...).
        commodity: CommodityKind (1 electricity secondary metered, 7 natural gas, ...).
        phase: PhaseCodeKind (0 none, 769 phase A to N, ...).
        data_qualifier: DataQualifierKind (0 none, 8 maximum, 12 average, ...).

    defaultQuality is not part of the identity: it fills the quality of readings that carry
    no ReadingQuality (see `block_quality`).
    """

    uom: int
    power_of_ten_multiplier: int
    interval_length_s: int
    flow_direction: int
    kind: int = 0
    accumulation_behaviour: int = 0
    commodity: int = 0
    phase: int = 0
    data_qualifier: int = 0

    def values(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """The fields in declaration order (the order of `READING_TYPE_ELEMENTS`)."""
        return (
            self.uom,
            self.power_of_ten_multiplier,
            self.interval_length_s,
            self.flow_direction,
            self.kind,
            self.accumulation_behaviour,
            self.commodity,
            self.phase,
            self.data_qualifier,
        )


#: (ESPI element, lowest, highest) of each `ReadingType` field in declaration order, then
#: defaultQuality. Ranges from espiDerived.xsd: the enumerations (UnitSymbolKind,
#: FlowDirectionKind, MeasurementKind, AccumulationKind, CommodityKind, PhaseCodeKind,
#: DataQualifierKind, QualityOfReading) are unions with UInt16, UnitMultiplierKind with
#: Int16, intervalLength is UInt32 (and 0 s would be no interval at all).
READING_TYPE_ELEMENTS: tuple[tuple[str, int, int], ...] = (
    ("uom", *_UINT16),
    ("powerOfTenMultiplier", -(2**15), 2**15 - 1),
    ("intervalLength", 1, 2**32 - 1),
    ("flowDirection", *_UINT16),
    ("kind", *_UINT16),
    ("accumulationBehaviour", *_UINT16),
    ("commodity", *_UINT16),
    ("phase", *_UINT16),
    ("dataQualifier", *_UINT16),
    ("defaultQuality", *_UINT16),
)


@dataclass(frozen=True)
class ReadingBatch:
    """The interval readings of one series of one upload, as columns (one element per
    IntervalReading).

    Attributes:
        meter_id: the meter part of the feed id ``urn:imdc:upload:{meter_id}:{sequence_no}``
            (the upload identity of DESIGN §3, which per-meter authentication keys on);
            for documents without such an id (a utility's Green Button download), the last
            path segment of the UsagePoint entry's ``self`` link (ESPI resource URI
            ``.../UsagePoint/{meter_id}``). The link is not read when the feed id names the
            meter: skipping that XPath keeps fetch+process inside its 2x budget (DESIGN §7).
        sequence_no: upload sequence number from the feed id, None when the feed id is not
            of that form (for example a utility's Green Button download).
        uom, power_of_ten_multiplier, interval_length_s, flow_direction, kind,
            accumulation_behaviour, commodity, phase, data_qualifier: the series'
            ReadingType (see `ReadingType`; `reading_type` returns them as one value).
        start_s: int64 epoch seconds (UTC) of each interval's start (timePeriod/start).
        duration_s: int64 length of each interval, seconds (timePeriod/duration).
        value: int64 raw register value; the quantity is
            ``value * 10**power_of_ten_multiplier`` in `uom`.
        quality: int64 ESPI QualityOfReading code of each reading (`QUALITY_NONE` where the
            document gives none), or None when no reading of the series has one.

    The arrays are read-only.
    """

    meter_id: str
    sequence_no: int | None
    uom: int
    power_of_ten_multiplier: int
    interval_length_s: int
    flow_direction: int
    start_s: np.ndarray
    duration_s: np.ndarray
    value: np.ndarray
    kind: int = 0
    accumulation_behaviour: int = 0
    commodity: int = 0
    phase: int = 0
    data_qualifier: int = 0
    quality: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        meter_id: str,
        sequence_no: int | None,
        reading_type: ReadingType,
        start_s: np.ndarray,
        duration_s: np.ndarray,
        value: np.ndarray,
        quality: np.ndarray | None = None,
    ) -> ReadingBatch:
        """A batch of the series (`meter_id`, `reading_type`).

        Fills the instance dict in one update instead of the generated frozen ``__init__``
        (one ``object.__setattr__`` per field: 1.9 µs against 0.6 µs, on the hot path of
        every upload); the result is the same frozen dataclass, `reading_type` included.
        """
        rt = reading_type
        batch = object.__new__(cls)
        batch.__dict__.update(
            meter_id=meter_id,
            sequence_no=sequence_no,
            uom=rt.uom,
            power_of_ten_multiplier=rt.power_of_ten_multiplier,
            interval_length_s=rt.interval_length_s,
            flow_direction=rt.flow_direction,
            start_s=start_s,
            duration_s=duration_s,
            value=value,
            kind=rt.kind,
            accumulation_behaviour=rt.accumulation_behaviour,
            commodity=rt.commodity,
            phase=rt.phase,
            data_qualifier=rt.data_qualifier,
            quality=quality,
            reading_type=rt,
        )
        return batch

    @cached_property
    def reading_type(self) -> ReadingType:
        """The series' identity besides the meter."""
        return ReadingType(
            self.uom,
            self.power_of_ten_multiplier,
            self.interval_length_s,
            self.flow_direction,
            self.kind,
            self.accumulation_behaviour,
            self.commodity,
            self.phase,
            self.data_qualifier,
        )

    @property
    def n_readings(self) -> int:
        """Number of interval readings in the batch."""
        return int(self.start_s.shape[0])

    @property
    def total(self) -> float:
        """Sum of the values in `uom` (powerOfTenMultiplier applied), from the exact
        integer sum (off the hot path: for reports)."""
        raw = sum(self.value.tolist())
        p10 = self.power_of_ten_multiplier
        return float(raw * 10**p10) if p10 >= 0 else raw / 10 ** (-p10)


_Strings = Callable[[etree._Element], list[str]]
_Elements = Callable[[etree._Element], list[etree._Element]]
_String = Callable[[etree._Element], str]
_Number = Callable[[etree._Element], float]


def _xpath(expr: str) -> etree.XPath:
    """Compile with the ESPI/Atom prefixes; plain str results; no EXSLT regexp functions
    (``regexp=False`` saves ~0.3 µs of set-up per call)."""
    return etree.XPath(expr, namespaces=_NS, smart_strings=False, regexp=False)


# Module-level compiled XPaths, typed by what they return. lxml serialises concurrent calls
# of one XPath object with a lock, so sharing them between threads is safe.

#: The ESPI resources: the children of each entry's content, for a feed or a lone entry.
_FEED_RESOURCES = cast(_Elements, _xpath("atom:entry/atom:content/*"))
_ENTRY_RESOURCES = cast(_Elements, _xpath("self::atom:entry/atom:content/*"))
#: The feed's (or lone entry's) own id.
_DOC_ID = cast(_Strings, _xpath("atom:id/text()"))
#: From a resource element: its entry's links.
_SELF_HREFS = cast(_Strings, _xpath("../../atom:link[@rel='self']/@href"))
_UP_HREFS = cast(_Strings, _xpath("../../atom:link[@rel='up']/@href"))
_RELATED_HREFS = cast(_Strings, _xpath("../../atom:link[@rel='related']/@href"))
#: From a ReadingType element: every field of `READING_TYPE_ELEMENTS`, in one string.
_READING_TYPE_TEXT = cast(
    _String,
    _xpath(
        "concat("
        + f", '{_SEP}', ".join(f"espi:{name}" for name, _, _ in READING_TYPE_ELEMENTS)
        + ")"
    ),
)
#: From an IntervalBlock element: one string per IntervalReading, in document order.
_READING_FIELDS = (
    "espi:IntervalReading/espi:timePeriod/espi:start/text()",
    "espi:IntervalReading/espi:timePeriod/espi:duration/text()",
    "espi:IntervalReading/espi:value/text()",
)
_STARTS, _DURATIONS, _VALUES = (cast(_Strings, _xpath(field)) for field in _READING_FIELDS)
#: ReadingQuality of an IntervalBlock's readings (see `block_quality`).
_N_QUALITIES = cast(_Number, _xpath("count(espi:IntervalReading/espi:ReadingQuality)"))
#: The codes of the readings that carry exactly one ReadingQuality holding exactly one
#: code: n of them for n readings means one each, in reading order (a reading with two
#: codes and the next with none contribute 0, not 2 + 0).
_ONE_QUALITY_EACH = cast(
    _Strings,
    _xpath(
        "espi:IntervalReading[count(espi:ReadingQuality) = 1]"
        "[count(espi:ReadingQuality/espi:quality/text()) = 1]"
        "/espi:ReadingQuality/espi:quality/text()"
    ),
)
#: From an IntervalBlock: whether some IntervalReading has not exactly one timePeriod/start,
#: one timePeriod/duration and one value text. The three lists of `block_strings` are
#: aligned by position, right only when there is no such reading: equal totals alone let a
#: reading without a value take the next reading's.
_HAS_ILL_FORMED_READING = cast(
    Callable[[etree._Element], bool],
    _xpath(
        "boolean(espi:IntervalReading[count(espi:timePeriod/espi:start/text()) != 1"
        " or count(espi:timePeriod/espi:duration/text()) != 1"
        " or count(espi:value/text()) != 1])"
    ),
)
#: The same, read per reading (only to name the bad one in a rejection).
_READING_FIELD_COUNTS = cast(
    _String,
    _xpath(
        "concat(count(espi:timePeriod/espi:start/text()), ',',"
        " count(espi:timePeriod/espi:duration/text()), ',', count(espi:value/text()))"
    ),
)
_FLAGGED_READINGS = cast(_Elements, _xpath("espi:IntervalReading[espi:ReadingQuality]"))
_READINGS = cast(_Elements, _xpath("espi:IntervalReading"))
_N_READINGS = cast(_Number, _xpath("count(espi:IntervalReading)"))
_QUALITY_CODES = cast(_Strings, _xpath("espi:ReadingQuality/espi:quality/text()"))

_USAGE_POINT_TAG = f"{{{ESPI_NS}}}UsagePoint"
_METER_READING_TAG = f"{{{ESPI_NS}}}MeterReading"
_READING_TYPE_TAG = f"{{{ESPI_NS}}}ReadingType"
_INTERVAL_BLOCK_TAG = f"{{{ESPI_NS}}}IntervalBlock"
_READING_QUALITY_TAG = f"{{{ESPI_NS}}}ReadingQuality"


# --- primitives shared with pipeline.greenbutton ---------------------------------------------


ReadingTypeValues = tuple[int | None, ...]


def _parse_reading_type_text(text: str) -> tuple[ReadingTypeValues | None, str | None]:
    """(values, None) or (None, reason) for the `_READING_TYPE_TEXT` of a ReadingType."""
    fields = text.split(_SEP)
    if len(fields) != len(READING_TYPE_ELEMENTS):
        return None, f"non_integer: a ReadingType field holds {_SEP!r}: {text[:120]!r}"
    values: list[int | None] = []
    for field, (name, low, high) in zip(fields, READING_TYPE_ELEMENTS, strict=True):
        if not field.strip(" \t\r\n"):  # XML white space only (not NBSP, as str.strip)
            values.append(None)
            continue
        if not _XS_INTEGER.fullmatch(field):  # not int(): it also takes "1_000", "١٢"
            return None, f"non_integer: ReadingType {name} must be an integer, got {field[:40]!r}"
        number = int(field)
        if not low <= number <= high:
            return None, f"out_of_range: ReadingType {name} = {number} is outside [{low}, {high}]"
        values.append(number)
    return tuple(values), None


#: Parsed ReadingTypes by their serialisation (see `reading_type_values`).
_READING_TYPE_CACHE: dict[bytes, tuple[ReadingTypeValues | None, str | None]] = {}
_READING_TYPE_CACHE_ENTRIES = 1024
_READING_TYPE_CACHE_KEY_BYTES = 4096


def reading_type_values(element: etree._Element) -> tuple[ReadingTypeValues | None, str | None]:
    """The fields of a ReadingType element, in the order of `READING_TYPE_ELEMENTS`.

    Returns:
        (values, None) with None for each absent or empty field, or (None, reason) when a
        field is not an integer or outside its ESPI range (reason codes ``non_integer``,
        ``out_of_range``). What an absent field means is the caller's policy.

    Cached on the element's serialisation (``etree.tostring``, 1.5 µs, against 4.7 µs for
    the XPath that reads the ten fields and their conversion): a meter sends the same
    ReadingType in every upload. Bounded: at most 1024 entries of at most 4 KB (the cache
    is emptied when full; larger elements are not cached), and reasons are cached too, so
    a repeated bad document costs no more than a good one.
    """
    key = etree.tostring(element)
    found = _READING_TYPE_CACHE.get(key)
    if found is None:
        found = _parse_reading_type_text(_READING_TYPE_TEXT(element))
        if len(key) <= _READING_TYPE_CACHE_KEY_BYTES:
            if len(_READING_TYPE_CACHE) >= _READING_TYPE_CACHE_ENTRIES:
                _READING_TYPE_CACHE.clear()
            _READING_TYPE_CACHE[key] = found
    return found


def block_strings(block: etree._Element) -> tuple[list[str], list[str], list[str]]:
    """(starts, durations, values) texts of an IntervalBlock's readings, in document order
    (three compiled XPaths; a reading without a field contributes nothing to that list)."""
    return _STARTS(block), _DURATIONS(block), _VALUES(block)


#: XML Schema's lexical form of an integer (xs:integer, xs:long, xs:unsignedShort...: an
#: optional sign and ASCII digits, XML Schema Part 2 §3.3.13), with the white space XML
#: may put around it (whiteSpace "collapse"; XML 1.0 production S: space, tab, CR, LF).
_XS_INTEGER = re.compile(r"[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*")
#: Comma-joined xs:integer texts (a text holds no comma, see `_xs_int64_array`).
_XS_INTEGERS = re.compile(r"[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*(?:,[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*)*")


def xs_integer(text: str) -> int:
    """The value of an xs:integer text (surrounding XML white space allowed); ValueError
    otherwise. Stricter than Python's ``int``, which also takes
    ``1_000``, non-ASCII digits (``١٢``, ``１２``) and non-ASCII white space (NBSP): none
    of them is an XML Schema integer, and reading them would invent a value the sender
    did not write."""
    if not _XS_INTEGER.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not an integer (xs:integer)")
    return int(text)


def _xs_int64_array(texts: list[str]) -> np.ndarray:
    """The integer texts as a new int64 array, read as XML Schema reads them (`xs_integer`):
    one regex match over the joined texts, then numpy's conversion (Python's ``int``, which
    on these forms gives the xs value). The slow way of `_int64_array`, for texts with
    white space, more than 18 digits or anything else.

    Raises:
        ValueError: ``non_integer: ...`` naming the first text that is not an xs:integer.
        OverflowError: a value outside int64.
    """
    joined = ",".join(texts)
    if texts and (joined.count(",") != len(texts) - 1 or not _XS_INTEGERS.fullmatch(joined)):
        for text in texts:  # the error path only: name the culprit
            if not _XS_INTEGER.fullmatch(text):
                raise ValueError(f"non_integer: {text[:40]!r} is not an integer (xs:integer)")
        raise ValueError(f"non_integer: a text holds ',': {joined[:80]!r}")
    return np.array(texts, dtype=np.int64)


#: Bytes of `_parse_decimal_ints`'s grammar.
_COMMA, _PLUS, _MINUS, _ZERO = (ord(c) for c in ",+-0")
#: Most digits `_parse_decimal_ints` reads: 10**18 - 1 < 2**63 - 1, so no int64 overflow.
_MAX_DIGITS = 18


@numba.njit(
    nb_types.intp(
        nb_types.Bytes(nb_types.uint8, 1, "C", readonly=True),
        nb_types.Array(nb_types.int64, 1, "C"),
    ),
    cache=True,
    nogil=True,
)
def _parse_decimal_ints(text: bytes, out: np.ndarray) -> int:  # pragma: no cover (JIT)
    """Parse ``out.shape[0]`` comma-separated ASCII integers ``[+-]?[0-9]{1,18}`` from
    `text` into `out`; returns how many, or -1 when `text` is anything else (then `out` is
    garbage). Every accepted token means what Python's ``int`` makes of it."""
    size = len(text)
    n_out = out.shape[0]
    k = 0
    i = 0
    while True:
        negative = False
        if i < size and (text[i] == _MINUS or text[i] == _PLUS):
            negative = text[i] == _MINUS
            i += 1
        value = 0
        digits = 0
        while i < size and text[i] != _COMMA:
            digit = int(text[i]) - _ZERO
            if digit < 0 or digit > 9 or digits == _MAX_DIGITS:
                return -1
            value = value * 10 + digit
            digits += 1
            i += 1
        if digits == 0 or k == n_out:
            return -1
        out[k] = -value if negative else value
        k += 1
        if i == size:
            return k if k == n_out else -1
        i += 1  # the comma


def _parse_joined(joined: str, n: int) -> np.ndarray | None:
    """The `n` comma-joined integer texts `joined` as a new int64 array, or None when they
    are not all plain decimal integers of up to 18 digits (see `_int64_array`)."""
    if not joined.isascii():
        return None
    out = np.empty(n, dtype=np.int64)
    return out if _parse_decimal_ints(joined.encode(), out) == n else None


def _int64_array(texts: list[str]) -> np.ndarray:
    """The xs:integer texts as an int64 array (`xs_integer` for each), fast.

    numpy converts each text with Python's ``int`` (60 ns a text); here the texts are
    joined into one ASCII string and parsed by a compiled loop (`_parse_decimal_ints`,
    under 10 ns a text plus about 1 µs of calls: 1.9 µs against 2.8 µs for 45 texts,
    65 µs against 225 µs for 4,320), which accepts only plain decimal integers of up to 18
    digits. Anything else (white space, 19 digits or more, not a number at all) goes
    through `_xs_int64_array`, which raises ValueError (``non_integer``) for what is not an
    XML Schema integer (``1_000``, non-ASCII digits or white space, which Python's ``int``
    would take) and OverflowError beyond int64."""
    column = _parse_joined(",".join(texts), len(texts))
    return _xs_int64_array(texts) if column is None else column


def int64_columns(
    starts: list[str], durations: list[str], values: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three equally long lists of integer texts as read-only int64 columns (views of
    one buffer), in one conversion (XML Schema integers: surrounding XML white space is
    allowed; see `_int64_array`). Raises ValueError (``non_integer: ...``) or OverflowError
    on a text that is not a 64-bit xs:integer."""
    n = len(starts)
    joined = f"{','.join(starts)},{','.join(durations)},{','.join(values)}"
    columns = _parse_joined(joined, 3 * n)
    if columns is None:
        columns = _xs_int64_array(starts + durations + values)
    columns.flags.writeable = False
    return columns[:n], columns[n : 2 * n], columns[2 * n :]


def block_quality(block: etree._Element, n: int, default: int | None) -> np.ndarray | None:
    """ESPI QualityOfReading code of each of the `n` readings of an IntervalBlock.

    A reading's code is its ReadingQuality/quality; with several different ones,
    `QUALITY_MIXED`; without any, the ReadingType's defaultQuality (`default`), else
    `QUALITY_NONE`. Returns None when no reading has a code and there is no default.

    Cost: a C-level descendant walk when no reading carries a ReadingQuality (the usual
    upload, 0.5 µs for 15 readings); otherwise an XPath count, and two more XPaths when
    every reading carries exactly one ReadingQuality with exactly one code (then the codes
    are one per reading, in order: `_ONE_QUALITY_EACH` leaves out the readings with no code
    or several, so that a reading with two codes next to one with none is never read as
    one each); otherwise the block's IntervalReadings are
    indexed once (a dictionary of n entries) and each flagged reading costs one small XPath
    for its codes: linear in the readings, in this fallback only.

    Raises:
        ValueError: a code that is not an integer in [0, 65535], or readings that cannot be
            aligned with the columns (an IntervalReading without start, duration and value);
            the message is ``"<code>: <text>"`` with code ``non_integer``, ``out_of_range``
            or ``mismatched_counts``.
    """
    # lxml's C-level descendant walk finds none in 0.5 µs (the usual upload), the count 1.3 µs
    no_codes = next(block.iter(_READING_QUALITY_TAG), None) is None
    n_codes = 0 if no_codes else int(_N_QUALITIES(block))
    if n_codes == 0:
        return None if default is None else np.full(n, default, dtype=np.int64)
    if int(_N_READINGS(block)) != n:
        raise ValueError(
            f"mismatched_counts: {int(_N_READINGS(block))} IntervalReadings, {n} of them with "
            "start, duration and value"
        )
    codes = _ONE_QUALITY_EACH(block) if n_codes == n else []
    if len(codes) == n:  # every reading has exactly one code
        quality = _quality_array(codes)
    else:
        quality = np.full(n, QUALITY_NONE if default is None else default, dtype=np.int64)
        # lxml hands out one proxy object per node while it is referenced (`readings` keeps
        # them referenced), so the ids identify the readings
        readings = _READINGS(block)
        position = {id(reading): i for i, reading in enumerate(readings)}
        for reading in _FLAGGED_READINGS(block):  # one per flagged reading
            reading_codes = _quality_array(_QUALITY_CODES(reading))
            if reading_codes.shape[0]:
                first = int(reading_codes[0])
                mixed = not (reading_codes == first).all()
                quality[position[id(reading)]] = QUALITY_MIXED if mixed else first
        del readings
    quality.flags.writeable = False
    return quality


def concat_quality(parts: Sequence[np.ndarray | None], sizes: Sequence[int]) -> np.ndarray | None:
    """The quality columns of consecutive pieces of a series as one column (a None piece,
    of ``sizes[i]`` readings, is `QUALITY_NONE`); None when every piece is None."""
    if all(part is None for part in parts):
        return None
    column = np.concatenate(
        [
            np.full(size, QUALITY_NONE, dtype=np.int64) if part is None else part
            for part, size in zip(parts, sizes, strict=True)
        ]
    )
    column.flags.writeable = False
    return column


def _quality_array(codes: list[str]) -> np.ndarray:
    try:
        quality = _int64_array(codes)
    except (ValueError, OverflowError):
        raise ValueError(
            f"non_integer: ReadingQuality quality must be an integer, got {codes[:3]!r:.80}"
        ) from None
    if quality.shape[0] and (quality.min() < _UINT16[0] or quality.max() > _UINT16[1]):
        raise ValueError(f"out_of_range: ReadingQuality quality outside [0, {_UINT16[1]}]")
    return quality


# --- a compiled scanner for the canonical serialization of a twin upload -------------------
#
# XPath costs about 0.2 µs per text node it returns and 1.5 µs per link it reads, so a
# 5-channel upload of 15 readings a channel spends ~110 µs in XPath (readings, links,
# ReadingType keys) against ~45 µs for lxml to serialize the whole tree
# (``etree.tostring(root, encoding="unicode")``) and ~20 µs for `_scan_upload` to read
# everything the general path reads from that text (5 µs of it resolving the links).
# The scanner accepts only the canonical form of the twin's uploads as libxml2 serializes
# it (see `_scan_upload`) and, from it, computes exactly what the general path computes for
# an accepted upload; for anything else it declines and the general path runs (so every
# rejection, and every document outside that form, is handled by the general path alone).


def _ascii(text: str) -> np.ndarray:
    """A byte constant for the scanner (numba freezes global arrays into the code)."""
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).copy()


_LT, _GT, _SLASH, _QUOTE, _EQUALS, _SPACE, _AMP, _BANG, _QUESTION = (ord(c) for c in '<>/"= &!?')
_FEED_OPEN = _ascii(f'<feed xmlns="{ATOM_NS}">')
_ESPI_DEFAULT_NS = _ascii(f' xmlns="{ESPI_NS}"')
_N_FEED, _N_ENTRY, _N_ID, _N_LINK, _N_CONTENT, _N_REL, _N_HREF, _N_XMLNS = (
    _ascii(name) for name in ("feed", "entry", "id", "link", "content", "rel", "href", "xmlns")
)
_V_SELF, _V_UP, _V_RELATED = (_ascii(name) for name in ("self", "up", "related"))
_N_USAGE_POINT, _N_METER_READING, _N_READING_TYPE, _N_INTERVAL_BLOCK = (
    _ascii(name) for name in ("UsagePoint", "MeterReading", "ReadingType", "IntervalBlock")
)
_N_INTERVAL_READING, _N_TIME_PERIOD, _N_DURATION, _N_START, _N_VALUE, _N_READING_QUALITY = (
    _ascii(name)
    for name in (
        "IntervalReading",
        "timePeriod",
        "duration",
        "start",
        "value",
        "ReadingQuality",
    )
)
#: Resource kinds of the scanner (0: any other ESPI resource, such as LocalTimeParameters).
_K_OTHER, _K_USAGE_POINT, _K_METER_READING, _K_READING_TYPE, _K_INTERVAL_BLOCK = range(5)
#: Link rels of the scanner (0: any other or none).
_R_OTHER, _R_SELF, _R_UP, _R_RELATED = range(4)
#: Most resources, entries and links the scanner handles (more: the general path runs).
_SCAN_ITEMS = 256
#: Rows of the scanner's scratch array (one per table, `_SCAN_ITEMS` columns).
(
    _S_RES_KIND,
    _S_RES_ENTRY,
    _S_RES_FROM,
    _S_RES_TO,
    _S_RES_OFFSET,
    _S_RES_COUNT,
    _S_LINK_REL,
    _S_LINK_FROM,
    _S_LINK_TO,
    _S_ENTRY_LINKS_FROM,
    _S_ENTRY_LINKS_TO,
    _S_RT,
    _S_RT_HREF_FROM,
    _S_RT_HREF_TO,
    _S_MR,
    _S_BLOCK,
    _S_OWNER,
    _S_CLAIMED,
    _S_REG_FROM,
    _S_REG_TO,
    _S_REG_MR,
    _S_OUT_RT,
    _S_OUT_RT_FROM,
    _S_OUT_RT_TO,
    _S_OUT_OFFSET,
    _S_OUT_COUNT,
    _S_HEADER,
) = range(27)
_SCRATCH_ROWS = 27
#: `_S_HEADER` columns: the first feed id text (from, to; -1 when none).
_H_ID_FROM, _H_ID_TO = 0, 1
#: Fewest bytes of one IntervalReading in the canonical form (bounds the readings).
_MIN_READING_BYTES = 64
#: An IntervalReading as the twin writes it, around its duration, start and value: read by
#: comparison (`_interval_block`), the element-by-element reading being the fallback.
_READING_HEAD, _READING_DURATION_START, _READING_START_VALUE, _READING_TAIL = (
    _ascii(part)
    for part in (
        "<IntervalReading><timePeriod><duration>",
        "</duration><start>",
        "</start></timePeriod><value>",
        "</value></IntervalReading>",
    )
)

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _at(buf: bytes, i: int, const: np.ndarray) -> bool:  # pragma: no cover (JIT)
    """``buf[i : i + len(const)] == const``."""
    n = const.shape[0]
    if i < 0 or i + n > len(buf):
        return False
    k = 0
    while k < n and buf[i + k] == const[k]:
        k += 1
    return k == n


@_jit
def _same(buf: bytes, a0: int, a1: int, b0: int, b1: int) -> bool:  # pragma: no cover (JIT)
    """``buf[a0:a1] == buf[b0:b1]``."""
    if a1 - a0 != b1 - b0:
        return False
    k = a1 - a0 - 1  # from the end: hrefs differ in their last segment
    while k >= 0 and buf[a0 + k] == buf[b0 + k]:
        k -= 1
    return k < 0


@_jit
def _is(buf: bytes, a: int, b: int, const: np.ndarray) -> bool:  # pragma: no cover (JIT)
    """The name ``buf[a:b]`` is `const`."""
    return b - a == const.shape[0] and _at(buf, a, const)


@_jit
def _next_tag(buf: bytes, i: int) -> int:  # pragma: no cover (JIT)
    """Index of the next ``<`` from `i` that is not the last byte (text in between is
    skipped), or -1."""
    size = len(buf) - 1  # a "<" must be followed by something
    while i < size:
        if buf[i] == _LT:
            return i
        i += 1
    return -1


@_jit
def _name_end(buf: bytes, i: int) -> int:  # pragma: no cover (JIT)
    """End of the unprefixed name at `i` (ASCII letters, digits, ``_-.``), or -1 when it is
    empty or has a prefix."""
    size = len(buf)
    j = i
    while j < size:
        c = buf[j]
        if (
            (c >= 97 and c <= 122)
            or (c >= 65 and c <= 90)
            or (c >= 48 and c <= 57)
            or c == 95
            or c == 45
            or c == 46
        ):
            j += 1
        else:
            break
    if j == i or j >= size or buf[j] == 58:  # empty, truncated, or a prefix (':')
        return -1
    return j


@_jit
def _end_tag(buf: bytes, i: int, name: np.ndarray) -> int:  # pragma: no cover (JIT)
    """Index after ``</name>`` at `i`, or -1."""
    if i + 1 >= len(buf) or buf[i] != _LT or buf[i + 1] != _SLASH or not _at(buf, i + 2, name):
        return -1
    j = i + 2 + name.shape[0]
    return j + 1 if j < len(buf) and buf[j] == _GT else -1


@_jit
def _skip_element(buf: bytes, i: int) -> int:  # pragma: no cover (JIT)
    """Index after the element whose start tag is at `i`, or -1 at a comment, processing
    instruction or CDATA section. In libxml2's serialization ``<`` and ``>`` are markup
    everywhere else (text and attribute values carry them as ``&lt;`` and ``&gt;``)."""
    size = len(buf)
    depth = 0
    while i >= 0 and i + 1 < size:
        c = buf[i + 1]
        if c in (_BANG, _QUESTION):
            return -1
        j = i + 1
        while j < size and buf[j] != _GT:
            j += 1
        if j >= size:
            return -1
        if c == _SLASH:
            depth -= 1
        elif buf[j - 1] != _SLASH:
            depth += 1
        if depth == 0:
            return j + 1
        i = _next_tag(buf, j + 1)
    return -1


@_jit
def _attribute(buf: bytes, j: int) -> tuple[int, int, int, int, int]:  # pragma: no cover (JIT)
    """The attribute `` name="value"`` at `j` (a space): (name from, name to, value from,
    value to, index after it); name to -1 when it is not one (a prefixed name, for one)."""
    size = len(buf)
    a = j + 1
    b = _name_end(buf, a)
    if b < 0 or buf[b] != _EQUALS or b + 1 >= size or buf[b + 1] != _QUOTE:
        return a, -1, 0, 0, 0
    v = b + 2
    w = v
    while w < size and buf[w] != _QUOTE:
        w += 1
    if w + 1 >= size:
        return a, -1, 0, 0, 0
    return a, b, v, w, w + 1


@_jit
def _has_reference(buf: bytes, a: int, b: int) -> bool:  # pragma: no cover (JIT)
    """``buf[a:b]`` holds a character or entity reference (its value is not as written)."""
    k = a
    while k < b and buf[k] != _AMP:
        k += 1
    return k < b


@_jit
def _plain(buf: bytes, a: int, b: int) -> bool:  # pragma: no cover (JIT)
    """The attribute value ``buf[a:b]`` is its value as written (no reference) and has no
    space at either end (the general path compares ``str.strip()``-ed hrefs; in an
    attribute value, libxml2 writes any other white space as a reference)."""
    return not _has_reference(buf, a, b) and (b == a or (buf[a] != _SPACE and buf[b - 1] != _SPACE))


@_jit
def _number(buf: bytes, i: int, name: np.ndarray) -> tuple[int, int]:  # pragma: no cover (JIT)
    """At `i`, just after ``<name>``: (value, index after ``</name>``) for a decimal
    integer ``[+-]?[0-9]{1,18}`` (what Python's ``int`` reads the same), index -1 else."""
    value, i = _digits(buf, i)
    if i < 0:
        return 0, -1
    return value, _end_tag(buf, i, name)


@_jit
def _digits(buf: bytes, i: int) -> tuple[int, int]:  # pragma: no cover (JIT)
    """(value, index after it) of the decimal integer ``[+-]?[0-9]{1,18}`` at `i`, index
    -1 when there is none."""
    size = len(buf)
    negative = False
    if i < size and (buf[i] == _MINUS or buf[i] == _PLUS):
        negative = buf[i] == _MINUS
        i += 1
    value = 0
    digits = 0
    while i < size:
        digit = int(buf[i]) - _ZERO
        if digit < 0 or digit > 9:
            break
        if digits == _MAX_DIGITS:
            return 0, -1
        value = value * 10 + digit
        digits += 1
        i += 1
    if digits == 0:
        return 0, -1
    return (-value if negative else value), i


@_jit
def _interval_reading(
    buf: bytes, i: int, readings: np.ndarray, k: int
) -> int:  # pragma: no cover (JIT)
    """At `i`, just after ``<IntervalReading>``: writes its start, duration and value to
    column `k` of `readings`; index after ``</IntervalReading>``, or -1 unless it has exactly
    one timePeriod with one duration and one start, one value (all plain integers) and no
    ReadingQuality (other children are skipped: the general path does not read them)."""
    n_periods = 0
    n_values = 0
    while True:
        i = _next_tag(buf, i)
        if i < 0:
            return -1
        if buf[i + 1] == _SLASH:
            i = _end_tag(buf, i, _N_INTERVAL_READING)
            if i < 0 or n_periods != 1 or n_values != 1:
                return -1
            return i
        b = _name_end(buf, i + 1)
        if b < 0:
            return -1
        if _is(buf, i + 1, b, _N_READING_QUALITY):
            return -1
        simple = buf[b] == _GT  # no attribute, not empty
        if _is(buf, i + 1, b, _N_TIME_PERIOD):
            if not simple or n_periods:
                return -1
            n_periods = 1
            n_starts = 0
            n_durations = 0
            i = b + 1
            while True:
                i = _next_tag(buf, i)
                if i < 0:
                    return -1
                if buf[i + 1] == _SLASH:
                    i = _end_tag(buf, i, _N_TIME_PERIOD)
                    if i < 0 or n_starts != 1 or n_durations != 1:
                        return -1
                    break
                c = _name_end(buf, i + 1)
                if c < 0:
                    return -1
                if _is(buf, i + 1, c, _N_START):
                    if buf[c] != _GT:
                        return -1
                    number, i = _number(buf, c + 1, _N_START)
                    readings[0, k] = number
                    n_starts += 1
                elif _is(buf, i + 1, c, _N_DURATION):
                    if buf[c] != _GT:
                        return -1
                    number, i = _number(buf, c + 1, _N_DURATION)
                    readings[1, k] = number
                    n_durations += 1
                else:
                    i = _skip_element(buf, i)
                if i < 0:
                    return -1
        elif _is(buf, i + 1, b, _N_VALUE):
            if not simple or n_values:
                return -1
            n_values = 1
            number, i = _number(buf, b + 1, _N_VALUE)
            readings[2, k] = number
        else:
            i = _skip_element(buf, i)
        if i < 0:
            return -1


@_jit
def _reading_as_written(
    buf: bytes, i: int, readings: np.ndarray, k: int
) -> int:  # pragma: no cover (JIT)
    """At `i`, an IntervalReading exactly as the twin writes it (``_READING_*`` around three
    integers): writes its start, duration and value to column `k` of `readings` and returns
    the index after it; -1 otherwise."""
    if not _at(buf, i, _READING_HEAD):
        return -1
    duration, i = _digits(buf, i + _READING_HEAD.shape[0])
    if i < 0 or not _at(buf, i, _READING_DURATION_START):
        return -1
    start, i = _digits(buf, i + _READING_DURATION_START.shape[0])
    if i < 0 or not _at(buf, i, _READING_START_VALUE):
        return -1
    value, i = _digits(buf, i + _READING_START_VALUE.shape[0])
    if i < 0 or not _at(buf, i, _READING_TAIL):
        return -1
    readings[0, k] = start
    readings[1, k] = duration
    readings[2, k] = value
    return i + _READING_TAIL.shape[0]


@_jit
def _interval_block(
    buf: bytes, i: int, readings: np.ndarray, k: int
) -> tuple[int, int]:  # pragma: no cover (JIT)
    """At `i`, just after ``<IntervalBlock xmlns=ESPI>``: its IntervalReadings to columns
    `k`, `k` + 1, ... of `readings`; (index after ``</IntervalBlock>``, next free column),
    index -1 when a reading is not in the canonical form."""
    capacity = readings.shape[1]
    while True:
        i = _next_tag(buf, i)
        if i < 0:
            return -1, k
        if buf[i + 1] == _SLASH:
            return _end_tag(buf, i, _N_INTERVAL_BLOCK), k
        b = _name_end(buf, i + 1)
        if b < 0:
            return -1, k
        if _is(buf, i + 1, b, _N_INTERVAL_READING):
            if buf[b] != _GT or k == capacity:
                return -1, k
            j = _reading_as_written(buf, i, readings, k)
            i = _interval_reading(buf, b + 1, readings, k) if j < 0 else j
            k += 1
        else:
            i = _skip_element(buf, i)
        if i < 0:
            return -1, k


@_jit
def _first_href(scratch: np.ndarray, entry: int, rel: int) -> int:  # pragma: no cover (JIT)
    """Column in the link table of the first `rel` link with an href of `entry`, or -1."""
    for j in range(scratch[_S_ENTRY_LINKS_FROM, entry], scratch[_S_ENTRY_LINKS_TO, entry]):
        if scratch[_S_LINK_REL, j] == rel and scratch[_S_LINK_FROM, j] >= 0:
            return j
    return -1


@_jit
def _resolve_scanned(buf: bytes, scratch: np.ndarray, n_res: int) -> int:  # pragma: no cover (JIT)
    """`_resolve_channels` on the scanned tables, for an upload it accepts with one
    IntervalBlock per channel: writes the channels (ReadingType resource, its span, the
    block's readings) to the `_S_OUT_*` rows in MeterReading order and returns how many;
    0 when the general path would reject the upload or find a channel with several blocks
    (then it runs and says why)."""
    n_rt = 0
    n_mr = 0
    n_block = 0
    n_up = 0
    for r in range(n_res):
        kind = scratch[_S_RES_KIND, r]
        if kind == _K_READING_TYPE:
            scratch[_S_RT, n_rt] = r
            n_rt += 1
        elif kind == _K_METER_READING:
            scratch[_S_MR, n_mr] = r
            n_mr += 1
        elif kind == _K_INTERVAL_BLOCK:
            scratch[_S_BLOCK, n_block] = r
            n_block += 1
        elif kind == _K_USAGE_POINT:
            n_up += 1
    if n_up > 1 or n_rt == 0 or n_block == 0:
        return 0
    if n_rt == 1:  # the general path reads no link: every block is the one channel's
        if n_block != 1:
            return 0
        scratch[_S_OWNER, 0] = 0
        scratch[_S_OUT_RT, 0] = scratch[_S_RT, 0]
        scratch[_S_OUT_OFFSET, 0] = scratch[_S_RES_OFFSET, scratch[_S_BLOCK, 0]]
        scratch[_S_OUT_COUNT, 0] = scratch[_S_RES_COUNT, scratch[_S_BLOCK, 0]]
        rt = scratch[_S_RT, 0]
        scratch[_S_OUT_RT_FROM, 0] = scratch[_S_RES_FROM, rt]
        scratch[_S_OUT_RT_TO, 0] = scratch[_S_RES_TO, rt]
        return 1
    # each ReadingType's self href: present, non-empty, distinct
    for t in range(n_rt):
        j = _first_href(scratch, scratch[_S_RES_ENTRY, scratch[_S_RT, t]], _R_SELF)
        if j < 0 or scratch[_S_LINK_TO, j] == scratch[_S_LINK_FROM, j]:
            return 0
        a = scratch[_S_LINK_FROM, j]
        b = scratch[_S_LINK_TO, j]
        for u in range(t):
            if _same(buf, a, b, scratch[_S_RT_HREF_FROM, u], scratch[_S_RT_HREF_TO, u]):
                return 0
        scratch[_S_RT_HREF_FROM, t] = a
        scratch[_S_RT_HREF_TO, t] = b
        scratch[_S_CLAIMED, t] = 0
    # MeterReadings' related hrefs that are not ReadingTypes: owned by one MeterReading each
    n_reg = 0
    for m in range(n_mr):
        entry = scratch[_S_RES_ENTRY, scratch[_S_MR, m]]
        for j in range(scratch[_S_ENTRY_LINKS_FROM, entry], scratch[_S_ENTRY_LINKS_TO, entry]):
            if scratch[_S_LINK_REL, j] != _R_RELATED or scratch[_S_LINK_FROM, j] < 0:
                continue
            a = scratch[_S_LINK_FROM, j]
            b = scratch[_S_LINK_TO, j]
            is_rt = False
            for t in range(n_rt):
                if _same(buf, a, b, scratch[_S_RT_HREF_FROM, t], scratch[_S_RT_HREF_TO, t]):
                    is_rt = True
                    break
            if is_rt:
                continue
            seen = False
            for g in range(n_reg):
                if _same(buf, a, b, scratch[_S_REG_FROM, g], scratch[_S_REG_TO, g]):
                    if scratch[_S_REG_MR, g] != m:
                        return 0  # ambiguous_meter_reading
                    seen = True
                    break
            if not seen:
                if n_reg == _SCAN_ITEMS:
                    return 0
                scratch[_S_REG_FROM, n_reg] = a
                scratch[_S_REG_TO, n_reg] = b
                scratch[_S_REG_MR, n_reg] = m
                n_reg += 1
    # each block's up href names one MeterReading's related href; one block per MeterReading
    for m in range(n_mr):
        scratch[_S_OWNER, m] = -1
    for k in range(n_block):
        j = _first_href(scratch, scratch[_S_RES_ENTRY, scratch[_S_BLOCK, k]], _R_UP)
        if j < 0:
            return 0
        owner = -1
        for g in range(n_reg):
            if _same(
                buf,
                scratch[_S_LINK_FROM, j],
                scratch[_S_LINK_TO, j],
                scratch[_S_REG_FROM, g],
                scratch[_S_REG_TO, g],
            ):
                owner = scratch[_S_REG_MR, g]
                break
        if owner < 0 or scratch[_S_OWNER, owner] >= 0:
            return 0  # unresolved_meter_reading, or a channel of several blocks
        scratch[_S_OWNER, owner] = k
    # owners in document order: exactly one ReadingType each, none named twice
    n_out = 0
    for m in range(n_mr):
        k = scratch[_S_OWNER, m]
        if k < 0:
            continue
        linked = -1
        entry = scratch[_S_RES_ENTRY, scratch[_S_MR, m]]
        for j in range(scratch[_S_ENTRY_LINKS_FROM, entry], scratch[_S_ENTRY_LINKS_TO, entry]):
            if scratch[_S_LINK_REL, j] != _R_RELATED or scratch[_S_LINK_FROM, j] < 0:
                continue
            for t in range(n_rt):
                if _same(
                    buf,
                    scratch[_S_LINK_FROM, j],
                    scratch[_S_LINK_TO, j],
                    scratch[_S_RT_HREF_FROM, t],
                    scratch[_S_RT_HREF_TO, t],
                ):
                    if linked >= 0 and linked != t:
                        return 0  # names two ReadingTypes
                    linked = t
        if linked < 0 or scratch[_S_CLAIMED, linked]:
            return 0
        scratch[_S_CLAIMED, linked] = 1
        rt = scratch[_S_RT, linked]
        block = scratch[_S_BLOCK, k]
        scratch[_S_OUT_RT, n_out] = rt
        scratch[_S_OUT_RT_FROM, n_out] = scratch[_S_RES_FROM, rt]
        scratch[_S_OUT_RT_TO, n_out] = scratch[_S_RES_TO, rt]
        scratch[_S_OUT_OFFSET, n_out] = scratch[_S_RES_OFFSET, block]
        scratch[_S_OUT_COUNT, n_out] = scratch[_S_RES_COUNT, block]
        n_out += 1
    return n_out


@numba.njit(
    nb_types.intp(
        nb_types.Bytes(nb_types.uint8, 1, "C", readonly=True),
        nb_types.Array(nb_types.int64, 2, "C"),
        nb_types.Array(nb_types.int64, 2, "C"),
    ),
    cache=True,
    nogil=True,
)
def _scan_upload(buf: bytes, readings: np.ndarray, scratch: np.ndarray) -> int:  # pragma: no cover
    """Read a serialized upload in the twin's canonical form; the number of channels found
    (their rows ``_S_OUT_*`` of `scratch`, their readings in `readings`), or 0 to decline.

    The form (``etree.tostring(root, encoding="unicode")`` of a twin upload): the root is
    ``<feed xmlns="{Atom}">`` with no other attribute; its ``id`` children are plain text
    (the first one with text is the feed id); its ``entry`` children have no attribute; an
    entry's ``link`` children carry unprefixed attributes, with ``rel`` and ``href`` free of
    character references and of white space at their ends; its ``content`` children hold
    resources ``<Name xmlns="{ESPI}">`` with no other attribute; an IntervalBlock's
    IntervalReadings each have one ``timePeriod`` holding one ``start`` and one ``duration``,
    one ``value``, all decimal integers of at most 18 digits written plainly, and no
    ReadingQuality. Other elements (titles, the block's ``interval``, other resources) are
    skipped whatever they hold. Anything else (a prefixed name where names are read, a
    namespace declaration on a read element, a comment, processing instruction or CDATA
    section, a channel without readings or with several blocks, links that the general
    path would reject) declines. No names are prefixed where names are read, so every read
    element's namespace is the default one declared on the feed (Atom) or on the resource
    (ESPI), as the general path's XPaths require."""
    size = len(buf)
    if not _at(buf, 0, _FEED_OPEN):
        return 0
    scratch[_S_HEADER, _H_ID_FROM] = -1
    scratch[_S_HEADER, _H_ID_TO] = -1
    n_res = 0
    n_links = 0
    n_entries = 0
    n_readings = 0
    i = _FEED_OPEN.shape[0]
    while True:
        i = _next_tag(buf, i)
        if i < 0:
            return 0
        if buf[i + 1] == _SLASH:  # </feed>: the document's end
            i = _end_tag(buf, i, _N_FEED)
            break
        b = _name_end(buf, i + 1)
        if b < 0:
            return 0
        if _is(buf, i + 1, b, _N_ENTRY):
            if buf[b] != _GT or n_entries == _SCAN_ITEMS:
                return 0
            entry = n_entries
            n_entries += 1
            scratch[_S_ENTRY_LINKS_FROM, entry] = n_links
            i = b + 1
            while True:  # the entry's children
                i = _next_tag(buf, i)
                if i < 0:
                    return 0
                if buf[i + 1] == _SLASH:
                    i = _end_tag(buf, i, _N_ENTRY)
                    break
                c = _name_end(buf, i + 1)
                if c < 0:
                    return 0
                if _is(buf, i + 1, c, _N_LINK):
                    if n_links == _SCAN_ITEMS:
                        return 0
                    rel = _R_OTHER
                    href_from = -1
                    href_to = -1
                    j = c
                    while buf[j] == _SPACE:
                        a, name_to, v, w, j = _attribute(buf, j)
                        if name_to < 0:
                            return 0
                        if _is(buf, a, name_to, _N_XMLNS):
                            return 0
                        if _is(buf, a, name_to, _N_REL):
                            if not _plain(buf, v, w):
                                return 0
                            if _is(buf, v, w, _V_SELF):
                                rel = _R_SELF
                            elif _is(buf, v, w, _V_UP):
                                rel = _R_UP
                            elif _is(buf, v, w, _V_RELATED):
                                rel = _R_RELATED
                        elif _is(buf, a, name_to, _N_HREF):
                            if not _plain(buf, v, w):
                                return 0
                            href_from = v
                            href_to = w
                    scratch[_S_LINK_REL, n_links] = rel
                    scratch[_S_LINK_FROM, n_links] = href_from
                    scratch[_S_LINK_TO, n_links] = href_to
                    n_links += 1
                    if buf[j] == _GT:  # a link with content: skip it
                        i = _skip_element(buf, i)
                    elif buf[j] == _SLASH and j + 1 < size and buf[j + 1] == _GT:
                        i = j + 2
                    else:
                        return 0
                elif _is(buf, i + 1, c, _N_CONTENT):
                    j = c
                    while buf[j] == _SPACE:  # attributes (type=...) are allowed, not xmlns
                        a, name_to, v, w, j = _attribute(buf, j)
                        if name_to < 0 or _is(buf, a, name_to, _N_XMLNS):
                            return 0
                    if buf[j] == _SLASH and j + 1 < size and buf[j + 1] == _GT:
                        i = j + 2
                        continue
                    if buf[j] != _GT:
                        return 0
                    i = j + 1
                    while True:  # the resources
                        i = _next_tag(buf, i)
                        if i < 0:
                            return 0
                        if buf[i + 1] == _SLASH:
                            i = _end_tag(buf, i, _N_CONTENT)
                            break
                        d = _name_end(buf, i + 1)
                        if d < 0 or not _at(buf, d, _ESPI_DEFAULT_NS) or n_res == _SCAN_ITEMS:
                            return 0
                        e = d + _ESPI_DEFAULT_NS.shape[0]
                        if e + 1 >= size:
                            return 0
                        empty = buf[e] == _SLASH and buf[e + 1] == _GT
                        if not empty and buf[e] != _GT:
                            return 0
                        kind = _K_OTHER
                        if _is(buf, i + 1, d, _N_INTERVAL_BLOCK):
                            kind = _K_INTERVAL_BLOCK
                        elif _is(buf, i + 1, d, _N_READING_TYPE):
                            kind = _K_READING_TYPE
                        elif _is(buf, i + 1, d, _N_METER_READING):
                            kind = _K_METER_READING
                        elif _is(buf, i + 1, d, _N_USAGE_POINT):
                            kind = _K_USAGE_POINT
                        scratch[_S_RES_KIND, n_res] = kind
                        scratch[_S_RES_ENTRY, n_res] = entry
                        scratch[_S_RES_FROM, n_res] = i
                        scratch[_S_RES_OFFSET, n_res] = n_readings
                        if empty:
                            i = e + 2
                        elif kind == _K_INTERVAL_BLOCK:
                            i, n_readings = _interval_block(buf, e + 1, readings, n_readings)
                        else:
                            i = _skip_element(buf, i)
                        if i < 0:
                            return 0
                        scratch[_S_RES_TO, n_res] = i
                        scratch[_S_RES_COUNT, n_res] = n_readings - scratch[_S_RES_OFFSET, n_res]
                        n_res += 1
                else:
                    i = _skip_element(buf, i)
                if i < 0:
                    return 0
            scratch[_S_ENTRY_LINKS_TO, entry] = n_links
        elif _is(buf, i + 1, b, _N_ID):
            if buf[b] == _SLASH and b + 1 < size and buf[b + 1] == _GT:
                i = b + 2  # <id/>: no text
            elif buf[b] == _GT:
                j = _next_tag(buf, b + 1)
                if j < 0 or _has_reference(buf, b + 1, j):
                    return 0
                if scratch[_S_HEADER, _H_ID_FROM] < 0 and j > b + 1:
                    scratch[_S_HEADER, _H_ID_FROM] = b + 1
                    scratch[_S_HEADER, _H_ID_TO] = j
                i = _end_tag(buf, j, _N_ID)
            else:
                return 0
        else:
            i = _skip_element(buf, i)
        if i < 0:
            return 0
    if i != size:  # nothing after "</feed>"
        return 0
    return _resolve_scanned(buf, scratch, n_res)


_BLOCK_OPEN = _ascii(f'<IntervalBlock xmlns="{ESPI_NS}">')


@numba.njit(
    nb_types.intp(
        nb_types.Bytes(nb_types.uint8, 1, "C", readonly=True),
        nb_types.Array(nb_types.int64, 2, "C"),
    ),
    cache=True,
    nogil=True,
)
def _scan_block(buf: bytes, readings: np.ndarray) -> int:  # pragma: no cover (JIT)
    """The readings of one serialized IntervalBlock ``<IntervalBlock xmlns="{ESPI}">...``
    in the canonical form of `_scan_upload` (start, duration and value in rows 0, 1 and 2
    of `readings`): how many, or -1 when the block is not in that form."""
    if not _at(buf, 0, _BLOCK_OPEN):
        return -1
    i, k = _interval_block(buf, _BLOCK_OPEN.shape[0], readings, 0)
    return k if i == len(buf) else -1


# --- the upload -------------------------------------------------------------------------------


def upload_id(root: etree._Element) -> tuple[str | None, int | None]:
    """(meter_id, sequence_no) from a feed id ``urn:imdc:upload:{meter_id}:{seq}``, or
    (None, None) when the document's id has another form.

    Raises:
        RejectedUpload: ``bad_upload_id`` when the id has the prefix but not the form.

    The id is the first text node of an ``atom:id`` child of `root` (what the XPath
    ``atom:id/text()`` gives first). When the first child is an ``atom:id`` that starts with
    text (the usual feed), that is its ``.text`` (a parsed tree has no comment between, and
    libxml2 joins adjacent text), read in 0.1 µs instead of the XPath's 1.4 µs.
    """
    first = root[0] if len(root) else None
    if first is not None and first.tag == _ID_TAG and first.text is not None:
        return _parse_upload_id(first.text)
    doc_ids = _DOC_ID(root)
    return _parse_upload_id(doc_ids[0] if doc_ids else None)


def _parse_upload_id(doc_id: str | None) -> tuple[str | None, int | None]:
    """`upload_id` of a document whose first feed id text is `doc_id`."""
    if doc_id is None:
        return None, None
    doc_id = doc_id.strip()
    if not doc_id.startswith(UPLOAD_ID_PREFIX):
        return None, None
    meter, _, seq = doc_id[len(UPLOAD_ID_PREFIX) :].rpartition(":")
    if not meter or not (seq.isascii() and seq.isdigit()):
        raise RejectedUpload(
            f"bad_upload_id: feed id {doc_id[:80]!r} is not "
            f"{UPLOAD_ID_PREFIX}{{meter_id}}:{{sequence_no}}"
        )
    return meter, int(seq)


def _meter_id(
    usage_points: list[etree._Element], id_meter: str | None, sequence_no: int | None
) -> str:
    """The meter id: the feed id's when the document is a twin upload, else the last path
    segment of the UsagePoint entry's self link (see `ReadingBatch.meter_id`)."""
    if len(usage_points) > 1:
        raise RejectedUpload(
            f"multiple_usage_points: {len(usage_points)} UsagePoints in one upload; an "
            "upload holds one meter (use pipeline.greenbutton for multi-meter files)",
            id_meter,
            sequence_no,
        )
    if id_meter is not None:
        meter_id = id_meter
    elif usage_points:
        hrefs = _SELF_HREFS(usage_points[0])
        if not hrefs:
            raise RejectedUpload(
                "no_meter_id: the UsagePoint entry has no self link and the feed id is not "
                f"{UPLOAD_ID_PREFIX}{{meter_id}}:{{sequence_no}}"
            )
        href = hrefs[0].strip()
        meter_id = href.rstrip("/").rpartition("/")[2]
        if not meter_id:
            raise RejectedUpload(
                f"bad_usage_point_link: no meter id in UsagePoint link {href[:80]!r}"
            )
    else:
        raise RejectedUpload(
            "no_meter_id: no UsagePoint self link and no feed id "
            f"{UPLOAD_ID_PREFIX}{{meter_id}}:{{sequence_no}}"
        )
    if len(meter_id) > MAX_METER_ID_CHARS:
        raise RejectedUpload(
            f"bad_meter_id: meter id of {len(meter_id)} characters exceeds {MAX_METER_ID_CHARS}",
            None,
            sequence_no,
        )
    return meter_id


def _reading_type(
    element: etree._Element, meter_id: str, sequence_no: int | None
) -> tuple[ReadingType, int | None]:
    """(ReadingType, defaultQuality) of an upload's ReadingType element: uom and
    intervalLength are required, the other fields default to 0 (ESPI "none")."""
    values, reason = reading_type_values(element)
    if values is None:
        raise RejectedUpload(reason or "non_integer: ReadingType", meter_id, sequence_no)
    if values[0] is None or values[2] is None:
        raise RejectedUpload(
            "reading_type_incomplete: the ReadingType needs uom and intervalLength",
            meter_id,
            sequence_no,
        )
    return _reading_type_of(values), values[9]


@lru_cache(maxsize=1024)
def _reading_type_of(values: ReadingTypeValues) -> ReadingType:
    return ReadingType(*(0 if v is None else v for v in values[:9]))


#: An upload's ReadingType by its serialisation: (ReadingType, defaultQuality, the
#: ReadingType's fields as a tuple), or the reason it is rejected.
_UploadReadingType = tuple[ReadingType, int | None, tuple[int, ...]]
_UPLOAD_READING_TYPES: dict[bytes, _UploadReadingType | str] = {}


def _upload_reading_type(
    element: etree._Element, meter_id: str, sequence_no: int | None
) -> _UploadReadingType:
    """`_reading_type` with its result cached on the element's serialisation, as
    `reading_type_values` (same bounds): one ``etree.tostring`` and one dictionary lookup
    per channel of an upload, the checks and the `ReadingType` lookup done once per
    distinct ReadingType. The fields tuple is there to compare channels cheaply (hashing
    the frozen dataclass costs 0.4 µs)."""
    key = etree.tostring(element)
    found = _UPLOAD_READING_TYPES.get(key)
    if found is None:
        try:
            reading_type, default_quality = _reading_type(element, meter_id, sequence_no)
            found = (reading_type, default_quality, reading_type.values())
        except RejectedUpload as exc:
            found = exc.reason
        if len(key) <= _READING_TYPE_CACHE_KEY_BYTES:
            if len(_UPLOAD_READING_TYPES) >= _READING_TYPE_CACHE_ENTRIES:
                _UPLOAD_READING_TYPES.clear()
            _UPLOAD_READING_TYPES[key] = found
    if isinstance(found, str):
        raise RejectedUpload(found, meter_id, sequence_no)
    return found


def _resolve_channels(
    meter_readings: list[etree._Element],
    reading_types: list[etree._Element],
    blocks: list[etree._Element],
    meter_id: str,
    sequence_no: int | None,
) -> list[tuple[etree._Element, list[etree._Element]]]:
    """[(ReadingType element, its IntervalBlocks)] in MeterReading document order, by the
    contract's links (see the module docstring); raises `RejectedUpload` otherwise.

    Three compiled XPaths per channel (a ReadingType's ``self``, a MeterReading's
    ``related``, a block's ``up``) and dictionary lookups; hrefs are compared as written
    (surrounding white space aside)."""

    def reject(reason: str) -> RejectedUpload:
        return RejectedUpload(reason, meter_id, sequence_no)

    rt_by_href: dict[str, etree._Element] = {}
    for rt in reading_types:
        hrefs = _SELF_HREFS(rt)
        href = hrefs[0].strip() if hrefs else ""
        if not href or href in rt_by_href:
            raise reject(
                f"ambiguous_reading_type: each of the {len(reading_types)} ReadingTypes needs "
                f"its own self link, found {href!r:.120} twice or empty"
            )
        rt_by_href[href] = rt
    # MeterReading index by its related links (its IntervalBlock collection among them)
    mr_by_related: dict[str, int] = {}
    related_of: list[list[str]] = []
    for index, mr in enumerate(meter_readings):
        related = [h.strip() for h in _RELATED_HREFS(mr)]
        related_of.append(related)
        for href in related:
            if href not in rt_by_href and mr_by_related.setdefault(href, index) != index:
                raise reject(
                    f"ambiguous_meter_reading: two MeterReadings have the related link "
                    f"{href!r:.120}"
                )
    owned: dict[int, list[etree._Element]] = {}
    for block in blocks:
        ups = _UP_HREFS(block)
        up = ups[0].strip() if ups else ""
        owner = mr_by_related.get(up)
        if owner is None:
            raise reject(
                f"unresolved_meter_reading: no MeterReading of the upload has a related link "
                f"to the IntervalBlock collection {up!r:.120} (the block's up link)"
            )
        owned.setdefault(owner, []).append(block)
    channels: list[tuple[etree._Element, list[etree._Element]]] = []
    claimed: set[str] = set()
    for index in sorted(owned):
        linked = {h for h in related_of[index] if h in rt_by_href}
        if len(linked) != 1:
            raise reject(
                f"unresolved_reading_type: MeterReading #{index + 1} must name exactly one "
                f"ReadingType of the upload with a related link, names {len(linked)}"
            )
        rt_href = linked.pop()
        if rt_href in claimed:
            raise reject(
                f"duplicate_reading_type: two MeterReadings name ReadingType {rt_href!r:.120}"
            )
        claimed.add(rt_href)
        channels.append((rt_by_href[rt_href], owned[index]))
    return channels


def _number_error(exc: Exception, meter_id: str, sequence_no: int | None) -> RejectedUpload:
    """A RejectedUpload for reading texts that are not integers (or out of range)."""
    message = str(exc)
    codes = ("non_integer:", "out_of_range:", "mismatched_counts:")
    if isinstance(exc, OverflowError) or not message.startswith(codes):
        message = (
            "non_integer: IntervalReading start, duration and value must be 64-bit integers "
            f"({message})"
        )
    return RejectedUpload(message, meter_id, sequence_no)


def _mismatched_counts(
    starts: list[str],
    durations: list[str],
    values: list[str],
    meter_id: str,
    sequence_no: int | None,
) -> RejectedUpload:
    return RejectedUpload(
        f"mismatched_counts: {len(starts)} timePeriod/start, {len(durations)} "
        f"timePeriod/duration and {len(values)} value in the IntervalReadings",
        meter_id,
        sequence_no,
    )


def _check_aligned(block: etree._Element, meter_id: str, sequence_no: int | None) -> None:
    """Raise ``mismatched_counts`` when some IntervalReading of `block` has not exactly one
    timePeriod/start, timePeriod/duration and value (one XPath, evaluated in C; the texts
    of the block are aligned by position, see `_HAS_ILL_FORMED_READING`)."""
    if not _HAS_ILL_FORMED_READING(block):
        return
    for k, reading in enumerate(_READINGS(block)):  # the error path only: name the reading
        counts = _READING_FIELD_COUNTS(reading)
        if counts != "1,1,1":
            starts, durations, values = counts.split(",")
            raise RejectedUpload(
                f"mismatched_counts: IntervalReading #{k + 1} has {starts} timePeriod/start, "
                f"{durations} timePeriod/duration and {values} value (exactly one each is "
                "required; no reading takes another's)",
                meter_id,
                sequence_no,
            )


def _no_interval_reading(meter_id: str, sequence_no: int | None) -> RejectedUpload:
    return RejectedUpload(
        "no_interval_reading: the upload has no IntervalReading with timePeriod and value",
        meter_id,
        sequence_no,
    )


def _single_block_batch(
    rt_element: etree._Element,
    block: etree._Element,
    meter_id: str,
    sequence_no: int | None,
    source: bytes | None = None,
) -> ReadingBatch:
    """The batch of an upload whose one channel has one IntervalBlock (the twin's
    single-channel upload): the steps of `extract_batches` in the same order (counts,
    conversion, ReadingType, quality) without its bookkeeping for several blocks and
    channels, the block read by `_scanned_block_columns` when it is in the canonical form."""
    columns = _scanned_block_columns(block, source)
    if columns is None:
        starts = _STARTS(block)
        durations = _DURATIONS(block)
        values = _VALUES(block)
        n = len(starts)
        if len(durations) != n or len(values) != n:
            raise _mismatched_counts(starts, durations, values, meter_id, sequence_no)
        if n == 0:
            raise _no_interval_reading(meter_id, sequence_no)
        _check_aligned(block, meter_id, sequence_no)
    else:
        n = columns[0].shape[0]
    scanned = columns is not None
    try:
        if columns is None:
            columns = int64_columns(starts, durations, values)
        reading_type, default_quality, _ = _upload_reading_type(rt_element, meter_id, sequence_no)
        if not scanned:
            quality = block_quality(block, n, default_quality)
        elif default_quality is None:  # a scanned block has no ReadingQuality
            quality = None
        else:
            quality = np.full(n, default_quality, dtype=np.int64)
    except (ValueError, OverflowError) as exc:
        raise _number_error(exc, meter_id, sequence_no) from None
    return ReadingBatch.of(meter_id, sequence_no, reading_type, *columns, quality)


# --- the upload in the canonical form: the scanner's way -------------------------------------


#: Parsed ReadingTypes by their serialization in `_scan_upload`'s text (as
#: `_UPLOAD_READING_TYPES`, same bounds).
_SCANNED_READING_TYPES: dict[str, _UploadReadingType] = {}
_scan_state = threading.local()


def _scan_scratch() -> np.ndarray:
    """This thread's scratch tables for `_scan_upload` (27 x 256 int64, 55 KB)."""
    scratch: np.ndarray | None = getattr(_scan_state, "scratch", None)
    if scratch is None:
        scratch = np.empty((_SCRATCH_ROWS, _SCAN_ITEMS), dtype=np.int64)
        _scan_state.scratch = scratch
    return scratch


_ID_TAG = f"{{{ATOM_NS}}}id"
#: lxml's tag filter for elements in no namespace.
_NO_NAMESPACE = "{}*"
#: `_extract_scanned` and `_scanned_block_columns` leave to the general path any tree with
#: - an element in no namespace: libxml2 writes it without ``xmlns=""`` inside a default
#:   namespace, so the text would not say what it is (only a tree built or changed through
#:   the API can have one; a parsed one has ``xmlns=""`` written where it matters);
#: - a ReadingQuality: `block_quality` reads those (the scanner would decline them anyway,
#:   but only after a serialization; the C-level walk finds one in 0.5 to 3 µs).
_SCAN_BLOCKERS = (_NO_NAMESPACE, f"{{{ESPI_NS}}}ReadingQuality")


#: Fewest children of a feed for which `_extract_scanned` is tried: a twin upload has its
#: id, title and updated, a UsagePoint (and LocalTimeParameters) entry and three entries
#: per channel, so 10 and more means two channels or more. With one channel the general
#: path is cheaper (only the block serialized, see `_scanned_block_columns`, against the
#: whole feed: fetch+process 1.8x against 2.1x a bare parse, 15 readings); from two
#: channels on the whole feed is (1.9x against 2.2x with two channels, 1.8x against 2.1x
#: with five).
_SCAN_MIN_FEED_CHILDREN = 10


def _worth_scanning(root: etree._Element, feed_id: tuple[str | None, int | None] | None) -> bool:
    """Whether `root` looks like a multi-channel twin upload (a feed id
    ``urn:imdc:upload:...``; see `_SCAN_MIN_FEED_CHILDREN`), the documents for which
    `_extract_scanned` pays: a guess, 0.3 µs, that spares the others a useless
    serialization (the result is the same either way)."""
    if len(root) < _SCAN_MIN_FEED_CHILDREN:
        return False
    if feed_id is not None:
        return feed_id[0] is not None
    first = root[0]
    if first.tag != _ID_TAG:
        return False
    return (first.text or "").lstrip().startswith(UPLOAD_ID_PREFIX)


def _extract_scanned(
    root: etree._Element, feed_id: tuple[str | None, int | None] | None
) -> tuple[ReadingBatch, ...] | None:
    """`extract_batches` of a twin upload in the canonical form, from its serialization
    (see `_scan_upload`); None when the upload is not in that form, or the general path
    could find fault with it, or its feed id is not the twin's (the general path runs)."""
    if next(root.iter(*_SCAN_BLOCKERS), None) is not None:
        return None  # see `_SCAN_BLOCKERS`
    text = etree.tostring(root, encoding="unicode")
    if not text.isascii():
        return None
    buf = text.encode()
    readings = np.empty((3, len(buf) // _MIN_READING_BYTES + 1), dtype=np.int64)
    scratch = _scan_scratch()
    n_channels = _scan_upload(buf, readings, scratch)
    if n_channels == 0:
        return None
    rt_indices, rt_from, rt_to, offsets, counts = scratch[
        _S_OUT_RT : _S_OUT_COUNT + 1, :n_channels
    ].tolist()
    if 0 in counts:
        return None  # a channel without readings: the general path skips or rejects it
    if feed_id is None:
        id_from, id_to = scratch[_S_HEADER, :2].tolist()
        id_meter, sequence_no = _parse_upload_id(text[id_from:id_to] if id_from >= 0 else None)
    else:
        id_meter, sequence_no = feed_id
    if id_meter is None or len(id_meter) > MAX_METER_ID_CHARS:
        return None  # the meter id comes from a link, or is rejected: the general path
    readings.flags.writeable = False
    starts, durations, values = readings
    resources: list[etree._Element] | None = None
    batches: list[ReadingBatch] = []
    fields: set[tuple[int, ...]] = set()
    for k in range(n_channels):
        key = text[rt_from[k] : rt_to[k]]
        found = _SCANNED_READING_TYPES.get(key)
        if found is None:
            if resources is None:
                resources = _FEED_RESOURCES(root)
            found = _upload_reading_type(resources[rt_indices[k]], id_meter, sequence_no)
            if len(key) <= _READING_TYPE_CACHE_KEY_BYTES:
                if len(_SCANNED_READING_TYPES) >= _READING_TYPE_CACHE_ENTRIES:
                    _SCANNED_READING_TYPES.clear()
                _SCANNED_READING_TYPES[key] = found
        reading_type, default_quality, rt_fields = found
        fields.add(rt_fields)
        lo = offsets[k]
        hi = lo + counts[k]
        batches.append(
            ReadingBatch.of(
                id_meter,
                sequence_no,
                reading_type,
                starts[lo:hi],
                durations[lo:hi],
                values[lo:hi],
                None
                if default_quality is None
                else np.full(hi - lo, default_quality, dtype=np.int64),
            )
        )
    if len(fields) != len(batches):
        return None  # duplicate_reading_type
    return tuple(batches)


_BLOCK_OPEN_BYTES = _BLOCK_OPEN.tobytes()
_BLOCK_CLOSE_BYTES = b"</IntervalBlock>"


def _source_block(source: bytes, block: etree._Element) -> bytes | None:
    """The bytes of `block` in the document `source` it was parsed from (as UTF-8, as
    `pipeline.fetch.parse_upload` does), when they can stand for its serialization in
    `_scan_block`; None otherwise (then the block is serialized).

    Sound because of what the checks leave: without ``<!`` (no comment, CDATA section or
    DOCTYPE) and without ``<?`` after an XML declaration at the start, every ``<`` of
    well-formed XML opens a start or end tag (it cannot occur in text or attribute values).
    `block` is written without a prefix (``block.prefix``, as parsed), so its start tag is
    an occurrence of ``<IntervalBlock``. The region runs from the first occurrence, which
    must be the start tag ``<IntervalBlock xmlns="{ESPI}">``, to the last
    ``</IntervalBlock>``, and `_scan_block` accepts it only as one element that ends
    exactly there. That element is `block`: another element X named so (unprefixed) that
    came first would have to contain `block` to end after it, and cannot (`block` is a
    child of an Atom content of an Atom entry of the root); any X after the block's start
    is either inside it (skipped, as the general path ignores it) or after its end (then
    the scanned element ends before the region does: declined). (The first *full* start
    tag would not do: after a `block` written otherwise, it could be an X after it.)
    That start tag puts every unprefixed descendant the scanner reads
    (which may carry no attribute, so no ``xmlns``) in the ESPI namespace. What the parser
    would change inside
    (references, CR LF, white space around numbers) makes the scanner decline, as it does
    for anything outside the canonical form. Where the text as received may differ from
    libxml2's serialization, a ``>`` (or ``/>``) inside an attribute value of an element
    it skips, the scanner would see an element end early and then meet an end tag more
    than it opened, which it never accepts.

    Cost: byte searches (``!`` and ``?`` first: single bytes, which CPython finds with
    memchr; the two-byte ``<!`` costs 4 µs in 4 kB of tags), about 1.5 µs for a twin
    upload, against 7 µs for serializing a block of 15 readings.
    """
    if block.prefix is not None:
        return None
    if source.startswith(b"<?"):
        if not source.startswith(b"<?xml "):
            return None  # a processing instruction at the start, not the XML declaration
        after_declaration = source.find(b"?>") + 2
    else:
        after_declaration = 0
    if source.find(b"?", after_declaration) >= 0 and source.find(b"<?", after_declaration) >= 0:
        return None
    if b"!" in source and b"<!" in source:
        return None
    i = source.find(b"<IntervalBlock")  # the first (not the first full start tag below)
    if i < 0 or not source.startswith(_BLOCK_OPEN_BYTES, i):
        return None
    j = source.rfind(_BLOCK_CLOSE_BYTES)
    if j < i:
        return None
    region = source[i : j + len(_BLOCK_CLOSE_BYTES)]
    return region if region.isascii() else None


def _scanned_block_columns(
    block: etree._Element, source: bytes | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(start, duration, value) read-only int64 columns of an IntervalBlock in the
    canonical form, from its serialization (`_scan_block`): what `block_strings` and
    `int64_columns` give, in 11 µs against 15 µs for 15 readings; None when the block is not
    in that form or has no reading (the XPaths then run). With the `source` bytes of the
    document, the block is read from them when `_source_block` allows it (4 µs instead of
    11 µs: no serialization)."""
    buf = None if source is None else _source_block(source, block)
    if buf is None:
        if next(block.iter(*_SCAN_BLOCKERS), None) is not None:
            return None  # see `_SCAN_BLOCKERS`
        text = etree.tostring(block, encoding="unicode", with_tail=False)
        if not text.isascii():
            return None
        buf = text.encode()
    readings = np.empty((3, len(buf) // _MIN_READING_BYTES + 1), dtype=np.int64)
    n = _scan_block(buf, readings)
    if n <= 0:
        return None
    readings.flags.writeable = False
    return readings[0, :n], readings[1, :n], readings[2, :n]


def extract_batches(
    root: etree._Element,
    feed_id: tuple[str | None, int | None] | None = None,
    *,
    source: bytes | None = None,
) -> tuple[ReadingBatch, ...]:
    """Extract every series of a parsed upload, one `ReadingBatch` per channel.

    Args:
        root: the root element returned by `pipeline.fetch.parse_upload` (``atom:feed`` or a
            lone ``atom:entry``).
        feed_id: `upload_id` of `root` when the caller has read it already (the fetch stage
            does, to check it against the authenticated envelope); read here when None.
        source: the bytes `root` was parsed from (by `pipeline.fetch.parse_upload`, the
            tree unchanged since), or None. Given, a single-channel upload's IntervalBlock
            is scanned in them instead of in a serialization of the tree (see
            `_source_block`); the result is the same.

    Returns:
        One batch per channel with readings, in the document order of the channels'
        MeterReadings (a single-ReadingType document: one batch). Every batch has the same
        `meter_id` and `sequence_no`; their `reading_type` values are distinct.

    Raises:
        RejectedUpload: reason codes ``bad_upload_id``, ``no_meter_id``,
            ``multiple_usage_points``, ``bad_usage_point_link``, ``bad_meter_id``,
            ``no_reading_type``, ``reading_type_incomplete``, ``non_integer``,
            ``out_of_range``, ``ambiguous_reading_type``, ``ambiguous_meter_reading``,
            ``unresolved_meter_reading``, ``unresolved_reading_type``,
            ``duplicate_reading_type``, ``mismatched_counts`` or ``no_interval_reading``;
            the exception carries `meter_id` and `sequence_no` once known.

    Cost: a multi-channel twin upload in the canonical form (see the module docstring) is
    serialized once and scanned by `_scan_upload`, then one dictionary lookup per channel
    for its ReadingType and one `ReadingBatch` each. Otherwise (the general path), single
    channel: four compiled XPath evaluations (resources, feed id, ReadingType on a cache
    miss, the block's readings: serialized and scanned in the canonical form, else three
    XPaths for starts, durations and values) whatever the number of readings, plus one more
    for the UsagePoint link of a non-twin document and four more per extra IntervalBlock;
    one compiled conversion of the texts, and a Python loop over the Atom entries (four in
    a twin upload), never over readings. Each further channel adds its three link XPaths,
    its ReadingType lookup and the same per-block work.

    Every IntervalReading must have exactly one timePeriod/start, timePeriod/duration and
    value: a block with a reading that has not (one without a value, one with two...) is
    rejected (``mismatched_counts``, naming the reading), so that no reading ever takes
    another's field. The texts are read as columns by position after one XPath has checked
    that (the scanner checks it reading by reading). A reading's quality codes stay with
    it (see `block_quality`). Integers must be XML Schema integers (`xs_integer`:
    surrounding XML white space allowed; ``1_000``, non-ASCII digits or white space, which
    Python's ``int`` takes, are ``non_integer``).
    """
    if root.tag == _FEED_TAG and _worth_scanning(root, feed_id):
        scanned = _extract_scanned(root, feed_id)
        if scanned is not None:
            return scanned
    resources = _FEED_RESOURCES(root) if root.tag == _FEED_TAG else _ENTRY_RESOURCES(root)
    usage_points: list[etree._Element] = []
    meter_readings: list[etree._Element] = []
    reading_types: list[etree._Element] = []
    blocks: list[etree._Element] = []
    for resource in resources:  # one per Atom entry
        tag = resource.tag
        if tag == _INTERVAL_BLOCK_TAG:
            blocks.append(resource)
        elif tag == _METER_READING_TAG:
            meter_readings.append(resource)
        elif tag == _READING_TYPE_TAG:
            reading_types.append(resource)
        elif tag == _USAGE_POINT_TAG:
            usage_points.append(resource)

    id_meter, sequence_no = upload_id(root) if feed_id is None else feed_id
    meter_id = _meter_id(usage_points, id_meter, sequence_no)
    if len(reading_types) == 1:
        channels = [(reading_types[0], blocks)]
    elif not reading_types:
        raise RejectedUpload(
            "no_reading_type: the upload has no ReadingType", meter_id, sequence_no
        )
    else:
        channels = _resolve_channels(meter_readings, reading_types, blocks, meter_id, sequence_no)
    if len(channels) == 1 and len(channels[0][1]) == 1:  # the twin's single-channel upload
        rt_element, [block] = channels[0]
        return (_single_block_batch(rt_element, block, meter_id, sequence_no, source),)
    # every reading of every channel: three XPaths per block, one conversion in all
    starts: list[str] = []
    durations: list[str] = []
    values: list[str] = []
    ends: list[list[int]] = []  # per channel: offsets of its first reading and its blocks' ends
    for _, channel_blocks in channels:
        channel_ends = [len(starts)]
        for block in channel_blocks:  # one per IntervalBlock (see `block_strings`)
            s = _STARTS(block)
            d = _DURATIONS(block)
            v = _VALUES(block)
            if len(s) != len(d) or len(s) != len(v):
                raise _mismatched_counts(s, d, v, meter_id, sequence_no)
            if s:
                _check_aligned(block, meter_id, sequence_no)
            if starts:
                starts += s
                durations += d
                values += v
            else:
                starts, durations, values = s, d, v
            channel_ends.append(len(starts))
        ends.append(channel_ends)
    n = len(starts)
    if n == 0:
        raise _no_interval_reading(meter_id, sequence_no)
    batches: list[ReadingBatch] = []
    fields: set[tuple[int, ...]] = set()
    try:
        start_column, duration_column, value_column = int64_columns(starts, durations, values)
        # lxml's C-level walk of the whole tree (0.5 µs for a 5-channel upload): without any
        # ReadingQuality, `block_quality` of every block is the ReadingType's default
        no_codes = next(root.iter(_READING_QUALITY_TAG), None) is None
        for (rt_element, channel_blocks), channel_ends in zip(channels, ends, strict=True):
            lo = channel_ends[0]
            hi = channel_ends[-1]
            if hi == lo:
                continue  # a channel without readings is no series
            reading_type, default_quality, rt_fields = _upload_reading_type(
                rt_element, meter_id, sequence_no
            )
            fields.add(rt_fields)
            quality: np.ndarray | None
            if no_codes:  # what block_quality and concat_quality return then
                if default_quality is None:
                    quality = None
                else:
                    quality = np.full(hi - lo, default_quality, dtype=np.int64)
                    if len(channel_blocks) > 1:
                        quality.flags.writeable = False
            elif len(channel_blocks) == 1:
                quality = block_quality(channel_blocks[0], hi - lo, default_quality)
            else:
                sizes = [e - b for b, e in itertools.pairwise(channel_ends)]
                quality = concat_quality(
                    [
                        block_quality(block, k, default_quality)
                        for block, k in zip(channel_blocks, sizes, strict=True)
                    ],
                    sizes,
                )
            if hi - lo == n:
                start_s, duration_s, value = start_column, duration_column, value_column
            else:
                start_s = start_column[lo:hi]
                duration_s = duration_column[lo:hi]
                value = value_column[lo:hi]
            batches.append(
                ReadingBatch.of(
                    meter_id, sequence_no, reading_type, start_s, duration_s, value, quality
                )
            )
    except (ValueError, OverflowError) as exc:
        raise _number_error(exc, meter_id, sequence_no) from None
    if len(fields) != len(batches):
        raise RejectedUpload(
            "duplicate_reading_type: two channels of the upload have the same ReadingType "
            "fields (one series would be stored twice)",
            meter_id,
            sequence_no,
        )
    return tuple(batches)


def extract_readings(root: etree._Element) -> ReadingBatch:
    """The one series of a single-channel upload (see `extract_batches`).

    Raises:
        RejectedUpload: as `extract_batches`, and ``multiple_reading_types`` when the
            upload has more than one series.
    """
    batches = extract_batches(root)
    if len(batches) > 1:
        first = batches[0]
        raise RejectedUpload(
            f"multiple_reading_types: {len(batches)} series in the upload; use "
            "extract_batches for multi-channel uploads",
            first.meter_id,
            first.sequence_no,
        )
    return batches[0]
