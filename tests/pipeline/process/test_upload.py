"""ESPI upload to reading columns: single- and multi-channel uploads in the format of
docs/upload-format.md, reading quality, real Green Button files, both namespace styles, any
element order, every rejection, and the compiled scanner's fast path agreeing with the
general path."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from pipeline import Limits, ReadingBatch, ReadingType, RejectedUpload
from pipeline.espi.codes import QUALITY_MIXED
from pipeline.espi.identity import MAX_METER_ID_CHARS
from pipeline.espi.namespaces import ATOM_NS, ESPI_NS
from pipeline.espi.namespaces import ESPI as E
from pipeline.fetch.parse import parse_upload
from pipeline.process.batch import QUALITY_NONE
from pipeline.process.scanner import ScannedFeed, block_in_source, scan_source
from pipeline.process.upload import extract_batches
from tests.espi_feeds import (
    RESOURCE_BASE,
    SERVICE_CATEGORY,
    XML_DECLARATION,
    Channel,
    entry,
    feed,
    meter_upload,
    reading_type,
    resource,
)

T0 = 1_782_000_000  # 2026-06-21T00:00:00Z
RT_FIELDS: Mapping[str, object] = {
    "flowDirection": 19,
    "intervalLength": 900,
    "powerOfTenMultiplier": -3,
    "uom": 72,
}

Reading = tuple[object, object, object]  # (start, duration, value) as written in the XML


def readings(n: int, value0: int = 300) -> list[Reading]:
    return [(T0 + 900 * i, 900, value0 + 7 * i) for i in range(n)]


def interval_reading(reading: Reading, shuffled: bool) -> str:
    """An IntervalReading with a field the pipeline does not read (``cost``), its fields in
    schema order or, `shuffled`, reversed (element order must not matter)."""
    start, duration, value = reading
    parts = [f"<duration>{duration}</duration>", f"<start>{start}</start>"]
    period = f"<timePeriod>{''.join(reversed(parts) if shuffled else parts)}</timePeriod>"
    fields = ["<cost>17</cost>", period, f"<value>{value}</value>"]
    return f"<IntervalReading>{''.join(reversed(fields) if shuffled else fields)}</IntervalReading>"


def upload(
    blocks: Sequence[Sequence[Reading]] = (readings(15),),
    *,
    feed_id: str = "urn:imdc:upload:m-1:7",
    meter: str | None = "m-1",
    reading_types: Sequence[Mapping[str, object]] = (RT_FIELDS,),
    prefixed: bool = False,
    shuffled: bool = False,
) -> bytes:
    """A Green Button upload like the twin's: UsagePoint, MeterReading, ReadingType(s) and
    IntervalBlock(s), each in its own Atom entry. `shuffled` reverses the order of the
    entries and of the children inside every resource (readings stay in time order, and
    the block's interval moves after them); `meter` None leaves out the UsagePoint."""
    base = f"{RESOURCE_BASE}/RetailCustomer/9/UsagePoint"
    entries = []

    def add(self_href: str, content: str) -> None:
        links = [("self", self_href), ("up", RESOURCE_BASE)]
        entries.append(entry(content, links, entry_id=f"urn:x:{self_href}", title=""))

    if meter is not None:
        add(f"{base}/{meter}", resource("UsagePoint", SERVICE_CATEGORY, prefixed=prefixed))
    add(f"{base}/{meter}/MeterReading/1", resource("MeterReading", prefixed=prefixed))
    for i, fields in enumerate(reading_types):
        ordered = dict(reversed(fields.items())) if shuffled else fields
        add(f"{RESOURCE_BASE}/ReadingType/{i}", reading_type(ordered, prefixed=prefixed))
    for i, block in enumerate(blocks):
        interval = "<interval><duration>86400</duration><start>0</start></interval>"
        reading_xml = [interval_reading(r, shuffled) for r in block]
        inner = "".join([*reading_xml, interval] if shuffled else [interval, *reading_xml])
        add(
            f"{base}/{meter}/MeterReading/1/IntervalBlock/{i}",
            resource("IntervalBlock", inner, prefixed=prefixed),
        )
    if shuffled:
        entries.reverse()
    return feed(*entries, feed_id=feed_id, title="upload", prolog=XML_DECLARATION)


def extract(body: bytes) -> ReadingBatch:
    """The one series of a single-channel upload."""
    [batch] = extract_batches(parse_upload(body))
    return batch


def rejected(body: bytes) -> RejectedUpload:
    with pytest.raises(RejectedUpload) as info:
        extract(body)
    return info.value


def columns(batch: ReadingBatch) -> list[tuple[int, int, int]]:
    return list(
        zip(batch.start_s.tolist(), batch.duration_s.tolist(), batch.value.tolist(), strict=True)
    )


# --- the twin's uploads ---------------------------------------------------------------------


def test_twin_upload() -> None:
    batch = extract(upload())
    assert (batch.meter_id, batch.sequence_no) == ("m-1", 7)
    assert (batch.uom, batch.power_of_ten_multiplier) == (72, -3)
    assert (batch.interval_length_s, batch.flow_direction) == (900, 19)
    assert columns(batch) == readings(15)
    for array in (batch.start_s, batch.duration_s, batch.value):
        assert array.dtype == np.int64
        assert not array.flags.writeable
    assert batch.n_readings == 15


def test_prefixed_and_default_namespace_styles_agree() -> None:
    body = upload(prefixed=True)
    assert b"<espi:IntervalReading>" in body
    prefixed, plain = extract(body), extract(upload())
    assert columns(prefixed) == columns(plain)
    assert (prefixed.meter_id, prefixed.uom, prefixed.flow_direction) == ("m-1", 72, 19)


def test_any_order_of_entries_and_children() -> None:
    body = upload(shuffled=True)
    assert body.index(b"IntervalBlock xmlns") < body.index(b"ReadingType xmlns")
    assert b"<value>300</value><timePeriod><start>" in body
    batch = extract(body)
    assert columns(batch) == readings(15)
    assert (batch.uom, batch.power_of_ten_multiplier, batch.interval_length_s) == (72, -3, 900)


def test_several_interval_blocks_in_document_order() -> None:
    first, second = readings(4), readings(8)[4:]
    assert columns(extract(upload([first, second]))) == first + second


def test_white_space_around_numbers_and_optional_fields() -> None:
    # no multiplier, no flow direction
    fields: Mapping[str, object] = {"uom": " 72 ", "intervalLength": "\n3600\n"}
    block = [(f" {T0} ", " 3600", "42 ")]
    batch = extract(upload([block], reading_types=[fields]))
    assert columns(batch) == [(T0, 3600, 42)]
    assert (batch.power_of_ten_multiplier, batch.flow_direction) == (0, 0)


def test_meter_id_comes_from_the_upload_id_then_the_usage_point_link() -> None:
    assert extract(upload(feed_id="urn:imdc:upload:pv-7:123", meter="pv-7")).meter_id == "pv-7"
    batch = extract(upload(feed_id="urn:uuid:0071C5A7", meter="sub/meter-9"))
    assert (batch.meter_id, batch.sequence_no) == ("meter-9", None)
    # a meter id may itself hold colons: the sequence number is after the last one
    batch = extract(upload(feed_id="urn:imdc:upload:site:a:b:42", meter=None))
    assert (batch.meter_id, batch.sequence_no) == ("site:a:b", 42)


def test_batches_pickle() -> None:
    """A batch can go to a worker process."""
    batch = extract(upload())
    copy = pickle.loads(pickle.dumps(batch))
    assert columns(copy) == columns(batch)
    assert copy.meter_id == batch.meter_id


# --- real Green Button files ----------------------------------------------------------------


def test_nist_15_minute_file(greenbutton_dir: Path) -> None:
    path = greenbutton_dir / "nist_15minLP_15Days.xml"
    batch = extract(path.read_bytes())
    # independent oracle: plain lxml iteration over the same file
    tree_readings = list(etree.parse(str(path)).iter(f"{E}IntervalReading"))
    expected_values = [int(r.findtext(f"{E}value") or "x") for r in tree_readings]
    expected_starts = [int(r.findtext(f"{E}timePeriod/{E}start") or "x") for r in tree_readings]
    assert batch.n_readings == len(tree_readings) == 1340
    assert batch.start_s[0] == 1330578000
    assert batch.value[0] == 324
    assert int(batch.value.sum()) == sum(expected_values)
    assert batch.start_s.tolist() == expected_starts
    assert set(batch.duration_s.tolist()) == {900}
    assert (batch.meter_id, batch.sequence_no) == ("01", None)
    assert (batch.uom, batch.power_of_ten_multiplier, batch.interval_length_s) == (72, 0, 900)
    assert batch.flow_direction == 1


def test_pge_gas_file(greenbutton_dir: Path) -> None:
    """Prefixed (ns0:/ns1:) style from a utility; oracle from eemeter's tests (SOURCE.txt)."""
    batch = extract((greenbutton_dir / "pge_gas_daily_redacted.xml").read_bytes())
    assert batch.value[0] == 103659540
    assert (batch.uom, batch.power_of_ten_multiplier, batch.interval_length_s) == (169, -8, 86400)
    assert batch.meter_id == "REDACTED"
    assert batch.n_readings == 2


def test_gba_file_with_reading_quality(greenbutton_dir: Path) -> None:
    batch = extract((greenbutton_dir / "gba_test_usage_data.xml").read_bytes())
    assert batch.n_readings == 1340
    assert batch.meter_id == "5446AF3F"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        # redacted: both MeterReadings have the self link .../MeterReading/REDACTED, so the
        # strict upload rules cannot tell which block is whose (pipeline.process.greenbutton can)
        ("pge_electric_hourly_netmetering_redacted.xml", "ambiguous_meter_reading"),
        ("nist_1hrLP_32DaysFiveUsagePoints_M.xml", "multiple_usage_points"),
    ],
)
def test_multi_meter_and_redacted_files_are_rejected(
    greenbutton_dir: Path, name: str, code: str
) -> None:
    with pytest.raises(RejectedUpload) as info:
        extract_batches(parse_upload((greenbutton_dir / name).read_bytes()))
    assert info.value.code == code


def test_reading_quality_of_a_real_file(greenbutton_dir: Path) -> None:
    """GBA sample: two of 1340 readings carry a ReadingQuality (8, then 7)."""
    path = greenbutton_dir / "gba_test_usage_data.xml"
    batch = extract(path.read_bytes())
    oracle = [
        int(r.findtext(f"{E}ReadingQuality/{E}quality") or QUALITY_NONE)
        for r in etree.parse(str(path)).iter(f"{E}IntervalReading")
    ]
    assert batch.quality is not None
    assert batch.quality.tolist() == oracle
    assert sorted(q for q in oracle if q != QUALITY_NONE) == [7, 8]


def test_default_quality_of_a_real_file(greenbutton_dir: Path) -> None:
    """PG&E gas: no ReadingQuality, ReadingType defaultQuality 17 ("validated")."""
    batch = extract((greenbutton_dir / "pge_gas_daily_redacted.xml").read_bytes())
    assert batch.quality is not None and batch.quality.tolist() == [17, 17]
    assert (batch.kind, batch.commodity, batch.data_qualifier) == (12, 7, 12)


# --- rejections -----------------------------------------------------------------------------


def test_no_reading_type() -> None:
    error = rejected(upload(reading_types=[]))
    assert error.code == "no_reading_type"
    assert (error.meter_id, error.sequence_no) == ("m-1", 7)


def test_two_reading_types_without_links_cannot_be_told_apart() -> None:
    """With two ReadingTypes the links must say whose the readings are; this helper's
    entries all have ``up`` = the resource root, so the block names no MeterReading."""
    error = rejected(upload(reading_types=[RT_FIELDS, {**RT_FIELDS, "flowDirection": 1}]))
    assert error.code == "unresolved_meter_reading"
    assert (error.meter_id, error.sequence_no) == ("m-1", 7)


def test_no_interval_reading() -> None:
    assert rejected(upload([[]])).code == "no_interval_reading"
    assert rejected(upload([])).code == "no_interval_reading"


@pytest.mark.parametrize(
    "bad",
    [(T0, 900, "3.5"), (T0, 900, "1e3"), ("abc", 900, 1), (T0, "0x10", 1), (T0, 900, "9" * 20)],
)
def test_non_integer_fields(bad: Reading) -> None:
    error = rejected(upload([[*readings(3), bad]]))
    assert error.code == "non_integer"
    assert (error.meter_id, error.sequence_no) == ("m-1", 7)


def test_empty_field_breaks_the_counts() -> None:
    assert rejected(upload([[*readings(3), (T0, "", 1)]])).code == "mismatched_counts"


def test_mismatched_counts() -> None:
    body = upload().replace(b"<value>300</value>", b"", 1)
    error = rejected(body)
    assert error.code == "mismatched_counts"
    assert "15 timePeriod/start" in error.reason
    assert "14 value" in error.reason


@pytest.mark.parametrize("field", ["uom", "intervalLength"])
def test_reading_type_needs_uom_and_interval_length(field: str) -> None:
    fields = {k: v for k, v in RT_FIELDS.items() if k != field}
    assert rejected(upload(reading_types=[fields])).code == "reading_type_incomplete"


def test_reading_type_fields_must_be_integers() -> None:
    error = rejected(upload(reading_types=[{**RT_FIELDS, "uom": "Wh"}]))
    assert error.code == "non_integer"


@pytest.mark.parametrize(
    "feed_id", ["urn:imdc:upload:m-1:x7", "urn:imdc:upload:7", "urn:imdc:upload:m:"]
)
def test_malformed_upload_id(feed_id: str) -> None:
    assert rejected(upload(feed_id=feed_id)).code == "bad_upload_id"


def test_no_meter_id_anywhere() -> None:
    assert rejected(upload(feed_id="urn:uuid:1", meter=None)).code == "no_meter_id"


def test_overlong_meter_id() -> None:
    meter = "m" * (MAX_METER_ID_CHARS + 1)
    assert (
        rejected(upload(feed_id=f"urn:imdc:upload:{meter}:1", meter=meter)).code == "bad_meter_id"
    )


def test_lone_entry_has_no_reading_type() -> None:
    body = (
        f'<entry xmlns="{ATOM_NS}"><id>urn:imdc:upload:m-1:3</id><content>'
        f"{resource('IntervalBlock', interval_reading(readings(1)[0], False))}"
        "</content></entry>"
    ).encode()
    error = rejected(body)
    assert error.code == "no_reading_type"
    assert (error.meter_id, error.sequence_no) == ("m-1", 3)


# --- multi-channel uploads (docs/upload-format.md) ---------------------------------------------

RB = "/espi/1_1/resource"
#: ReadingTypes of a typical net meter's channels (codes from espiDerived.xsd: uom 72 Wh,
#: 29 V, 5 A, 65 cosTheta; kind 12 energy, 54 voltage, 4 current, 38 powerFactor;
#: accumulation 4 deltaData, 12 instantaneous).
ENERGY_DELIVERED: Mapping[str, object] = {
    "accumulationBehaviour": 4,
    "commodity": 1,
    "flowDirection": 1,
    "intervalLength": 900,
    "kind": 12,
    "powerOfTenMultiplier": 0,
    "uom": 72,
}
ENERGY_RECEIVED = {**ENERGY_DELIVERED, "flowDirection": 19}
VOLTAGE: Mapping[str, object] = {
    "accumulationBehaviour": 12,
    "commodity": 1,
    "intervalLength": 900,
    "kind": 54,
    "powerOfTenMultiplier": -3,
    "uom": 29,
}
CURRENT = {**VOLTAGE, "kind": 4, "uom": 5}
POWER_FACTOR = {**VOLTAGE, "kind": 38, "uom": 65}
CHANNELS: list[Mapping[str, object]] = [
    ENERGY_DELIVERED,
    ENERGY_RECEIVED,
    VOLTAGE,
    CURRENT,
    POWER_FACTOR,
]


def reading_type_of(fields: Mapping[str, object]) -> ReadingType:
    def get(name: str) -> int:
        return int(str(fields.get(name, 0)))

    return ReadingType(
        uom=get("uom"),
        power_of_ten_multiplier=get("powerOfTenMultiplier"),
        interval_length_s=get("intervalLength"),
        flow_direction=get("flowDirection"),
        kind=get("kind"),
        accumulation_behaviour=get("accumulationBehaviour"),
        commodity=get("commodity"),
    )


def channel_values(k: int, n: int) -> list[int]:
    """Distinct, recognisable values per channel: k * 100000 + reading index."""
    return [k * 100_000 + i for i in range(n)]


def channel_upload(
    meter: str = "net-7",
    seq: int = 3,
    channels: Sequence[Mapping[str, object]] = CHANNELS,
    n: int = 15,
    *,
    first: int = 0,
    values: Sequence[Sequence[object]] | None = None,
    quality: Mapping[tuple[int, int], Sequence[object]] | None = None,
    reverse_entries: bool = False,
    links: dict[str, str] | None = None,
) -> bytes:
    """An upload in the format's layout: UsagePoint, then per channel k = 1..K a
    MeterReading, a ReadingType and an IntervalBlock linked by Atom links; all channels share
    the interval starts T0 + 900 (first + i). `quality[(k, i)]` puts ReadingQuality codes on
    reading i of channel k; `links` replaces hrefs (for broken-link tests);
    `reverse_entries` writes the entries in reverse order."""
    codes = quality or {}
    return meter_upload(
        meter,
        seq,
        [T0 + 900 * (first + i) for i in range(n)],
        [
            Channel(
                dict(sorted(fields.items())),
                channel_values(k, n) if values is None else values[k - 1],
                {i: c for (channel, i), c in codes.items() if channel == k},
            )
            for k, fields in enumerate(channels, start=1)
        ],
        duration_s=900,
        hrefs=links,
        reverse_entries=reverse_entries,
    )


def batches_of(body: bytes) -> tuple[ReadingBatch, ...]:
    return extract_batches(parse_upload(body))


def rejected_batches(body: bytes) -> RejectedUpload:
    with pytest.raises(RejectedUpload) as info:
        batches_of(body)
    return info.value


def test_multi_channel_round_trip() -> None:
    batches = batches_of(channel_upload())
    assert [b.reading_type for b in batches] == [reading_type_of(c) for c in CHANNELS]
    for k, batch in enumerate(batches, start=1):
        assert (batch.meter_id, batch.sequence_no) == ("net-7", 3)
        assert batch.start_s.tolist() == [T0 + 900 * i for i in range(15)]
        assert batch.duration_s.tolist() == [900] * 15
        assert batch.value.tolist() == channel_values(k, 15)
        assert batch.quality is None
        assert not batch.value.flags.writeable
    assert sum(b.n_readings for b in batches) == 75
    # the flat fields and the identity agree
    voltage = batches[2]
    assert (voltage.uom, voltage.kind, voltage.power_of_ten_multiplier) == (29, 54, -3)
    assert voltage.reading_type == ReadingType(29, -3, 900, 0, 54, 12, 1)


def test_channels_are_found_by_links_not_by_order() -> None:
    forward = batches_of(channel_upload())
    backward = batches_of(channel_upload(reverse_entries=True))
    assert body_order_free(forward) == body_order_free(backward)


def body_order_free(batches: Sequence[ReadingBatch]) -> dict[ReadingType, list[int]]:
    return {b.reading_type: b.value.tolist() for b in batches}


def test_one_channel_in_the_contract_layout() -> None:
    [batch] = batches_of(channel_upload(channels=[ENERGY_RECEIVED]))
    assert batch.reading_type == reading_type_of(ENERGY_RECEIVED)
    assert batch.value.tolist() == channel_values(1, 15)
    assert (batch.meter_id, batch.sequence_no) == ("net-7", 3)


def test_twin_encoder_single_channel() -> None:
    espi = pytest.importorskip("meters.espi")
    espi_upload = pytest.importorskip("meters.espi_upload")
    spec = espi.ReadingTypeSpec(interval_length_s=60, flow_direction=19)
    starts = T0 + 60 * np.arange(15, dtype=np.int64)
    values = np.arange(15, dtype=np.int64) * 3 + 7
    body = espi_upload.encode_upload("pv-3", 9, spec, starts, values, T0)
    [batch] = batches_of(body)
    assert (batch.meter_id, batch.sequence_no) == ("pv-3", 9)
    assert batch.value.tolist() == values.tolist()
    assert batch.start_s.tolist() == starts.tolist()
    assert (batch.uom, batch.flow_direction, batch.interval_length_s) == (72, 19, 60)


def test_reading_quality_every_reading_one_code() -> None:
    quality = {(k, i): [0 if i % 2 else 14] for k in (1, 2) for i in range(6)}
    batches = batches_of(channel_upload(channels=CHANNELS[:2], n=6, quality=quality))
    for batch in batches:
        assert batch.quality is not None
        assert batch.quality.tolist() == [14, 0, 14, 0, 14, 0]


def test_reading_quality_some_readings_and_mixed_codes() -> None:
    quality = {(1, 2): [10], (1, 4): [8, 8], (1, 5): [10, 9], (2, 0): [7]}
    first, second = batches_of(channel_upload(channels=CHANNELS[:2], n=6, quality=quality))
    none = QUALITY_NONE
    assert first.quality is not None and second.quality is not None
    assert first.quality.tolist() == [none, none, 10, none, 8, QUALITY_MIXED]
    assert second.quality.tolist() == [7, none, none, none, none, none]


def test_default_quality_fills_readings_without_a_code() -> None:
    channel = {**ENERGY_DELIVERED, "defaultQuality": 17}
    [batch] = batches_of(channel_upload(channels=[channel], n=4, quality={(1, 1): [10]}))
    assert batch.quality is not None and batch.quality.tolist() == [17, 10, 17, 17]
    # defaultQuality is not part of the series identity
    assert batch.reading_type == reading_type_of(ENERGY_DELIVERED)


@pytest.mark.parametrize(("code", "reason"), [("x", "non_integer"), (70000, "out_of_range")])
def test_bad_quality_code(code: object, reason: str) -> None:
    body = channel_upload(channels=CHANNELS[:2], n=3, quality={(2, 1): [code]})
    error = rejected_batches(body)
    assert error.code == reason
    assert (error.meter_id, error.sequence_no) == ("net-7", 3)


MR2 = f"{RB}/UsagePoint/net-7/MeterReading/2"
RT2 = f"{RB}/ReadingType/net-7/2"


MR1 = f"{RB}/UsagePoint/net-7/MeterReading/1"
RT1, RT3 = f"{RB}/ReadingType/net-7/1", f"{RB}/ReadingType/net-7/3"


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        # the second block's up link names an IntervalBlock collection no MeterReading has
        (
            f'<link rel="up" href="{MR2}/IntervalBlock"/>',
            f'<link rel="up" href="{RB}/UsagePoint/net-7/MeterReading/9/IntervalBlock"/>',
            "unresolved_meter_reading",
        ),
        # two MeterReadings claim one IntervalBlock collection
        (
            f'<link rel="related" href="{MR2}/IntervalBlock"/>',
            f'<link rel="related" href="{MR1}/IntervalBlock"/>',
            "ambiguous_meter_reading",
        ),
        # the second MeterReading names two ReadingTypes
        (
            f'<link rel="related" href="{RT2}"/>',
            f'<link rel="related" href="{RT2}"/><link rel="related" href="{RT3}"/>',
            "unresolved_reading_type",
        ),
        # the second MeterReading names the first one's ReadingType
        (
            f'<link rel="related" href="{RT2}"/>',
            f'<link rel="related" href="{RT1}"/>',
            "duplicate_reading_type",
        ),
        # two ReadingTypes with one self link
        (
            f'<link rel="self" href="{RT2}"/>',
            f'<link rel="self" href="{RT1}"/>',
            "ambiguous_reading_type",
        ),
    ],
)
def test_blocks_that_cannot_be_matched_reject_the_upload(old: str, new: str, code: str) -> None:
    body = channel_upload(channels=CHANNELS[:3])
    assert body.count(old.encode()) == 1
    error = rejected_batches(body.replace(old.encode(), new.encode()))
    assert error.code == code
    assert (error.meter_id, error.sequence_no) == ("net-7", 3)


def test_unresolved_reading_type_when_the_reading_type_self_link_moves() -> None:
    # only the ReadingType's own self link changes: the MeterReading's related link dangles
    body = channel_upload(channels=CHANNELS[:2]).replace(
        f'<link rel="self" href="{RT2}"/>'.encode(), b'<link rel="self" href="/x/RT"/>'
    )
    assert rejected_batches(body).code == "unresolved_reading_type"


def test_two_channels_with_one_reading_type_are_rejected() -> None:
    assert rejected_batches(channel_upload(channels=[VOLTAGE, VOLTAGE])).code == (
        "duplicate_reading_type"
    )


def test_a_channel_with_bad_readings_rejects_the_whole_upload() -> None:
    values: list[list[object]] = [list(channel_values(1, 4)), [1, 2, "3.5", 4]]
    error = rejected_batches(channel_upload(channels=CHANNELS[:2], n=4, values=values))
    assert error.code == "non_integer"


def test_a_channel_without_readings_is_no_series() -> None:
    values: list[list[int]] = [channel_values(1, 4), []]
    batches = batches_of(channel_upload(channels=CHANNELS[:2], n=4, values=values))
    assert [b.reading_type for b in batches] == [reading_type_of(ENERGY_DELIVERED)]


def test_reading_quality_of_many_irregularly_flagged_readings() -> None:
    n = 3000
    quality = {(1, i): [10] if i % 3 else [9, 10] for i in range(0, n, 7)}
    [batch] = batches_of(channel_upload(channels=[ENERGY_DELIVERED], n=n, quality=quality))
    expected = [QUALITY_NONE] * n
    for (_, i), codes in quality.items():
        expected[i] = codes[0] if len(set(codes)) == 1 else QUALITY_MIXED
    assert batch.quality is not None and batch.quality.tolist() == expected


def test_flagged_readings_that_cannot_be_aligned_are_rejected() -> None:
    body = channel_upload(channels=[ENERGY_DELIVERED], n=3, quality={(1, 2): [10]})
    body = body.replace(b"<IntervalReading>", b"<IntervalReading/><IntervalReading>", 1)
    assert rejected_batches(body).code == "mismatched_counts"


def test_the_meter_encoders_multi_channel_upload() -> None:
    """The twin's own encoder (meters.espi, the producer of the contract): five channels,
    local time, ReadingQuality on some readings and a defaultQuality on one channel."""
    espi = pytest.importorskip("meters.espi")
    espi_upload = pytest.importorskip("meters.espi_upload")
    n = 15
    starts = T0 + 60 * np.arange(n, dtype=np.int64)
    flagged = np.full(n, espi.NO_QUALITY)
    flagged[[3, 11]] = [10, 8]
    specs = [
        espi.ReadingTypeSpec(),
        espi.ReadingTypeSpec(flow_direction=19),
        espi.ReadingTypeSpec(
            uom=29,
            kind=54,
            accumulation_behaviour=12,
            power_of_ten_multiplier=-3,
            default_quality=17,
        ),
        espi.ReadingTypeSpec(uom=5, kind=4, accumulation_behaviour=12, power_of_ten_multiplier=-3),
        espi.ReadingTypeSpec(
            uom=65,
            kind=38,
            accumulation_behaviour=12,
            power_of_ten_multiplier=-3,
            phase=769,
            data_qualifier=12,
        ),
    ]
    values = [np.arange(n, dtype=np.int64) * (k + 1) + 1000 * k for k in range(5)]
    channels = [
        espi.Channel(spec, v, flagged if k in (0, 2) else None)
        for k, (spec, v) in enumerate(zip(specs, values, strict=True))
    ]
    body = espi_upload.encode_meter_upload(
        "net-0042", 9, starts, channels, T0, espi.LocalTimeSpec.for_zone("America/New_York")
    )
    batches = batches_of(body)
    assert len(batches) == 5
    for spec, v, batch in zip(specs, values, batches, strict=True):
        assert (batch.meter_id, batch.sequence_no) == ("net-0042", 9)
        assert batch.start_s.tolist() == starts.tolist()
        assert batch.value.tolist() == v.tolist()
        assert batch.reading_type == ReadingType(
            spec.uom, spec.power_of_ten_multiplier, spec.interval_length_s,
            spec.flow_direction, spec.kind, spec.accumulation_behaviour, spec.commodity,
            spec.phase or 0, spec.data_qualifier or 0,
        )  # fmt: skip
    none = QUALITY_NONE
    quality = [b.quality.tolist() if b.quality is not None else None for b in batches]
    assert quality[0] == [none] * 3 + [10] + [none] * 7 + [8] + [none] * 3
    assert quality[2] == [17] * 3 + [10] + [17] * 7 + [8] + [17] * 3  # defaultQuality fills
    assert quality[1] is None and quality[3] is None and quality[4] is None


# --- every field stays with its reading; numbers are XML Schema integers ---------------------

#: Numbers Python's ``int`` reads but XML Schema does not (xs:integer is ``[+-]?[0-9]+``
#: with XML white space around): digit separators, Arabic-Indic and full-width digits, NBSP.
NOT_XS_INTEGERS = ["1_000", "\u0661\u0662", "\uff11\uff12", "\u00a012", "12\u2003"]


@pytest.mark.parametrize("n_channels", [1, 3])
def test_a_reading_without_its_value_is_never_given_the_next_ones(n_channels: int) -> None:
    """Equal totals (2 starts, 2 durations, 2 values) but reading 1 has no value and
    reading 2 has two: rejected, naming the reading, with one channel (block scanner, then
    XPaths) and with three (feed scanner, then XPaths)."""
    body = channel_upload(channels=CHANNELS[:n_channels], n=2)
    value = f"<value>{channel_values(1, 2)[0]}</value>".encode()
    second = f"<value>{channel_values(1, 2)[1]}</value>".encode()
    assert body.count(value) == 1
    body = body.replace(value, b"", 1).replace(second, second + b"<value>99</value>", 1)
    error = rejected_batches(body)
    assert error.code == "mismatched_counts"
    assert "IntervalReading #1 has 1 timePeriod/start, 1 timePeriod/duration and 0 value" in (
        error.reason
    )


@pytest.mark.parametrize("n_channels", [1, 3])
def test_quality_codes_stay_with_their_reading(n_channels: int) -> None:
    """Every reading has one ReadingQuality (3 for 3 readings), but the first holds two
    codes, the second none: mixed, none, then the third's own code (aligned by position
    it read 8, 9, 3)."""
    codes = {(1, 0): [8], (1, 1): [5], (1, 2): [3]}
    body = channel_upload(channels=CHANNELS[:n_channels], n=3, quality=codes)
    body = body.replace(b"<quality>8</quality>", b"<quality>8</quality><quality>9</quality>")
    body = body.replace(b"<ReadingQuality><quality>5</quality></ReadingQuality>",
                        b"<ReadingQuality/>")  # fmt: skip
    batch = batches_of(body)[0]
    assert batch.quality is not None
    assert batch.quality.tolist() == [QUALITY_MIXED, QUALITY_NONE, 3]


@pytest.mark.parametrize("text", NOT_XS_INTEGERS)
@pytest.mark.parametrize("where", ["value", "start", "duration"])
def test_reading_numbers_must_be_xs_integers(text: str, where: str) -> None:
    reading = {"start": T0, "duration": 900, "value": 5} | {where: text}
    body = upload([[(reading["start"], reading["duration"], reading["value"])]])
    assert rejected(body).code == "non_integer"


@pytest.mark.parametrize("text", NOT_XS_INTEGERS)
def test_reading_type_fields_and_quality_codes_must_be_xs_integers(text: str) -> None:
    assert rejected(upload(reading_types=[{**RT_FIELDS, "flowDirection": text}])).code == (
        "non_integer"
    )
    body = channel_upload(channels=CHANNELS[:1], n=2, quality={(1, 1): [text]})
    assert rejected_batches(body).code == "non_integer"


def test_xs_integers_that_are_not_plain_digits_are_read_as_xml_schema_does() -> None:
    """XML white space around, a sign, leading zeros beyond 18 digits: xs:integer values."""
    block = [(f"\t+{T0}\n", "0" * 30 + "900", " -000000000000000000012 ")]
    assert columns(extract(upload([block]))) == [(T0, 900, -12)]


# --- the upload read in the bytes as received (extract_batches(..., scanned=...)) ------------

Outcome = tuple[tuple[object, ...], ...] | str


def outcome_of(body: bytes, scanned: ScannedFeed | None) -> Outcome:
    """Every batch of `body` in full (meter, sequence, reading type, columns, quality), or
    the rejection reason."""
    try:
        batches = extract_batches(parse_upload(body), scanned=scanned)
    except RejectedUpload as exc:
        return exc.reason
    return tuple(
        (
            b.meter_id,
            b.sequence_no,
            b.reading_type,
            b.start_s.tolist(),
            b.duration_s.tolist(),
            b.value.tolist(),
            None if b.quality is None else b.quality.tolist(),
        )
        for b in batches
    )


def same_with_source(body: bytes) -> tuple[Outcome, bool]:
    """What extract_batches gives without and with the scan of the document's bytes
    (asserted equal), and whether the scanner read the document (else it declined and the
    general path ran); when it read it, its count of the nesting is asserted to be the
    tree's."""
    scanned = scan_source(body)
    expected = outcome_of(body, None)
    assert outcome_of(body, scanned) == expected
    if scanned.channels:
        assert scanned.nesting == tree_depth(parse_upload(body, Limits(max_depth=256)))
    return expected, bool(scanned.channels)


def test_a_reading_type_read_in_the_bytes_is_not_taken_for_a_serialized_one() -> None:
    """Blank text written as a reference (``&#32;``) is kept by the parser, and the
    serialization writes it as the plain white space that the parse of other bytes drops:
    the serialized ReadingType of `kept` is, byte for byte, `dropped`'s as received, yet
    its uom is "7  2", not 72. Whatever was read before, each is what it is."""
    base = channel_upload(channels=CHANNELS[:3], n=4)
    kept = base.replace(b"<uom>72</uom>", b"<uom><a>7</a><x/> &#32;<y/><a>2</a></uom>", 1)
    dropped = base.replace(b"<uom>72</uom>", b"<uom><a>7</a><x/>  <y/><a>2</a></uom>", 1)
    serialized = etree.tostring(parse_upload(kept))
    span = dropped[dropped.index(b"<ReadingType") : dropped.index(b"</ReadingType>") + 14]
    assert span in serialized  # the same bytes, two ReadingTypes
    for _ in range(2):  # each after the other, both ways
        for body in (dropped, kept):
            result, read = same_with_source(body)
            assert read
            if body is kept:
                assert result == "non_integer: ReadingType uom must be an integer, got '7  2'"
            else:
                assert not isinstance(result, str) and result[0][2].uom == 72


def tree_depth(element: etree._Element) -> int:
    return 1 + max((tree_depth(child) for child in element), default=0)


def values_of(result: Outcome) -> list[object]:
    assert not isinstance(result, str), result
    return [batch[5] for batch in result]


JUNK_BLOCK = (
    f'<IntervalBlock xmlns="{ESPI_NS}"><IntervalReading><timePeriod><duration>900</duration>'
    f"<start>{T0}</start></timePeriod><value>666</value></IntervalReading></IntervalBlock>"
)
#: A meter upload's feed id (the feed scanner reads the upload) and another (it declines:
#: the meter id comes from the UsagePoint link, and the block is read in the bytes alone).
FEED_IDS = ["urn:imdc:upload:m-1:7", "urn:x:7"]


@pytest.mark.parametrize("feed_id", FEED_IDS)
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("", ""),  # as written: read in the source
        ("<UsagePoint xmlns", "<!-- c --><UsagePoint xmlns"),  # a comment: serialized
        ("<title>upload</title>", "<title>upload</title><?pi x?>"),
        # a skipped element whose attribute value looks like the end of a tag
        ("<cost>17</cost>", '<cost a="/>">17</cost>'),
        ("<cost>17</cost>", '<cost a=">" b="/>"/>'),
        # an unprefixed junk block before the real one, inside the UsagePoint
        ("</ServiceCategory>", f"</ServiceCategory>{JUNK_BLOCK}"),
        # a junk block after the real one, in the feed after the last entry
        ("</entry></feed>", f"</entry>{JUNK_BLOCK}</feed>"),
        # a junk block inside the real one (ignored by both)
        ("<interval>", f"{JUNK_BLOCK}<interval>"),
        # the real block written otherwise, a junk block in canonical form after it
        (f'<IntervalBlock xmlns="{ESPI_NS}">', f'<IntervalBlock  xmlns="{ESPI_NS}">'),
    ],
)
def test_the_block_read_in_the_source_is_the_trees(old: str, new: str, feed_id: str) -> None:
    body = upload(feed_id=feed_id).decode()
    assert old in body
    body = body.replace(old, new, 1)
    if "IntervalBlock  xmlns" in body:
        body = body.replace("</entry></feed>", f"</entry>{JUNK_BLOCK}</feed>")
    result, _ = same_with_source(body.encode())
    assert 666 not in values_of(result)[0]


@pytest.mark.parametrize("feed_id", FEED_IDS)
def test_a_tag_ends_at_its_first_gt_outside_quotes(feed_id: str) -> None:
    """``<x a="q>"/>`` is empty and ``<y b="/>">`` is not: read at their first ``>``, the
    two would swallow the readings between them as children of x."""
    body = upload(feed_id=feed_id).decode()
    ends = [match.end() for match in re.finditer("</IntervalReading>", body)]
    body = body[: ends[2]] + '<y b="/>"></y>' + body[ends[2] :]  # after the third reading
    body = body[: ends[0]] + '<x a="q>"/>' + body[ends[0] :]  # after the first
    result, _ = same_with_source(body.encode())
    assert values_of(result) == [[300 + 7 * i for i in range(15)]]


def test_a_prefixed_block_is_not_confused_with_an_unprefixed_junk_one() -> None:
    body = upload(prefixed=True).decode().replace("</entry></feed>", f"</entry>{JUNK_BLOCK}</feed>")
    result, _ = same_with_source(body.encode())
    assert 666 not in values_of(result)[0]
    body = upload(prefixed=True).decode()
    first_entry_end = body.index("</entry>")
    body = body[:first_entry_end] + JUNK_BLOCK + body[first_entry_end:]
    result, _ = same_with_source(body.encode())
    assert 666 not in values_of(result)[0]


def test_twin_uploads_are_read_in_the_source_and_agree() -> None:
    espi = pytest.importorskip("meters.espi")
    espi_upload = pytest.importorskip("meters.espi_upload")
    starts = T0 + 60 * np.arange(15, dtype=np.int64)
    channel = espi.Channel(espi.ReadingTypeSpec(flow_direction=19), np.arange(15) * 7)
    body = espi_upload.encode_meter_upload("pv-1", 3, starts, [channel], T0)
    assert b"\n" in body  # white space between elements, which the parse drops
    result, read = same_with_source(body)
    assert read  # the fast way
    assert values_of(result) == [list(np.arange(15) * 7)]
    root = parse_upload(body)
    block = root.find(f"{{{ATOM_NS}}}entry[last()]/{{{ATOM_NS}}}content/{E}IntervalBlock")
    assert block is not None and block_in_source(body, block) is not None


PREFIXED_VALUE = f'<q:value xmlns:q="{ESPI_NS}">1</q:value>'
#: Ways the bytes as received differ from libxml2's serialization of their tree: (what,
#: old, new, whether the scanner still reads the upload). Each applies to the first `old`
#: of a three-channel meter upload (`channel_upload`, links and all).
SOURCE_FORMS = [
    ("no declaration", XML_DECLARATION, "", True),
    ("a declaration naming another encoding", 'encoding="UTF-8"', 'encoding="ISO-8859-1"', True),
    ("white space before the root", "?>", "?>\n \t\n", True),
    ("white space after the root", "</feed>", "</feed>\n\n", True),
    ("blank text between elements", "</entry>", "</entry>\n  ", True),
    ("text between elements", "</entry>", "</entry>junk", True),
    ("a gt in a skipped attribute value", "<title>", '<title type="a>b">', True),
    ("a comment after the root", "</feed>", "</feed><!-- c -->", False),
    ("a processing instruction before the root", "?>", "?><?pi x?>", False),
    ("CDATA in a title", "<title>", "<title><![CDATA[<entry>]]>", False),
    ("CR LF between elements", "</entry>", "</entry>\r\n", True),
    ("a CR in the feed id", ":3</id>", "\r:3</id>", False),
    ("a character reference in the feed id", "net-7", "net&#45;7", False),
    ("a tab in an href", "ReadingType/", "ReadingType\t/", False),
    ("a line feed in an href", "ReadingType/", "ReadingType\n/", False),
    ("a CR in an href", "ReadingType/", "ReadingType\r/", False),
    ("a character reference in an href", 'href="/', 'href="&#47;', False),
    ("non-ASCII white space at the end of an href", '1"/>', '1\u00a0"/>', False),
    ("a rel in single quotes", 'rel="self"', "rel='self'", False),
    ("white space inside a tag", "<entry>", "<entry >", False),
    ("xml:space on a content", "<content>", '<content xml:space="preserve">', False),
    ("a prefixed value in a reading", "<value>", PREFIXED_VALUE + "<value>", False),
    ("white space around a number", "<value>", "<value> ", False),
    ("two spaces in a resource's tag", "<MeterReading xmlns", "<MeterReading  xmlns", False),
]


@pytest.mark.parametrize(
    ("what", "old", "new", "read"), SOURCE_FORMS, ids=[form[0] for form in SOURCE_FORMS]
)
def test_what_differs_in_the_bytes_as_received_is_read_alike_or_declined(
    what: str, old: str, new: str, read: bool
) -> None:
    body = channel_upload(channels=CHANNELS[:3]).decode()
    assert old in body, what
    body = body.replace(old, new, 1)
    _, scanner_read = same_with_source(body.encode())
    assert scanner_read == read


@pytest.mark.parametrize("levels", [1, 3, 6])
@pytest.mark.parametrize(
    "where", ["<title>", "<interval>", "<ServiceCategory>", "<cost>", "<MeterReading", "</feed>"]
)
def test_the_scanner_counts_the_nesting_of_every_element(levels: int, where: str) -> None:
    """Elements nested `levels` deep inside elements the scanner skips at every depth it
    reads (feed, entry, resource, block, reading), empty ones at the bottom: its nesting
    is the tree's depth."""
    nest = (
        "".join(f"<x{k}>" for k in range(levels))
        + "<e/>"
        + "".join(f"</x{k}>" for k in reversed(range(levels)))
    )
    body = upload().decode()
    if where == "<MeterReading":  # inside the empty MeterReading, made open
        empty = f'<MeterReading xmlns="{ESPI_NS}"/>'
        body = body.replace(empty, f"{empty[:-2]}>{nest}</MeterReading>", 1)
    elif where == "</feed>":
        body = body.replace(where, nest + where, 1)
    else:
        body = body.replace(where, where + nest, 1)
    scanned = scan_source(body.encode())
    assert scanned.channels
    assert scanned.nesting == tree_depth(parse_upload(body.encode(), Limits(max_depth=200)))


#: What the property test below inserts into canonical uploads: markup the bytes as
#: received may hold where a serialization would write it otherwise, and elements the
#: scanner must read, skip or decline as the general path would.
ODD_MARKUP = [
    ">", "/>", '"', "'", "\r", "\r\n", "\t", "\n", "\u00a0", "&#47;", "&amp;", " ", "x",
    "<!-- c -->", "<?pi x?>", "<![CDATA[<a>]]>", ' xmlns=""', ' a=">"', ' a="/>"',
    '<x a="q>"/>', '<y b="/>"></y>', "<e/>", "<x><e/></x>", f'<q:e xmlns:q="{ESPI_NS}"/>',
    "<ReadingQuality><quality>8</quality></ReadingQuality>", JUNK_BLOCK,
    "<IntervalReading>", "</IntervalReading>", "<value>1</value>", '<link rel="up" href="/x"/>',
]  # fmt: skip


def canonical_uploads() -> list[bytes]:
    """Uploads the scanner reads: one and three channels, a shuffled one, the twin's."""
    bodies = [upload(), upload(shuffled=True), channel_upload(channels=CHANNELS[:3], n=4)]
    espi = pytest.importorskip("meters.espi")
    espi_upload = pytest.importorskip("meters.espi_upload")
    starts = T0 + 60 * np.arange(5, dtype=np.int64)
    channel = espi.Channel(espi.ReadingTypeSpec(), np.arange(5) * 3)
    bodies.append(espi_upload.encode_meter_upload("pv-9", 2, starts, [channel], T0))
    assert all(scan_source(body).channels for body in bodies)
    return bodies


@st.composite
def altered_uploads(draw: st.DrawFn) -> bytes:
    """A canonical upload with one to three pieces of `ODD_MARKUP` inserted, mostly where
    markup begins or ends (before a ``<``, after a ``>``, after an ``="``), else anywhere."""
    body = bytearray(draw(st.sampled_from(CANONICAL_UPLOADS)))
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            at = draw(st.integers(0, len(body)))
        else:
            marks = [m.end() if m[0] != b"<" else m.start() for m in MARKS.finditer(body)]
            at = draw(st.sampled_from(marks))
        body[at:at] = draw(st.sampled_from(ODD_MARKUP)).encode()
    return bytes(body)


CANONICAL_UPLOADS = canonical_uploads()
MARKS = re.compile(rb'<|>|="')


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=altered_uploads())
def test_whatever_the_bytes_hold_the_scan_agrees_with_the_general_path(body: bytes) -> None:
    """On any well-formed alteration of a canonical upload, what extract_batches gives
    with the scan of the bytes is what it gives without (and the scanner's nesting is the
    tree's): the scanner reads it alike or declines."""
    try:
        parse_upload(body)
    except RejectedUpload:
        return  # not well-formed: what the scan read is never used
    same_with_source(body)
