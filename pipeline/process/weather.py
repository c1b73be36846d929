"""The weather feed's documents (``docs/upload-format.md`` §6) to columns: a met station's
observations or one issue of the forecast product (`WeatherUpload`).

A weather document is an Atom feed like a meter upload (same envelope, feed id, hardened
parse and limits), whose entries carry resources of namespace `WEATHER_NS` instead of
ESPI's (ESPI has no element for irradiance, air temperature or wind speed): one
``wx:Station`` (the station's id, place and anemometer height) and either one
``wx:Observations`` (readings at ``start + k * interval``) or one ``wx:Forecast`` (hourly
steps from ``start``, issued at ``issued``). Each quantity is one element holding its
values as space-separated decimals (``NaN`` where unknown), parsed in one call.

The feed element declares `WEATHER_NS`; the resources sit where Atom puts content
(``feed/entry/content``). `read_weather` returns None for a document that does not
declare it or has no ``wx:Station`` there (a meter upload) and
raises `pipeline.fetch.rejection.RejectedUpload` (code ``bad_weather``) for a weather
document it cannot take whole.

Only numpy, lxml and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from lxml import etree

from pipeline.espi.namespaces import ATOM_NS
from pipeline.fetch.rejection import RejectedUpload
from pipeline.process.upload import upload_id

__all__ = ["QUANTITIES", "WEATHER_NS", "WeatherStation", "WeatherUpload", "read_weather"]

#: Namespace of the weather feed's resources.
WEATHER_NS = "urn:imdc:weather:1"
_WX = f"{{{WEATHER_NS}}}"
_ATOM = f"{{{ATOM_NS}}}"
#: Quantities of the feed with their unit and valid range (a value outside is refused):
#: GHI W/m2 (the solar constant bounds it), air temperature degC and 10-m wind speed m/s
#: (the world records, with margin).
QUANTITIES: dict[str, tuple[str, float, float]] = {
    "ghi": ("W/m2", 0.0, 1500.0),
    "temp_air": ("degC", -90.0, 70.0),
    "wind_speed": ("m/s", 0.0, 120.0),
}
#: Most values one document may carry per quantity (two weeks of 1-minute readings).
_MAX_COUNT = 20_160


@dataclass(frozen=True)
class WeatherStation:
    """A met station of the feed: id, place (deg, m) and anemometer height (m)."""

    station_id: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    wind_height_m: float = 10.0


@dataclass(frozen=True, eq=False)
class WeatherUpload:
    """One weather document's content.

    Attributes:
        station: the station.
        sequence_no: the upload's sequence number (from the feed id).
        issued_s: for a forecast, its issue time, epoch s; None for observations.
        start_s: int64 epoch s of each value's interval start.
        interval_s: interval of each value, s.
        ghi, temp_air, wind_speed: float64 values (W/m2, degC, m/s), NaN where unknown.
    """

    station: WeatherStation
    sequence_no: int
    issued_s: int | None
    start_s: np.ndarray
    interval_s: int
    ghi: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray

    @property
    def n(self) -> int:
        return int(self.start_s.shape[0])


def _reject(text: str, station: str | None, seq: int | None) -> RejectedUpload:
    return RejectedUpload(f"bad_weather: {text}", station, seq)


def _number(el: etree._Element, name: str, station: str | None, seq: int | None) -> float:
    raw = el.get(name)
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _reject(f"{etree.QName(el).localname}@{name} = {raw!r} is not a number", station, seq)
    return value


def _integer(
    el: etree._Element, name: str, station: str | None, seq: int | None, minimum: int
) -> int:
    raw = el.get(name) or ""
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum or int(raw) >= 2**62:
        raise _reject(
            f"{etree.QName(el).localname}@{name} = {raw!r}: expected an integer >= {minimum}",
            station,
            seq,
        )
    return int(raw)


def read_weather(
    root: etree._Element, feed_id: tuple[str | None, int | None] | None
) -> WeatherUpload | None:
    """The content of a weather document (module docstring), None for any other document.

    `feed_id` is the document's (id, sequence number) when known (else read from the
    document); the station's id must be the feed id's."""
    if WEATHER_NS not in root.nsmap.values():  # O(1): meter uploads never declare it
        return None
    station_el = root.find(f"{_ATOM}entry/{_ATOM}content/{_WX}Station")
    if station_el is None:
        return None
    feed_station, seq = feed_id if feed_id is not None else upload_id(root)
    sid = station_el.get("id") or ""
    if not sid or (feed_station is not None and sid != feed_station):
        raise _reject(f"station id {sid[:80]!r} is not the feed's {feed_station!r}", sid, seq)
    station = WeatherStation(
        sid,
        _number(station_el, "latitude", sid, seq),
        _number(station_el, "longitude", sid, seq),
        _number(station_el, "altitude", sid, seq),
        _number(station_el, "wind_height", sid, seq) if "wind_height" in station_el.attrib else 10,
    )
    if not (-90 <= station.latitude_deg <= 90 and -180 <= station.longitude_deg <= 360):
        raise _reject("station position out of range", sid, seq)
    content = f"{_ATOM}entry/{_ATOM}content/{_WX}"
    blocks = root.findall(content + "Observations") + root.findall(content + "Forecast")
    if len(blocks) != 1:
        raise _reject(f"{len(blocks)} Observations/Forecast blocks, expected 1", sid, seq)
    block = blocks[0]
    forecast = etree.QName(block).localname == "Forecast"
    start = _integer(block, "start", sid, seq, 0)
    interval = _integer(block, "interval", sid, seq, 1)
    count = _integer(block, "count", sid, seq, 0)
    if count > _MAX_COUNT:
        raise _reject(f"count {count} over {_MAX_COUNT}", sid, seq)
    issued = _integer(block, "issued", sid, seq, 0) if forecast else None
    columns: dict[str, np.ndarray] = {}
    for name, (unit, low, high) in QUANTITIES.items():
        el = block.find(_WX + name)
        if el is None:
            raise _reject(f"no {name} values", sid, seq)
        if el.get("unit", unit) != unit:
            raise _reject(f"{name} in {el.get('unit')!r}, expected {unit}", sid, seq)
        try:
            values = np.array((el.text or "").split(), dtype=np.float64)
        except ValueError:
            raise _reject(f"{name} values are not decimals", sid, seq) from None
        if values.shape[0] != count:
            raise _reject(f"{values.shape[0]} {name} values, count says {count}", sid, seq)
        bad = np.isinf(values) | (values < low) | (values > high)
        if bad.any():
            raise _reject(f"{name} value {values[bad][0]!r} outside [{low}, {high}]", sid, seq)
        columns[name] = values
    start_s = start + interval * np.arange(count, dtype=np.int64)
    return WeatherUpload(
        station, int(seq or 0), issued, start_s, interval, columns["ghi"],
        columns["temp_air"], columns["wind_speed"],
    )  # fmt: skip
