"""Weather on the simulation's sample grid, read from typical-meteorological-year files.

Names and units follow pvlib (``ghi``, ``dni``, ``dhi`` in W/m2, ``temp_air`` in degC,
``wind_speed`` in m/s), except ``pressure``, which is in Pa as in pvlib's solar-position
functions.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

#: Folder of the data files shipped inside pvlib (holds two TMY3 files).
PVLIB_DATA_DIR = Path(pvlib.__file__).resolve().parent / "data"

#: TMY3 anemometer height. NSRDB TMY3 user manual (Wilcox & Marion 2008, NREL/TP-581-43156):
#: wind speed of the airport stations, measured at the standard 10 m height.
TMY3_WIND_HEIGHT_M = 10.0

_TMY3_STEM = re.compile(r"\d{6}TYA?", re.IGNORECASE)
_HOURS_PER_YEAR = 8760
_FEB29_FIRST_HOUR = (31 + 28) * 24  # hour of year at which Feb 29 starts in a leap year
_COLUMNS = ("ghi", "dni", "dhi", "temp_air", "wind_speed", "pressure")
_MBAR_TO_PA = 100.0


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Weather:
    """Weather on the simulation's sample grid.

    Index k covers [start + k*step_s, start+(k+1)*step_s); each value is the mean over that
    interval (sampled at its midpoint).
    """

    times_utc: pd.DatetimeIndex  # interval midpoints, tz UTC, length n_steps
    step_s: float
    ghi: np.ndarray  # W/m2, float64 [n_steps]   (pvlib names)
    dni: np.ndarray  # W/m2
    dhi: np.ndarray  # W/m2
    temp_air: np.ndarray  # degC
    wind_speed: np.ndarray  # m/s at wind_height_m
    pressure: np.ndarray  # Pa
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    wind_height_m: float  # 10 m for TMY3 (NSRDB TMY3 user manual)
    name: str


def tmy3_stations() -> list[str]:
    """Station ids (file stems, e.g. ``723170TYA``) of the TMY3 files shipped with pvlib."""
    return sorted(p.stem for p in PVLIB_DATA_DIR.iterdir() if _TMY3_STEM.fullmatch(p.stem))


def _tmy3_path(station: str) -> Path:
    for path in PVLIB_DATA_DIR.iterdir():
        if _TMY3_STEM.fullmatch(path.stem) and path.stem.upper() == station.upper():
            return path
    raise ValueError(
        f"TMY3 station {station!r} not found in pvlib's data folder {PVLIB_DATA_DIR}; "
        f"available TMY3 files: {', '.join(tmy3_stations()) or 'none'}"
    )


def sample_grid_s(duration_s: float, step_s: float) -> np.ndarray:
    """Midpoints (s after start) of the ``duration_s / step_s`` sample intervals."""
    if not (step_s > 0 and duration_s > 0):
        raise ValueError(f"step_s and duration_s must be > 0, got {step_s} and {duration_s}")
    n_steps = round(duration_s / step_s)
    if n_steps < 1 or abs(n_steps * step_s - duration_s) > 1e-9 * duration_s:
        raise ValueError(f"duration_s={duration_s} is not a whole number of step_s={step_s}")
    return (np.arange(n_steps) + 0.5) * step_s


def tile_typical_year(
    hourly: np.ndarray, utc_offset_h: float, first_year: int, last_year: int
) -> tuple[np.ndarray, np.ndarray]:
    """Repeat a typical year of hourly means over calendar years ``first_year..last_year``.

    ``hourly`` is [8760, n_vars] in file order: row h is the mean over local standard time
    [h, h+1) h after Jan 1 00:00 (TMY3 values are hour-ending). Each value is placed at its
    hour's midpoint. In leap years Feb 29 repeats Feb 28 (a TMY has no Feb 29).
    Returns (midpoints in UTC epoch s [n], values [n, n_vars]), sorted by time.
    """
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for year in range(first_year, last_year + 1):
        rows = hourly
        if calendar.isleap(year):
            feb28 = slice(_FEB29_FIRST_HOUR - 24, _FEB29_FIRST_HOUR)
            rows = np.concatenate(
                [hourly[:_FEB29_FIRST_HOUR], hourly[feb28], hourly[_FEB29_FIRST_HOUR:]]
            )
        year_start_utc_s = datetime(year, 1, 1, tzinfo=UTC).timestamp() - utc_offset_h * 3600.0
        times.append(year_start_utc_s + (np.arange(len(rows)) + 0.5) * 3600.0)
        values.append(rows)
    return np.concatenate(times), np.concatenate(values)


def load_tmy3(station: str, start_utc: datetime, duration_s: float, step_s: float) -> Weather:
    """Weather from a TMY3 file shipped with pvlib, on the sample grid of a run.

    Reads ``pvlib/data/{station}.CSV`` with :func:`pvlib.iotools.read_tmy3`. TMY3 rows are
    hour-ending means in local standard time (Wilcox & Marion 2008, NREL/TP-581-43156): each
    is placed at the midpoint of the preceding hour, converted to UTC and **linearly
    interpolated** onto the sample-interval midpoints ``start_utc + (k+0.5)*step_s``. This is
    linear interpolation of hourly means (no sub-hourly variability; a clear-sky-index
    resampling is planned). The typical year is tiled, so windows may cross Dec 31.
    Irradiance is clipped at >= 0; pressure is converted from mbar to Pa.

    Raises ValueError if the station has no TMY3 file (listing those available), if
    ``start_utc`` is naive, or if ``duration_s`` is not a whole number of ``step_s``.
    """
    if start_utc.tzinfo is None or start_utc.utcoffset() is None:
        raise ValueError(f"start_utc must be timezone-aware, got {start_utc!r}")
    grid_s = sample_grid_s(duration_s, step_s)
    path = _tmy3_path(station)
    data, meta = pvlib.iotools.read_tmy3(
        str(path), coerce_year=start_utc.astimezone(UTC).year, map_variables=True
    )
    if len(data) != _HOURS_PER_YEAR:
        raise ValueError(f"TMY3 file {path} has {len(data)} rows, expected {_HOURS_PER_YEAR}")
    hourly = data.loc[:, list(_COLUMNS)].to_numpy(dtype=np.float64)
    start_s = start_utc.timestamp()
    first = datetime.fromtimestamp(start_s, UTC).year - 1
    last = datetime.fromtimestamp(start_s + duration_s, UTC).year + 1
    t_s, values = tile_typical_year(hourly, float(meta["TZ"]), first, last)
    x_s = t_s - start_s
    ghi, dni, dhi, temp_air, wind_speed, pressure_mbar = (
        np.interp(grid_s, x_s, values[:, j]) for j in range(len(_COLUMNS))
    )
    start_ns = pd.Timestamp(start_utc).tz_convert("UTC").as_unit("ns").value
    times_utc = pd.DatetimeIndex(
        pd.to_datetime(start_ns + np.round(grid_s * 1e9).astype(np.int64), unit="ns", utc=True)
    )
    name = f"tmy3:{path.stem} ({meta['Name'].strip(chr(34))}, {meta['State']})"
    return Weather(
        times_utc=times_utc,
        step_s=float(step_s),
        ghi=np.maximum(ghi, 0.0),
        dni=np.maximum(dni, 0.0),
        dhi=np.maximum(dhi, 0.0),
        temp_air=temp_air,
        wind_speed=wind_speed,
        pressure=pressure_mbar * _MBAR_TO_PA,
        latitude_deg=float(meta["latitude"]),
        longitude_deg=float(meta["longitude"]),
        altitude_m=float(meta["altitude"]),
        wind_height_m=TMY3_WIND_HEIGHT_M,
        name=name,
    )


#: Registry of weather sources: name -> loader(station, start_utc, duration_s, step_s).
WEATHER_SOURCES: dict[str, Callable[[str, datetime, float, float], Weather]] = {
    "tmy3": load_tmy3,
}
