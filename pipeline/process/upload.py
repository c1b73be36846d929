"""Process stage: one parsed meter upload to column batches of interval readings, one per
series.

An upload (``docs/upload-format.md``) is one Atom feed with one UsagePoint and K >= 1
channels; channel k is a MeterReading, its ReadingType and its IntervalBlock(s), tied
together by Atom links (MeterReading ``related`` -> ReadingType ``self``; IntervalBlock
``up`` -> ``{MeterReading self}/IntervalBlock``). `extract_batches` returns one
`ReadingBatch` per channel. A series is identified by its meter and its `ReadingType` (uom,
powerOfTenMultiplier, intervalLength, flowDirection, kind, accumulationBehaviour,
commodity, phase, dataQualifier): energy delivered, energy received, voltage, current and
power factor of one meter are five series.

How the channels are found:

- one ReadingType in the document (a single-channel upload, or a utility's single-series
  Green Button file): every IntervalBlock belongs to it and no link is read;
- several ReadingTypes: the format's links are followed strictly. Each IntervalBlock's
  ``up`` href must be a ``related`` href of exactly one MeterReading (its IntervalBlock
  collection, ``{MeterReading self}/IntervalBlock``), and each MeterReading that owns blocks
  must name exactly one ReadingType of the document (by its ``self`` href) with another
  ``related`` link. Hrefs are compared as written. Anything else rejects the whole upload
  with a reason (an upload is accepted or rejected as a whole, so that the ledger stays
  exact); the tolerant resolution of real utility files, which may be redacted, is
  `pipeline.process.greenbutton`'s, on the same column and quality primitives
  (`pipeline.process.columns`).

Readings of a channel are read with module-level compiled XPaths (``smart_strings=False``)
and converted to int64 numpy columns in one call (a compiled parse of the joined texts, see
`pipeline.process.columns.int64_columns`): no per-reading Python loop. The optional ESPI
ReadingQuality of each IntervalReading becomes the `ReadingBatch.quality` column (see
`pipeline.process.columns.block_quality`).

Fast path: an upload in the documented format as libxml2 serializes it is read by the
compiled scanner (`pipeline.process.scanner`): in its bytes as received when the caller
has scanned them (``extract_batches(root, scanned=scan_source(body))``, as
`pipeline.service` does), else a multi-channel upload is serialized once and scanned
whole (`scan_feed`); the one IntervalBlock of a single-channel upload that the whole scan
did not read is scanned in the bytes as received when they allow it, else in its
serialization (`scan_block`). The scanner declines anything outside that form, and every
upload the general path would reject or read differently (ReadingQuality, several blocks
per channel, links it would refuse...): those take the general path, which is the
reference. The results are the same
either way (tests/pipeline/process checks both ways on the same documents); what the fast
path saves is measured in bench/test_pipeline_bench.py.

Element order inside ESPI resources does not matter (every field is selected by name), nor
does the namespace style: default-namespace and prefixed documents parse the same, because
the XPaths match namespace URIs, not prefixes. Resources are looked for where Atom puts
them: ``feed/entry/content/<Resource>`` (or ``entry/content/<Resource>`` for a lone entry).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import lru_cache
from typing import cast

import numpy as np
from lxml import etree

from pipeline.espi.identity import MAX_METER_ID_CHARS, UPLOAD_ID_PREFIX
from pipeline.espi.namespaces import ATOM, ESPI
from pipeline.espi.reading_type import ReadingType
from pipeline.fetch.rejection import RejectedUpload
from pipeline.process.batch import ReadingBatch
from pipeline.process.columns import (
    DURATIONS,
    READING_QUALITY_TAG,
    READINGS,
    STARTS,
    VALUES,
    Elements,
    ReadingTypeValues,
    SerializationCache,
    String,
    Strings,
    block_quality,
    concat_quality,
    int64_columns,
    reading_type_values,
    xpath,
)
from pipeline.process.scanner import ScannedFeed, scan_block, scan_feed

__all__ = ["extract_batches", "upload_id"]

_FEED_TAG = ATOM + "feed"
_ID_TAG = ATOM + "id"

# Module-level compiled XPaths of the upload's structure (see `pipeline.process.columns.xpath`).

#: The ESPI resources: the children of each entry's content, for a feed or a lone entry.
_FEED_RESOURCES = cast(Elements, xpath("atom:entry/atom:content/*"))
_ENTRY_RESOURCES = cast(Elements, xpath("self::atom:entry/atom:content/*"))
#: The feed's (or lone entry's) own id.
_DOC_ID = cast(Strings, xpath("atom:id/text()"))
#: From a resource element: its entry's links.
_SELF_HREFS = cast(Strings, xpath("../../atom:link[@rel='self']/@href"))
_UP_HREFS = cast(Strings, xpath("../../atom:link[@rel='up']/@href"))
_RELATED_HREFS = cast(Strings, xpath("../../atom:link[@rel='related']/@href"))
#: From an IntervalBlock: whether some IntervalReading has not exactly one timePeriod/start,
#: one timePeriod/duration and one value text. The three lists of readings' texts are
#: aligned by position, right only when there is no such reading: equal totals alone let a
#: reading without a value take the next reading's.
_HAS_ILL_FORMED_READING = cast(
    Callable[[etree._Element], bool],
    xpath(
        "boolean(espi:IntervalReading[count(espi:timePeriod/espi:start/text()) != 1"
        " or count(espi:timePeriod/espi:duration/text()) != 1"
        " or count(espi:value/text()) != 1])"
    ),
)
#: The same, read per reading (only to name the bad one in a rejection).
_READING_FIELD_COUNTS = cast(
    String,
    xpath(
        "concat(count(espi:timePeriod/espi:start/text()), ',',"
        " count(espi:timePeriod/espi:duration/text()), ',', count(espi:value/text()))"
    ),
)

_USAGE_POINT_TAG = ESPI + "UsagePoint"
_METER_READING_TAG = ESPI + "MeterReading"
_READING_TYPE_TAG = ESPI + "ReadingType"
_INTERVAL_BLOCK_TAG = ESPI + "IntervalBlock"


# --- the upload -------------------------------------------------------------------------------


def upload_id(root: etree._Element) -> tuple[str | None, int | None]:
    """(meter_id, sequence_no) from a feed id ``urn:imdc:upload:{meter_id}:{seq}``, or
    (None, None) when the document's id has another form.

    Raises:
        RejectedUpload: ``bad_upload_id`` when the id has the prefix but not the form.

    The id is the first text node of an ``atom:id`` child of `root` (what the XPath
    ``atom:id/text()`` gives first). When the first child is an ``atom:id`` that starts with
    text (the usual feed), that is its ``.text`` (a parsed tree has no comment between, and
    libxml2 joins adjacent text), read without evaluating the XPath.
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
    """The meter id: the feed id's when the document is a meter upload, else the last path
    segment of the UsagePoint entry's self link (see `ReadingBatch.meter_id`)."""
    if len(usage_points) > 1:
        raise RejectedUpload(
            f"multiple_usage_points: {len(usage_points)} UsagePoints in one upload; an "
            "upload holds one meter (use pipeline.process.greenbutton for multi-meter files)",
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
_UPLOAD_READING_TYPES: SerializationCache[bytes, _UploadReadingType | str] = (
    SerializationCache()
)


def _upload_reading_type(
    element: etree._Element, meter_id: str, sequence_no: int | None
) -> _UploadReadingType:
    """`_reading_type` with its result cached on the element's serialisation, as
    `reading_type_values` (same bounds): one ``etree.tostring`` and one dictionary lookup
    per channel of an upload, the checks and the `ReadingType` lookup done once per
    distinct ReadingType. The fields tuple is there to compare channels cheaply (cheaper
    to hash than the frozen dataclass)."""
    key = etree.tostring(element)
    found = _UPLOAD_READING_TYPES.get(key)
    if found is None:
        try:
            reading_type, default_quality = _reading_type(element, meter_id, sequence_no)
            found = (reading_type, default_quality, reading_type.values())
        except RejectedUpload as exc:
            found = exc.reason
        _UPLOAD_READING_TYPES.put(key, found)
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
    for k, reading in enumerate(READINGS(block)):  # the error path only: name the reading
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
    """The batch of an upload whose one channel has one IntervalBlock (a single-channel
    meter upload): the steps of `extract_batches` in the same order (counts,
    conversion, ReadingType, quality) without its bookkeeping for several blocks and
    channels, the block read by `pipeline.process.scanner.scan_block` when it is in the
    canonical form."""
    columns = scan_block(block, source)
    if columns is None:
        starts = STARTS(block)
        durations = DURATIONS(block)
        values = VALUES(block)
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


#: Parsed ReadingTypes by their span in a `pipeline.process.scanner.ScannedFeed`'s document
#: (as `_UPLOAD_READING_TYPES`), one cache per kind of document: spans of the bytes as
#: received, and of serializations (equal spans of two kinds may hold different
#: ReadingTypes, see `pipeline.process.scanner.ScannedFeed.as_received`).
_RECEIVED_READING_TYPES: SerializationCache[bytes, _UploadReadingType] = SerializationCache()
_SERIALIZED_READING_TYPES: SerializationCache[bytes, _UploadReadingType] = SerializationCache()


#: Fewest children of a feed for which `_extract_scanned` serializes the tree to scan it
#: when it cannot read the bytes as received: an upload has its id, title and updated, a
#: UsagePoint (and LocalTimeParameters) entry and three entries per channel, so 10 and
#: more means two channels or more. With one channel the general path is cheaper then
#: (only the block is scanned, see `pipeline.process.scanner.scan_block`, not the whole
#: feed serialized); from two channels on the whole feed is
#: (bench/test_pipeline_bench.py measures both).
_SCAN_MIN_FEED_CHILDREN = 10


def _worth_serializing(root: etree._Element, feed_id: tuple[str | None, int | None] | None) -> bool:
    """Whether `root` looks like a multi-channel meter upload (a feed id
    ``urn:imdc:upload:...``; see `_SCAN_MIN_FEED_CHILDREN`), the documents for which
    serializing the tree to scan it pays: a cheap guess that spares the others a useless
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
    root: etree._Element,
    feed_id: tuple[str | None, int | None] | None,
    scanned: ScannedFeed | None,
) -> tuple[ReadingBatch, ...] | None:
    """`extract_batches` of a feed in the canonical form, from the scanner: what it read
    in the bytes as received (`scanned`), else in the tree's serialization when that pays
    (`_worth_serializing`, `pipeline.process.scanner.scan_feed`); None when the upload is
    not in that form, or the general path could find fault with it, or its feed id is not
    a meter upload's (the general path runs)."""
    if (scanned is None or not scanned.channels) and _worth_serializing(root, feed_id):
        scanned = scan_feed(root)
    if scanned is None or not scanned.channels:
        return None
    id_meter, sequence_no = _parse_upload_id(scanned.feed_id) if feed_id is None else feed_id
    if id_meter is None or len(id_meter) > MAX_METER_ID_CHARS:
        return None  # the meter id comes from a link, or is rejected: the general path
    document = scanned.document
    readings = scanned.readings
    cache = _RECEIVED_READING_TYPES if scanned.as_received else _SERIALIZED_READING_TYPES
    resources: list[etree._Element] | None = None
    batches: list[ReadingBatch] = []
    fields: set[tuple[int, ...]] = set()
    for rt_index, rt_from, rt_to, lo, n in scanned.channels:
        if n == 0:
            return None  # a channel without readings: the general path skips or rejects it
        key = document[rt_from:rt_to]
        found = cache.get(key)
        if found is None:
            if resources is None:
                resources = _FEED_RESOURCES(root)
            found = _upload_reading_type(resources[rt_index], id_meter, sequence_no)
            cache.put(key, found)
        reading_type, default_quality, rt_fields = found
        fields.add(rt_fields)
        hi = lo + n
        batches.append(
            ReadingBatch.of(
                id_meter,
                sequence_no,
                reading_type,
                readings[0, lo:hi],
                readings[1, lo:hi],
                readings[2, lo:hi],
                None if default_quality is None else np.full(n, default_quality, dtype=np.int64),
            )
        )
    if len(fields) != len(batches):
        return None  # duplicate_reading_type
    return tuple(batches)


def extract_batches(
    root: etree._Element,
    feed_id: tuple[str | None, int | None] | None = None,
    *,
    scanned: ScannedFeed | None = None,
) -> tuple[ReadingBatch, ...]:
    """Extract every series of a parsed upload, one `ReadingBatch` per channel.

    Args:
        root: the root element returned by `pipeline.fetch.parse.parse_upload`
            (``atom:feed`` or a lone ``atom:entry``).
        feed_id: `upload_id` of `root` when the caller has read it already (the fetch stage
            does, to check it against the authenticated envelope); read here when None.
        scanned: `pipeline.process.scanner.scan_source` of the bytes `root` was parsed
            from (the tree unchanged since), or None. Its channels, when the scanner read
            the upload, are the result; otherwise a single-channel upload's IntervalBlock
            is scanned in those bytes instead of in a serialization of the tree (see
            `pipeline.process.scanner.block_in_source`). The result is the same either way.

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

    Cost: a meter upload in the canonical form (see the module docstring) that the caller
    has scanned (`scanned`) costs one dictionary lookup per channel for its ReadingType and
    one `ReadingBatch` each; without `scanned`, a multi-channel one is serialized once and
    scanned (`pipeline.process.scanner.scan_feed`) first. Otherwise (the
    general path), single channel: four compiled XPath evaluations (resources, feed id,
    ReadingType on a cache miss, the block's readings: scanned in the canonical form, else
    three XPaths for starts, durations and values) whatever the number of readings, plus
    one more for the UsagePoint link of a document without a meter upload's feed id and
    four more per extra IntervalBlock; one compiled conversion of the texts, and a Python
    loop over the Atom entries (four in a single-channel meter upload), never over
    readings. Each further channel adds its three link XPaths, its ReadingType lookup and
    the same per-block work.

    Every IntervalReading must have exactly one timePeriod/start, timePeriod/duration and
    value: a block with a reading that has not (one without a value, one with two...) is
    rejected (``mismatched_counts``, naming the reading), so that no reading ever takes
    another's field. The texts are read as columns by position after one XPath has checked
    that (the scanner checks it reading by reading). A reading's quality codes stay with
    it (see `pipeline.process.columns.block_quality`). Integers must be XML Schema integers
    (`pipeline.process.columns.xs_integer`: surrounding XML white space allowed;
    ``1_000``, non-ASCII digits or white space, which Python's ``int`` takes, are
    ``non_integer``).
    """
    if root.tag == _FEED_TAG:
        from_scanner = _extract_scanned(root, feed_id, scanned)
        if from_scanner is not None:
            return from_scanner
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
    if len(channels) == 1 and len(channels[0][1]) == 1:  # a single-channel meter upload
        rt_element, [block] = channels[0]
        source = None if scanned is None else scanned.document
        return (_single_block_batch(rt_element, block, meter_id, sequence_no, source),)
    # every reading of every channel: three XPaths per block, one conversion in all
    starts: list[str] = []
    durations: list[str] = []
    values: list[str] = []
    ends: list[list[int]] = []  # per channel: offsets of its first reading and its blocks' ends
    for _, channel_blocks in channels:
        channel_ends = [len(starts)]
        for block in channel_blocks:  # one per IntervalBlock
            s = STARTS(block)
            d = DURATIONS(block)
            v = VALUES(block)
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
        # lxml's C-level walk of the whole tree: without any ReadingQuality, `block_quality`
        # of every block is the ReadingType's default
        no_codes = next(root.iter(READING_QUALITY_TAG), None) is None
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
