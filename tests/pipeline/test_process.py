"""ESPI upload to reading columns: real Green Button files, both namespace styles, any
element order, and every rejection."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from pipeline.fetch import RejectedUpload, parse_upload
from pipeline.process import MAX_METER_ID_CHARS, ReadingBatch, extract_readings

ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"
E = f"{{{ESPI_NS}}}"
T0 = 1_782_000_000  # 2026-06-21T00:00:00Z
RT_FIELDS: dict[str, object] = {
    "flowDirection": 19,
    "intervalLength": 900,
    "powerOfTenMultiplier": -3,
    "uom": 72,
}

Reading = tuple[object, object, object]  # (start, duration, value) as written in the XML


def readings(n: int, value0: int = 300) -> list[Reading]:
    return [(T0 + 900 * i, 900, value0 + 7 * i) for i in range(n)]


def resource(name: str, inner: str, prefixed: bool) -> str:
    """An ESPI resource in default-namespace or ``espi:``-prefixed style."""
    if prefixed:
        inner = inner.replace("<", "<espi:").replace("<espi:/", "</espi:")
        return f'<espi:{name} xmlns:espi="{ESPI_NS}">{inner}</espi:{name}>'
    return f'<{name} xmlns="{ESPI_NS}">{inner}</{name}>'


def interval_reading(reading: Reading, shuffled: bool) -> str:
    start, duration, value = reading
    parts = [f"<duration>{duration}</duration>", f"<start>{start}</start>"]
    period = f"<timePeriod>{''.join(reversed(parts) if shuffled else parts)}</timePeriod>"
    fields = ["<cost>17</cost>", period, f"<value>{value}</value>"]
    return f"<IntervalReading>{''.join(reversed(fields) if shuffled else fields)}</IntervalReading>"


def entry(self_href: str, content: str) -> str:
    return (
        f'<entry><id>urn:x:{self_href}</id><link rel="self" href="{self_href}"/>'
        f'<link rel="up" href="/espi/1_1/resource"/><title/><content>{content}</content></entry>'
    )


def upload(
    blocks: Sequence[Sequence[Reading]] = (readings(15),),
    *,
    feed_id: str = "urn:imdc:upload:m-1:7",
    meter: str | None = "m-1",
    reading_types: Sequence[dict[str, object]] = (RT_FIELDS,),
    prefixed: bool = False,
    shuffled: bool = False,
) -> bytes:
    """A Green Button upload like the twin's: UsagePoint, MeterReading, ReadingType(s) and
    IntervalBlock(s), each in its own Atom entry. `shuffled` reverses the order of the
    entries and of the children inside every resource (readings stay in time order, and
    the block's interval moves after them); `meter` None leaves out the UsagePoint."""
    base = "/espi/1_1/resource/RetailCustomer/9/UsagePoint"
    entries = []
    if meter is not None:
        up = resource("UsagePoint", "<ServiceCategory><kind>0</kind></ServiceCategory>", prefixed)
        entries.append(entry(f"{base}/{meter}", up))
    entries.append(entry(f"{base}/{meter}/MeterReading/1", resource("MeterReading", "", prefixed)))
    for i, fields in enumerate(reading_types):
        items = [f"<{k}>{v}</{k}>" for k, v in fields.items()]
        inner = "".join(reversed(items) if shuffled else items)
        entries.append(
            entry(f"/espi/1_1/resource/ReadingType/{i}", resource("ReadingType", inner, prefixed))
        )
    for i, block in enumerate(blocks):
        interval = "<interval><duration>86400</duration><start>0</start></interval>"
        reading_xml = [interval_reading(r, shuffled) for r in block]
        inner = "".join([*reading_xml, interval] if shuffled else [interval, *reading_xml])
        entries.append(
            entry(
                f"{base}/{meter}/MeterReading/1/IntervalBlock/{i}",
                resource("IntervalBlock", inner, prefixed),
            )
        )
    if shuffled:
        entries.reverse()
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="{ATOM_NS}"><id>{feed_id}</id>'
        f"<title>upload</title>{''.join(entries)}</feed>"
    ).encode()


def extract(body: bytes) -> ReadingBatch:
    return extract_readings(parse_upload(body))


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
    fields = {"uom": " 72 ", "intervalLength": "\n3600\n"}  # no multiplier, no flow direction
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
        ("pge_electric_hourly_netmetering_redacted.xml", "multiple_reading_types"),
        ("nist_1hrLP_32DaysFiveUsagePoints_M.xml", "multiple_usage_points"),
    ],
)
def test_multi_series_files_are_rejected(greenbutton_dir: Path, name: str, code: str) -> None:
    error = rejected((greenbutton_dir / name).read_bytes())
    assert error.code == code
    assert "one series" in error.reason


# --- rejections -----------------------------------------------------------------------------


def test_no_reading_type() -> None:
    error = rejected(upload(reading_types=[]))
    assert error.code == "no_reading_type"
    assert (error.meter_id, error.sequence_no) == ("m-1", 7)


def test_more_than_one_reading_type() -> None:
    error = rejected(upload(reading_types=[RT_FIELDS, RT_FIELDS]))
    assert error.code == "multiple_reading_types"
    assert "one series" in error.reason


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
        f"{resource('IntervalBlock', interval_reading(readings(1)[0], False), False)}"
        "</content></entry>"
    ).encode()
    error = rejected(body)
    assert error.code == "no_reading_type"
    assert (error.meter_id, error.sequence_no) == ("m-1", 3)
