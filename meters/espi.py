"""ESPI (NAESB REQ.21, Green Button) XML encoder for one meter upload.

One upload is an Atom feed (RFC 4287) holding four entries, as real Green Button files do
(see ../shared/data/greenbutton): UsagePoint, MeterReading, ReadingType and one
IntervalBlock with the readings. The ESPI resources sit in ``<content>`` in the default
namespace ``http://naesb.org/espi``; element order follows ``espiDerived.xsd``. Generated
with f-strings (about 10x faster than an lxml element builder); the only free text, the
meter id, is a validated token, and every other field is an integer, so no escaping is
needed and no XML can be injected. Output is deterministic: identical inputs give identical
bytes (entry ids are uuid5 of the meter id and role, times come from the arguments).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from meters.energy import INT48_MAX, INT48_MIN

ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"
#: Resource URI prefix of the links (ESPI 1.1 REST style, relative).
RESOURCE_BASE = "/espi/1_1/resource"
#: uuid5 namespace of this project's entry ids.
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:imdc:espi")
_UUID_NAMESPACE_BYTES = UUID_NAMESPACE.bytes

_METER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: espiDerived.xsd UnitMultiplierKind enumeration.
_UNIT_MULTIPLIERS = frozenset({-12, -9, -6, -3, -2, -1, 0, 1, 2, 3, 6, 9, 12})
_UINT32_MAX = 2**32 - 1


@dataclass(frozen=True)
class ReadingTypeSpec:
    """ESPI ReadingType of an upload (codes from espiDerived.xsd enumerations)."""

    uom: int = 72  # 72 = Wh (ESPI UnitSymbolKind)
    power_of_ten_multiplier: int = 0  # UnitMultiplierKind: value * 10**m uom
    interval_length_s: int = 60
    flow_direction: int = 1  # 1 forward (delivered), 19 reverse (received from the site)
    accumulation_behaviour: int = 4  # AccumulationKind 4 = deltaData
    commodity: int = 1  # CommodityKind 1 = electricity SecondaryMetered
    kind: int = 12  # MeasurementKind 12 = energy
    service_kind: int = 0  # UsagePoint ServiceCategory kind 0 = electricity

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"ReadingTypeSpec.{f.name} must be an int code, got {value!r}")
        if self.power_of_ten_multiplier not in _UNIT_MULTIPLIERS:
            raise ValueError(
                f"power_of_ten_multiplier {self.power_of_ten_multiplier} is not an ESPI "
                f"UnitMultiplierKind {sorted(_UNIT_MULTIPLIERS)}"
            )
        if not 0 < self.interval_length_s <= _UINT32_MAX:
            raise ValueError(f"interval_length_s must be in 1..{_UINT32_MAX}")


@lru_cache(maxsize=64)
def _reading_type_xml(spec: ReadingTypeSpec) -> str:
    """ReadingType content in the XSD's sequence order (accumulationBehaviour .. uom)."""
    return (
        f'<ReadingType xmlns="{ESPI_NS}">'
        f"<accumulationBehaviour>{spec.accumulation_behaviour}</accumulationBehaviour>"
        f"<commodity>{spec.commodity}</commodity>"
        f"<flowDirection>{spec.flow_direction}</flowDirection>"
        f"<intervalLength>{spec.interval_length_s}</intervalLength>"
        f"<kind>{spec.kind}</kind>"
        f"<powerOfTenMultiplier>{spec.power_of_ten_multiplier}</powerOfTenMultiplier>"
        f"<uom>{spec.uom}</uom></ReadingType>"
    )


def _entry_id(meter_id: str, role: str) -> str:
    """``urn:uuid:`` + RFC 4122 uuid5(UUID_NAMESPACE, "{meter_id}/{role}").

    Same value as :func:`uuid.uuid5`, computed directly (4x faster than building a UUID).
    """
    digest = bytearray(
        hashlib.sha1(
            _UUID_NAMESPACE_BYTES + f"{meter_id}/{role}".encode(), usedforsecurity=False
        ).digest()
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = digest[:16].hex()
    return f"urn:uuid:{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


@lru_cache(maxsize=4096)
def _iso8601_utc(epoch_s: int) -> str:
    """Atom date-time (RFC 3339, UTC 'Z') of an epoch second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


@lru_cache(maxsize=1 << 16)
def _meter_ids(meter_id: str) -> tuple[str, str, str]:
    """(UsagePoint, MeterReading, ReadingType) entry ids of a meter; validates the id."""
    if not isinstance(meter_id, str) or not _METER_ID.fullmatch(meter_id):
        raise ValueError(
            f"meter_id {meter_id!r} must be 1-64 characters of letters, digits, '-', '_', '.'"
        )
    return (
        _entry_id(meter_id, "UsagePoint"),
        _entry_id(meter_id, "MeterReading"),
        _entry_id(meter_id, "ReadingType"),
    )


def _int_list(array: np.ndarray, name: str) -> list[int]:
    a = np.asarray(array)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D integer array, got {a.dtype} of shape {a.shape}")
    out: list[int] = a.tolist()
    return out


def encode_upload(
    meter_id: str,
    sequence_no: int,
    reading_type: ReadingTypeSpec,
    interval_start_epoch_s: np.ndarray,
    values: np.ndarray,
    created_epoch_s: int,
) -> bytes:
    """One meter upload as ESPI XML, UTF-8 bytes with an XML declaration.

    ``interval_start_epoch_s`` (epoch s, UTC) and ``values`` (register values in units of
    ``10**power_of_ten_multiplier`` uom, e.g. from :func:`meters.energy.quantise_register`)
    are 1-D integer arrays of equal, non-zero length. The feed id is
    ``urn:imdc:upload:{meter_id}:{sequence_no}``; ``created_epoch_s`` gives the feed's and
    entries' published/updated times. The IntervalBlock's interval covers all readings.
    Raises ValueError on an unsafe meter id or values outside the ESPI types' ranges.
    """
    up_id, mr_id, rt_id = _meter_ids(meter_id)
    starts = _int_list(interval_start_epoch_s, "interval_start_epoch_s")
    vals = _int_list(values, "values")
    if not starts or len(starts) != len(vals):
        raise ValueError(f"need >= 1 reading and equal lengths, got {len(starts)}, {len(vals)}")
    if min(vals) < INT48_MIN or max(vals) > INT48_MAX:
        raise ValueError("a value is outside the ESPI Int48 range")
    seq = int(sequence_no)
    if seq < 0 or seq != sequence_no:
        raise ValueError(f"sequence_no must be a non-negative integer, got {sequence_no!r}")
    dur = reading_type.interval_length_s
    block_start = min(starts)
    block_duration = max(starts) + dur - block_start
    if block_duration > _UINT32_MAX:
        raise ValueError("readings span more than an ESPI UInt32 duration")
    ts = _iso8601_utc(int(created_epoch_s))
    times = f"<published>{ts}</published><updated>{ts}</updated>"
    up = f"{RESOURCE_BASE}/UsagePoint/{meter_id}"
    mr = f"{up}/MeterReading/1"
    rt = f"{RESOURCE_BASE}/ReadingType/{meter_id}"
    head = f"<IntervalReading><timePeriod><duration>{dur}</duration><start>"
    readings = "\n".join(
        [
            f"{head}{s}</start></timePeriod><value>{v}</value></IntervalReading>"
            for s, v in zip(starts, vals, strict=True)
        ]
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="{ATOM_NS}">\n'
        f"<id>urn:imdc:upload:{meter_id}:{seq}</id>\n"
        f"<title>IMDC meter {meter_id} upload {seq}</title>\n<updated>{ts}</updated>\n"
        f'<entry><id>{up_id}</id><link rel="self" href="{up}"/>'
        f'<link rel="up" href="{RESOURCE_BASE}/UsagePoint"/>'
        f'<link rel="related" href="{up}/MeterReading"/><title>{meter_id}</title>{times}'
        f'<content><UsagePoint xmlns="{ESPI_NS}"><ServiceCategory><kind>'
        f"{reading_type.service_kind}</kind></ServiceCategory></UsagePoint></content></entry>\n"
        f'<entry><id>{mr_id}</id><link rel="self" href="{mr}"/>'
        f'<link rel="up" href="{up}/MeterReading"/>'
        f'<link rel="related" href="{mr}/IntervalBlock"/><link rel="related" href="{rt}"/>'
        f"<title>Interval energy</title>{times}"
        f'<content><MeterReading xmlns="{ESPI_NS}"/></content></entry>\n'
        f'<entry><id>{rt_id}</id><link rel="self" href="{rt}"/>'
        f'<link rel="up" href="{RESOURCE_BASE}/ReadingType"/>'
        f"<title>Type of meter reading data</title>{times}"
        f"<content>{_reading_type_xml(reading_type)}</content></entry>\n"
        f"<entry><id>{_entry_id(meter_id, f'IntervalBlock/{seq}')}</id>"
        f'<link rel="self" href="{mr}/IntervalBlock/{seq}"/>'
        f'<link rel="up" href="{mr}/IntervalBlock"/><title>Upload {seq}</title>{times}'
        f'<content><IntervalBlock xmlns="{ESPI_NS}"><interval><duration>{block_duration}'
        f"</duration><start>{block_start}</start></interval>\n{readings}\n</IntervalBlock>"
        f"</content></entry>\n</feed>\n"
    ).encode()
