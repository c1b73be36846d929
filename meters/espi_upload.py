"""The meter upload as ESPI (NAESB REQ.21, Green Button) XML: the encoder, and the size of
an upload without writing it (``model`` mode's uploads left out of its sample).

One upload is one Atom feed (RFC 4287), UTF-8 with an XML declaration, with the entries and
links that real Green Button files use (see ../shared/data/greenbutton: NIST/GBA samples and
PG&E's net-metering feed), in the project's meter upload layout. With
``RB = /espi/1_1/resource``, meter ``m`` and upload sequence number ``seq``:

1. UsagePoint ``{RB}/UsagePoint/{m}`` (up ``{RB}/UsagePoint``; related ``.../MeterReading``
   and, when local time is given, ``{RB}/LocalTimeParameters/{m}``), content
   ``UsagePoint/ServiceCategory/kind``;
2. optional LocalTimeParameters ``{RB}/LocalTimeParameters/{m}`` (up ``{RB}/LocalTimeParameters``);
3. per channel k = 1..K: MeterReading ``{RB}/UsagePoint/{m}/MeterReading/{k}`` (related its
   ``IntervalBlock`` collection and ``{RB}/ReadingType/{m}/{k}``), ReadingType
   ``{RB}/ReadingType/{m}/{k}`` (up ``{RB}/ReadingType``) and IntervalBlock
   ``{RB}/UsagePoint/{m}/MeterReading/{k}/IntervalBlock/{seq}``. All channels share the
   interval starts; an IntervalReading may carry a ReadingQuality (QualityOfReading code).

The feed id is ``urn:imdc:upload:{m}:{seq}``. ESPI resources sit in ``<content>`` in the
default namespace ``http://naesb.org/espi``; element order follows ``espiDerived.xsd``.

Generated with f-strings (about 10x faster than an lxml element builder). The only free text,
the meter id (and a LocalTimeSpec's zone name), is a validated token and every other field is
an integer or a name from :mod:`meters.espi`'s constant tables, so no escaping is needed and no XML
can be injected. Output is deterministic: identical inputs give identical bytes; an entry's
id is the RFC 4122 uuid5 of its self link in :data:`meters.espi.UUID_NAMESPACE`; times come from the
arguments.

The vocabulary (code tables, ReadingTypeSpec, Channel, LocalTimeSpec) is in
:mod:`meters.espi`.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType

import numpy as np
from numba import njit

from meters.energy import INT48_MAX, INT48_MIN
from meters.espi import (
    ATOM_NS,
    ESPI_NS,
    NO_QUALITY,
    QUALITY_OF_READING,
    RESOURCE_BASE,
    SERVICE_KIND,
    TYPE_CHECKS,
    UINT32_MAX,
    UUID_NAMESPACE,
    Channel,
    LocalTimeSpec,
    ReadingTypeSpec,
)

__all__ = ["encode_meter_upload", "encode_upload", "meter_upload_size"]

_METER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@lru_cache(maxsize=64)
def _local_time_xml(spec: LocalTimeSpec) -> str:
    """LocalTimeParameters content (XSD order: dstEndRule, dstOffset, dstStartRule, tzOffset)."""
    return (
        f'<LocalTimeParameters xmlns="{ESPI_NS}">'
        f"<dstEndRule>{spec.dst_end_rule:08X}</dstEndRule>"
        f"<dstOffset>{spec.dst_offset_s}</dstOffset>"
        f"<dstStartRule>{spec.dst_start_rule:08X}</dstStartRule>"
        f"<tzOffset>{spec.tz_offset_s}</tzOffset></LocalTimeParameters>"
    )


#: sha1 state after the uuid5 namespace bytes; RFC 4122 variant digit by first hex digit.
_NAMESPACE_SHA1 = hashlib.sha1(UUID_NAMESPACE.bytes, usedforsecurity=False)
_VARIANT_DIGIT = {d: format((int(d, 16) & 0x3) | 0x8, "x") for d in "0123456789abcdef"}


def _entry_id(self_href: str) -> str:
    """``urn:uuid:`` + RFC 4122 uuid5(UUID_NAMESPACE, self_href).

    Same value as :func:`uuid.uuid5`, computed directly (faster than building a UUID).
    """
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(self_href.encode())
    x = sha1.hexdigest()
    return f"urn:uuid:{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT_DIGIT[x[16]]}{x[17:20]}-{x[20:32]}"


@lru_cache(maxsize=4096)
def _iso8601_utc(epoch_s: int) -> str:
    """Atom date-time (RFC 3339, UTC 'Z') of an epoch second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


#: Epoch seconds of 1000-01-01 and 10000-01-01 UTC: `_iso8601_utc` of the seconds between
#: has a four-digit year, so 20 characters.
_FOUR_DIGIT_YEARS_S = (-30_610_224_000, 253_402_300_800)


def _iso8601_utc_chars(epoch_s: int) -> int:
    """``len(_iso8601_utc(epoch_s))`` (written out only outside the four-digit years)."""
    if _FOUR_DIGIT_YEARS_S[0] <= epoch_s < _FOUR_DIGIT_YEARS_S[1]:
        return 20
    return len(_iso8601_utc(epoch_s))


@lru_cache(maxsize=1 << 16)
def _meter_ids(meter_id: str) -> tuple[str, str]:
    """(UsagePoint, LocalTimeParameters) entry ids of a meter; validates the id."""
    if not isinstance(meter_id, str) or not _METER_ID.fullmatch(meter_id):
        raise ValueError(
            f"meter_id {meter_id!r} must be 1-64 characters of letters, digits, '-', '_', '.'"
        )
    return (
        _entry_id(f"{RESOURCE_BASE}/UsagePoint/{meter_id}"),
        _entry_id(f"{RESOURCE_BASE}/LocalTimeParameters/{meter_id}"),
    )


@lru_cache(maxsize=1 << 17)
def _channel_ids(meter_id: str, k: int) -> tuple[str, str]:
    """(MeterReading, ReadingType) entry ids of channel k of a (validated) meter."""
    return (
        _entry_id(f"{RESOURCE_BASE}/UsagePoint/{meter_id}/MeterReading/{k}"),
        _entry_id(f"{RESOURCE_BASE}/ReadingType/{meter_id}/{k}"),
    )


@lru_cache(maxsize=64)
def _reading_heads(duration_s: int) -> Mapping[int, str]:
    """IntervalReading opening up to ``<start>``, by QualityOfReading code (or NO_QUALITY)."""
    tail = f"<timePeriod><duration>{duration_s}</duration><start>"
    heads = {
        code: f"<IntervalReading><ReadingQuality><quality>{code}</quality></ReadingQuality>{tail}"
        for code in QUALITY_OF_READING
    }
    heads[NO_QUALITY] = f"<IntervalReading>{tail}"
    return MappingProxyType(heads)


def _integer_array(array: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D integer array, got {a.dtype} of shape {a.shape}")
    return a


def _int_list(array: np.ndarray, name: str) -> list[int]:
    out: list[int] = _integer_array(array, name).tolist()
    return out


#: Text of an IntervalReading between its start and its value, and after its value.
_READING_MID = "</start></timePeriod><value>"
_READING_END = "</value></IntervalReading>"


def _readings_xml(
    k: int, values_array: np.ndarray, quality_array: np.ndarray | None, starts: list[int],
    duration_s: int,
) -> str:
    """The IntervalReadings of channel k, one per line."""
    values = _int_list(values_array, f"channel {k} values")
    _check_values(k, values, len(starts))
    heads = _reading_heads(duration_s)
    if quality_array is None:
        head = heads[NO_QUALITY]
        return "\n".join(
            [
                f"{head}{s}{_READING_MID}{v}{_READING_END}"
                for s, v in zip(starts, values, strict=True)
            ]
        )
    quality = _int_list(quality_array, f"channel {k} quality")
    _check_quality(k, len(quality), quality, len(starts), heads)
    return "\n".join(
        [
            f"{heads[q]}{s}{_READING_MID}{v}{_READING_END}"
            for q, s, v in zip(quality, starts, values, strict=True)
        ]
    )


def _check_values(k: int, values: list[int] | np.ndarray, n_starts: int) -> None:
    if len(values) != n_starts:
        raise ValueError(f"channel {k} has {len(values)} values for {n_starts} interval starts")
    low, high = (
        (int(values.min()), int(values.max()))
        if isinstance(values, np.ndarray)
        else (min(values), max(values))
    )
    if low < INT48_MIN or high > INT48_MAX:
        raise ValueError(f"channel {k}: a value is outside the ESPI Int48 range")


def _check_quality(
    k: int, n_quality: int, codes: list[int], n_starts: int, heads: Mapping[int, str]
) -> None:
    """``n_quality`` codes, of which ``codes`` (all, or each distinct one), for ``n_starts``
    readings."""
    if n_quality != n_starts:
        raise ValueError(f"channel {k} has {n_quality} quality codes for {n_starts} readings")
    if bad := set(codes).difference(heads):
        raise ValueError(
            f"channel {k} quality codes {sorted(bad)[:5]} are not ESPI QualityOfReading codes "
            f"{sorted(QUALITY_OF_READING)} nor NO_QUALITY ({NO_QUALITY})"
        )


def _checked_series(
    channels: Sequence[Channel], local_time: LocalTimeSpec | None, service_kind: int
) -> list[tuple[ReadingTypeSpec, np.ndarray, np.ndarray | None]]:
    """(reading type, values, quality) per channel, after the checks that need no values."""
    if not channels:
        raise ValueError("an upload needs at least one channel")
    series = []
    for k, channel in enumerate(channels, 1):
        if not isinstance(channel, Channel):
            raise ValueError(f"channel {k} must be a Channel, got {type(channel).__name__}")
        series.append((channel.reading_type, channel.values, channel.quality))
    if local_time is not None and not isinstance(local_time, LocalTimeSpec):
        raise ValueError(f"local_time must be a LocalTimeSpec, got {type(local_time).__name__}")
    if isinstance(service_kind, bool) or service_kind not in SERVICE_KIND:
        raise ValueError(f"service_kind {service_kind!r} {TYPE_CHECKS['ServiceKind'](-1)}")
    if len(series) > 1 and len({spec.xml_parts[1] for spec, _, _ in series}) < len(series):
        raise ValueError("two channels have the same ReadingType")
    return series


def encode_meter_upload(
    meter_id: str,
    sequence_no: int,
    interval_start_epoch_s: np.ndarray,
    channels: Sequence[Channel],
    created_epoch_s: int,
    local_time: LocalTimeSpec | None = None,
    service_kind: int = 0,
) -> bytes:
    """One meter upload of K >= 1 channels as ESPI XML, UTF-8 bytes with an XML declaration.

    ``interval_start_epoch_s``: 1-D integer array [n >= 1] of the intervals' starts (epoch s,
    UTC), shared by every channel. ``channels``: the series (distinct ReadingTypes with the
    same ``interval_length_s``), channel k = 1..K in this order, each with n values and
    optional per-reading quality. ``created_epoch_s`` gives the feed's and entries'
    published/updated times. ``local_time`` adds a LocalTimeParameters entry (and the
    UsagePoint's link to it). ``service_kind``: UsagePoint ServiceCategory kind (ServiceKind,
    0 electricity). Each IntervalBlock's interval covers all its readings.

    Raises ValueError on an unsafe meter id, bad codes or values outside the ESPI types.
    """
    series = _checked_series(channels, local_time, service_kind)
    return _encode(
        meter_id, sequence_no, interval_start_epoch_s, series, created_epoch_s, local_time,
        service_kind,
    )  # fmt: skip


def meter_upload_size(
    meter_id: str,
    sequence_no: int,
    interval_start_epoch_s: np.ndarray,
    channels: Sequence[Channel],
    created_epoch_s: int,
    local_time: LocalTimeSpec | None = None,
    service_kind: int = 0,
) -> int:
    """``len(encode_meter_upload(...))`` of the same arguments, bytes, without writing it:
    the document around the readings is laid out once per length of the meter id and of its
    numbers (cached), and the readings' lines are summed from the digits of their numbers (one
    compiled pass over each array). Raises the encoder's ValueErrors (the same checks; when
    several fail, the first may differ)."""
    series = _checked_series(channels, local_time, service_kind)
    starts = _integer_array(interval_start_epoch_s, "interval_start_epoch_s")
    n = int(starts.size)
    if n == 0:
        raise ValueError("an upload needs at least one reading")
    seq = _checked_sequence_no(sequence_no)
    first_start, last_start, starts_chars = _decimal_stats(_as_int64(starts))
    duration_s, block_duration = _block(series, first_start, last_start)
    heads = _reading_heads(duration_s)
    line_chars = len(heads[NO_QUALITY]) + len(_READING_MID) + len(_READING_END)
    _meter_ids(meter_id)  # the encoder's check of the id (cached)
    size = _frame_size(
        len(meter_id),
        tuple(spec.xml_parts for spec, _, _ in series),
        local_time,
        service_kind,
        len(str(seq)),
        _iso8601_utc_chars(int(created_epoch_s)),
        len(str(first_start)),
        len(str(block_duration)),
    )
    size += len(series) * (starts_chars + n * line_chars + n - 1)  # n - 1 newlines
    for k, (_, values, quality) in enumerate(series, 1):
        v = _integer_array(values, f"channel {k} values")
        if v.size != n:
            _check_values(k, v, n)
        lowest, highest, chars = _decimal_stats(_as_int64(v))
        if lowest < INT48_MIN or highest > INT48_MAX:
            _check_values(k, v, n)
        size += chars
        if quality is not None:  # a reading's head with its ReadingQuality instead
            q = _integer_array(quality, f"channel {k} quality")
            extra_chars = _table_sum(_as_int64(q), _quality_extra_chars(duration_s))
            if extra_chars < 0 or q.size != n:
                _check_quality(k, len(q), np.unique(q).tolist(), n, heads)
            size += extra_chars
    return size


def _as_int64(a: np.ndarray) -> np.ndarray:
    """Integer array ``a`` as int64 (ValueError for an unsigned value beyond int64: ESPI's
    widest integers, TimeType and Int48 values, are within)."""
    if a.dtype == np.int64:
        return a
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"an integer {int(a.max())} is beyond ESPI's Int64")
    return a.astype(np.int64)


@lru_cache(maxsize=64)
def _quality_extra_chars(duration_s: int) -> np.ndarray:
    """Characters a reading's head gains with a ReadingQuality, by QualityOfReading code
    (index: code - NO_QUALITY; -1 where no code is)."""
    heads = _reading_heads(duration_s)
    table = np.full(max(heads) - NO_QUALITY + 1, -1, dtype=np.int64)
    for code, head in heads.items():
        table[code - NO_QUALITY] = len(head) - len(heads[NO_QUALITY])
    return table


@njit(cache=True, nogil=True)
def _table_sum(codes: np.ndarray, table: np.ndarray) -> int:
    """Sum of ``table[code - NO_QUALITY]`` over int64 ``codes``; -1 if a code is not in it."""
    total = 0
    for code in codes:
        i = code - NO_QUALITY
        if i < 0 or i >= table.size or table[i] < 0:
            return -1
        total += table[i]
    return total


@njit(cache=True, nogil=True)
def _decimal_stats(a: np.ndarray) -> tuple[int, int, int]:
    """(lowest, highest, characters written in decimal) of the integers of int64 ``a``
    (non-empty): one pass, ``sum(len(str(x)))`` without writing them."""
    lowest = highest = a[0]
    chars = 0
    for x in a:
        lowest = min(lowest, x)
        highest = max(highest, x)
        if x < 0:  # |x| as uint64, right for int64 min too
            chars += 1
            magnitude = np.uint64(-(x + 1)) + np.uint64(1)
        else:
            magnitude = np.uint64(x)
        chars += 1
        while magnitude >= 10:
            magnitude //= np.uint64(10)
            chars += 1
    return lowest, highest, chars


def _checked_sequence_no(sequence_no: int) -> int:
    seq = int(sequence_no)
    if seq < 0 or seq != sequence_no:
        raise ValueError(f"sequence_no must be a non-negative integer, got {sequence_no!r}")
    return seq


def _block(
    series: Sequence[tuple[ReadingTypeSpec, np.ndarray, np.ndarray | None]],
    first_start: int,
    last_start: int,
) -> tuple[int, int]:
    """(interval length, block duration), s, of readings from ``first_start`` to
    ``last_start``; checks every channel's ReadingType."""
    duration_s = series[0][0].interval_length_s
    for k, (spec, _, _) in enumerate(series, 1):
        if not isinstance(spec, ReadingTypeSpec):
            raise ValueError(f"channel {k}: reading_type must be a ReadingTypeSpec, got {spec!r}")
        if spec.interval_length_s != duration_s:
            raise ValueError(
                f"channel {k} interval_length_s {spec.interval_length_s} differs from channel "
                f"1's {duration_s}: channels share the interval starts"
            )
    block_duration = last_start + duration_s - first_start
    if block_duration > UINT32_MAX:
        raise ValueError("readings span more than an ESPI UInt32 duration")
    return duration_s, block_duration


@lru_cache(maxsize=1 << 14)
def _frame_size(
    meter_id_chars: int,
    types: tuple[tuple[str, str], ...],
    local_time: LocalTimeSpec | None,
    service_kind: int,
    seq_chars: int,
    time_chars: int,
    block_start_chars: int,
    block_duration_chars: int,
) -> int:
    """Bytes of an upload's document without its readings' lines: a function of the lengths
    of the meter id (ASCII) and of the numbers written in it, and of the channels (the entry
    ids are uuids of fixed length), so laid out once, for the whole fleet, with
    placeholders of those lengths."""
    parts = _document(
        "0" * meter_id_chars,
        "0" * seq_chars,
        types,
        "0" * time_chars,
        local_time,
        service_kind,
        "0" * block_start_chars,
        "0" * block_duration_chars,
        [""] * len(types),
    )
    return len("".join(parts).encode())


def _encode(
    meter_id: str,
    sequence_no: int,
    interval_start_epoch_s: np.ndarray,
    series: Sequence[tuple[ReadingTypeSpec, np.ndarray, np.ndarray | None]],
    created_epoch_s: int,
    local_time: LocalTimeSpec | None,
    service_kind: int,
) -> bytes:
    """encode_meter_upload's work, on (reading type, values, quality) per channel."""
    starts = _int_list(interval_start_epoch_s, "interval_start_epoch_s")
    if not starts:
        raise ValueError("an upload needs at least one reading")
    seq = _checked_sequence_no(sequence_no)
    block_start = min(starts)
    duration_s, block_duration = _block(series, block_start, max(starts))
    readings = [
        _readings_xml(k, values, quality, starts, duration_s)
        for k, (_, values, quality) in enumerate(series, 1)
    ]
    parts = _document(
        meter_id,
        str(seq),
        [spec.xml_parts for spec, _, _ in series],
        _iso8601_utc(int(created_epoch_s)),
        local_time,
        service_kind,
        str(block_start),
        str(block_duration),
        readings,
    )
    return "".join(parts).encode()


def _document(
    meter_id: str,
    seq: str,
    types: Sequence[tuple[str, str]],
    ts: str,
    local_time: LocalTimeSpec | None,
    service_kind: int,
    block_start: str,
    block_duration: str,
    readings: Sequence[str],
) -> list[str]:
    """The parts of an upload's document: sequence number ``seq``, date-time ``ts``, and
    channel k's ReadingType ``types[k - 1]`` (its ``xml_parts``) and IntervalBlock
    ``block_start``, ``block_duration`` and ``readings[k - 1]`` lines, as the text written."""
    up_id, ltp_id = _meter_ids(meter_id)
    times = f"<published>{ts}</published><updated>{ts}</updated>"
    up = f"{RESOURCE_BASE}/UsagePoint/{meter_id}"
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="{ATOM_NS}">\n'
        f"<id>urn:imdc:upload:{meter_id}:{seq}</id>\n"
        f"<title>IMDC meter {meter_id} upload {seq}</title>\n<updated>{ts}</updated>\n"
        f'<entry><id>{up_id}</id><link rel="self" href="{up}"/>'
        f'<link rel="up" href="{RESOURCE_BASE}/UsagePoint"/>'
        f'<link rel="related" href="{up}/MeterReading"/>'
    ]
    if local_time is not None:
        ltp = f"{RESOURCE_BASE}/LocalTimeParameters/{meter_id}"
        parts.append(f'<link rel="related" href="{ltp}"/>')
    parts.append(
        f"<title>{meter_id}</title>{times}"
        f'<content><UsagePoint xmlns="{ESPI_NS}"><ServiceCategory><kind>{service_kind}</kind>'
        "</ServiceCategory></UsagePoint></content></entry>\n"
    )
    if local_time is not None:
        parts.append(
            f'<entry><id>{ltp_id}</id><link rel="self" href="{ltp}"/>'
            f'<link rel="up" href="{RESOURCE_BASE}/LocalTimeParameters"/>'
            f"<title>Local time {local_time.name}</title>{times}"
            f"<content>{_local_time_xml(local_time)}</content></entry>\n"
        )
    for k, ((title, rt_xml), lines) in enumerate(zip(types, readings, strict=True), 1):
        mr_id, rt_id = _channel_ids(meter_id, k)
        mr = f"{up}/MeterReading/{k}"
        rt = f"{RESOURCE_BASE}/ReadingType/{meter_id}/{k}"
        parts.append(
            f'<entry><id>{mr_id}</id><link rel="self" href="{mr}"/>'
            f'<link rel="up" href="{up}/MeterReading"/>'
            f'<link rel="related" href="{mr}/IntervalBlock"/><link rel="related" href="{rt}"/>'
            f"<title>{title}</title>{times}"
            f'<content><MeterReading xmlns="{ESPI_NS}"/></content></entry>\n'
            f'<entry><id>{rt_id}</id><link rel="self" href="{rt}"/>'
            f'<link rel="up" href="{RESOURCE_BASE}/ReadingType"/>'
            f"<title>Type of meter reading data</title>{times}"
            f"<content>{rt_xml}</content></entry>\n"
            f"<entry><id>{_entry_id(f'{mr}/IntervalBlock/{seq}')}</id>"
            f'<link rel="self" href="{mr}/IntervalBlock/{seq}"/>'
            f'<link rel="up" href="{mr}/IntervalBlock"/><title>Upload {seq}</title>{times}'
            f'<content><IntervalBlock xmlns="{ESPI_NS}"><interval><duration>{block_duration}'
            f"</duration><start>{block_start}</start></interval>\n{lines}\n</IntervalBlock>"
            f"</content></entry>\n"
        )
    parts.append("</feed>\n")
    return parts


def encode_upload(
    meter_id: str,
    sequence_no: int,
    reading_type: ReadingTypeSpec,
    interval_start_epoch_s: np.ndarray,
    values: np.ndarray,
    created_epoch_s: int,
) -> bytes:
    """One single-channel meter upload: :func:`encode_meter_upload` with
    ``channels=[Channel(reading_type, values)]``, no local time and the UsagePoint's
    ServiceCategory kind ``reading_type.service_kind``.

    ``values``: register values in units of ``10**power_of_ten_multiplier`` uom (e.g. from
    :func:`meters.energy.quantise_register`), one per interval start.
    """
    return _encode(
        meter_id,
        sequence_no,
        interval_start_epoch_s,
        ((reading_type, values, None),),
        created_epoch_s,
        None,
        reading_type.service_kind,
    )
