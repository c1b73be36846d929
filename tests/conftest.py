"""Shared fixtures: the `../shared` data folder and the offline ESPI schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = (PROJECT_ROOT / ".." / "shared").resolve()
GREENBUTTON_DIR = SHARED_DIR / "data" / "greenbutton"
SCHEMA_DIR = SHARED_DIR / "data" / "espi-schema"

#: atom.xsd imports the W3C xml namespace schema from this remote address; we map it to the
#: local copy so that validation never touches the network.
_REMOTE_XML_XSD = "http://www.w3.org/2001/03/xml.xsd"


class _LocalXmlXsdResolver(etree.Resolver):
    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        if system_url == _REMOTE_XML_XSD:
            return self.resolve_filename(str(SCHEMA_DIR / "xml.xsd"), context)
        return None


def load_espi_schema() -> etree.XMLSchema:
    """Compile `espiDerived.xsd` (which imports atom.xsd) offline."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_LocalXmlXsdResolver())
    doc = etree.parse(str(SCHEMA_DIR / "espiDerived.xsd"), parser)
    return etree.XMLSchema(doc)


@pytest.fixture(scope="session")
def espi_schema() -> etree.XMLSchema:
    if not SCHEMA_DIR.is_dir():
        pytest.fail(
            f"ESPI schema folder missing: {SCHEMA_DIR} (../shared must sit beside the checkout)"
        )
    return load_espi_schema()


@pytest.fixture(scope="session")
def greenbutton_dir() -> Path:
    if not GREENBUTTON_DIR.is_dir():
        pytest.fail(f"Green Button sample folder missing: {GREENBUTTON_DIR}")
    return GREENBUTTON_DIR
