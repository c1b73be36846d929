"""Property tests of the whole ingest path (hypothesis): valid uploads round-trip exactly,
and every mutation of one is either stored exactly as a reference parse of the mutated
document says, or rejected with a reason, never raising and never storing part of it.

Documents follow the meter upload format of docs/upload-format.md, built with the tests'
ESPI feed builder (`tests.espi_feeds`; in one property, by the meter encoder
`meters.espi_upload.encode_meter_upload`). The reference parse (`reference`) is written from the
format, the ESPI schema's lexical rules (XML Schema integers: an optional sign and ASCII
digits) and the documented rules of `pipeline.process.upload` (channel resolution,
ReadingQuality, first stored version kept), with plain lxml element loops: one reading at
a time, not the pipeline's batched XPaths.

Outcome of the reference parse:
- `Rows`: the document is valid; the pipeline must accept it and store exactly these rows;
- `MustReject`: the document breaks the format; the pipeline must reject it, storing
  nothing;
  (numbers only Python's ``int`` reads, such as ``1_000``, ``١٢`` or NBSP around
  digits, and readings whose fields only line up by position across readings, included:
  see the tests at the end);
- `Rows.lenient`: valid except for an empty ``<quality/>`` (no code, and not an
  unsignedShort either): the pipeline may reject it, or store the reading without it;
- `Unknowable`: the schema forbids it and the format does not say how it reads: only
  the invariants (never raising, all or nothing) are checked.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from meters.espi import CODE_TABLES, Channel, LocalTimeSpec, ReadingTypeSpec
from meters.espi_upload import encode_meter_upload
from pipeline import Pipeline, ReadingType, Store
from pipeline.espi.codes import QUALITY_MIXED as MIXED
from pipeline.espi.localtime import LocalTime
from pipeline.espi.namespaces import ATOM as A
from pipeline.espi.namespaces import ESPI as E
from pipeline.espi.namespaces import ESPI_NS, NAMESPACES
from pipeline.fetch.parse import parse_upload
from pipeline.ingest import ingest_file
from pipeline.process.batch import QUALITY_NONE
from pipeline.process.greenbutton import extract_series
from pipeline.store.schema import READING_TYPE_COLUMNS
from tests import espi_feeds
from tests.espi_feeds import local_time_parameters, meter_upload

INT64 = (-(2**63), 2**63 - 1)
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

RT9 = tuple[int, int, int, int, int, int, int, int, int]  # the series identity
#: ReadingType elements in the order of `pipeline.espi.reading_type.ReadingType` (then
#: defaultQuality), with the range of their XSD type (UInt16, Int16, UInt32 > 0).
RT_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("uom", 0, 65535),
    ("powerOfTenMultiplier", -32768, 32767),
    ("intervalLength", 1, 2**32 - 1),
    ("flowDirection", 0, 65535),
    ("kind", 0, 65535),
    ("accumulationBehaviour", 0, 65535),
    ("commodity", 0, 65535),
    ("phase", 0, 65535),
    ("dataQualifier", 0, 65535),
    ("defaultQuality", 0, 65535),
)


# --- documents ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelSpec:
    """One channel: ReadingType fields (`rt`, in `RT_FIELDS` order without defaultQuality),
    defaultQuality, and per reading a value and an optional ReadingQuality code."""

    rt: RT9
    default_quality: int | None
    values: tuple[int, ...]
    quality: tuple[int | None, ...]


@dataclass(frozen=True)
class UploadSpec:
    meter: str
    seq: int
    starts: tuple[int, ...]
    channels: tuple[ChannelSpec, ...]
    local_time: LocalTime | None
    blocks: int  # IntervalBlocks per channel (the readings split between them)

    @property
    def interval_s(self) -> int:
        return self.channels[0].rt[2]


def build_upload(spec: UploadSpec) -> bytes:
    """The meter upload of docs/upload-format.md, as meters send it."""
    lt = spec.local_time
    channels = [
        espi_feeds.Channel(
            {
                name: value
                for (name, _, _), value in zip(
                    RT_FIELDS, (*channel.rt, channel.default_quality), strict=True
                )
                if value is not None
            },
            channel.values,
            {i: [q] for i, q in enumerate(channel.quality) if q is not None},
        )
        for channel in spec.channels
    ]
    return meter_upload(
        spec.meter,
        spec.seq,
        spec.starts,
        channels,
        local_time=None
        if lt is None
        else local_time_parameters(
            lt.tz_offset_s, lt.dst_offset_s, f"{lt.dst_start_rule:08X}", f"{lt.dst_end_rule:08X}"
        ),
        blocks=spec.blocks,
    )


def codes(kind: str) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted(CODE_TABLES[kind]))


QUALITY_CODES = st.one_of(codes("QualityOfReading"), st.integers(0, 65535))
US = (0x360E2000, 0xB40E2000)
LOCAL_TIMES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            LocalTime(-18000, 3600, *US),
            LocalTime(-28800, 3600, *US),
            LocalTime(3600, 3600, 0x3E0E2000, 0xAE0E3000),
            LocalTime(-25200),
        ]
    ),
)


@st.composite
def upload_specs(draw: st.DrawFn, max_readings: int = 24) -> UploadSpec:
    interval = draw(st.sampled_from([60, 300, 900, 3600, 86400]))
    offsets = draw(st.lists(st.integers(0, 400), min_size=1, max_size=max_readings, unique=True))
    start0 = draw(st.integers(0, 2**35))
    starts = tuple(start0 + interval * o for o in sorted(offsets))
    n = len(starts)
    rts = draw(
        st.lists(
            st.tuples(
                st.one_of(codes("UnitSymbolKind"), st.integers(0, 65535)),
                st.one_of(codes("UnitMultiplierKind"), st.integers(-32768, 32767)),
                st.just(interval),
                codes("FlowDirectionKind"),
                codes("MeasurementKind"),
                codes("AccumulationKind"),
                codes("CommodityKind"),
                codes("PhaseCodeKind"),
                codes("DataQualifierKind"),
            ),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    channels = tuple(
        ChannelSpec(
            rt,
            draw(st.one_of(st.none(), QUALITY_CODES)),
            tuple(draw(st.lists(st.integers(*INT64), min_size=n, max_size=n))),
            tuple(draw(st.lists(st.one_of(st.none(), QUALITY_CODES), min_size=n, max_size=n))),
        )
        for rt in rts
    )
    return UploadSpec(
        meter=draw(st.from_regex(r"[A-Za-z0-9._-]{1,16}", fullmatch=True)),
        seq=draw(st.integers(0, 2**63 - 1)),
        starts=starts,
        channels=channels,
        local_time=draw(LOCAL_TIMES),
        blocks=draw(st.integers(1, 2)),
    )


_COUNTER = itertools.count()


def unique(spec: UploadSpec) -> UploadSpec:
    """The spec with a meter id no earlier example used (examples share one database)."""
    return UploadSpec(
        f"u{next(_COUNTER)}x{spec.meter}",
        spec.seq,
        spec.starts,
        spec.channels,
        spec.local_time,
        spec.blocks,
    )


# --- the reference parse ------------------------------------------------------------------


class MustReject(Exception):  # noqa: N818
    """The document breaks the contract: the pipeline must reject it."""


class Unknowable(Exception):  # noqa: N818
    """The schema forbids what the document does and the contract does not say how it
    reads; only the invariants (no exception, all or nothing) are checked."""


@dataclass
class Rows:
    """What a valid document stores: (series, start) -> (duration, value, quality) of the
    first reading of each interval; `readings`: every reading, in document order."""

    meter_id: str
    sequence_no: int | None
    rows: dict[tuple[RT9, int], tuple[int, int, int]]
    n_readings: int
    lenient: bool  # an empty <quality/>: no code, and not an unsignedShort either
    readings: list[tuple[tuple[RT9, int], tuple[int, int, int]]]


_XS_INT = re.compile(r"[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*")


class _Numbers:
    """Reads integer texts as XML Schema does (forms only Python's ``int`` takes, such as
    ``1_000``, non-ASCII digits or NBSP, must be rejected); `lenient` notes an empty
    ``<quality/>``, which may be read as no code or rejected."""

    def __init__(self) -> None:
        self.lenient = False

    def __call__(self, text: str, low: int, high: int) -> int:
        if not _XS_INT.fullmatch(text):
            raise MustReject(f"not an XML Schema integer: {text!r}")
        value = int(text)
        if not low <= value <= high:
            raise MustReject(f"{value} outside [{low}, {high}]")
        return value


def _text_only(element: etree._Element) -> str:
    if len(element):
        raise Unknowable("a numeric element with child elements")
    return element.text or ""


def _entry(resource: etree._Element) -> etree._Element:
    """The Atom entry of a resource (entry/content/resource)."""
    content = resource.getparent()
    entry = None if content is None else content.getparent()
    assert entry is not None
    return entry


def _hrefs(resource: etree._Element, rel: str) -> list[str]:
    """The hrefs of the resource's entry's links of `rel` (exactly, as XPath compares)."""
    return [
        link.get("href", "").strip()
        for link in _entry(resource).iterchildren(A + "link")
        if link.get("rel") == rel and link.get("href") is not None
    ]


def _first_href(resource: etree._Element, rel: str) -> str:
    hrefs = _hrefs(resource, rel)
    return hrefs[0] if hrefs else ""


def _texts(element: etree._Element, path: str) -> int:
    """Number of text nodes at `path` (``e:`` is ESPI) below `element`."""
    found = element.xpath(path + "/text()", namespaces={"e": ESPI_NS})
    assert isinstance(found, list)
    return len(found)


def _check_alignment(block: etree._Element) -> None:
    """Raise MustReject when a block's readings are schema-invalid in a way that per-block
    totals of starts, durations and values hide (they match while single readings do not:
    a reading without a value beside one with two must never be aligned by position)."""
    readings = list(block.iterchildren(E + "IntervalReading"))
    fields = ("e:timePeriod/e:start", "e:timePeriod/e:duration", "e:value")
    per_reading = [tuple(_texts(r, f) for f in fields) for r in readings]
    totals = [sum(c[i] for c in per_reading) for i in range(3)]
    if len(set(totals)) == 1 and any(c != (1, 1, 1) for c in per_reading):
        raise MustReject("a reading without exactly one start, duration and value")


def reference(body: bytes) -> Rows:
    """The reference parse (module docstring); raises MustReject or Unknowable."""
    if not body:
        raise MustReject("empty")
    parser = etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise MustReject(f"not well-formed: {exc}") from None
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise MustReject("DOCTYPE")
    if root.tag not in (A + "feed", A + "entry"):
        raise MustReject("root")
    number = _Numbers()

    meter_id: str | None = None
    sequence_no: int | None = None
    ids = root.xpath("atom:id/text()", namespaces=NAMESPACES)
    doc_id = str(ids[0]).strip() if ids else ""  # type: ignore[index]
    if doc_id.startswith("urn:imdc:upload:"):
        meter, _, seq = doc_id[len("urn:imdc:upload:") :].rpartition(":")
        if not meter or not (seq.isascii() and seq.isdigit()):
            raise MustReject("bad feed id")
        meter_id, sequence_no = meter, int(seq)

    entries = [root] if root.tag == A + "entry" else list(root.iterchildren(A + "entry"))
    resources = [r for e in entries for c in e.iterchildren(A + "content") for r in c]
    by_tag: dict[str, list[etree._Element]] = {}
    for resource in resources:
        by_tag.setdefault(str(resource.tag), []).append(resource)
    usage_points = by_tag.get(E + "UsagePoint", [])
    reading_types = by_tag.get(E + "ReadingType", [])
    meter_readings = by_tag.get(E + "MeterReading", [])
    blocks = by_tag.get(E + "IntervalBlock", [])
    if len(usage_points) > 1:
        raise MustReject("several UsagePoints")
    if meter_id is None:
        if not usage_points or not _first_href(usage_points[0], "self"):
            raise MustReject("no meter id")
        meter_id = _first_href(usage_points[0], "self").rstrip("/").rpartition("/")[2]
        if not meter_id:
            raise MustReject("empty meter id")
    if len(meter_id) > 256:
        raise MustReject("meter id too long")

    # channels: (ReadingType, its blocks)
    if not reading_types:
        raise MustReject("no ReadingType")
    if len(reading_types) == 1:
        channels = [(reading_types[0], blocks)]
    else:
        rt_by_href: dict[str, etree._Element] = {}
        for rt in reading_types:
            href = _first_href(rt, "self")
            if not href or href in rt_by_href:
                raise MustReject("ReadingType self links")
            rt_by_href[href] = rt
        owner_of: dict[str, int] = {}
        for i, mr in enumerate(meter_readings):
            for href in _hrefs(mr, "related"):
                if href not in rt_by_href and owner_of.setdefault(href, i) != i:
                    raise MustReject("two MeterReadings with one related link")
        owned: dict[int, list[etree._Element]] = {}
        for block in blocks:
            owner = owner_of.get(_first_href(block, "up"))
            if owner is None:
                raise MustReject("block without MeterReading")
            owned.setdefault(owner, []).append(block)
        channels = []
        claimed: set[str] = set()
        for i in sorted(owned):
            linked = {h for h in _hrefs(meter_readings[i], "related") if h in rt_by_href}
            if len(linked) != 1 or (href := linked.pop()) in claimed:
                raise MustReject("MeterReading to ReadingType")
            claimed.add(href)
            channels.append((rt_by_href[href], owned[i]))

    rows: dict[tuple[RT9, int], tuple[int, int, int]] = {}
    every: list[tuple[tuple[RT9, int], tuple[int, int, int]]] = []
    n_readings = 0
    series: list[RT9] = []
    pending: list[tuple[RT9, list[tuple[int, int, int, int]]]] = []
    for rt_element, channel_blocks in channels:
        readings = [r for b in channel_blocks for r in b.iterchildren(E + "IntervalReading")]
        if not readings:
            continue
        for block in channel_blocks:
            _check_alignment(block)
        fields: list[int | None] = []
        for name, low, high in RT_FIELDS:
            element = rt_element.find(E + name)
            text = "" if element is None else "".join(map(str, element.itertext()))
            text = text.strip(" \t\r\n")  # XML white space (str.strip would take NBSP)
            fields.append(number(text, low, high) if text else None)
        if fields[0] is None or fields[2] is None:
            raise MustReject("ReadingType without uom or intervalLength")
        rt9: RT9 = tuple(0 if f is None else f for f in fields[:9])  # type: ignore[assignment]
        default = QUALITY_NONE if fields[9] is None else fields[9]
        parsed = []
        for reading in readings:
            periods = reading.findall(E + "timePeriod")
            starts = [s for p in periods for s in p.findall(E + "start")]
            durations = [d for p in periods for d in p.findall(E + "duration")]
            values = reading.findall(E + "value")
            if not (len(starts) == len(durations) == len(values) == 1):
                raise MustReject("a reading without exactly one start, duration and value")
            start, duration, value = (
                number(_text_only(x[0]), *INT64) for x in (starts, durations, values)
            )
            quality_elements = [
                q for rq in reading.findall(E + "ReadingQuality") for q in rq.findall(E + "quality")
            ]
            if any(q.text is None and not len(q) for q in quality_elements):
                number.lenient = True  # <quality/>: no code (not an unsignedShort either)
            quality_codes = {
                number(_text_only(q), 0, 65535)
                for q in quality_elements
                if q.text is not None or len(q)
            }
            quality = (
                default
                if not quality_codes
                else quality_codes.pop()
                if len(quality_codes) == 1
                else MIXED
            )
            parsed.append((start, duration, value, quality))
        series.append(rt9)
        pending.append((rt9, parsed))
    if not pending:
        raise MustReject("no interval reading")
    if len(set(series)) != len(series):
        raise MustReject("two channels with one ReadingType")
    for rt9, parsed in pending:
        for start, duration, value, quality in parsed:
            if start < 0 or duration <= 0:
                raise MustReject("start < 0 or duration <= 0 (store constraint)")
            rows.setdefault((rt9, start), (duration, value, quality))
            every.append(((rt9, start), (duration, value, quality)))
            n_readings += 1
    return Rows(meter_id, sequence_no, rows, n_readings, number.lenient, every)


# --- the pipeline under test --------------------------------------------------------------


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with Pipeline(tmp_path_factory.mktemp("prop") / "pipe.sqlite") as pipeline:
        yield pipeline


@pytest.fixture(scope="module")
def ingest_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    folder = tmp_path_factory.mktemp("ingest")
    with Store(folder / "ingest.sqlite") as store:
        yield store, folder


StoredRows = dict[tuple[RT9, int], tuple[int, int, int]]


def stored(pipe: Pipeline, meter_id: str, rts: Sequence[RT9]) -> StoredRows:
    """The stored rows of the series `rts` of `meter_id`, as `Rows.rows`."""
    out: StoredRows = {}
    for rt9 in rts:
        rows = pipe.store.readings.read_series(meter_id, ReadingType(*rt9))
        for s, d, v, q in zip(
            rows.start_s.tolist(), rows.duration_s.tolist(), rows.raw_value.tolist(),
            rows.raw_quality.tolist(), strict=True,
        ):  # fmt: skip
            out[(rt9, s)] = (d, v, q)
    return out


REASON = re.compile(r"[a-z][a-z0-9_]*: .+", re.DOTALL)


def check_upload(pipe: Pipeline, body: bytes) -> str:
    """Run `body` through the pipeline and check it against the reference parse. Returns
    what happened: "accepted", "rejected" (as required or allowed)."""
    try:
        expected: Rows | None = reference(body)
        must_reject = False
    except MustReject:
        expected, must_reject = None, True
    except Unknowable as exc:
        event(f"reference: {type(exc).__name__}")
        expected, must_reject = None, False
    keys = [] if expected is None else sorted({rt for rt, _ in expected.rows})
    before_rows = {} if expected is None else stored(pipe, expected.meter_id, keys)
    before = pipe.store.readings.count()

    outcome = pipe.handle(body)  # must not raise

    after = pipe.store.readings.count()
    if not outcome.accepted:
        assert outcome.reason is not None and REASON.fullmatch(outcome.reason), outcome.reason
        assert after == before, "a rejected upload stored readings"
        assert (outcome.n_readings, outcome.inserted, outcome.duplicates) == (0, 0, 0)
        assert expected is None or expected.lenient, (
            f"a valid document was rejected: {outcome.reason}"
        )
        return "rejected"
    assert not must_reject, "a document that breaks the contract was accepted"
    assert outcome.reason is None
    assert outcome.inserted + outcome.duplicates + outcome.conflicts == outcome.n_readings
    assert after - before == outcome.inserted, "rows stored differ from the outcome's count"
    if expected is not None:
        new = {k: v for k, v in expected.rows.items() if k not in before_rows}
        assert (outcome.meter_id, outcome.sequence_no) == (expected.meter_id, expected.sequence_no)
        assert outcome.n_readings == expected.n_readings
        assert outcome.inserted == len(new)
        kept = before_rows | new
        assert stored(pipe, expected.meter_id, keys) == kept  # the first version stays
        conflicting = [(k, v) for k, v in expected.readings if kept[k] != v]
        assert outcome.conflicts == len(conflicting)
        for (rt9, start), version in conflicting:  # each one recorded, none dropped
            assert version in revisions(pipe, expected.meter_id, rt9, start)
    return "accepted"


def revisions(pipe: Pipeline, meter_id: str, rt9: RT9, start: int) -> set[tuple[int, int, int]]:
    """(duration, value, quality) of every recorded revision of one reading."""
    where = " AND ".join(f"{c} = ?" for c in READING_TYPE_COLUMNS)
    rows = pipe.store.connection.execute(
        f"SELECT duration_s, value, IFNULL(raw_quality, {QUALITY_NONE}) FROM revisions "
        f"WHERE meter_id = ? AND start_s = ? AND {where}",
        (meter_id, start, *rt9),
    )
    return {tuple(row) for row in rows}


def check_ingest(store: Store, folder: Path, body: bytes) -> None:
    """The standalone ingest path (`pipeline.process.greenbutton`): never raises for the document,
    and stores exactly what its report says (nothing for a rejected file)."""
    path = folder / "doc.xml"
    path.write_bytes(body)
    before = store.readings.count()
    report = ingest_file(path, store)
    after = store.readings.count()
    assert after - before == sum(s.inserted for s in report.series)
    for part in report.rejected:
        assert REASON.fullmatch(part.reason), part.reason
    if report.status == "rejected":
        assert after == before and report.rejected


# --- (a) valid documents round-trip exactly -----------------------------------------------


@PROPERTY_SETTINGS
@given(spec=upload_specs())
def test_valid_uploads_round_trip_exactly(pipe: Pipeline, spec: UploadSpec) -> None:
    spec = unique(spec)
    body = build_upload(spec)
    before = pipe.store.readings.count()
    outcome = pipe.handle(body)
    assert outcome.accepted, outcome.reason
    n, k = len(spec.starts), len(spec.channels)
    assert (outcome.meter_id, outcome.sequence_no, outcome.n_series) == (spec.meter, spec.seq, k)
    assert (outcome.n_readings, outcome.inserted, outcome.duplicates) == (n * k, n * k, 0)
    assert pipe.store.readings.count() - before == n * k
    for channel in spec.channels:
        rows = pipe.store.readings.read_series(spec.meter, ReadingType(*channel.rt))
        assert rows.start_s.tolist() == list(spec.starts)
        assert rows.duration_s.tolist() == [spec.interval_s] * n
        assert rows.raw_value.tolist() == list(channel.values)
        default = QUALITY_NONE if channel.default_quality is None else channel.default_quality
        assert rows.raw_quality.tolist() == [default if q is None else q for q in channel.quality]
    assert {rt for m, rt in pipe.store.readings.series() if m == spec.meter} == {
        ReadingType(*c.rt) for c in spec.channels
    }
    assert reference(body).rows == {
        (c.rt, s): (spec.interval_s, v, q)
        for c in spec.channels
        for s, v, q in zip(
            spec.starts, c.values, [rows_quality(c, i) for i in range(n)], strict=True
        )
    }
    # the utility-file extraction reads the same series, and the local time
    extraction = extract_series(parse_upload(body))
    assert extraction.rejected == []
    got = {
        s.batch.reading_type: (
            s.batch.start_s.tolist(),
            s.batch.value.tolist(),
            [QUALITY_NONE] * n if s.batch.quality is None else s.batch.quality.tolist(),
            s.local_time,
        )
        for s in extraction.series
    }
    assert got == {
        ReadingType(*c.rt): (
            list(spec.starts),
            list(c.values),
            [rows_quality(c, i) for i in range(n)],
            spec.local_time,
        )
        for c in spec.channels
    }


def rows_quality(channel: ChannelSpec, i: int) -> int:
    code = channel.quality[i]
    if code is not None:
        return code
    return QUALITY_NONE if channel.default_quality is None else channel.default_quality


EncoderUpload = tuple[str, int, np.ndarray, list[Channel], LocalTimeSpec | None]


@st.composite
def encoder_uploads(draw: st.DrawFn) -> EncoderUpload:
    n = draw(st.integers(1, 20))
    interval = draw(st.sampled_from([60, 900, 3600]))
    starts = draw(st.integers(0, 2**33)) + interval * np.arange(n)
    specs = draw(
        st.lists(
            st.builds(
                ReadingTypeSpec,
                uom=codes("UnitSymbolKind"),
                power_of_ten_multiplier=codes("UnitMultiplierKind"),
                interval_length_s=st.just(interval),
                flow_direction=codes("FlowDirectionKind"),
                default_quality=st.one_of(st.none(), codes("QualityOfReading")),
            ),
            min_size=1,
            max_size=3,
            unique_by=lambda s: s.xml_parts[1],
        )
    )
    channels = [
        Channel(
            spec,
            np.array(draw(st.lists(st.integers(-(2**47), 2**47 - 1), min_size=n, max_size=n))),
            draw(
                st.one_of(
                    st.none(),
                    st.lists(
                        st.sampled_from([-1, *sorted(CODE_TABLES["QualityOfReading"])]),
                        min_size=n,
                        max_size=n,
                    ).map(np.array),
                )
            ),
        )
        for spec in specs
    ]
    zone = draw(st.sampled_from([None, "America/New_York", "Europe/Berlin", "UTC"]))
    local_time = None if zone is None else LocalTimeSpec.for_zone(zone)
    meter = f"enc{next(_COUNTER)}"
    return meter, draw(st.integers(0, 2**40)), starts, channels, local_time


@PROPERTY_SETTINGS
@given(upload=encoder_uploads())
def test_meter_encoder_uploads_round_trip_exactly(pipe: Pipeline, upload: EncoderUpload) -> None:
    """The twin's own encoder: values, starts, reading types, qualities and local time."""
    meter, seq, starts, channels, local_time = upload
    body = encode_meter_upload(meter, seq, starts, channels, 1_700_000_000, local_time)
    outcome = pipe.handle(body)
    assert outcome.accepted, outcome.reason
    assert outcome.inserted == len(starts) * len(channels)
    for channel in channels:
        spec = channel.reading_type
        rt = ReadingType(
            spec.uom, spec.power_of_ten_multiplier, spec.interval_length_s, spec.flow_direction,
            spec.kind, spec.accumulation_behaviour, spec.commodity, spec.phase or 0,
            spec.data_qualifier or 0,
        )  # fmt: skip
        rows = pipe.store.readings.read_series(meter, rt)
        assert rows.start_s.tolist() == starts.tolist()
        assert rows.raw_value.tolist() == channel.values.tolist()
        quality = np.full(len(starts), -1) if channel.quality is None else channel.quality.copy()
        if spec.default_quality is not None:
            quality[quality == -1] = spec.default_quality
        assert rows.raw_quality.tolist() == quality.tolist()
    [local] = {s.local_time for s in extract_series(parse_upload(body)).series}
    if local_time is None:
        assert local is None
    else:
        assert local == LocalTime(
            local_time.tz_offset_s, local_time.dst_offset_s, local_time.dst_start_rule,
            local_time.dst_end_rule,
        )  # fmt: skip


# --- (b) mutations ------------------------------------------------------------------------

NUMERIC_TAGS = (
    "start", "duration", "value", "quality", "uom", "powerOfTenMultiplier",
    "intervalLength", "flowDirection", "kind", "defaultQuality", "tzOffset",
)  # fmt: skip
NON_NUMERIC = [
    "", "abc", "1.5", "0x10", "1e3", "--1", "-", "NaN", "+7", " 12 ", "\t-3\n", "9" * 25,
    "1 2", "12a",
]  # fmt: skip
PYTHON_ONLY_NUMBERS = ["1_000", "\u0661\u0662", "\uff11\uff12", "\u00a012"]
HUGE = [
    2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30, -1, 0, 2**32 - 1, 2**32, 2**16,
    -(2**15) - 1, 253_402_300_800,
]  # fmt: skip

TREE_MUTATIONS = [
    "duplicate_entry", "reorder_entries", "duplicate_block", "reorder_readings",
    "duplicate_reading", "duplicate_reading_new_value", "wrong_multiplier", "remove_link",
    "non_numeric", "huge_number", "remove_element", "duplicate_element", "move_value",
    "change_href", "change_feed_id",
]  # fmt: skip
BYTE_MUTATIONS = ["none", "truncate", "insert_garbage", "overwrite_garbage"]


def _pick(draw: st.DrawFn, items: Sequence[etree._Element]) -> etree._Element | None:
    return draw(st.sampled_from(list(items))) if items else None


def mutate_tree(draw: st.DrawFn, root: etree._Element, kind: str) -> None:
    entries = list(root.iterchildren(A + "entry"))
    blocks = list(root.iter(E + "IntervalBlock"))
    readings = list(root.iter(E + "IntervalReading"))
    if kind == "duplicate_entry" and entries:
        entry = _pick(draw, entries)
        assert entry is not None
        root.insert(draw(st.integers(0, len(root))), copy.deepcopy(entry))
    elif kind == "reorder_entries" and entries:
        for entry in entries:
            root.remove(entry)
        for entry in draw(st.permutations(entries)):
            root.append(entry)
    elif kind == "duplicate_block" and blocks:
        block = _pick(draw, blocks)
        assert block is not None
        entry = _entry(block)
        entry.addnext(copy.deepcopy(entry))
    elif kind == "reorder_readings" and blocks:
        block = _pick(draw, blocks)
        assert block is not None
        children = list(block.iterchildren(E + "IntervalReading"))
        for child in children:
            block.remove(child)
        for child in draw(st.permutations(children)):
            block.append(child)
    elif kind in ("duplicate_reading", "duplicate_reading_new_value") and readings:
        reading = _pick(draw, readings)
        assert reading is not None
        twin = copy.deepcopy(reading)
        if kind == "duplicate_reading_new_value":
            for value in twin.iter(E + "value"):
                value.text = str(draw(st.integers(*INT64)))
        reading.addnext(twin)
    elif kind == "wrong_multiplier":
        for rt in root.iter(E + "ReadingType"):
            if draw(st.booleans()):
                p10 = rt.find(E + "powerOfTenMultiplier")
                if p10 is None:
                    p10 = etree.SubElement(rt, E + "powerOfTenMultiplier")
                p10.text = str(draw(st.one_of(st.integers(-20, 20), st.integers(-40_000, 40_000))))
    elif kind == "remove_link":
        link = _pick(draw, list(root.iter(A + "link")))
        if link is not None:
            link.getparent().remove(link)  # type: ignore[union-attr]
    elif kind in ("non_numeric", "huge_number"):
        numeric = [el for tag in NUMERIC_TAGS for el in root.iter(E + tag)]
        element = _pick(draw, numeric)
        if element is not None:
            element.text = (
                draw(st.sampled_from(NON_NUMERIC + PYTHON_ONLY_NUMBERS))
                if kind == "non_numeric"
                else str(draw(st.sampled_from(HUGE)))
            )
    elif kind in ("remove_element", "duplicate_element"):
        element = _pick(draw, [el for el in root.iter() if el is not root])
        if element is not None:
            if kind == "remove_element":
                element.getparent().remove(element)  # type: ignore[union-attr]
            else:
                element.addnext(copy.deepcopy(element))
    elif kind == "move_value" and len(readings) >= 2:
        source, target = draw(st.permutations(readings))[:2]
        moved = source.find(E + "value")
        if moved is not None:
            target.append(moved)  # target now has two values, source none
    elif kind == "change_href":
        link = _pick(draw, list(root.iter(A + "link")))
        if link is not None:
            link.set("href", draw(st.sampled_from(["", " ", "/x", link.get("href", "") + "/"])))
    elif kind == "change_feed_id":
        feed_id = root.find(A + "id")
        if feed_id is not None:
            feed_id.text = draw(
                st.sampled_from(
                    [
                        "urn:imdc:upload:m:",
                        "urn:imdc:upload::5",
                        "urn:uuid:1",
                        "",
                        "urn:imdc:upload:a:b:7",
                    ]
                )
            )


@st.composite
def mutated_uploads(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    spec = draw(upload_specs(max_readings=8))
    body = build_upload(unique(spec))
    byte_kind = draw(st.sampled_from(BYTE_MUTATIONS))
    min_tree = 1 if byte_kind == "none" else 0  # always at least one mutation
    kinds = draw(st.lists(st.sampled_from(TREE_MUTATIONS), min_size=min_tree, max_size=3))
    root = etree.fromstring(body)
    for kind in kinds:
        mutate_tree(draw, root, kind)
    if kinds:
        body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if byte_kind == "truncate":
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif byte_kind in ("insert_garbage", "overwrite_garbage"):
        at = draw(st.integers(0, len(body)))
        garbage = draw(st.binary(min_size=1, max_size=8))
        tail = body[at + len(garbage) :] if byte_kind == "overwrite_garbage" else body[at:]
        body = body[:at] + garbage + tail
    if byte_kind != "none":
        kinds.append(byte_kind)
    return body, kinds


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutated=mutated_uploads())
def test_mutations_are_stored_exactly_or_rejected_whole(
    pipe: Pipeline, ingest_store: tuple[Store, Path], mutated: tuple[bytes, list[str]]
) -> None:
    body, kinds = mutated
    result = check_upload(pipe, body)
    event(f"pipeline {result}")
    for kind in kinds:
        event(f"{kind}: {result}")
    check_ingest(*ingest_store, body)


VALIDITY_PRESERVING = [
    "reorder_entries",
    "duplicate_block",
    "reorder_readings",
    "duplicate_reading",
]


@PROPERTY_SETTINGS
@given(spec=upload_specs(max_readings=8), data=st.data())
def test_validity_preserving_mutations_are_accepted(
    pipe: Pipeline, spec: UploadSpec, data: st.DataObject
) -> None:
    """Reordered entries or readings and repeated blocks or readings keep a document valid:
    accepted, with the repeats counted as duplicates and nothing stored twice."""
    root = etree.fromstring(build_upload(unique(spec)))
    for kind in data.draw(st.lists(st.sampled_from(VALIDITY_PRESERVING), min_size=1, max_size=3)):
        mutate_tree(data.draw, root, kind)  # type: ignore[arg-type]
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    assert isinstance(reference(body), Rows)
    assert check_upload(pipe, body) == "accepted"


# --- deviations of pipeline.process found by these properties, now fixed -----------------


@pytest.mark.parametrize("text", PYTHON_ONLY_NUMBERS)
def test_process_rejects_numbers_xml_schema_does_not_allow(pipe: Pipeline, text: str) -> None:
    channel = ChannelSpec((72, 0, 900, 1, 12, 4, 1, 0, 0), None, (5,), (None,))
    spec = UploadSpec("v", 1, (1_700_000_000,), (channel,), None, 1)
    body = build_upload(unique(spec))
    body = body.replace(b"<value>5</value>", f"<value>{text}</value>".encode())
    outcome = pipe.handle(body)
    assert not outcome.accepted
    assert outcome.reason_code == "non_integer", outcome.reason


#: The series of `one_channel`.
ENERGY_60_S = ReadingType(72, 0, 60, 1, 12, 4, 1)


def one_channel(values_xml: str) -> bytes:
    """A valid one-channel upload whose IntervalBlock readings are replaced by `values_xml`."""
    spec = UploadSpec(
        "v", 1, (0, 60), (ChannelSpec((72, 0, 60, 1, 12, 4, 1, 0, 0), None, (1, 2), (None, None)),),
        None, 1,
    )  # fmt: skip
    body = build_upload(unique(spec)).decode()
    head, _, rest = body.partition("<IntervalReading>")
    _, _, tail = rest.rpartition("</IntervalReading>")
    return (head + values_xml + tail).encode()


MISALIGNED_VALUES = (
    "<IntervalReading><timePeriod><duration>60</duration><start>0</start></timePeriod>"
    "</IntervalReading><IntervalReading><timePeriod><duration>60</duration><start>60</start>"
    "</timePeriod><value>7</value><value>8</value></IntervalReading>"
)
MISALIGNED_QUALITY = (
    "<IntervalReading><ReadingQuality><quality>8</quality><quality>9</quality></ReadingQuality>"
    "<timePeriod><duration>60</duration><start>0</start></timePeriod><value>1</value>"
    "</IntervalReading><IntervalReading><ReadingQuality/><timePeriod><duration>60</duration>"
    "<start>60</start></timePeriod><value>2</value></IntervalReading>"
)


def test_process_rejects_a_reading_without_its_value(pipe: Pipeline) -> None:
    body = one_channel(MISALIGNED_VALUES)
    with pytest.raises(MustReject):
        reference(body)
    outcome = pipe.handle(body)  # it stored (0, 7) and (60, 8) when aligned by position
    assert not outcome.accepted
    assert outcome.reason is not None
    assert outcome.reason.startswith("mismatched_counts: IntervalReading #1 has 1"), outcome.reason


def test_process_keeps_quality_codes_with_their_reading(pipe: Pipeline) -> None:
    body = one_channel(MISALIGNED_QUALITY)
    outcome = pipe.handle(body)
    assert outcome.accepted, outcome.reason  # reading 1 is mixed (13), reading 2 has none
    rows = pipe.store.readings.read_series(outcome.meter_id or "", ENERGY_60_S)
    assert rows.raw_quality.tolist() == [MIXED, QUALITY_NONE]  # by position it was [8, 9]


def test_ingest_rejects_misaligned_readings_alone(tmp_path: Path) -> None:
    """The utility-file path (pipeline.process.greenbutton) keeps every field with its reading:
    the reading without a value and the one with two are rejected, nothing misaligned."""
    path = tmp_path / "f.xml"
    path.write_bytes(one_channel(MISALIGNED_VALUES + espi_feeds.interval_reading(120, 60, 5)))
    with Store(tmp_path / "db.sqlite") as store:
        report = ingest_file(path, store)
        [series] = report.series
        assert [r.reason.partition(":")[0] for r in report.rejected] == [
            "no_value", "ambiguous_reading",
        ]  # fmt: skip
        rows = store.readings.read_series(series.usage_point, ENERGY_60_S)
    assert list(zip(rows.start_s.tolist(), rows.raw_value.tolist(), strict=True)) == [(120, 5)]


def test_ingest_keeps_quality_codes_with_their_reading(tmp_path: Path) -> None:
    """The utility-file path: reading 1 has two codes (mixed, 13), reading 2 none."""
    path = tmp_path / "f.xml"
    path.write_bytes(one_channel(MISALIGNED_QUALITY))
    with Store(tmp_path / "db.sqlite") as store:
        report = ingest_file(path, store)
        assert report.status == "ok", report.rejected
        rows = store.readings.read_series(report.series[0].usage_point, ENERGY_60_S)
    assert rows.raw_quality.tolist() == [MIXED, QUALITY_NONE]
