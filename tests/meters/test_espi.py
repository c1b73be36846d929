"""ESPI upload encoder (and the energy quantisation that feeds it), against the ESPI XSD, the
real Green Button sample files and the IANA tz database."""

from __future__ import annotations

import calendar
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from meters.energy import INT48_MAX, INT48_MIN, interval_energy_wh, quantise_register
from meters.espi import (
    CODE_TABLES,
    DST_RULE_DISABLED,
    NO_QUALITY,
    QUALITY_OF_READING,
    RESOURCE_BASE,
    SERVICE_KIND,
    UUID_NAMESPACE,
    ZONE_POSIX_TZ,
    Channel,
    DstRule,
    LocalTimeSpec,
    ReadingTypeSpec,
)
from meters.espi_upload import encode_meter_upload, encode_upload, meter_upload_size
from pipeline.espi.namespaces import ATOM_NS as A
from pipeline.espi.namespaces import ESPI_NS as E

NS = {"a": A, "e": E}  # prefixes of this file's paths
_Strings = Callable[[etree._Element], list[str]]


def xpath(expr: str) -> _Strings:
    return cast(_Strings, etree.XPath(expr, namespaces=NS, smart_strings=False))


READING_STARTS = xpath("//e:IntervalReading/e:timePeriod/e:start/text()")
READING_VALUES = xpath("//e:IntervalReading/e:value/text()")
PUBLISHED = xpath("//a:entry/a:published/text()")
ENTRY_TITLES = xpath("//a:entry/a:title/text()")
T0 = 1_782_000_000  # 2026-06-21T00:00:00Z

#: ReadingType element -> ReadingTypeSpec field (written out here, not taken from the module).
RT_FIELDS = {
    "accumulationBehaviour": "accumulation_behaviour", "commodity": "commodity",
    "consumptionTier": "consumption_tier", "currency": "currency",
    "dataQualifier": "data_qualifier", "defaultQuality": "default_quality",
    "flowDirection": "flow_direction", "intervalLength": "interval_length_s", "kind": "kind",
    "phase": "phase", "powerOfTenMultiplier": "power_of_ten_multiplier",
    "timeAttribute": "time_attribute", "tou": "tou", "uom": "uom", "cpp": "cpp",
    "interharmonic": "interharmonic", "measuringPeriod": "measuring_period",
    "argument": "argument",
}  # fmt: skip

# Typical channels (docs/upload-format.md; codes from espiDerived.xsd).
DELIVERED = ReadingTypeSpec(interval_length_s=900, power_of_ten_multiplier=-3)
RECEIVED = ReadingTypeSpec(interval_length_s=900, power_of_ten_multiplier=-3, flow_direction=19)
VOLTAGE = ReadingTypeSpec(
    uom=29, kind=54, accumulation_behaviour=12, flow_direction=0, interval_length_s=900,
    power_of_ten_multiplier=-1,
)  # fmt: skip
CURRENT = ReadingTypeSpec(
    uom=5, kind=4, accumulation_behaviour=12, flow_direction=0, interval_length_s=900,
    power_of_ten_multiplier=-3,
)  # fmt: skip
POWER_FACTOR = ReadingTypeSpec(
    uom=65, kind=38, accumulation_behaviour=12, flow_direction=0, interval_length_s=900,
    power_of_ten_multiplier=-3,
)  # fmt: skip
#: The ReadingType of PG&E's hourly net-metering feed (pge_electric_hourly_netmetering_redacted).
PGE_LIKE = ReadingTypeSpec(
    interval_length_s=3600, power_of_ten_multiplier=-3, data_qualifier=12, default_quality=17,
    time_attribute=0, measuring_period=7,
)  # fmt: skip


# ------------------------------------------------------------------------------------------
# Reading an upload back by following its links (independent of the encoder's code).
# ------------------------------------------------------------------------------------------


@dataclass
class ParsedChannel:
    k: int
    reading_type: ReadingTypeSpec
    interval: tuple[int, int]  # IntervalBlock interval (start, duration)
    starts: np.ndarray
    durations: np.ndarray
    values: np.ndarray
    quality: np.ndarray  # NO_QUALITY where a reading carries no ReadingQuality


@dataclass
class ParsedUpload:
    feed_id: str
    service_kind: int
    local_time: dict[str, str] | None
    channels: list[ParsedChannel]


def _links(entry: etree._Element, rel: str) -> list[str]:
    return [link.get("href") or "" for link in entry.findall(f"a:link[@rel='{rel}']", NS)]


def _resource(entry: etree._Element) -> etree._Element:
    content = entry.find("a:content", NS)
    assert content is not None and len(content) == 1
    return content[0]


def _reading_type(element: etree._Element) -> ReadingTypeSpec:
    assert element.tag == f"{{{E}}}ReadingType"
    kwargs: dict[str, Any] = {}
    for child in element:
        name = RT_FIELDS[etree.QName(child).localname]
        if len(child):
            kwargs[name] = (
                int(child.findtext("e:numerator", namespaces=NS) or ""),
                int(child.findtext("e:denominator", namespaces=NS) or ""),
            )
        else:
            kwargs[name] = int(child.text or "")
    return ReadingTypeSpec(**kwargs)


def follow_links(doc: bytes) -> ParsedUpload:
    """Parse an upload as a consumer would: UsagePoint -> MeterReadings -> their ReadingType
    and IntervalBlocks, by the Atom links (asserting that every link resolves)."""
    root = etree.fromstring(doc)
    entries = root.findall("a:entry", NS)
    by_self = {_links(e, "self")[0]: e for e in entries}
    assert len(by_self) == len(entries), "self links must be unique"
    usage_points = [e for e in entries if _resource(e).tag == f"{{{E}}}UsagePoint"]
    assert len(usage_points) == 1
    up = usage_points[0]
    up_self = _links(up, "self")[0]
    mr_collection, *others = _links(up, "related")
    assert mr_collection == f"{up_self}/MeterReading"
    local_time = None
    for href in others:
        ltp = _resource(by_self[href])
        assert ltp.tag == f"{{{E}}}LocalTimeParameters"
        local_time = {etree.QName(c).localname: c.text or "" for c in ltp}
    channels = []
    for mr in (e for e in entries if _links(e, "up") == [mr_collection]):
        assert _resource(mr).tag == f"{{{E}}}MeterReading"
        mr_self = _links(mr, "self")[0]
        block_collection, rt_href = _links(mr, "related")
        assert block_collection == f"{mr_self}/IntervalBlock"
        spec = _reading_type(_resource(by_self[rt_href]))
        blocks = [_resource(e) for e in entries if _links(e, "up") == [block_collection]]
        assert len(blocks) == 1
        block = blocks[0]
        readings = block.findall("e:IntervalReading", NS)

        def column(path: str, rs: list[etree._Element] = readings) -> np.ndarray:
            return np.array([int(r.findtext(path, namespaces=NS) or "") for r in rs], np.int64)

        quality = [
            [int(q.text or "") for q in r.findall("e:ReadingQuality/e:quality", NS)]
            for r in readings
        ]
        assert all(len(q) <= 1 for q in quality)
        channels.append(
            ParsedChannel(
                k=int(mr_self.rpartition("/")[2]),
                reading_type=spec,
                interval=(
                    int(block.findtext("e:interval/e:start", namespaces=NS) or ""),
                    int(block.findtext("e:interval/e:duration", namespaces=NS) or ""),
                ),
                starts=column("e:timePeriod/e:start"),
                durations=column("e:timePeriod/e:duration"),
                values=column("e:value"),
                quality=np.array([q[0] if q else NO_QUALITY for q in quality], np.int64),
            )
        )
    return ParsedUpload(
        feed_id=root.findtext("a:id", namespaces=NS) or "",
        service_kind=int(_resource(up).findtext("e:ServiceCategory/e:kind", namespaces=NS) or ""),
        local_time=local_time,
        channels=channels,
    )


def assert_round_trip(
    doc: bytes,
    meter_id: str,
    seq: int,
    starts: np.ndarray,
    channels: list[Channel],
    local_time: LocalTimeSpec | None,
    service_kind: int = 0,
) -> None:
    parsed = follow_links(doc)
    assert parsed.feed_id == f"urn:imdc:upload:{meter_id}:{seq}"
    assert parsed.service_kind == service_kind
    assert [c.k for c in parsed.channels] == list(range(1, len(channels) + 1))
    for got, want in zip(parsed.channels, channels, strict=True):
        assert got.reading_type == want.reading_type
        np.testing.assert_array_equal(got.starts, starts)
        np.testing.assert_array_equal(got.values, want.values)
        duration = want.reading_type.interval_length_s
        np.testing.assert_array_equal(got.durations, np.full(len(starts), duration))
        assert got.interval == (starts.min(), starts.max() + duration - starts.min())
        want_quality = np.full(len(starts), NO_QUALITY) if want.quality is None else want.quality
        np.testing.assert_array_equal(got.quality, want_quality)
    if local_time is None:
        assert parsed.local_time is None
    else:
        assert parsed.local_time == {
            "dstEndRule": f"{local_time.dst_end_rule:08X}",
            "dstOffset": str(local_time.dst_offset_s),
            "dstStartRule": f"{local_time.dst_start_rule:08X}",
            "tzOffset": str(local_time.tz_offset_s),
        }


GOOD_1 = Channel(ReadingTypeSpec(), np.array([1]))


def upload(
    n: int, spec: ReadingTypeSpec | None = None, seq: int = 3
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A single-channel upload of n readings with random values, and its starts and values."""
    spec = spec or ReadingTypeSpec()
    rng = np.random.default_rng(n)
    starts = T0 + spec.interval_length_s * np.arange(n, dtype=np.int64)
    values = rng.integers(-(10**9), 10**12, n, dtype=np.int64)
    return encode_upload("pv-site_01.m", seq, spec, starts, values, T0 + 7200), starts, values


# ------------------------------------------------------------------------------------------
# Schema validity and round trips of every variant.
# ------------------------------------------------------------------------------------------

STARTS_96 = T0 + 900 * np.arange(96, dtype=np.int64)
_RNG = np.random.default_rng(20260621)
ENERGY = _RNG.integers(0, 10**7, 96, dtype=np.int64)
EXPORT = _RNG.integers(0, 10**7, 96, dtype=np.int64)
QUALITY = _RNG.choice([NO_QUALITY, 0, 7, 8, 9, 14, 17, 19], 96).astype(np.int64)
NEW_YORK = "America/New_York"
EXTREMES = np.resize(np.array([INT48_MIN, INT48_MAX, 0, -1, 1], np.int64), 96)

GBA_LIKE = ReadingTypeSpec(
    interval_length_s=900, data_qualifier=12, time_attribute=0, currency=840, phase=769,
    interharmonic=(600, 800), argument=(1, 2), consumption_tier=1, tou=2, cpp=0,
)  # fmt: skip
PGE_LIKE_900 = ReadingTypeSpec(
    interval_length_s=900, power_of_ten_multiplier=-3, data_qualifier=12, default_quality=17,
    time_attribute=0, measuring_period=2, flow_direction=19,
)  # fmt: skip

VARIANTS: dict[str, tuple[list[Channel], LocalTimeSpec | None]] = {
    "single channel": ([Channel(DELIVERED, ENERGY)], None),
    "generation only (flow 19)": ([Channel(RECEIVED, EXPORT)], None),
    "net metering (flow 1 + 19)": (
        [Channel(DELIVERED, ENERGY), Channel(RECEIVED, EXPORT)],
        LocalTimeSpec.for_zone("America/Los_Angeles"),
    ),
    "voltage, current, power factor": (
        [
            Channel(DELIVERED, ENERGY),
            Channel(VOLTAGE, 2300 + ENERGY % 100),
            Channel(CURRENT, ENERGY % 50_000),
            Channel(POWER_FACTOR, 900 + ENERGY % 100),
        ],
        None,
    ),
    "local time New York": ([Channel(DELIVERED, ENERGY)], LocalTimeSpec.for_zone(NEW_YORK)),
    "local time Berlin": ([Channel(DELIVERED, ENERGY)], LocalTimeSpec.for_zone("Europe/Berlin")),
    "local time UTC (no DST)": ([Channel(DELIVERED, ENERGY)], LocalTimeSpec.for_zone("UTC")),
    "reading quality": (
        [Channel(DELIVERED, ENERGY, QUALITY), Channel(RECEIVED, EXPORT, np.full(96, 17))],
        LocalTimeSpec.for_zone("America/Denver"),
    ),
    "extreme Int48 values": (
        [Channel(DELIVERED, EXTREMES), Channel(RECEIVED, -EXTREMES - 1)],
        None,
    ),
    "multipliers": (
        [
            Channel(ReadingTypeSpec(interval_length_s=900, power_of_ten_multiplier=m), ENERGY)
            for m in (-12, -9, -6, -3, -2, -1, 0, 1, 2, 3, 6, 9, 12)
        ],
        None,
    ),
    "optional ReadingType fields (PG&E- and GBA-like)": (
        [Channel(GBA_LIKE, ENERGY), Channel(PGE_LIKE_900, EXPORT)],
        LocalTimeSpec.for_zone(NEW_YORK),
    ),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_is_valid_espi_and_round_trips(
    espi_schema: etree.XMLSchema, variant: str
) -> None:
    channels, local_time = VARIANTS[variant]
    doc = encode_meter_upload("pv-site_01.m", 42, STARTS_96, channels, T0 + 7200, local_time)
    assert doc.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="')
    espi_schema.assertValid(etree.fromstring(doc))
    assert_round_trip(doc, "pv-site_01.m", 42, STARTS_96, channels, local_time)


@pytest.mark.parametrize("n", [1, 15, 1440])
@pytest.mark.parametrize("spec", [ReadingTypeSpec(), RECEIVED, PGE_LIKE])
def test_single_channel_uploads_are_valid_espi(
    espi_schema: etree.XMLSchema, n: int, spec: ReadingTypeSpec
) -> None:
    doc, starts, values = upload(n, spec)
    espi_schema.assertValid(etree.fromstring(doc))
    assert_round_trip(doc, "pv-site_01.m", 3, starts, [Channel(spec, values)], None)


def test_gas_service_kind_and_entry_layout(espi_schema: etree.XMLSchema) -> None:
    therm = ReadingTypeSpec(
        uom=169, commodity=7, power_of_ten_multiplier=-6, interval_length_s=86400
    )
    starts = T0 + 86400 * np.arange(3, dtype=np.int64)
    channels = [Channel(therm, np.array([1_036_595, 0, 7]))]
    ny = LocalTimeSpec.for_zone("America/New_York")
    doc = encode_meter_upload("gas-7", 9, starts, channels, T0, ny, service_kind=1)
    root = etree.fromstring(doc)
    espi_schema.assertValid(root)
    assert_round_trip(doc, "gas-7", 9, starts, channels, ny, service_kind=1)
    rb, up = RESOURCE_BASE, f"{RESOURCE_BASE}/UsagePoint/gas-7"
    mr = f"{up}/MeterReading/1"
    layout = [
        (_resource(e).tag.rpartition("}")[2], {r: _links(e, r) for r in ("self", "up", "related")})
        for e in root.findall("a:entry", NS)
    ]
    assert layout == [
        ("UsagePoint", {"self": [up], "up": [f"{rb}/UsagePoint"],
                        "related": [f"{up}/MeterReading", f"{rb}/LocalTimeParameters/gas-7"]}),
        ("LocalTimeParameters", {"self": [f"{rb}/LocalTimeParameters/gas-7"],
                                 "up": [f"{rb}/LocalTimeParameters"], "related": []}),
        ("MeterReading", {"self": [mr], "up": [f"{up}/MeterReading"],
                          "related": [f"{mr}/IntervalBlock", f"{rb}/ReadingType/gas-7/1"]}),
        ("ReadingType", {"self": [f"{rb}/ReadingType/gas-7/1"], "up": [f"{rb}/ReadingType"],
                         "related": []}),
        ("IntervalBlock", {"self": [f"{mr}/IntervalBlock/9"], "up": [f"{mr}/IntervalBlock"],
                           "related": []}),
    ]  # fmt: skip


def test_encode_upload_is_the_single_channel_case() -> None:
    spec = ReadingTypeSpec(flow_direction=19, interval_length_s=900)
    starts = T0 + 900 * np.arange(15, dtype=np.int64)
    values = np.arange(15, dtype=np.int64) * 1000
    one = encode_upload("m1", 5, spec, starts, values, T0)
    assert one == encode_meter_upload("m1", 5, starts, [Channel(spec, values)], T0)
    gas = ReadingTypeSpec(uom=169, commodity=7, service_kind=1)
    body = encode_upload("m1", 5, gas, T0 + 60 * np.arange(2), np.array([1, 2]), T0)
    assert follow_links(body).service_kind == 1


def test_round_trip_details() -> None:
    doc, starts, values = upload(96, RECEIVED, seq=42)
    root = etree.fromstring(doc)
    np.testing.assert_array_equal(np.array(READING_STARTS(root), dtype=np.int64), starts)
    np.testing.assert_array_equal(np.array(READING_VALUES(root), dtype=np.int64), values)
    assert root.findtext("a:updated", namespaces=NS) == "2026-06-21T02:00:00Z"
    assert PUBLISHED(root) == ["2026-06-21T02:00:00Z"] * 4
    rt = root.find(".//e:ReadingType", NS)
    assert rt is not None
    got = {etree.QName(child).localname: int(child.text or "") for child in rt}
    assert got == {
        "accumulationBehaviour": 4, "commodity": 1, "flowDirection": 19, "intervalLength": 900,
        "kind": 12, "powerOfTenMultiplier": -3, "uom": 72,
    }  # fmt: skip
    assert ENTRY_TITLES(root)[1] == "energy reverse (Wh)"


def test_same_xpaths_read_a_real_green_button_file(greenbutton_dir: Path) -> None:
    root = etree.parse(str(greenbutton_dir / "nist_15minLP_15Days.xml")).getroot()
    starts, values = READING_STARTS(root), READING_VALUES(root)
    assert len(starts) == len(values) > 1000
    assert int(starts[1]) - int(starts[0]) == 900 and int(values[0]) == 324


ZONES = ["America/New_York", "America/Denver", "America/Los_Angeles", "Europe/Berlin", "UTC"]


@st.composite
def reading_types(draw: st.DrawFn, interval_length_s: int) -> ReadingTypeSpec:
    def code(table: str) -> st.SearchStrategy[int]:
        return st.sampled_from(sorted(CODE_TABLES[table]))

    def optional(table: str) -> st.SearchStrategy[int | None]:
        return st.none() | code(table)

    return ReadingTypeSpec(
        uom=draw(code("UnitSymbolKind")),
        power_of_ten_multiplier=draw(code("UnitMultiplierKind")),
        interval_length_s=interval_length_s,
        flow_direction=draw(code("FlowDirectionKind")),
        accumulation_behaviour=draw(code("AccumulationKind")),
        commodity=draw(code("CommodityKind")),
        kind=draw(code("MeasurementKind")),
        data_qualifier=draw(optional("DataQualifierKind")),
        default_quality=draw(optional("QualityOfReading")),
        phase=draw(optional("PhaseCodeKind")),
        measuring_period=draw(optional("TimeAttributeKind")),
        tou=draw(st.none() | st.integers(-(2**15), 2**15 - 1)),
    )


@st.composite
def uploads(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 40))
    interval_length_s = draw(st.sampled_from([60, 300, 900, 3600, 86400]))
    gaps = draw(st.lists(st.integers(1, 3), min_size=n - 1, max_size=n - 1))
    starts = draw(st.integers(0, 2 * T0)) + interval_length_s * np.cumsum([0, *gaps])
    specs = draw(
        st.lists(
            reading_types(interval_length_s),
            min_size=1,
            max_size=4,
            unique_by=lambda spec: spec.xml_parts[1],
        )
    )
    int48 = st.integers(INT48_MIN, INT48_MAX)
    codes = st.sampled_from([NO_QUALITY, *sorted(QUALITY_OF_READING)])
    channels = [
        Channel(
            spec,
            np.array(draw(st.lists(int48, min_size=n, max_size=n)), np.int64),
            draw(st.none() | st.lists(codes, min_size=n, max_size=n).map(np.array)),
        )
        for spec in specs
    ]
    return {
        "meter_id": draw(st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)),
        "seq": draw(st.integers(0, 2**40)),
        "starts": starts.astype(np.int64),
        "channels": channels,
        "local_time": draw(st.none() | st.sampled_from(ZONES).map(LocalTimeSpec.for_zone)),
        "service_kind": draw(st.sampled_from(sorted(SERVICE_KIND))),
    }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uploads())
def test_round_trip_property(espi_schema: etree.XMLSchema, case: dict[str, Any]) -> None:
    doc = encode_meter_upload(
        case["meter_id"], case["seq"], case["starts"], case["channels"], T0,
        case["local_time"], case["service_kind"],
    )  # fmt: skip
    espi_schema.assertValid(etree.fromstring(doc))
    assert_round_trip(
        doc, case["meter_id"], case["seq"], case["starts"], case["channels"],
        case["local_time"], case["service_kind"],
    )  # fmt: skip


# ------------------------------------------------------------------------------------------
# The size of an upload without writing it.
# ------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    uploads(),
    st.integers(0, 2**63 - 1),
    st.integers(-62_135_596_800, 253_402_300_799),  # 0001-01-01 to 9999-12-31
    st.sampled_from([np.int64, np.int32, np.uint32, np.uint64]),
)
def test_upload_size_is_the_length_of_the_upload(
    case: dict[str, Any], seq: int, created_epoch_s: int, values_dtype: type
) -> None:
    """Exact for any meter, sequence number (to 19 digits), creation time (years 1 to 9999,
    written with as many digits as they have), channels, quality and local time, and values
    of any integer dtype that holds them."""
    channels = []
    for channel in case["channels"]:
        values = channel.values
        if np.can_cast(np.min_scalar_type(values.min()), values_dtype) and np.can_cast(
            np.min_scalar_type(values.max()), values_dtype
        ):
            values = values.astype(values_dtype)
        channels.append(Channel(channel.reading_type, values, channel.quality))
    args = (
        case["meter_id"], seq, case["starts"], channels, created_epoch_s, case["local_time"],
        case["service_kind"],
    )  # fmt: skip
    assert meter_upload_size(*args) == len(encode_meter_upload(*args))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_upload_size_of_every_variant(name: str) -> None:
    channels, local_time = VARIANTS[name]
    for seq in (0, 9, 10, 99_999):
        for starts in (STARTS_96, STARTS_96 - 2 * T0):  # negative starts have a minus sign
            args = ("pv-site_01.m", seq, starts, channels, T0, local_time)
            assert meter_upload_size(*args) == len(encode_meter_upload(*args))


@pytest.mark.parametrize(
    "created_epoch_s",
    [-62_135_596_800, -30_610_224_001, -30_610_224_000, 0, 253_402_300_799],
    ids=["0001-01-01", "0999-12-31 23:59:59", "1000-01-01", "1970-01-01", "9999-12-31 23:59:59"],
)
def test_upload_size_across_the_year_widths(created_epoch_s: int) -> None:
    """The creation time's width changes where the year gains its fourth digit."""
    channels, local_time = VARIANTS[sorted(VARIANTS)[0]]
    args = ("m1", 0, STARTS_96, channels, created_epoch_s, local_time)
    assert meter_upload_size(*args) == len(encode_meter_upload(*args))


# ------------------------------------------------------------------------------------------
# Determinism and ids.
# ------------------------------------------------------------------------------------------


def test_output_is_deterministic_and_ids_are_uuid5_of_self_links() -> None:
    channels, local_time = VARIANTS["reading quality"]
    a = encode_meter_upload("m1", 3, STARTS_96, channels, T0, local_time)
    b = encode_meter_upload(
        "m1", 3, STARTS_96.copy(), [Channel(c.reading_type, c.values.copy(), c.quality)
                                    for c in channels], T0, LocalTimeSpec.for_zone("America/Denver")
    )  # fmt: skip
    assert a == b
    c = encode_meter_upload("m1", 4, STARTS_96, channels, T0, local_time)

    def ids(doc: bytes) -> list[tuple[str, str]]:
        root = etree.fromstring(doc)
        return [
            (e.findtext("a:id", namespaces=NS) or "", _links(e, "self")[0])
            for e in root.findall("a:entry", NS)
        ]

    for entry_id, href in ids(a) + ids(c):
        assert entry_id == f"urn:uuid:{uuid.uuid5(UUID_NAMESPACE, href)}"
    assert len({i for i, _ in ids(a)}) == 8  # UsagePoint, LTP, 2 x (MR, RT, IB)
    changed = [i for i, (x, y) in enumerate(zip(ids(a), ids(c), strict=True)) if x != y]
    assert changed == [4, 7]  # only the IntervalBlocks are new per upload


# ------------------------------------------------------------------------------------------
# Code tables and validation.
# ------------------------------------------------------------------------------------------


def test_code_tables_equal_the_xsd_enumerations(greenbutton_dir: Path) -> None:
    xsd = etree.parse(str(greenbutton_dir.parent / "espi-schema" / "espiDerived.xsd"))
    xs = "{http://www.w3.org/2001/XMLSchema}"
    for type_name, table in CODE_TABLES.items():
        restriction = xsd.find(f"{xs}simpleType[@name='{type_name}']//{xs}restriction")
        assert restriction is not None, type_name
        expected = {
            int(e.get("value") or ""): (e.findtext(f".//{xs}appinfo") or "").strip()
            for e in restriction.findall(f"{xs}enumeration")
        }
        assert dict(table) == expected, type_name
        assert not any(c in name for name in table.values() for c in "<>&\"'"), type_name


def test_the_schema_is_lax_on_codes_but_the_encoder_is_not(espi_schema: etree.XMLSchema) -> None:
    """espiDerived.xsd declares UnitSymbolKind as a union with plain UInt16, so any 0..65535
    validates; ReadingTypeSpec only accepts the enumerated codes."""
    doc, _, _ = upload(3)
    assert espi_schema.validate(etree.fromstring(doc.replace(b"<uom>72<", b"<uom>999<")))
    with pytest.raises(ValueError, match=r"ReadingTypeSpec\.uom = 999 is not an ESPI UnitSymb"):
        ReadingTypeSpec(uom=999)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("uom", 999, "UnitSymbolKind"),
        ("uom", True, "must be an int code"),
        ("uom", 72.0, "must be an int code"),
        ("flow_direction", 6, "FlowDirectionKind"),
        ("flow_direction", -1, "FlowDirectionKind"),
        ("accumulation_behaviour", 5, "AccumulationKind"),
        ("commodity", 27, "CommodityKind"),
        ("kind", 1, "MeasurementKind"),
        ("power_of_ten_multiplier", -4, "UnitMultiplierKind"),
        ("interval_length_s", 0, "UInt32"),
        ("interval_length_s", 2**32, "UInt32"),
        ("data_qualifier", 1, "DataQualifierKind"),
        ("default_quality", 1, "QualityOfReading"),
        ("phase", 2, "PhaseCodeKind"),
        ("time_attribute", 1, "TimePeriodOfInterest"),
        ("measuring_period", 8, "TimeAttributeKind"),
        ("currency", 1, "Currency"),
        ("tou", 2**15, "Int16"),
        ("interharmonic", (1, 0), "denominator"),
        ("argument", (1.0, 2), "denominator"),
        ("service_kind", 10, "ServiceKind"),
    ],
)
def test_bad_reading_type_codes_are_rejected(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"ReadingTypeSpec.{field}.*{message}"):
        ReadingTypeSpec(**{field: value})


def test_schema_checks_the_espi_content(espi_schema: etree.XMLSchema) -> None:
    """atom:content is xs:any ##other with strict processing, so ESPI content is validated."""
    channels, local_time = VARIANTS["reading quality"]
    doc = encode_meter_upload("m1", 3, STARTS_96, channels, T0, local_time)
    first_value = READING_VALUES(etree.fromstring(doc))[0].encode()
    broken = [
        doc.replace(b"<value>" + first_value + b"</value>", b"<value>abc</value>", 1),
        doc.replace(b"<uom>72</uom>", b"<uom>72</uom><kind>12</kind>", 1),  # order
        doc.replace(b"<flowDirection>1<", b"<flowDirection>-1<", 1),  # not a UInt16
        doc.replace(b"<MeterReading xmlns", b"<MeterReadings xmlns", 1).replace(
            b"<MeterReading", b"<MeterReadings", 1),  # undeclared element
        doc.replace(b"<dstEndRule>B40E2000<", b"<dstEndRule>B40E20000<", 1),  # > 4 octets
        doc.replace(b"<tzOffset>", b"<dstOffset>0</dstOffset><tzOffset>", 1),
        doc.replace(b"<quality>17<", b"<quality>x<", 1),
        doc.replace(b"<value>", b"<value>140737488355329", 1),  # beyond the XSD's Int48
    ]  # fmt: skip
    for bad in broken:
        assert bad != doc
        assert not espi_schema.validate(etree.fromstring(bad))


@pytest.mark.parametrize(
    "meter_id", ["", "a b", "a<b", 'x"/><evil', "m\n", "métro", "x" * 65, "a&amp;b", None]
)
def test_unsafe_meter_ids_are_rejected(meter_id: str) -> None:
    with pytest.raises(ValueError, match="meter_id"):
        encode_upload(meter_id, 0, ReadingTypeSpec(), np.array([T0]), np.array([1]), T0)
    with pytest.raises(ValueError, match="meter_id"):
        encode_meter_upload(meter_id, 0, np.array([T0]), [GOOD_1], T0)
    with pytest.raises(ValueError, match="meter_id"):
        meter_upload_size(meter_id, 0, np.array([T0]), [GOOD_1], T0)


@pytest.mark.parametrize(
    ("starts", "values"),
    [
        (np.array([T0]), np.array([1.5])),  # float values are not register values
        (np.array([T0, T0 + 60]), np.array([1])),  # length mismatch
        (np.array([], dtype=np.int64), np.array([], dtype=np.int64)),
        (np.array([T0]), np.array([INT48_MAX + 1])),
        (np.array([T0]), np.array([INT48_MIN - 1])),
        (np.array([[T0]]), np.array([1])),
        (np.array([T0, T0 + 2**32]), np.array([1, 2])),  # spans more than a UInt32 duration
    ],
)
def test_bad_readings_are_rejected(starts: np.ndarray, values: np.ndarray) -> None:
    with pytest.raises(ValueError):
        encode_upload("m1", 0, ReadingTypeSpec(), starts, values, T0)
    with pytest.raises(ValueError):
        meter_upload_size("m1", 0, starts, [Channel(ReadingTypeSpec(), values)], T0)


GOOD = Channel(ReadingTypeSpec(), np.array([1, 2]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": []}, "at least one channel"),
        ({"channels": [GOOD, Channel(ReadingTypeSpec(), np.array([3, 4]))]}, "same ReadingType"),
        ({"channels": [GOOD, Channel(RECEIVED, np.array([3, 4]))]}, "interval_length_s"),
        ({"channels": [GOOD, (ReadingTypeSpec(), np.array([1, 2]))]}, "must be a Channel"),
        ({"channels": [Channel(ReadingTypeSpec(), np.array([1, 2, 3]))]}, "3 values for 2"),
        ({"channels": [Channel(ReadingTypeSpec(), np.array([1, 2]), np.array([0, 1]))]},
         "QualityOfReading"),
        ({"channels": [Channel(ReadingTypeSpec(), np.array([1, 2]), np.array([0]))]},
         "1 quality codes for 2"),
        ({"channels": [Channel(ReadingTypeSpec(), np.array([1, 2]), np.array([0.0, 7.0]))]},
         "integer array"),
        ({"local_time": "America/New_York"}, "LocalTimeSpec"),
        ({"service_kind": 10}, "ServiceKind"),
        ({"service_kind": True}, "ServiceKind"),
        ({"sequence_no": -1}, "sequence_no"),
        ({"sequence_no": 1.5}, "sequence_no"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("encoder", [encode_meter_upload, meter_upload_size])
def test_bad_uploads_are_rejected(
    kwargs: dict[str, Any], message: str, encoder: Callable[..., object]
) -> None:
    args: dict[str, Any] = {
        "meter_id": "m1", "sequence_no": 0, "interval_start_epoch_s": T0 + 60 * np.arange(2),
        "channels": [GOOD], "created_epoch_s": T0,
    }  # fmt: skip
    with pytest.raises(ValueError, match=message):
        encoder(**(args | kwargs))


# ------------------------------------------------------------------------------------------
# LocalTimeParameters and DstRuleType.
# ------------------------------------------------------------------------------------------


def _sample_local_times(path: Path) -> list[dict[str, str]]:
    root = etree.parse(str(path)).getroot()
    return [
        {etree.QName(c).localname: (c.text or "").strip() for c in ltp}
        for ltp in root.iter(f"{{{E}}}LocalTimeParameters")
    ]


US_ZONE_BY_TZ_OFFSET = {-18000: "America/New_York", -28800: "America/Los_Angeles"}


@pytest.mark.parametrize(
    "sample",
    [
        "nist_15minLP_15Days.xml", "nist_MonthlyOnlyElectricData.xml", "nist_Temperature.xml",
        "gba_test_usage_data.xml", "pge_electric_hourly_netmetering_redacted.xml",
        "pge_gas_daily_redacted.xml",
    ],
)  # fmt: skip
def test_us_local_time_equals_the_real_sample_files(greenbutton_dir: Path, sample: str) -> None:
    """The samples' LocalTimeParameters (US Eastern for NIST/GBA, US Pacific for PG&E), in
    text, equal what the encoder writes for that zone; Denver shares the US rule codes."""
    (ltp,) = {tuple(sorted(d.items())) for d in _sample_local_times(greenbutton_dir / sample)}
    want = dict(ltp)
    zone = US_ZONE_BY_TZ_OFFSET[int(want["tzOffset"])]
    doc = encode_meter_upload("m1", 0, np.array([T0]), [GOOD_1], T0, LocalTimeSpec.for_zone(zone))
    assert follow_links(doc).local_time == want
    denver = LocalTimeSpec.for_zone("America/Denver")
    assert (f"{denver.dst_start_rule:08X}", f"{denver.dst_end_rule:08X}") == (
        want["dstStartRule"], want["dstEndRule"],
    )  # fmt: skip
    assert (denver.tz_offset_s, denver.dst_offset_s) == (-25200, 3600)


def test_sample_rules_decode_to_the_us_rules(greenbutton_dir: Path) -> None:
    """US DST since 2007 (Energy Policy Act of 2005 §110): from the second Sunday of March,
    02:00 local standard time, to the first Sunday of November, 02:00 local daylight time.
    The five-usage-point NIST sample varies only the seconds field (0..4 s)."""
    rules = _sample_local_times(greenbutton_dir / "nist_1hrLP_32DaysFiveUsagePoints_M.xml")
    assert len(rules) == 5
    for ltp in rules:
        start = DstRule.from_code(int(ltp["dstStartRule"], 16))
        end = DstRule.from_code(int(ltp["dstEndRule"], 16))
        assert start.seconds == end.seconds <= 4
        assert (start.month, start.operator, start.day_of_week, start.hour) == (3, 3, 7, 2)
        assert (end.month, end.operator, end.day_of_week, end.hour) == (11, 2, 7, 2)
        assert start.day_of_month == end.day_of_month == 0


def test_dst_rule_bit_layout_example_of_the_xsd() -> None:
    """espiDerived.xsd DstRuleType: "DST starts on third Friday in March at 1:45 AM":
    seconds 2700, hours 1, day of week 5, day of month 0, operator 4, month 3."""
    rule = DstRule(month=3, operator=4, day_of_week=5, hour=1, seconds=2700)
    assert rule.code == (3 << 28) | (4 << 25) | (0 << 20) | (5 << 17) | (1 << 12) | 2700
    assert rule.code == 0x380A1A8C
    assert DstRule.from_code(0x380A1A8C) == rule
    assert rule.local_datetime(2026) == datetime(2026, 3, 20, 1, 45)  # Fridays: 6, 13, 20


@pytest.mark.parametrize(
    ("rule", "year", "expected_day"),
    [
        (DstRule(month=4, operator=0, day_of_month=15), 2026, 15),
        (DstRule(month=3, operator=1, day_of_month=8, day_of_week=7), 2026, 8),  # a Sunday
        (DstRule(month=3, operator=1, day_of_month=9, day_of_week=7), 2026, 15),
        (DstRule(month=3, operator=2, day_of_week=1), 2026, 2),  # first Monday
        (DstRule(month=3, operator=3, day_of_week=7), 2026, 8),  # second Sunday
        (DstRule(month=3, operator=5, day_of_week=7), 2026, 22),  # fourth Sunday
        (DstRule(month=3, operator=6, day_of_week=7), 2026, 29),  # fifth Sunday
        (DstRule(month=3, operator=7, day_of_week=7), 2026, 29),  # last Sunday
        (DstRule(month=2, operator=7, day_of_week=7), 2026, 22),
        (DstRule(month=10, operator=7, day_of_week=7), 2026, 25),
    ],
)
def test_dst_rule_operators(rule: DstRule, year: int, expected_day: int) -> None:
    assert rule.local_datetime(year).day == expected_day
    assert DstRule.from_code(rule.code) == rule
    if rule.operator >= 1:
        assert calendar.weekday(year, rule.month, expected_day) + 1 == rule.day_of_week


def test_dst_rule_errors() -> None:
    with pytest.raises(ValueError, match="no day in 2026-02"):
        DstRule(month=2, operator=6, day_of_week=7).local_datetime(2026)  # no fifth Sunday
    with pytest.raises(ValueError, match="month"):
        DstRule.from_code(0xD40E2000)  # month 13
    with pytest.raises(ValueError, match="hour"):
        DstRule.from_code(0x360F8000)  # hour 24
    with pytest.raises(ValueError, match="seconds"):
        DstRule.from_code(0x360E2E10)  # 3600 s
    with pytest.raises(ValueError, match=r"0\.\.0xFFFFFFFE"):
        DstRule.from_code(DST_RULE_DISABLED)
    with pytest.raises(ValueError, match="day_of_month"):
        DstRule(month=2, operator=0, day_of_month=30)
    with pytest.raises(ValueError, match="day_of_week"):
        DstRule(month=3, operator=7)


def _utc(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("zone", "tz_offset_s", "dst_offset_s", "start_code", "end_code", "start_utc", "end_utc"),
    [
        # US: 02:00 local; 2026-03-08 and 2026-11-01.
        ("America/New_York", -18000, 3600, 0x360E2000, 0xB40E2000,
         _utc(2026, 3, 8, 7), _utc(2026, 11, 1, 6)),
        ("America/Denver", -25200, 3600, 0x360E2000, 0xB40E2000,
         _utc(2026, 3, 8, 9), _utc(2026, 11, 1, 8)),
        ("America/Los_Angeles", -28800, 3600, 0x360E2000, 0xB40E2000,
         _utc(2026, 3, 8, 10), _utc(2026, 11, 1, 9)),
        # EU (Directive 2000/84/EC): 01:00 UTC on the last Sundays of March and October,
        # = 02:00 CET and 03:00 CEST.
        ("Europe/Berlin", 3600, 3600, 0x3E0E2000, 0xAE0E3000,
         _utc(2026, 3, 29, 1), _utc(2026, 10, 25, 1)),
        ("UTC", 0, 0, DST_RULE_DISABLED, DST_RULE_DISABLED, None, None),
    ],
)  # fmt: skip
def test_for_zone_values(
    zone: str, tz_offset_s: int, dst_offset_s: int, start_code: int, end_code: int,
    start_utc: int | None, end_utc: int | None,
) -> None:  # fmt: skip
    lt = LocalTimeSpec.for_zone(zone)
    assert (lt.tz_offset_s, lt.dst_offset_s, lt.dst_start_rule, lt.dst_end_rule, lt.name) == (
        tz_offset_s, dst_offset_s, start_code, end_code, zone,
    )  # fmt: skip
    transitions = lt.dst_transitions_utc(2026)
    assert transitions == (None if start_utc is None else (start_utc, end_utc))


CROSS_CHECK_ZONES = [
    *ZONE_POSIX_TZ,
    # not in the module's table: read from this system's tz database
    "America/Boise", "Europe/Vienna", "America/St_Johns", "Asia/Kolkata", "Asia/Tokyo",
]  # fmt: skip


@pytest.mark.parametrize("zone", CROSS_CHECK_ZONES)
def test_local_time_reproduces_the_tz_database(zone: str) -> None:
    """UTC offsets computed from the ESPI codes equal zoneinfo's, at every DST change of
    2012-2037 (either side of it) and at 3000 random instants. LocalTimeParameters hold the
    current rules only: St. John's changed at 00:01 local time until 2011, for example."""
    lt = LocalTimeSpec.for_zone(zone)
    tz = zoneinfo.ZoneInfo(zone)
    rng = np.random.default_rng(7)
    instants = [int(x) for x in rng.integers(_utc(2012, 1, 1), _utc(2038, 1, 1), 3000)]
    for year in range(2012, 2038):
        transitions = lt.dst_transitions_utc(year)
        if transitions is not None:
            instants += [t + d for t in transitions for d in (-1, 0)]
    got = lt.utc_offset_s(np.array(instants, dtype=np.int64))
    want = [datetime.fromtimestamp(t, tz).utcoffset() for t in instants]
    np.testing.assert_array_equal(got, [int(w.total_seconds()) for w in want if w is not None])


def test_dublin_negative_dst_is_written_like_london() -> None:
    """tzdata gives Europe/Dublin standard time (IST) in summer and a negative DST in winter;
    LocalTimeParameters needs dstOffset >= 0 and start < end, so it is written as London."""
    dublin = LocalTimeSpec.for_zone("Europe/Dublin")
    london = LocalTimeSpec.for_zone("Europe/London")
    assert dublin == LocalTimeSpec(
        london.tz_offset_s, london.dst_offset_s, london.dst_start_rule, london.dst_end_rule,
        name="Europe/Dublin",
    )  # fmt: skip
    assert (london.dst_start_rule, london.dst_end_rule) == (0x3E0E1000, 0xAE0E2000)


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("Australia/Sydney", "southern-hemisphere"),
        ("America/Nuuk", "outside 00:00"),  # tzdata: transitions at -01:00 and 00:00
        ("Mars/Olympus_Mons", "unknown time zone"),
        ("../../etc/passwd", "not an IANA zone name"),
        ("/etc/localtime", "not an IANA zone name"),
    ],
)
def test_for_zone_errors(zone: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalTimeSpec.for_zone(zone)


@pytest.mark.parametrize(
    ("tz", "message"),
    [
        ("EST5EDT", "explicit DST rules"),  # no rules: POSIX leaves them to the implementation
        ("garbage", "explicit DST rules"),
        ("EST5EDT,M3.2.0,M11.6.0", "week 1..5"),
        ("EST5EDT,M3.2.7,M11.1.0", "day 0..6"),
        ("EST5EDT,60,300", "zero-based day of year"),
        ("EST5EDT,M3.2.0/24,M11.1.0", "outside 00:00"),
    ],
)
def test_from_posix_tz_errors(tz: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalTimeSpec.from_posix_tz(tz)


def test_from_posix_tz_forms() -> None:
    julian = LocalTimeSpec.from_posix_tz("XST-5:30XDT-6:45,J60/1:30:15,J300")
    assert (julian.tz_offset_s, julian.dst_offset_s) == (19800, 4500)
    assert DstRule.from_code(julian.dst_start_rule) == DstRule(
        month=3, operator=0, day_of_month=1, hour=1, seconds=1815
    )  # J60 is March 1 (Feb 29 never counted)
    assert DstRule.from_code(julian.dst_end_rule) == DstRule(
        month=10, operator=0, day_of_month=27, hour=2
    )
    quoted = LocalTimeSpec.from_posix_tz("<+03>-3")
    assert (quoted.tz_offset_s, quoted.dst_start_rule) == (10800, DST_RULE_DISABLED)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tz_offset_s": 86400}, "tz_offset_s"),
        ({"tz_offset_s": 0, "dst_offset_s": -3600}, "dst_offset_s"),
        ({"tz_offset_s": 0, "dst_start_rule": 0x360E2000}, "both"),
        ({"tz_offset_s": 0, "dst_offset_s": 3600, "dst_start_rule": 0xB40E2000,
          "dst_end_rule": 0x360E2000}, "must fall after"),
        ({"tz_offset_s": 0, "dst_start_rule": 0x360E2000, "dst_end_rule": 0xB40E2000},
         "dst_offset_s is 0"),
        ({"tz_offset_s": 0, "dst_offset_s": 3600, "dst_start_rule": 0xD60E2000,
          "dst_end_rule": 0xB40E2000}, "month"),
        ({"tz_offset_s": 0, "name": "<evil>"}, "name"),
        ({"tz_offset_s": 1.5}, "int"),
    ],
)  # fmt: skip
def test_bad_local_time_specs_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalTimeSpec(**kwargs)


# ------------------------------------------------------------------------------------------
# Energy quantisation (meters.energy) that produces the register values.
# ------------------------------------------------------------------------------------------


def test_interval_energy_and_register_quantisation() -> None:
    energy_wh = interval_energy_wh(np.array([[3600.0, 1000.0]]), 900.0)
    np.testing.assert_allclose(energy_wh, [[900.0, 250.0]])
    # Half-even rounding (IEC 60559 / numpy.rint), in units of 10**m Wh.
    halves = quantise_register(np.array([0.5, 1.5, 2.5, -0.5, -1.5]), 0)
    np.testing.assert_array_equal(halves, [0, 2, 2, 0, -2])
    assert halves.dtype == np.int64
    np.testing.assert_array_equal(quantise_register(np.array([2500.0, 3500.0]), 3), [2, 4])
    np.testing.assert_array_equal(quantise_register(np.array([1.25, 0.0002]), -3), [1250, 0])
    with pytest.raises(ValueError, match="Int48"):
        quantise_register(np.array([2.0**47]), 0)
    assert quantise_register(np.array([2.0**47]), 3)[0] == 140_737_488_355  # 2**47/1000
    with pytest.raises(ValueError):
        quantise_register(np.array([np.nan]), 0)
