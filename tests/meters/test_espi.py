"""ESPI upload encoder (and the energy quantisation that feeds it), against the ESPI XSD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from meters.energy import INT48_MAX, interval_energy_wh, quantise_register
from meters.espi import ReadingTypeSpec, encode_upload

NS = {"a": "http://www.w3.org/2005/Atom", "e": "http://naesb.org/espi"}
READING_STARTS = etree.XPath(
    "//e:IntervalReading/e:timePeriod/e:start/text()", namespaces=NS, smart_strings=False
)
READING_VALUES = etree.XPath(
    "//e:IntervalReading/e:value/text()", namespaces=NS, smart_strings=False
)
T0 = 1_782_000_000  # 2026-06-21T00:00:00Z


def upload(
    n: int, spec: ReadingTypeSpec | None = None, seq: int = 3
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """An upload of n readings with random values, and its starts and values."""
    spec = spec or ReadingTypeSpec()
    rng = np.random.default_rng(n)
    starts = T0 + spec.interval_length_s * np.arange(n, dtype=np.int64)
    values = rng.integers(-(10**9), 10**12, n, dtype=np.int64)
    return encode_upload("pv-site_01.m", seq, spec, starts, values, T0 + 7200), starts, values


@pytest.mark.parametrize("n", [1, 15, 1440])
@pytest.mark.parametrize(
    "spec",
    [
        ReadingTypeSpec(),
        ReadingTypeSpec(flow_direction=19, power_of_ten_multiplier=-3, interval_length_s=900),
    ],
)
def test_uploads_are_valid_espi(
    espi_schema: etree.XMLSchema, n: int, spec: ReadingTypeSpec
) -> None:
    doc, _, _ = upload(n, spec)
    assert doc.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    espi_schema.assertValid(etree.fromstring(doc))


def test_round_trip_recovers_every_reading_and_the_reading_type() -> None:
    spec = ReadingTypeSpec(flow_direction=19, power_of_ten_multiplier=-3, interval_length_s=900)
    doc, starts, values = upload(96, spec, seq=42)
    root = etree.fromstring(doc)
    np.testing.assert_array_equal(np.array(READING_STARTS(root), dtype=np.int64), starts)
    np.testing.assert_array_equal(np.array(READING_VALUES(root), dtype=np.int64), values)
    assert root.findtext("a:id", namespaces=NS) == "urn:imdc:upload:pv-site_01.m:42"
    assert root.findtext("a:updated", namespaces=NS) == "2026-06-21T02:00:00Z"
    rt = root.find(".//e:ReadingType", NS)
    assert rt is not None
    got = {etree.QName(child).localname: int(child.text or "") for child in rt}
    assert got == {
        "accumulationBehaviour": 4, "commodity": 1, "flowDirection": 19, "intervalLength": 900,
        "kind": 12, "powerOfTenMultiplier": -3, "uom": 72,
    }  # fmt: skip
    assert [int(x) for x in root.xpath("//e:IntervalReading/e:timePeriod/e:duration/text()",
                                       namespaces=NS)] == [900] * 96  # fmt: skip
    interval = root.find(".//e:IntervalBlock/e:interval", NS)
    assert interval is not None
    assert int(interval.findtext("e:start", namespaces=NS) or "") == starts[0]
    assert int(interval.findtext("e:duration", namespaces=NS) or "") == 96 * 900
    assert root.findtext(".//e:ServiceCategory/e:kind", namespaces=NS) == "0"
    self_links = root.xpath("//a:entry/a:link[@rel='self']/@href", namespaces=NS)
    assert self_links[0].endswith("/UsagePoint/pv-site_01.m")


def test_same_xpaths_read_a_real_green_button_file(greenbutton_dir: Path) -> None:
    root = etree.parse(str(greenbutton_dir / "nist_15minLP_15Days.xml")).getroot()
    starts, values = READING_STARTS(root), READING_VALUES(root)
    assert len(starts) == len(values) > 1000
    assert int(starts[1]) - int(starts[0]) == 900 and int(values[0]) == 324


def test_output_is_deterministic() -> None:
    a, _, _ = upload(15)
    b, _, _ = upload(15)
    assert a == b
    c, _, _ = upload(15, seq=4)
    ids_a = etree.fromstring(a).xpath("//a:entry/a:id/text()", namespaces=NS)
    ids_c = etree.fromstring(c).xpath("//a:entry/a:id/text()", namespaces=NS)
    assert ids_a[:3] == ids_c[:3] and ids_a[3] != ids_c[3]  # a new IntervalBlock per upload
    assert len(set(ids_a)) == 4


def test_schema_checks_the_espi_content(espi_schema: etree.XMLSchema) -> None:
    """atom:content is xs:any ##other with strict processing, so ESPI content is validated."""
    doc, _, _ = upload(15)
    first_value = READING_VALUES(etree.fromstring(doc))[0].encode()
    broken = [
        doc.replace(b"<value>" + first_value + b"</value>", b"<value>abc</value>", 1),
        doc.replace(b"<uom>72</uom>", b"<uom>72</uom><kind>12</kind>", 1),  # order
        doc.replace(b"<flowDirection>1<", b"<flowDirection>-1<", 1),  # not a UInt16
        doc.replace(b"<MeterReading xmlns", b"<MeterReadings xmlns", 1).replace(
            b"<MeterReading", b"<MeterReadings", 1),  # undeclared element
    ]  # fmt: skip
    for bad in broken:
        assert bad != doc
        assert not espi_schema.validate(etree.fromstring(bad))


@pytest.mark.parametrize(
    "meter_id", ["", "a b", "a<b", 'x"/><evil', "m\n", "métro", "x" * 65, "a&amp;b"]
)
def test_unsafe_meter_ids_are_rejected(meter_id: str) -> None:
    with pytest.raises(ValueError, match="meter_id"):
        encode_upload(meter_id, 0, ReadingTypeSpec(), np.array([T0]), np.array([1]), T0)


@pytest.mark.parametrize(
    ("starts", "values"),
    [
        (np.array([T0]), np.array([1.5])),  # float values are not register values
        (np.array([T0, T0 + 60]), np.array([1])),  # length mismatch
        (np.array([], dtype=np.int64), np.array([], dtype=np.int64)),
        (np.array([T0]), np.array([INT48_MAX + 1])),
    ],
)
def test_bad_readings_are_rejected(starts: np.ndarray, values: np.ndarray) -> None:
    with pytest.raises(ValueError):
        encode_upload("m1", 0, ReadingTypeSpec(), starts, values, T0)


def test_bad_reading_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="UnitMultiplierKind"):
        ReadingTypeSpec(power_of_ten_multiplier=-4)
    with pytest.raises(ValueError):
        ReadingTypeSpec(interval_length_s=0)


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
