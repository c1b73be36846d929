"""Expected output of PV sites under a clear sky, with pvlib (W. F. Holmgren, C. W. Hansen &
M. A. Mikofski, "pvlib python: a python package for modeling solar energy systems", JOSS
3(29):884, 2018), vectorised over sites and time steps.

The chain, each step a pvlib call:

- solar position: NREL's Solar Position Algorithm (I. Reda & A. Andreas, "Solar position
  algorithm for solar radiation applications", Solar Energy 76(5):577, 2004), as
  ``pvlib.spa`` implements it. What depends on time alone (apparent sidereal time, the
  sun's geocentric right ascension and declination, the earth-sun distance) is computed
  once per time step for every site (`sun_at`); the topocentric part (hour angle,
  parallax, elevation with refraction, azimuth) per site, broadcast over sites x steps
  (`solar_position`). ``delta_t`` 67 s and refraction at the standard atmosphere's pressure
  for the site's altitude and 12 degC, as ``pvlib.solarposition.spa_python``'s defaults;
- extraterrestrial irradiance: ``pvlib.irradiance.get_extra_radiation`` (Spencer 1971);
- air mass: ``pvlib.atmosphere.get_relative_airmass`` (Kasten & Young 1989) at the site's
  pressure (``pvlib.atmosphere.alt2pres``, ``get_absolute_airmass``);
- clear-sky irradiance: ``pvlib.clearsky.ineichen`` (P. Ineichen & R. Perez, Solar Energy
  73:151, 2002) with the site's Linke turbidity from the registry;
- plane of array: ``pvlib.irradiance.get_total_irradiance`` with ``model="isotropic"``
  (Liu & Jordan 1963) and the site's albedo;
- AC output: DC nameplate x POA / 1000 W/m2 x `pipeline.store.sites.SiteMeta.derate` (the
  PVWatts v5 losses and inverter efficiency, Dobos 2014), clipped at the inverter's AC
  nameplate when asked (``clip``). Cell temperature is not modelled: the fleet-relative
  references of `pipeline.analyze.fleet` cancel it (neighbours share the air
  temperature).

Interval energy (`clear_sky_energy_wh`) is the mean power at sub-steps of at most 300 s
(midpoint rule) times the interval length. The batch analysis computes it once per site
and time step and keeps it (`pipeline.analyze.fleet.FleetGrid`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import pvlib

from pipeline.store.sites import SiteMeta

__all__ = [
    "SPA_DELTA_T_S",
    "ClearSkyBins",
    "SiteArrays",
    "SolarPosition",
    "SunAt",
    "clear_sky_bins",
    "clear_sky_energy_wh",
    "clear_sky_ghi_w_m2",
    "clear_sky_power_w",
    "expected_energy_wh",
    "poa_at_index_w_m2",
    "solar_position",
    "sun_at",
]

#: TT - UT used by the SPA, s (``pvlib.solarposition.spa_python``'s default).
SPA_DELTA_T_S = 67.0
#: Air temperature of the refraction correction, degC (``spa_python``'s default).
_REFRACTION_TEMP_C = 12.0
#: Refraction at the horizon of the SPA, deg (``spa_python``'s ``atmos_refract``).
_ATMOS_REFRACT_DEG = 0.5667
#: Longest sub-step of the interval-energy integral, s.
_MAX_SUBSTEP_S = 300


@dataclass(frozen=True, eq=False)
class SunAt:
    """What the sun's position depends on besides the observer, at epoch seconds
    ``time_s`` [T] (UTC): apparent sidereal time, geocentric right ascension and
    declination (deg), the earth-sun distance (AU) and the extraterrestrial normal
    irradiance (W/m2)."""

    time_s: np.ndarray
    sidereal_deg: np.ndarray
    right_ascension_deg: np.ndarray
    declination_deg: np.ndarray
    earth_sun_au: np.ndarray
    dni_extra_w_m2: np.ndarray


def sun_at(time_s: np.ndarray) -> SunAt:
    """`SunAt` of each epoch second of a 1-D array (``pvlib.spa``, computed once per time
    step for every observer)."""
    t = np.ascontiguousarray(time_s, dtype=np.float64).reshape(-1)
    sidereal, alpha, delta = pvlib.spa.solar_position_numpy(
        t, 0.0, 0.0, 0.0, 1013.25, _REFRACTION_TEMP_C, SPA_DELTA_T_S, _ATMOS_REFRACT_DEG, 0,
        sst=True,
    )  # fmt: skip
    (au,) = pvlib.spa.solar_position_numpy(
        t, 0.0, 0.0, 0.0, 1013.25, _REFRACTION_TEMP_C, SPA_DELTA_T_S, _ATMOS_REFRACT_DEG, 0,
        esd=True,
    )  # fmt: skip
    doy = (t // 86_400).astype("datetime64[D]")
    day_of_year = (doy - doy.astype("datetime64[Y]")).astype(np.int64) + 1
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(day_of_year.astype(float)))
    return SunAt(t, sidereal, alpha, delta, au, dni_extra)


@dataclass(frozen=True, eq=False)
class SolarPosition:
    """Sun position seen from each site at each step, deg, float64 [S, T]: true zenith,
    apparent (refraction-corrected) zenith, azimuth east of north."""

    zenith_deg: np.ndarray
    apparent_zenith_deg: np.ndarray
    azimuth_deg: np.ndarray


@dataclass(frozen=True, eq=False)
class SiteArrays:
    """The registry fields the clear-sky chain reads, one float64 [S, 1] column each (so
    that they broadcast against [T] time steps)."""

    latitude_deg: np.ndarray
    longitude_deg: np.ndarray
    altitude_m: np.ndarray
    tilt_deg: np.ndarray
    azimuth_deg: np.ndarray
    capacity_w: np.ndarray
    nameplate_w: np.ndarray
    linke_turbidity: np.ndarray
    albedo: np.ndarray
    derate: np.ndarray

    @classmethod
    def of(cls, sites: Sequence[SiteMeta]) -> SiteArrays:
        def col(values: list[float]) -> np.ndarray:
            return np.asarray(values, dtype=np.float64).reshape(-1, 1)

        return cls(
            col([s.latitude_deg for s in sites]),
            col([s.longitude_deg for s in sites]),
            col([s.altitude_m for s in sites]),
            col([s.tilt_deg for s in sites]),
            col([s.azimuth_deg for s in sites]),
            col([s.capacity_w for s in sites]),
            col([s.nameplate_w for s in sites]),
            col([s.linke_turbidity for s in sites]),
            col([s.albedo for s in sites]),
            col([s.derate for s in sites]),
        )


def solar_position(
    sun: SunAt, latitude_deg: np.ndarray, longitude_deg: np.ndarray, altitude_m: np.ndarray
) -> SolarPosition:
    """Topocentric sun position (NREL SPA, ``pvlib.spa``) of observers [S, 1] at the steps
    of `sun` [T]: [S, T] arrays."""
    spa = pvlib.spa
    lat = np.asarray(latitude_deg, dtype=np.float64)
    lon = np.asarray(longitude_deg, dtype=np.float64)
    elev = np.asarray(altitude_m, dtype=np.float64)
    pressure_mbar = pvlib.atmosphere.alt2pres(elev) / 100.0
    delta = sun.declination_deg
    hour_angle = spa.local_hour_angle(sun.sidereal_deg, lon, sun.right_ascension_deg)
    xi = spa.equatorial_horizontal_parallax(sun.earth_sun_au)
    u = spa.uterm(lat)
    x = spa.xterm(u, lat, elev)
    y = spa.yterm(u, lat, elev)
    delta_alpha = spa.parallax_sun_right_ascension(x, xi, hour_angle, delta)
    delta_prime = spa.topocentric_sun_declination(delta, x, y, xi, delta_alpha, hour_angle)
    h_prime = spa.topocentric_local_hour_angle(hour_angle, delta_alpha)
    e0 = spa.topocentric_elevation_angle_without_atmosphere(lat, delta_prime, h_prime)
    delta_e = spa.atmospheric_refraction_correction(
        pressure_mbar, _REFRACTION_TEMP_C, e0, _ATMOS_REFRACT_DEG
    )
    e = spa.topocentric_elevation_angle(e0, delta_e)
    gamma = spa.topocentric_astronomers_azimuth(h_prime, delta_prime, lat)
    return SolarPosition(
        np.asarray(spa.topocentric_zenith_angle(e0), dtype=np.float64),
        np.asarray(spa.topocentric_zenith_angle(e), dtype=np.float64),
        np.asarray(spa.topocentric_azimuth_angle(gamma), dtype=np.float64),
    )


def _clear_sky(
    sun: SunAt, pos: SolarPosition, altitude_m: np.ndarray, linke_turbidity: np.ndarray
) -> dict[str, np.ndarray]:
    """Ineichen-Perez clear-sky GHI, DNI, DHI (W/m2, 0 with the sun down), [S, T]."""
    am_rel = pvlib.atmosphere.get_relative_airmass(pos.apparent_zenith_deg, "kastenyoung1989")
    am_abs = pvlib.atmosphere.get_absolute_airmass(am_rel, pvlib.atmosphere.alt2pres(altitude_m))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        cs = pvlib.clearsky.ineichen(
            pos.apparent_zenith_deg,
            am_abs,
            linke_turbidity,
            altitude=altitude_m,
            dni_extra=sun.dni_extra_w_m2,
        )
    up = pos.apparent_zenith_deg < 90.0
    return {k: np.where(up, np.nan_to_num(np.asarray(cs[k]), nan=0.0), 0.0) for k in cs}


def clear_sky_ghi_w_m2(
    time_s: np.ndarray, latitude_deg: float, longitude_deg: float, altitude_m: float,
    linke_turbidity: float = 3.0,
) -> np.ndarray:  # fmt: skip
    """Clear-sky GHI at one place (a met station), W/m2 [T]: the chain above without the
    plane of array. Linke turbidity default 3.0 as `SiteMeta`'s."""
    sun = sun_at(time_s)
    place = [np.array([[v]], dtype=np.float64) for v in (latitude_deg, longitude_deg, altitude_m)]
    pos = solar_position(sun, *place)
    cs = _clear_sky(sun, pos, place[2], np.array([[linke_turbidity]]))
    return np.asarray(cs["ghi"][0])


@dataclass(frozen=True, eq=False)
class ClearSkyBins:
    """Per site and interval, each the mean over the interval's sub-steps (float64
    [S, T]): the clear-sky AC energy before clipping (Wh), the clear-sky GHI (W/m2), the
    sun's true zenith (deg), the projection of the beam on the plane (cos of the angle of
    incidence, 0 when behind it); and the day of the year of each interval [T]."""

    energy_wh: np.ndarray
    ghi_w_m2: np.ndarray
    zenith_deg: np.ndarray
    cos_aoi: np.ndarray
    day_of_year: np.ndarray


def _substeps(start_s: np.ndarray, step_s: int) -> tuple[np.ndarray, int]:
    n_sub = max(1, -(-int(step_s) // _MAX_SUBSTEP_S))
    starts = np.asarray(start_s, dtype=np.float64).reshape(-1)
    offsets = (np.arange(n_sub) + 0.5) * (step_s / n_sub)
    return (starts[:, None] + offsets[None, :]).reshape(-1), n_sub


#: Sites per block of `clear_sky_bins`: [sites, steps] temporaries of a block stay a few
#: MB (a 9-day grid of 15-minute bins in 5-minute sub-steps is 2,592 steps), where a
#: 10,000-site fleet in one piece would need about 200 MB per temporary.
_SITES_PER_BLOCK = 128


def clear_sky_bins(sites: SiteArrays, start_s: np.ndarray, interval_length_s: int) -> ClearSkyBins:
    """`ClearSkyBins` of each site over each interval starting at `start_s` [T].

    The sites are taken in blocks of `_SITES_PER_BLOCK`, on as many threads as the process
    may use cores (numpy releases the GIL in its loops): every value depends on its own
    site and step only, so the result is the same, bit for bit, in any blocks and order
    (tests/pipeline/analyze/test_clearsky.py)."""
    step_s = int(interval_length_s)
    times, n_sub = _substeps(start_s, step_s)
    sun = sun_at(times)
    n_sites = sites.latitude_deg.shape[0]
    blocks = [
        SiteArrays(*(getattr(sites, f.name)[lo : lo + _SITES_PER_BLOCK] for f in fields(sites)))
        for lo in range(0, n_sites, _SITES_PER_BLOCK)
    ]
    threads = min(len(blocks), _usable_cores())
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(lambda block: _block_bins(block, sun, n_sub, step_s), blocks))
    else:
        parts = [_block_bins(block, sun, n_sub, step_s) for block in blocks]
    t = np.asarray(start_s, dtype=np.int64).reshape(-1)
    days = (t // 86_400).astype("datetime64[D]")
    doy = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1

    def rows(k: int) -> np.ndarray:
        if not parts:
            return np.zeros((0, t.shape[0]))
        return np.concatenate([part[k] for part in parts]) if len(parts) > 1 else parts[0][k]

    return ClearSkyBins(rows(0), rows(1), rows(2), rows(3), doy.astype(np.float64))


def _usable_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _block_bins(
    sites: SiteArrays, sun: SunAt, n_sub: int, step_s: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`ClearSkyBins`' energy (Wh), GHI, zenith and cos AOI of a block of sites, [S, T],
    from the sun at the intervals' ``n_sub`` sub-steps of ``step_s`` / ``n_sub`` each."""
    pos = solar_position(sun, sites.latitude_deg, sites.longitude_deg, sites.altitude_m)
    cs = _clear_sky(sun, pos, sites.altitude_m, sites.linke_turbidity)
    power = _plane_power_w(sites, pos, cs)
    cos_aoi = np.maximum(
        pvlib.irradiance.aoi_projection(
            sites.tilt_deg, sites.azimuth_deg, pos.zenith_deg, pos.azimuth_deg
        ),
        0.0,
    )
    cos_aoi = np.where(pos.apparent_zenith_deg < 90.0, cos_aoi, 0.0)

    def mean(a: np.ndarray) -> np.ndarray:
        return np.asarray(a.reshape(a.shape[0], -1, n_sub).mean(axis=2))

    return (
        mean(power) * (step_s / 3600.0),
        mean(cs["ghi"]),
        mean(pos.zenith_deg),
        mean(cos_aoi),
    )


def poa_at_index_w_m2(
    clear_sky_index: np.ndarray,
    ghi_w_m2: np.ndarray,
    zenith_deg: np.ndarray,
    cos_aoi: np.ndarray,
    day_of_year: np.ndarray,
    tilt_deg: np.ndarray,
    albedo: np.ndarray,
) -> np.ndarray:
    """Plane-of-array irradiance, W/m2, when the global horizontal irradiance is
    `clear_sky_index` times its clear-sky value (`ghi_w_m2`), broadcasting: GHI split into
    beam and diffuse by the Erbs, Klein & Duffie (1982) diffuse fraction
    (``pvlib.irradiance.erbs``), then beam on the plane plus isotropic sky diffuse
    (``pvlib.irradiance.isotropic``) plus ground reflection
    (``pvlib.irradiance.get_ground_diffuse``). Under clear skies the beam and the plane's
    orientation dominate; under overcast the diffuse light, the same for every
    orientation: the transposition that lets sites of different orientations share one
    sky (`pipeline.analyze.fleet`)."""
    ghi = np.asarray(clear_sky_index) * ghi_w_m2
    with np.errstate(invalid="ignore", divide="ignore"):
        split = pvlib.irradiance.erbs(ghi, zenith_deg, day_of_year)
    beam = np.nan_to_num(split["dni"]) * cos_aoi
    sky = pvlib.irradiance.isotropic(tilt_deg, np.nan_to_num(split["dhi"]))
    ground = pvlib.irradiance.get_ground_diffuse(tilt_deg, ghi, albedo)
    return np.asarray(beam + sky + ground)


def _plane_power_w(sites: SiteArrays, pos: SolarPosition, cs: dict[str, np.ndarray]) -> np.ndarray:
    """Clear-sky AC power before clipping, W: DC nameplate x POA / 1000 x derate."""
    poa = pvlib.irradiance.get_total_irradiance(
        sites.tilt_deg,
        sites.azimuth_deg,
        pos.zenith_deg,
        pos.azimuth_deg,
        cs["dni"],
        cs["ghi"],
        cs["dhi"],
        albedo=sites.albedo,
        model="isotropic",
    )["poa_global"]
    power = sites.capacity_w * np.nan_to_num(np.asarray(poa), nan=0.0) / 1000.0 * sites.derate
    return np.asarray(np.maximum(power, 0.0))


def clear_sky_power_w(sites: SiteArrays, time_s: np.ndarray, *, clip: bool = True) -> np.ndarray:
    """Clear-sky AC power of each site at each epoch second, W [S, T] (module docstring);
    ``clip`` at the AC nameplate."""
    sun = sun_at(time_s)
    pos = solar_position(sun, sites.latitude_deg, sites.longitude_deg, sites.altitude_m)
    cs = _clear_sky(sun, pos, sites.altitude_m, sites.linke_turbidity)
    power = _plane_power_w(sites, pos, cs)
    return np.minimum(power, sites.nameplate_w) if clip else power


def clear_sky_energy_wh(
    sites: SiteArrays, start_s: np.ndarray, interval_length_s: int, *, clip: bool = True
) -> np.ndarray:
    """Clear-sky AC energy of each site over each interval starting at `start_s` [T], Wh
    [S, T]: the mean of `clear_sky_power_w` at sub-steps of at most 300 s (midpoint rule)
    times the interval length."""
    step_s = int(interval_length_s)
    times, n_sub = _substeps(start_s, step_s)
    power = clear_sky_power_w(sites, times, clip=clip)
    return np.asarray(power.reshape(power.shape[0], -1, n_sub).mean(axis=2) * (step_s / 3600.0))


def expected_energy_wh(
    site: SiteMeta, start_s: np.ndarray, interval_length_s: int, *, clip: bool = True
) -> np.ndarray:
    """Clear-sky AC energy of one site over each interval, Wh [T] (`clear_sky_energy_wh`)."""
    return np.asarray(
        clear_sky_energy_wh(SiteArrays.of([site]), start_s, interval_length_s, clip=clip)[0]
    )
