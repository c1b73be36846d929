"""Expected output of a PV site under a clear sky: solar position, extraterrestrial
irradiance, air mass, clear-sky irradiance, plane-of-array irradiance and AC power and
energy (`expected_energy_wh`), each model a pure function of numpy arrays.

**Expected output.** The pipeline must stand alone (DESIGN §2), so it carries its own
clear-sky chain, each model a pure function chosen from a registry:

- solar position (`SOLAR_POSITION_MODELS`): ``"noaa"``, the NOAA Global Monitoring
  Division solar calculator (after J. Meeus, *Astronomical Algorithms*, 1991; within 0.02°
  of zenith and 0.1° of azimuth from NREL SPA, ``pvlib.solarposition.spa_python``, over
  2026 at four latitudes in the tests), and ``"spencer"``, J. W. Spencer, "Fourier series
  representation of the position of the sun", *Search* 2(5):172, 1971 (declination and
  equation of time; within 0.35° of zenith); refraction as in NREL SPA (Reda & Andreas
  2008, eq. 42, after Sæmundsson 1986);
- extraterrestrial irradiance: Spencer (1971) as in ``pvlib.irradiance.get_extra_radiation``
  (solar constant 1366.1 W/m2);
- relative air mass: F. Kasten & A. T. Young, "Revised optical air mass tables and
  approximation formula", *Applied Optics* 28:4735, 1989; pressure from altitude by the
  standard atmosphere (``pvlib.atmosphere.alt2pres``);
- clear-sky irradiance (`CLEAR_SKY_MODELS`): ``"ineichen"``, P. Ineichen & R. Perez, "A new
  airmass independent formulation for the Linke turbidity coefficient", *Solar Energy*
  73:151, 2002 (GHI, DNI, DHI from the Linke turbidity, site metadata), and
  ``"haurwitz"``, B. Haurwitz, "Insolation in relation to cloudiness and cloud density",
  *J. Meteorology* 2:154, 1945 (GHI only), split into DNI/DHI by the Erbs, Klein & Duffie
  (1982) diffuse fraction;
- plane of array: isotropic sky diffuse (B. Liu & R. Jordan, 1963) with ground reflection,
  as ``pvlib.irradiance.get_total_irradiance(model="isotropic")``;
- AC output: DC nameplate x POA / 1000 W/m2 x a derate (the PVWatts v5 defaults, Dobos
  2014: 14.08 % system losses and 96 % inverter efficiency), clipped at the inverter's AC
  nameplate. Cell temperature is not modelled: on a hot clear day a healthy site reads
  a few per cent under the expectation.

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from pipeline.analyze.series import SECONDS_PER_DAY
from pipeline.store.sites import SiteMeta

__all__ = [
    "CLEAR_SKY_MODELS",
    "SOLAR_CONSTANT_W_M2",
    "SOLAR_POSITION_MODELS",
    "ClearSky",
    "SolarPosition",
    "clear_sky",
    "expected_energy_wh",
    "expected_pv_power_w",
    "extra_radiation_w_m2",
    "poa_isotropic_w_m2",
    "relative_airmass_kasten_young",
    "solar_position",
]

_UNIX_EPOCH_JD = 2440587.5  # Julian day of 1970-01-01T00:00Z
_J2000_JD = 2451545.0
#: Solar constant of ``pvlib.irradiance.get_extra_radiation``, W/m2.
SOLAR_CONSTANT_W_M2 = 1366.1


# ======================================================================================
# Solar position
# ======================================================================================


class SolarPosition(NamedTuple):
    """Sun position, degrees: geometric zenith, refraction-corrected (apparent) zenith and
    azimuth east of north. float64 arrays shaped like the times."""

    zenith_deg: np.ndarray
    apparent_zenith_deg: np.ndarray
    azimuth_deg: np.ndarray


def _day_of_year(time_s: np.ndarray) -> np.ndarray:
    """Integer day of the year (1..366) of epoch seconds, UTC."""
    days = np.floor(time_s / SECONDS_PER_DAY).astype(np.int64).astype("datetime64[D]")
    year_start = days.astype("datetime64[Y]").astype("datetime64[D]")
    return (days - year_start).astype(np.int64) + 1


def _refraction_deg(elevation_deg: np.ndarray, pressure_pa: float, temp_air: float) -> np.ndarray:
    """Atmospheric refraction, degrees, NREL SPA eq. 42 (Reda & Andreas 2008), applied while
    the sun's upper limb is above the horizon (elevation >= -(0.26667 + 0.5667) deg)."""
    e0 = elevation_deg
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = (
            (pressure_pa / 100.0 / 1010.0)
            * (283.0 / (273.0 + temp_air))
            * 1.02
            / (60.0 * np.tan(np.radians(e0 + 10.3 / (e0 + 5.11))))
        )
    return np.where(e0 >= -(0.26667 + 0.5667), delta, 0.0)


def _azimuth_deg(
    hour_angle_rad: np.ndarray, latitude_rad: float, declination_rad: np.ndarray
) -> np.ndarray:
    """Azimuth east of north from hour angle, latitude and declination (Meeus 1991, eq.
    13.5, shifted from south-based to north-based)."""
    az = np.degrees(
        np.arctan2(
            np.sin(hour_angle_rad),
            np.cos(hour_angle_rad) * np.sin(latitude_rad)
            - np.tan(declination_rad) * np.cos(latitude_rad),
        )
    )
    return np.asarray(np.mod(az + 180.0, 360.0))


def _zenith_deg(
    hour_angle_rad: np.ndarray, latitude_rad: float, declination_rad: np.ndarray
) -> np.ndarray:
    cos_z = np.sin(latitude_rad) * np.sin(declination_rad) + np.cos(latitude_rad) * np.cos(
        declination_rad
    ) * np.cos(hour_angle_rad)
    return np.degrees(np.arccos(np.clip(cos_z, -1.0, 1.0)))


def _solpos_noaa(
    time_s: np.ndarray, latitude_deg: float, longitude_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Geometric zenith and azimuth, degrees, by the NOAA solar calculator equations
    (NOAA GML, after Meeus 1991); UTC is used for TT (the ~70 s difference moves the sun by
    under 0.001 deg)."""
    jd = time_s / SECONDS_PER_DAY + _UNIX_EPOCH_JD
    jc = (jd - _J2000_JD) / 36525.0
    mean_long = np.mod(280.46646 + jc * (36000.76983 + jc * 0.0003032), 360.0)
    mean_anom = 357.52911 + jc * (35999.05029 - 0.0001537 * jc)
    ecc = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    m = np.radians(mean_anom)
    center = (
        np.sin(m) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + np.sin(2 * m) * (0.019993 - 0.000101 * jc)
        + np.sin(3 * m) * 0.000289
    )
    true_long = mean_long + center
    omega = np.radians(125.04 - 1934.136 * jc)
    app_long = true_long - 0.00569 - 0.00478 * np.sin(omega)
    arcsec = 21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))
    mean_obliq = 23.0 + (26.0 + arcsec / 60.0) / 60.0
    obliq = np.radians(mean_obliq + 0.00256 * np.cos(omega))
    decl = np.arcsin(np.sin(obliq) * np.sin(np.radians(app_long)))
    y = np.tan(obliq / 2.0) ** 2
    l0 = np.radians(mean_long)
    eot_min = 4.0 * np.degrees(
        y * np.sin(2 * l0)
        - 2 * ecc * np.sin(m)
        + 4 * ecc * y * np.sin(m) * np.cos(2 * l0)
        - 0.5 * y * y * np.sin(4 * l0)
        - 1.25 * ecc * ecc * np.sin(2 * m)
    )
    minutes_utc = np.mod(time_s, SECONDS_PER_DAY) / 60.0
    true_solar_min = minutes_utc + eot_min + 4.0 * longitude_deg
    hour_angle = np.radians(true_solar_min / 4.0 - 180.0)
    lat = math.radians(latitude_deg)
    return _zenith_deg(hour_angle, lat, decl), _azimuth_deg(hour_angle, lat, decl)


def _solpos_spencer(
    time_s: np.ndarray, latitude_deg: float, longitude_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Geometric zenith and azimuth, degrees, from Spencer's (1971) Fourier series for the
    declination and the equation of time, with the fractional day of the year (the form
    of Duffie & Beckman, *Solar Engineering of Thermal Processes*, and of
    ``pvlib.solarposition.declination_spencer71`` / ``equation_of_time_spencer71``)."""
    doy = _day_of_year(time_s) + np.mod(time_s, SECONDS_PER_DAY) / SECONDS_PER_DAY
    g = (2.0 * np.pi / 365.0) * (doy - 1.0)
    decl = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    eot_min = (1440.0 / 2 / np.pi) * (
        0.0000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    minutes_utc = np.mod(time_s, SECONDS_PER_DAY) / 60.0
    hour_angle = np.radians((minutes_utc + eot_min + 4.0 * longitude_deg) / 4.0 - 180.0)
    lat = math.radians(latitude_deg)
    return _zenith_deg(hour_angle, lat, decl), _azimuth_deg(hour_angle, lat, decl)


#: Solar position models: name -> f(time_s, latitude_deg, longitude_deg) -> (zenith, azimuth).
SOLAR_POSITION_MODELS: dict[
    str, Callable[[np.ndarray, float, float], tuple[np.ndarray, np.ndarray]]
] = {"noaa": _solpos_noaa, "spencer": _solpos_spencer}


def solar_position(
    time_s: np.ndarray,
    latitude_deg: float,
    longitude_deg: float,
    *,
    model: str = "noaa",
    pressure_pa: float = 101325.0,
    temp_air: float = 12.0,
) -> SolarPosition:
    """Sun position at epoch seconds `time_s` (UTC) seen from a site.

    Args:
        time_s: epoch seconds, any shape.
        latitude_deg, longitude_deg: degrees north and east.
        model: a key of `SOLAR_POSITION_MODELS`.
        pressure_pa, temp_air: for the refraction correction (Pa, degC; defaults those of
            ``pvlib.solarposition.spa_python``).
    """
    try:
        fn = SOLAR_POSITION_MODELS[model]
    except KeyError:
        raise ValueError(
            f"unknown solar position model {model!r}; known: {sorted(SOLAR_POSITION_MODELS)}"
        ) from None
    t = np.asarray(time_s, dtype=np.float64)
    zen, az = fn(t, float(latitude_deg), float(longitude_deg))
    elev = 90.0 - zen
    apparent = 90.0 - (elev + _refraction_deg(elev, pressure_pa, temp_air))
    return SolarPosition(zen, apparent, az)


# ======================================================================================
# Irradiance
# ======================================================================================


def extra_radiation_w_m2(time_s: np.ndarray) -> np.ndarray:
    """Extraterrestrial normal irradiance, W/m2: Spencer (1971) earth-sun distance factor
    with the integer day of the year, times 1366.1 W/m2 (as
    ``pvlib.irradiance.get_extra_radiation(method="spencer")``)."""
    b = (2.0 * np.pi / 365.0) * (_day_of_year(np.asarray(time_s, dtype=np.float64)) - 1)
    factor = (
        1.00011
        + 0.034221 * np.cos(b)
        + 0.00128 * np.sin(b)
        + 0.000719 * np.cos(2 * b)
        + 7.7e-05 * np.sin(2 * b)
    )
    return SOLAR_CONSTANT_W_M2 * factor


def relative_airmass_kasten_young(apparent_zenith_deg: np.ndarray) -> np.ndarray:
    """Relative optical air mass, Kasten & Young (1989); NaN with the sun below the horizon
    (as ``pvlib.atmosphere.get_relative_airmass(model="kastenyoung1989")``)."""
    z = np.where(apparent_zenith_deg > 90, np.nan, apparent_zenith_deg)
    return np.asarray(1.0 / (np.cos(np.radians(z)) + 0.50572 * (6.07995 + (90.0 - z)) ** -1.6364))


def _pressure_from_altitude_pa(altitude_m: float) -> float:
    """Standard-atmosphere pressure, Pa (``pvlib.atmosphere.alt2pres``)."""
    return float(100.0 * ((44331.514 - altitude_m) / 11880.516) ** (1 / 0.1902632))


class ClearSky(NamedTuple):
    """Clear-sky irradiance, W/m2: global horizontal, direct normal, diffuse horizontal."""

    ghi: np.ndarray
    dni: np.ndarray
    dhi: np.ndarray


def _clearsky_ineichen(
    apparent_zenith_deg: np.ndarray,
    dni_extra: np.ndarray,
    altitude_m: float,
    linke_turbidity: float,
) -> ClearSky:
    """Ineichen & Perez (2002), the formulation of ``pvlib.clearsky.ineichen`` (without
    the Perez enhancement), with the Kasten-Young air mass at the site's pressure."""
    am_rel = relative_airmass_kasten_young(apparent_zenith_deg)
    am = am_rel * _pressure_from_altitude_pa(altitude_m) / 101325.0
    cos_z = np.maximum(np.cos(np.radians(apparent_zenith_deg)), 0.0)
    tl = float(linke_turbidity)
    fh1 = math.exp(-altitude_m / 8000.0)
    fh2 = math.exp(-altitude_m / 1250.0)
    cg1 = 5.09e-05 * altitude_m + 0.868
    cg2 = 3.92e-05 * altitude_m + 0.0387
    with np.errstate(invalid="ignore", divide="ignore"):
        ghi = np.exp(-cg2 * am * (fh1 + fh2 * (tl - 1)))
        ghi = cg1 * dni_extra * cos_z * np.fmax(ghi, 0)
        b = 0.664 + 0.163 / fh1
        bnci = dni_extra * np.fmax(b * np.exp(-0.09 * am * (tl - 1)), 0)
        bnci_2 = (1 - (0.1 - 0.2 * math.exp(-tl)) / (0.1 + 0.882 / fh1)) / cos_z
        bnci_2 = ghi * np.fmin(np.fmax(bnci_2, 0), 1e20)
    dni = np.minimum(bnci, bnci_2)
    dhi = ghi - dni * cos_z
    return ClearSky(ghi, dni, dhi)


def _erbs_split(
    ghi: np.ndarray, zenith_deg: np.ndarray, dni_extra: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(dni, dhi) from GHI by the Erbs, Klein & Duffie (1982) diffuse fraction, as
    ``pvlib.irradiance.erbs`` (clearness index capped at 1, cos zenith floored at 0.065,
    no beam beyond 87 deg)."""
    cos_z = np.cos(np.radians(zenith_deg))
    kt = np.minimum(np.maximum(ghi / (dni_extra * np.maximum(cos_z, 0.065)), 0), 1)
    df = np.where(
        kt <= 0.22,
        1 - 0.09 * kt,
        np.where(
            kt <= 0.8, 0.9511 - 0.1604 * kt + 4.388 * kt**2 - 16.638 * kt**3 + 12.336 * kt**4, 0.165
        ),
    )
    dhi = df * ghi
    with np.errstate(invalid="ignore", divide="ignore"):
        dni = (ghi - dhi) / cos_z
    bad = (zenith_deg > 87) | (ghi < 0) | (dni < 0)
    return np.where(bad, 0.0, dni), np.where(bad, ghi, dhi)


def _clearsky_haurwitz(
    apparent_zenith_deg: np.ndarray,
    dni_extra: np.ndarray,
    altitude_m: float,
    linke_turbidity: float,
) -> ClearSky:
    """Haurwitz (1945) GHI = 1098 cos z exp(-0.059 / cos z) W/m2 (``pvlib.clearsky.haurwitz``),
    split by Erbs et al. (1982); altitude and turbidity are not used by this model."""
    cos_z = np.cos(np.radians(apparent_zenith_deg))
    up = cos_z > 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ghi = np.where(up, 1098.0 * cos_z * np.exp(-0.059 / np.where(up, cos_z, 1.0)), 0.0)
    dni, dhi = _erbs_split(ghi, apparent_zenith_deg, dni_extra)
    return ClearSky(ghi, dni, dhi)


#: Clear-sky models: name -> f(apparent_zenith_deg, dni_extra, altitude_m, linke_turbidity).
CLEAR_SKY_MODELS: dict[str, Callable[[np.ndarray, np.ndarray, float, float], ClearSky]] = {
    "ineichen": _clearsky_ineichen,
    "haurwitz": _clearsky_haurwitz,
}


def clear_sky(
    time_s: np.ndarray,
    site: SiteMeta,
    *,
    model: str = "ineichen",
    solar_model: str = "noaa",
) -> tuple[ClearSky, SolarPosition]:
    """Clear-sky irradiance at a site (W/m2, zero with the sun down) and the sun position."""
    try:
        fn = CLEAR_SKY_MODELS[model]
    except KeyError:
        raise ValueError(
            f"unknown clear-sky model {model!r}; known: {sorted(CLEAR_SKY_MODELS)}"
        ) from None
    t = np.asarray(time_s, dtype=np.float64)
    sun = solar_position(
        t,
        site.latitude_deg,
        site.longitude_deg,
        model=solar_model,
        pressure_pa=_pressure_from_altitude_pa(site.altitude_m),
    )
    cs = fn(sun.apparent_zenith_deg, extra_radiation_w_m2(t), site.altitude_m, site.linke_turbidity)
    up = sun.apparent_zenith_deg < 90.0
    clean = ClearSky(*(np.where(up, np.nan_to_num(a, nan=0.0), 0.0) for a in cs))
    return clean, sun


def poa_isotropic_w_m2(
    cs: ClearSky,
    sun: SolarPosition,
    tilt_deg: float,
    surface_azimuth_deg: float,
    albedo: float = 0.25,
) -> np.ndarray:
    """Plane-of-array irradiance, W/m2: beam on the plane + isotropic sky diffuse (Liu &
    Jordan 1963) + ground-reflected, as ``pvlib.irradiance.get_total_irradiance`` with
    ``model="isotropic"``."""
    tilt = math.radians(tilt_deg)
    zen = np.radians(sun.zenith_deg)
    proj = math.cos(tilt) * np.cos(zen) + math.sin(tilt) * np.sin(zen) * np.cos(
        np.radians(sun.azimuth_deg - surface_azimuth_deg)
    )
    proj = np.clip(proj, -1.0, 1.0)
    beam = np.maximum(cs.dni * proj, 0.0)
    sky = cs.dhi * (1 + math.cos(tilt)) / 2
    ground = cs.ghi * albedo * (1 - math.cos(tilt)) / 2
    return np.asarray(beam + sky + ground)


def expected_pv_power_w(
    site: SiteMeta,
    time_s: np.ndarray,
    *,
    clear_sky_model: str = "ineichen",
    solar_model: str = "noaa",
) -> np.ndarray:
    """Clear-sky AC power of a PV site at epoch seconds `time_s`, W: DC nameplate x POA /
    1000 W/m2 x `SiteMeta.derate`, clipped at the AC nameplate (see module docstring)."""
    cs, sun = clear_sky(time_s, site, model=clear_sky_model, solar_model=solar_model)
    poa = poa_isotropic_w_m2(cs, sun, site.tilt_deg, site.azimuth_deg, site.albedo)
    power = site.capacity_w * poa / 1000.0 * site.derate
    return np.asarray(np.minimum(power, site.nameplate_w))


def expected_energy_wh(
    site: SiteMeta,
    start_s: np.ndarray,
    interval_length_s: int,
    *,
    clear_sky_model: str = "ineichen",
    solar_model: str = "noaa",
    max_substep_s: int = 300,
) -> np.ndarray:
    """Clear-sky AC energy of each interval, Wh: the mean of `expected_pv_power_w` at
    sub-steps of at most `max_substep_s` (midpoint rule) times the interval length."""
    step_s = int(interval_length_s)
    n_sub = max(1, -(-step_s // int(max_substep_s)))
    starts = np.asarray(start_s, dtype=np.float64)
    offsets = (np.arange(n_sub) + 0.5) * (step_s / n_sub)
    times = starts[:, None] + offsets[None, :]
    power = expected_pv_power_w(
        site, times, clear_sky_model=clear_sky_model, solar_model=solar_model
    )
    return np.asarray(power.mean(axis=1) * (step_s / 3600.0))
