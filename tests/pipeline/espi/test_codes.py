"""The ESPI codes the pipeline acts on, against the enumerations of ``espiDerived.xsd``."""

from __future__ import annotations

from lxml import etree

from pipeline.espi.codes import (
    QUALITY_ESTIMATED_LINEAR,
    QUALITY_ESTIMATED_REFERENCE_DAY,
    QUALITY_MIXED,
    QUALITY_OF_READING,
    QUALITY_QUESTIONABLE,
    QUALITY_VALID,
)
from tests.conftest import SCHEMA_DIR


def test_quality_codes_are_the_espi_enumeration() -> None:
    xsd = etree.parse(str(SCHEMA_DIR / "espiDerived.xsd"))
    xs = "{http://www.w3.org/2001/XMLSchema}"
    [quality_type] = [t for t in xsd.iter(f"{xs}simpleType") if t.get("name") == "QualityOfReading"]
    from_xsd = {
        int(e.get("value", "-1")): e.findtext(f"{xs}annotation/{xs}appinfo")
        for e in quality_type.iter(f"{xs}enumeration")
    }
    assert from_xsd == dict(QUALITY_OF_READING)
    assert QUALITY_OF_READING[QUALITY_VALID] == "valid"
    assert QUALITY_OF_READING[QUALITY_ESTIMATED_REFERENCE_DAY] == "estimated using reference day"
    assert QUALITY_OF_READING[QUALITY_ESTIMATED_LINEAR] == "estimated using linear interpolation"
    assert QUALITY_OF_READING[QUALITY_QUESTIONABLE] == "questionable"
    assert QUALITY_OF_READING[QUALITY_MIXED] == "mixed"
