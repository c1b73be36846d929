"""Weather on the simulation's sample grid, from typical-meteorological-year files.

Names and units follow pvlib (``ghi``, ``dni``, ``dhi`` in W/m2, ``temp_air`` in degC,
``wind_speed`` in m/s), except ``pressure``, which is in Pa as in pvlib's solar-position
functions. Every per-step array is float64 ``[n_rows, n_steps]``: ``n_rows == 1`` is one
weather for every site (file sources), ``n_rows == n_sites`` gives row i to site i
(:mod:`meters.synthetic_weather`).

Sources are chosen from the registry :data:`WEATHER_SOURCES` (name -> loader(arg, request)):

- ``"tmy3"``: a TMY3 file shipped with pvlib (arg = station id, e.g. ``723170TYA``), read
  with :func:`pvlib.iotools.read_tmy3`;
- ``"epw"``: an EnergyPlus weather file (arg = path), read with :func:`pvlib.iotools.read_epw`.

Both hold 8760 hourly values of a typical year in **local standard time**. Irradiance values
are **hour-ending means**: the row labelled 01:00 holds the energy received 00:00-01:00 LST.
Air temperature, wind speed and pressure are **values at the time indicated**, i.e. at the
end of that hour (TMY3 user manual, Wilcox & Marion 2008, NREL/TP-581-43156, Table 1-1, as
quoted in :func:`pvlib.iotools.read_tmy3`; EnergyPlus Auxiliary Programs, EPW data record:
hour 1 is 00:01-01:00 LST, and :func:`pvlib.iotools.read_epw` describes the same fields).
:func:`typical_year_weather` resamples them to the run's grid:

- **GHI through the clear-sky index.** Clear-sky GHI (Ineichen & Perez 2002 with the Linke
  turbidity climatology of Remund et al. 2003, :meth:`pvlib.location.Location.get_clearsky`)
  is computed at the file's reference location on a fine grid (60 s, or 300 s for steps of
  5 min and more) aligned with the file's hours. The hourly clear-sky index ``kc = GHI /
  mean(GHI_clear)`` is interpolated linearly between hour midpoints, multiplied by the fine
  clear-sky GHI, and each hour is then rescaled so that its mean equals the file's value
  exactly (energy preserved hour by hour; tested to 1e-6 W/m2, float rounding is ~1e-9).
  Hours with file energy but (almost) no clear-sky sun (the file's sunrise precedes the
  model's) spread it over the civil twilight of the hour instead. Steps finer than the fine
  grid get its piecewise-constant values. A plain linear interpolation of hourly GHI would
  cut the sunrise and sunset hours into triangles and put light before dawn and after dusk.
- **DHI through the diffuse fraction** ``DHI/GHI``, interpolated the same way and rescaled per
  hour so that mean DHI equals the file's hourly DHI, while staying within [0, GHI].
- **DNI from the closure** ``DNI = (GHI - DHI) / cos(zenith)`` at each interval midpoint
  (true solar zenith, NREL SPA), so that ``GHI = DHI + DNI cos(zenith)`` holds on the grid the
  consumers use. Where the zenith exceeds 87 deg or the closure gives DNI < 0, DNI = 0 and
  DHI = GHI: the rule of :func:`pvlib.irradiance.erbs` (Erbs et al. 1982).
- **Air temperature, wind speed, pressure**: linear interpolation between the rows' times
  (hour ends).

The typical year is tiled over calendar years, so a window may cross Dec 31; in leap years
Feb 29 repeats Feb 28 (a typical year has no Feb 29).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

#: Folder of the data files shipped inside pvlib (holds two TMY3 files).
PVLIB_DATA_DIR = Path(pvlib.__file__).resolve().parent / "data"

#: TMY3 anemometer height. NSRDB TMY3 user manual (Wilcox & Marion 2008, NREL/TP-581-43156):
#: wind speed of the airport stations, measured at the standard 10 m height.
TMY3_WIND_HEIGHT_M = 10.0

#: EPW wind speed height: EnergyPlus takes weather-file wind speed as measured at the standard
#: meteorological height of 10 m (EnergyPlus Engineering Reference, "Local Wind Speed
#: Calculations").
EPW_WIND_HEIGHT_M = 10.0

#: Names of the per-step arrays of :class:`Weather`.
WEATHER_FIELDS = ("ghi", "dni", "dhi", "temp_air", "wind_speed", "pressure")

#: Above this zenith (deg) DNI is set to 0 and DHI to GHI: ``max_zenith`` of
#: :func:`pvlib.irradiance.erbs`.
MAX_ZENITH_DEG = 87.0

_TMY3_STEM = re.compile(r"\d{6}TYA?", re.IGNORECASE)
_HOURS_PER_YEAR = 8760
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_FIRST_DAY_OF_MONTH = np.concatenate([[0], np.cumsum(_DAYS_IN_MONTH)[:-1]])
_MBAR_TO_PA = 100.0
#: Hours whose mean clear-sky GHI is below this (W/m2) get their clear-sky index from their
#: neighbours: at the horizon the index of a file value over a model value is noise.
_KC_MIN_CLEARSKY_W_M2 = 10.0
#: Upper bound of an hourly clear-sky index used as a within-hour shape (the hour's energy
#: is restored exactly afterwards).
_KC_SHAPE_MAX = 1.5
#: Hours whose file GHI exceeds this many times their clear-sky-index shape (a file sunrise
#: the clear-sky model does not see yet) spread their energy over the civil twilight of the
#: hour instead (sun above -6 deg), see _hour_profile.
_MAX_SHAPE_SCALE = 2.0
_CIVIL_TWILIGHT_ZENITH_DEG = 96.0
#: Physical bounds used to reject missing-value codes (EPW 9999, 99.9, 999999...).
_BOUNDS = {
    "ghi": (0.0, 1500.0),
    "dni": (0.0, 1500.0),
    "dhi": (0.0, 1500.0),
    "temp_air": (-90.0, 70.0),
    "wind_speed": (0.0, 60.0),
    "pressure": (30_000.0, 120_000.0),
}


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Weather:
    """Weather on the simulation's sample grid.

    Step k covers [start + k*step_s, start + (k+1)*step_s). Irradiance is the mean over that
    interval; air temperature, wind speed and pressure are their value at its midpoint.
    Synthetic weather (:mod:`meters.synthetic_weather`) returns ``temp_air`` and ``pressure``
    as read-only broadcast views (one regional series).
    Per-step arrays are float64 ``[n_rows, n_steps]`` (consumers also accept the 1-D arrays of
    older objects as one row, via ``np.atleast_2d``).
    """

    times_utc: pd.DatetimeIndex  # interval midpoints, tz UTC, length n_steps
    step_s: float
    ghi: np.ndarray  # W/m2, float64 [n_rows, n_steps]   (pvlib names)
    dni: np.ndarray  # W/m2
    dhi: np.ndarray  # W/m2
    temp_air: np.ndarray  # degC
    wind_speed: np.ndarray  # m/s at wind_height_m
    pressure: np.ndarray  # Pa
    latitude_deg: float  # reference location: solar position is computed once per step here
    longitude_deg: float
    altitude_m: float
    wind_height_m: float  # 10 m for TMY3 and EPW
    name: str

    @property
    def n_rows(self) -> int:
        """Weather rows: 1 (the same weather for every site) or the number of sites."""
        return int(np.atleast_2d(self.ghi).shape[0])


def _empty() -> np.ndarray:
    return np.empty(0, dtype=np.float64)


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class WeatherRequest:
    """What a weather source is asked for: a window, a step, and optionally the sites.

    ``start_utc`` must be timezone-aware (any zone; it is the instant that counts);
    ``duration_s`` a whole number of ``step_s``. ``site_latitude_deg`` and
    ``site_longitude_deg`` are empty or hold one value per ``site_ids`` entry. ``rng_for(key)``
    returns the run's generator for a stable key (DESIGN.md sec. 3); file sources ignore it.
    """

    start_utc: datetime
    duration_s: float
    step_s: float
    site_ids: tuple[str, ...] = ()
    site_latitude_deg: np.ndarray = field(default_factory=_empty)
    site_longitude_deg: np.ndarray = field(default_factory=_empty)
    rng_for: Callable[[str], np.random.Generator] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.start_utc, datetime):
            raise ValueError(f"start_utc must be a datetime, got {self.start_utc!r}")
        if self.start_utc.tzinfo is None or self.start_utc.utcoffset() is None:
            raise ValueError(
                f"start_utc must be timezone-aware (e.g. tzinfo=datetime.UTC), "
                f"got the naive {self.start_utc!r}"
            )
        sample_grid_s(self.duration_s, self.step_s)  # raises on a bad window
        ids = tuple(self.site_ids)
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"site_ids must be unique; repeated: {dupes[:5]}")
        object.__setattr__(self, "site_ids", ids)
        for name, low, high in (
            ("site_latitude_deg", -90.0, 90.0),
            ("site_longitude_deg", -180.0, 360.0),
        ):
            values = np.array(getattr(self, name), dtype=np.float64).reshape(-1)
            if values.size not in (0, len(ids)):
                raise ValueError(
                    f"{name} has {values.size} values; expected 0 or one per site "
                    f"({len(ids)} site_ids)"
                )
            bad = ~((values >= low) & (values <= high))
            if bad.any():
                raise ValueError(
                    f"{name}[{int(np.argmax(bad))}] = {float(values[bad][0])!r}; expected a number "
                    f"in [{low}, {high}]"
                )
            values.setflags(write=False)
            object.__setattr__(self, name, values)
        if self.site_latitude_deg.size != self.site_longitude_deg.size:
            raise ValueError(
                f"site_latitude_deg has {self.site_latitude_deg.size} values but "
                f"site_longitude_deg has {self.site_longitude_deg.size}; expected both"
            )

    @property
    def n_steps(self) -> int:
        return round(self.duration_s / self.step_s)

    @property
    def start_s(self) -> float:
        """``start_utc`` as Unix epoch seconds."""
        return self.start_utc.timestamp()

    def times_utc(self) -> pd.DatetimeIndex:
        """Interval midpoints ``start + (k + 0.5) * step_s`` as a tz-UTC DatetimeIndex."""
        return epoch_s_to_index(self.start_s + sample_grid_s(self.duration_s, self.step_s))


def tmy3_stations() -> list[str]:
    """Station ids (file stems, e.g. ``723170TYA``) of the TMY3 files shipped with pvlib."""
    return sorted(p.stem for p in PVLIB_DATA_DIR.iterdir() if _TMY3_STEM.fullmatch(p.stem))


def _tmy3_path(station: str) -> Path:
    for path in PVLIB_DATA_DIR.iterdir():
        if _TMY3_STEM.fullmatch(path.stem) and path.stem.upper() == str(station).upper():
            return path
    raise ValueError(
        f"TMY3 station {station!r} not found in pvlib's data folder {PVLIB_DATA_DIR}; "
        f"expected one of: {', '.join(tmy3_stations()) or 'none'}"
    )


def sample_grid_s(duration_s: float, step_s: float) -> np.ndarray:
    """Midpoints (s after start) of the ``duration_s / step_s`` sample intervals."""
    if not (step_s > 0 and duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(
            f"step_s and duration_s must be finite and > 0, got step_s={step_s!r} and "
            f"duration_s={duration_s!r}"
        )
    n_steps = round(duration_s / step_s)
    if n_steps < 1 or abs(n_steps * step_s - duration_s) > 1e-9 * duration_s:
        raise ValueError(
            f"duration_s={duration_s} is not a whole number of step_s={step_s}; expected a "
            f"duration that the step divides"
        )
    return (np.arange(n_steps) + 0.5) * step_s


def epoch_s_to_index(epoch_s: np.ndarray) -> pd.DatetimeIndex:
    """Unix epoch seconds (float) as a tz-UTC DatetimeIndex at ns resolution."""
    ns = np.round(np.asarray(epoch_s, dtype=np.float64) * 1e9).astype(np.int64)
    return pd.DatetimeIndex(pd.to_datetime(ns, unit="ns", utc=True))


def clearsky_ghi(
    times_utc: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float, altitude_m: float
) -> tuple[np.ndarray, pd.DataFrame]:
    """Clear-sky GHI (W/m2) and the solar position (NREL SPA) at ``times_utc``.

    Ineichen & Perez (2002) with the monthly Linke turbidity climatology of Remund et al.
    (2003), as :meth:`pvlib.location.Location.get_clearsky` (model ``'ineichen'``) computes it.
    """
    solpos = pvlib.solarposition.get_solarposition(
        times_utc, latitude_deg, longitude_deg, altitude=altitude_m
    )
    location = pvlib.location.Location(latitude_deg, longitude_deg, altitude=altitude_m)
    clear = location.get_clearsky(times_utc, model="ineichen", solar_position=solpos)
    return clear["ghi"].to_numpy(dtype=np.float64), solpos


@dataclass(frozen=True, eq=False)
class TypicalYear:
    """The 8760 hourly values of a typical-year file, in file order (Jan 1 01:00 LST first).

    Row h belongs to local standard time [h, h+1) h after Jan 1 00:00: irradiance is the mean
    over that hour, temperature, wind speed and pressure (Pa) their value at its end.
    """

    ghi: np.ndarray
    dni: np.ndarray
    dhi: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray
    pressure: np.ndarray
    utc_offset_h: float  # local standard time - UTC, hours
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    wind_height_m: float
    name: str


def _check_year(path: Path, months: np.ndarray, days: np.ndarray, hours: np.ndarray) -> None:
    """Raise unless (month, day, hour-ending 1..24) run Jan 1 hour 1 .. Dec 31 hour 24."""
    n = len(months)
    if n != _HOURS_PER_YEAR:
        raise ValueError(
            f"{path} has {n} hourly rows; expected {_HOURS_PER_YEAR} (a typical year of 365 "
            f"days; leap-year files with Feb 29 are not supported)"
        )
    day_of_year = np.repeat(np.arange(365), 24)
    month_expected = np.searchsorted(_FIRST_DAY_OF_MONTH, day_of_year, side="right")
    day_expected = day_of_year - _FIRST_DAY_OF_MONTH[month_expected - 1] + 1
    hour_expected = np.tile(np.arange(1, 25), 365)
    wrong = (months != month_expected) | (days != day_expected) | (hours != hour_expected)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise ValueError(
            f"{path} row {i + 1}: month/day/hour {months[i]}/{days[i]}/{hours[i]}; expected "
            f"{month_expected[i]}/{day_expected[i]}/{hour_expected[i]} (hour-ending rows in "
            f"calendar order, Jan 1 hour 1 to Dec 31 hour 24)"
        )


def _checked(path: Path, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for name, (low, high) in _BOUNDS.items():
        bad = ~((values[name] >= low) & (values[name] <= high))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{path}: {name} = {float(values[name][i])!r} in row {i + 1} "
                f"({int(bad.sum())} rows out of range); expected values in [{low}, {high}] "
                f"(a missing-value code?)"
            )
    return values


def _read_only(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of a cached `TypicalYear`, made read-only: every caller shares them."""
    for array in values.values():
        array.flags.writeable = False
    return values


@lru_cache(maxsize=8)
def read_tmy3_year(station: str) -> TypicalYear:
    """The TMY3 file ``pvlib/data/{station}.CSV`` read with :func:`pvlib.iotools.read_tmy3`.

    Read once per process (the file ships with pvlib and does not change); the arrays are
    read-only.
    """
    path = _tmy3_path(station)
    data, meta = pvlib.iotools.read_tmy3(str(path), map_variables=True)
    stamps = data["Time (HH:MM)"].astype(str)
    dates = pd.to_datetime(data["Date (MM/DD/YYYY)"], format="%m/%d/%Y")
    _check_year(
        path,
        dates.dt.month.to_numpy(),
        dates.dt.day.to_numpy(),
        stamps.str.split(":").str[0].astype(int).to_numpy(),
    )
    values = {name: data[name].to_numpy(dtype=np.float64) for name in WEATHER_FIELDS}
    values["pressure"] = values["pressure"] * _MBAR_TO_PA
    name = f"tmy3:{path.stem} ({str(meta['Name']).strip(chr(34))}, {meta['State']})"
    return TypicalYear(
        **_read_only(_checked(path, values)),
        utc_offset_h=float(meta["TZ"]),
        latitude_deg=float(meta["latitude"]),
        longitude_deg=float(meta["longitude"]),
        altitude_m=float(meta["altitude"]),
        wind_height_m=TMY3_WIND_HEIGHT_M,
        name=name,
    )


def read_epw_year(path: str | Path) -> TypicalYear:
    """An EnergyPlus weather file read with :func:`pvlib.iotools.read_epw` (pressure in Pa).

    Read once per process while the file is unchanged (same resolved path, size and
    modification time); the arrays are read-only.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"EPW file {str(path)!r} not found; expected the path of an .epw file")
    stat = path.stat()
    return _read_epw_file(path.resolve(), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _read_epw_file(path: Path, size_bytes: int, mtime_ns: int) -> TypicalYear:
    """`read_epw_year` of one version of a file (the size and time are the cache key)."""
    try:
        data, meta = pvlib.iotools.read_epw(str(path))
    except (ValueError, KeyError, IndexError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path} is not a readable EPW file: {exc}") from exc
    _check_year(
        path, data["month"].to_numpy(), data["day"].to_numpy(), data["hour"].to_numpy()
    )
    columns = {name: name for name in WEATHER_FIELDS} | {"pressure": "atmospheric_pressure"}
    values = {name: data[col].to_numpy(dtype=np.float64) for name, col in columns.items()}
    place = ", ".join(str(meta.get(k, "")).strip() for k in ("city", "state-prov", "country"))
    return TypicalYear(
        **_read_only(_checked(path, values)),
        utc_offset_h=float(meta["TZ"]),
        latitude_deg=float(meta["latitude"]),
        longitude_deg=float(meta["longitude"]),
        altitude_m=float(meta["altitude"]),
        wind_height_m=EPW_WIND_HEIGHT_M,
        name=f"epw:{path.name} ({place})",
    )


def typical_year_rows(lst_hour: np.ndarray) -> np.ndarray:
    """Row of the typical year for each local-standard-time hour number.

    ``lst_hour`` counts hours since 1970-01-01 00:00 local standard time; an hour of any year
    maps to the row of the same month, day and hour; Feb 29 maps to Feb 28.
    """
    stamps = pd.DatetimeIndex(np.asarray(lst_hour, dtype=np.int64).astype("datetime64[h]"))
    month = stamps.month.to_numpy()
    day = np.where((month == 2) & (stamps.day.to_numpy() == 29), 28, stamps.day.to_numpy())
    rows: np.ndarray = (_FIRST_DAY_OF_MONTH[month - 1] + day - 1) * 24 + stamps.hour.to_numpy()
    return rows


def fine_step_s(step_s: float) -> float:
    """Resolution (s) of the clear-sky grid behind the irradiance of a run with ``step_s``."""
    return 60.0 if step_s < 300.0 else 300.0


def _fill_from_neighbours(values: np.ndarray, default: float) -> np.ndarray:
    """NaN entries replaced by the mean of their valid neighbours (i-1, i+1), else ``default``.

    Local on purpose: an hour's value then depends only on hours i-1..i+1, so the same instant
    gets the same weather whatever window it is loaded in.
    """
    left = np.concatenate([[np.nan], values[:-1]])
    right = np.concatenate([values[1:], [np.nan]])
    both = np.stack([left, right])
    count = np.sum(~np.isnan(both), axis=0)
    neighbour_mean = np.where(count > 0, np.nansum(both, axis=0) / np.maximum(count, 1), default)
    return np.where(np.isnan(values), neighbour_mean, values)


def _interpolate_hourly(values: np.ndarray, m: int) -> np.ndarray:
    """[n_hours] values at hour midpoints -> [n_hours, m] linear interpolation at the m fine
    sample midpoints of each hour (edge hours use their own value beyond the midpoint)."""
    x = (np.arange(m) + 0.5) / m  # position within the hour
    left = np.concatenate([values[:1], values[:-1]])
    right = np.concatenate([values[1:], values[-1:]])
    before = x < 0.5
    w_self = np.where(before, 0.5 + x, 1.5 - x)[None, :]
    neighbour = np.where(before[None, :], left[:, None], right[:, None])
    out: np.ndarray = w_self * values[:, None] + (1.0 - w_self) * neighbour
    return out


def _hour_profile(
    target: np.ndarray, shape: np.ndarray, zenith_deg: np.ndarray
) -> np.ndarray:
    """Fine values [n_hours, m] >= 0 whose hourly means equal ``target`` [n_hours].

    ``shape`` (>= 0) is scaled per hour. An hour with energy in the file but (almost) none in
    its shape (the file's sunrise comes before the clear-sky model's) uses the sun's height
    above civil twilight, ``cos(zenith) - cos(96 deg)``, as its shape instead, or a flat
    profile when even that is zero.
    """
    mean_shape = shape.mean(axis=1)
    weak = (target > 0) & ~(mean_shape * _MAX_SHAPE_SCALE >= target)
    if weak.any():
        civil = math.cos(math.radians(_CIVIL_TWILIGHT_ZENITH_DEG))
        twilight = np.maximum(np.cos(np.radians(zenith_deg[weak])) - civil, 0.0)
        flat = twilight.mean(axis=1) <= 0
        twilight[flat] = 1.0
        shape = shape.copy()
        shape[weak] = twilight
        mean_shape = shape.mean(axis=1)
    scale = np.where(target > 0, target / np.where(mean_shape > 0, mean_shape, 1.0), 0.0)
    out: np.ndarray = shape * scale[:, None]
    return out


def _split_diffuse(
    ghi_fine: np.ndarray, dhi_hour: np.ndarray, ghi_hour: np.ndarray, m: int
) -> np.ndarray:
    """Fine DHI [n_hours, m] in [0, GHI] whose hourly means equal ``dhi_hour``.

    The hourly diffuse fraction is interpolated between hour midpoints; per hour, the diffuse
    part is scaled down when it is too large, else the beam part ``(1 - fd) GHI`` is scaled
    down: either keeps ``0 <= fd <= 1`` and hits the hourly mean exactly.
    """
    fraction = np.where(ghi_hour > 0, dhi_hour / np.where(ghi_hour > 0, ghi_hour, 1.0), np.nan)
    fd = np.clip(_interpolate_hourly(_fill_from_neighbours(fraction, 1.0), m), 0.0, 1.0)
    diffuse = (fd * ghi_fine).mean(axis=1)
    beam = ghi_hour - diffuse
    too_much = diffuse >= dhi_hour
    shrink_diffuse = np.where(diffuse > 0, dhi_hour / np.where(diffuse > 0, diffuse, 1.0), 0.0)
    shrink_beam = np.where(beam > 0, (ghi_hour - dhi_hour) / np.where(beam > 0, beam, 1.0), 0.0)
    fd_exact = np.where(
        too_much[:, None],
        fd * shrink_diffuse[:, None],
        1.0 - (1.0 - fd) * shrink_beam[:, None],
    )
    out: np.ndarray = fd_exact * ghi_fine
    return out


def _interval_means(
    values: np.ndarray, first_s: float, fine_s: float, edges_s: np.ndarray
) -> np.ndarray:
    """Means over [edges_s[i], edges_s[i+1]) of a piecewise-constant function (``values[k]`` on
    [first_s + k fine_s, first_s + (k+1) fine_s)), via its integral at the edges."""
    integral = np.concatenate([[0.0], np.cumsum(values) * fine_s])
    knots = first_s + np.arange(len(integral)) * fine_s
    at_edges = np.interp(edges_s, knots, integral)
    means: np.ndarray = np.diff(at_edges) / np.diff(edges_s)
    return np.maximum(means, 0.0)


def closure_dni(
    ghi: np.ndarray, dhi: np.ndarray, zenith_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """DNI from ``GHI = DHI + DNI cos(zenith)``; (dni, dhi) with the rule of
    :func:`pvlib.irradiance.erbs`: zenith > 87 deg or DNI < 0 gives DNI = 0 and DHI = GHI."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dni = (ghi - dhi) / np.cos(np.radians(zenith_deg))
    bad = (zenith_deg > MAX_ZENITH_DEG) | ~(dni >= 0)
    return np.where(bad, 0.0, dni), np.where(bad, ghi, dhi)


def typical_year_weather(year: TypicalYear, request: WeatherRequest) -> Weather:
    """A typical year on the request's grid (one row), resampled as the module docstring says.

    Hourly means are preserved: the mean of ``ghi`` over any whole file hour (local standard
    time) covered by steps that divide the hour equals the file's value (to float rounding),
    and likewise ``dhi`` where the sun stays above 3 deg (zenith < 87 deg) at every step.
    """
    grid_s = sample_grid_s(request.duration_s, request.step_s)
    start_s = request.start_s
    offset_s = year.utc_offset_h * 3600.0
    end_s = start_s + request.duration_s
    # Local-standard-time hour numbers covering the window, with two hours either side for
    # the interpolation between hour midpoints.
    first_hour = math.floor((start_s + offset_s) / 3600.0) - 2
    last_hour = math.ceil((end_s + offset_s) / 3600.0) - 1 + 2
    hours = np.arange(first_hour, last_hour + 1)
    rows = typical_year_rows(hours)
    hour_start_s = hours * 3600.0 - offset_s

    fine_s = fine_step_s(request.step_s)
    m = round(3600.0 / fine_s)
    fine_mid_s = (hour_start_s[:, None] + (np.arange(m) + 0.5) * fine_s).ravel()
    clear_fine, solpos = clearsky_ghi(
        epoch_s_to_index(fine_mid_s), year.latitude_deg, year.longitude_deg, year.altitude_m
    )
    clear_fine = clear_fine.reshape(-1, m)
    zenith_fine = solpos["zenith"].to_numpy(dtype=np.float64).reshape(-1, m)
    ghi_hour = year.ghi[rows]
    dhi_hour = np.minimum(year.dhi[rows], ghi_hour)
    clear_hour = clear_fine.mean(axis=1)
    valid = clear_hour >= _KC_MIN_CLEARSKY_W_M2
    kc_hour = np.clip(
        np.where(valid, ghi_hour / np.where(valid, clear_hour, 1.0), np.nan), 0.0, _KC_SHAPE_MAX
    )
    kc_fine = _interpolate_hourly(_fill_from_neighbours(kc_hour, 1.0), m)
    ghi_fine = _hour_profile(ghi_hour, kc_fine * clear_fine, zenith_fine)
    dhi_fine = _split_diffuse(ghi_fine, dhi_hour, ghi_hour, m)

    edges_s = start_s + np.arange(len(grid_s) + 1) * request.step_s
    ghi = _interval_means(ghi_fine.ravel(), hour_start_s[0], fine_s, edges_s)
    dhi = np.minimum(_interval_means(dhi_fine.ravel(), hour_start_s[0], fine_s, edges_s), ghi)
    times_utc = epoch_s_to_index(start_s + grid_s)
    zenith_deg = pvlib.solarposition.get_solarposition(
        times_utc, year.latitude_deg, year.longitude_deg, altitude=year.altitude_m
    )["zenith"].to_numpy(dtype=np.float64)
    dni, dhi = closure_dni(ghi, dhi, zenith_deg)

    hour_end_s = hour_start_s + 3600.0  # instantaneous values "at the time indicated"
    x_s = start_s + grid_s
    temp_air, wind_speed, pressure = (
        np.interp(x_s, hour_end_s, getattr(year, name)[rows])
        for name in ("temp_air", "wind_speed", "pressure")
    )
    return Weather(
        times_utc=times_utc,
        step_s=float(request.step_s),
        ghi=ghi[None, :],
        dni=dni[None, :],
        dhi=dhi[None, :],
        temp_air=temp_air[None, :],
        wind_speed=wind_speed[None, :],
        pressure=pressure[None, :],
        latitude_deg=year.latitude_deg,
        longitude_deg=year.longitude_deg,
        altitude_m=year.altitude_m,
        wind_height_m=year.wind_height_m,
        name=year.name,
    )


def load_tmy3(station: str, request: WeatherRequest) -> Weather:
    """Weather from the TMY3 file of ``station`` shipped with pvlib (see the module docstring).

    Raises ValueError if the station has no TMY3 file (listing those available).
    """
    return typical_year_weather(read_tmy3_year(station), request)


def load_epw(path: str, request: WeatherRequest) -> Weather:
    """Weather from the EnergyPlus weather file at ``path`` (see the module docstring).

    Raises ValueError if the file is missing, unreadable, not 8760 hourly rows in calendar
    order, or holds missing-value codes.
    """
    return typical_year_weather(read_epw_year(path), request)


#: Registry of file weather sources: name -> loader(arg, request); arg is the TMY3 station id
#: or the EPW path. Synthetic weather is :func:`meters.synthetic_weather.synthetic_weather`.
WEATHER_SOURCES: dict[str, Callable[[str, WeatherRequest], Weather]] = {
    "tmy3": load_tmy3,
    "epw": load_epw,
}

