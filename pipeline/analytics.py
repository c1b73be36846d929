"""Site analytics on interval-energy series: expected output, performance, fault detectors,
short-term forecasts and recommendations.

Everything works on columnar numpy arrays of one series on a regular grid (the output of
`pipeline.vee.vee`, see `Series.from_vee`); nothing loops over readings in Python.

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

**Performance ratio.** `daily_performance` gives, per local solar day, the ratio of
measured to expected (clear-sky) energy over the daylight intervals: IEC 61724-1's
performance ratio with the clear-sky expectation as the reference yield. Clouds lower it on
cloudy days; the soiling detector therefore only uses *clear days* (a low spread of the
interval ratios within the day and a level near the recent best).

**Detectors** (`DETECTORS`, chosen per site kind by `SITE_DETECTORS`) each return
`Detection` records (kind, series id, start, end, detection time, confidence, magnitude,
message) for the field faults the twin injects:

- ``soiling``: the clear-day performance ratio declining over days (Theil-Sen slope over a
  sliding window of days; onset, end and loss from a flat-ramp-flat least-squares fit);
- ``inverter_trip``: no output for a while during daylight, while the clear-sky expectation
  is high;
- ``stuck_meter``: the same non-zero reading repeated for hours;
- ``curtailment``: wind output flat-topped below rated: a ceiling reached again and again
  at the same level, with the output dipping below it in between (with only the meter
  series, a turbine held at one level without a dip is indistinguishable from a stuck
  register and is reported as ``stuck_meter``);
- ``anomaly``: generic robust anomaly detection, the rolling modified z-score of
  `pipeline.kernels.rolling_robust_z` on the residual against the median daily profile of
  the last days (for load series; PV under clouds is not predictable enough for it).

**Forecast.** `forecast` predicts the next hours with a method from `FORECAST_METHODS`
(persistence, seasonal naive, persistence of the anomaly against yesterday, clear-sky index
persistence); `backtest_forecast` scores a method on history (MAE, RMSE and skill against
persistence, 1 - RMSE/RMSE_persistence, the skill score of Murphy 1988 as used in solar
forecasting, e.g. Coimbra, Kleissl & Marquez 2013).

**Recommendations.** `recommendations` turns detections into sentences a person can act on
("clean panels at site X: performance ratio down 12% over 10 days").

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from pipeline.kernels import rolling_max, rolling_robust_z, true_runs
from pipeline.vee import VeeResult

__all__ = [
    "ANOMALY",
    "CLEAR_SKY_MODELS",
    "CURTAILMENT",
    "DETECTORS",
    "FORECAST_METHODS",
    "INVERTER_TRIP",
    "PVWATTS_DERATE",
    "RECOMMENDERS",
    "SITE_DETECTORS",
    "SOILING",
    "SOLAR_CONSTANT_W_M2",
    "SOLAR_POSITION_MODELS",
    "STUCK_METER",
    "ClearSky",
    "DailyPerformance",
    "Detection",
    "DetectorParams",
    "ForecastScore",
    "Series",
    "SiteMeta",
    "SiteReport",
    "SolarPosition",
    "analyze_site",
    "backtest_forecast",
    "clear_sky",
    "daily_performance",
    "detect_anomalies",
    "detect_curtailment",
    "detect_inverter_trip",
    "detect_soiling",
    "detect_stuck_meter",
    "expected_energy_wh",
    "expected_pv_power_w",
    "extra_radiation_w_m2",
    "forecast",
    "poa_isotropic_w_m2",
    "recommendations",
    "relative_airmass_kasten_young",
    "solar_position",
]

SOILING = "soiling"
INVERTER_TRIP = "inverter_trip"
STUCK_METER = "stuck_meter"
CURTAILMENT = "curtailment"
ANOMALY = "anomaly"

_SECONDS_PER_DAY = 86_400
_UNIX_EPOCH_JD = 2440587.5  # Julian day of 1970-01-01T00:00Z
_J2000_JD = 2451545.0
#: Solar constant of ``pvlib.irradiance.get_extra_radiation``, W/m2.
SOLAR_CONSTANT_W_M2 = 1366.1
#: PVWatts v5 defaults (Dobos 2014, NREL/TP-6A20-62641): 14.08 % system losses and a
#: nominal inverter efficiency of 96 %: AC = DC nameplate x POA/1000 x 0.8592 x 0.96.
PVWATTS_DERATE = (1.0 - 0.1408) * 0.96


# ======================================================================================
# Site metadata and series
# ======================================================================================


@dataclass(frozen=True)
class SiteMeta:
    """What the pipeline knows of one site (from its commissioning record).

    Attributes:
        site_id: the id used in detections and messages (usually the meter id).
        kind: ``"pv"``, ``"wind"`` or ``"load"``: picks the detectors (`SITE_DETECTORS`).
        capacity_w: PV: DC nameplate at STC (PVWatts ``pdc0``), W; wind: rated power, W;
            load: the service's peak demand, W.
        latitude_deg, longitude_deg: site location, degrees north and east.
        altitude_m: site altitude above sea level, m.
        tilt_deg: PV surface tilt from horizontal, degrees.
        azimuth_deg: PV surface azimuth, degrees east of north (180 = south facing).
        ac_nameplate_w: PV inverter AC limit, W (None: no clipping, i.e. ``capacity_w``).
        linke_turbidity: Linke turbidity of the Ineichen-Perez clear sky (dimensionless;
            default 3.0, a typical rural mid-latitude value, Remund et al. 2003).
        albedo: ground reflectance (default 0.25, pvlib's default).
        derate: AC output per unit of DC nameplate x POA/1000 (default `PVWATTS_DERATE`).
    """

    site_id: str
    kind: str
    capacity_w: float
    latitude_deg: float = 0.0
    longitude_deg: float = 0.0
    altitude_m: float = 0.0
    tilt_deg: float = 0.0
    azimuth_deg: float = 180.0
    ac_nameplate_w: float | None = None
    linke_turbidity: float = 3.0
    albedo: float = 0.25
    derate: float = PVWATTS_DERATE

    def __post_init__(self) -> None:
        if self.kind not in SITE_DETECTORS:
            raise ValueError(f"kind must be one of {sorted(SITE_DETECTORS)}, got {self.kind!r}")
        if not self.capacity_w > 0:
            raise ValueError(f"capacity_w must be > 0, got {self.capacity_w!r}")
        if not -90 <= self.latitude_deg <= 90 or not -180 <= self.longitude_deg <= 360:
            raise ValueError("latitude_deg must be in [-90, 90] and longitude_deg in [-180, 360]")
        if self.ac_nameplate_w is not None and not self.ac_nameplate_w > 0:
            raise ValueError(f"ac_nameplate_w must be > 0, got {self.ac_nameplate_w!r}")

    @property
    def nameplate_w(self) -> float:
        """The output ceiling, W: the inverter AC limit for PV, the rated power otherwise."""
        if self.kind == "pv" and self.ac_nameplate_w is not None:
            return float(self.ac_nameplate_w)
        return float(self.capacity_w)


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Series:
    """One interval-energy series on a regular grid.

    Attributes:
        series_id: the meter (or site) id.
        start_s: int64 epoch seconds of each interval start, strictly increasing by
            `interval_length_s`.
        energy_wh: float64 energy of each interval, Wh; NaN where unknown.
        interval_length_s: the grid step, s.
    """

    series_id: str
    start_s: np.ndarray
    energy_wh: np.ndarray
    interval_length_s: int

    def __post_init__(self) -> None:
        s = np.asarray(self.start_s)
        e = np.asarray(self.energy_wh)
        if s.ndim != 1 or s.shape != e.shape:
            raise ValueError(
                f"start_s and energy_wh must be 1-D of equal length, got {s.shape}, {e.shape}"
            )
        if not self.interval_length_s > 0:
            raise ValueError(f"interval_length_s must be > 0, got {self.interval_length_s!r}")
        if s.size > 1 and np.any(np.diff(s) != self.interval_length_s):
            raise ValueError("start_s must be a regular grid with step interval_length_s")

    @classmethod
    def from_vee(
        cls, series_id: str, result: VeeResult, power_of_ten_multiplier: int = 0
    ) -> Series:
        """The validated series of a VEE result, converted from register counts to Wh
        (``value * 10**power_of_ten_multiplier``, ESPI uom 72)."""
        scale = 10.0 ** int(power_of_ten_multiplier)
        return cls(series_id, result.start_s, result.value * scale, result.interval_length_s)

    @property
    def n(self) -> int:
        """Number of intervals."""
        return int(self.start_s.shape[0])


@dataclass(frozen=True)
class Detection:
    """One fault or anomaly found by a detector.

    Attributes:
        kind: ``soiling``, ``inverter_trip``, ``stuck_meter``, ``curtailment``, ``anomaly``.
        series_id: the site or meter.
        start_s: epoch seconds, estimated start of the fault.
        end_s: epoch seconds, end of the evidence (the fault may go on after it).
        detected_s: epoch seconds at which the evidence first sufficed (the end of the
            interval or day that completed it): ``detected_s - start_s`` is the detection
            delay the twin scores.
        confidence: 0..1, how sure the detector is (each detector documents its formula).
        magnitude: a kind-specific size: soiling: fractional loss of performance ratio;
            inverter_trip: energy lost, Wh; stuck_meter: the repeated value, Wh;
            curtailment: the ceiling as a fraction of rated power; anomaly: the largest
            |z|.
        message: what was found, for a person.
    """

    kind: str
    series_id: str
    start_s: int
    end_s: int
    detected_s: int
    confidence: float
    magnitude: float
    message: str


@dataclass(frozen=True)
class DetectorParams:
    """Thresholds of the detectors (project choices, each stated with its reason).

    Attributes:
        trip_min_expected_fraction: an interval counts for the trip detector when the
            clear-sky expectation is at least this fraction of the nameplate (0.2).
        trip_max_ratio: ... and the reading is at most this fraction of the expectation
            (0.02: heavy overcast still gives 5-30 % of clear sky).
        trip_min_duration_s: shortest trip reported, s of such daylight intervals (1800).
        stuck_min_duration_s: shortest run of identical non-zero readings reported as a
            stuck meter, s (7200, as `pipeline.vee.VeeLimits.stuck_max_duration_s`).
        stuck_min_readings: ... with at least this many readings (4).
        stuck_exempt_fraction: runs at or above this fraction of the nameplate energy are
            flat tops (clipping, rated wind), not stuck (0.97).
        curtail_tolerance_fraction: relative closeness to a ceiling, and between visit
            levels (0.01: four standard deviations of an IEC 62053 class 1 meter's reading
            error, so meter noise does not break a plateau).
        curtail_window_s: span of the centred rolling maximum that defines the local
            ceiling, s (6 h).
        curtail_min_level_fraction, curtail_max_level_fraction: plateau levels considered,
            fractions of rated (0.05 and 0.95: below is calm, above is rated output).
        curtail_min_visit_s: shortest visit to a ceiling, s (1800: natural output near a
            wind-speed peak does not stay within 1 % for half an hour).
        curtail_min_visits: fewest separate visits to one ceiling for a curtailment (2).
        curtail_max_gap_s: visits further apart than this are separate episodes, s (24 h:
            a curtailment order outlasts a calm night).
        curtail_min_duration_s: shortest total time at the ceiling in an episode, s (7200).
        soiling_window_days: trailing windows of the soiling trend, days ((14, 30, 60): at
            the twin's default 0.15 %/day, pvlib's Kimber default, a 5 % loss needs five
            weeks of evidence; at 1 %/day two weeks tell).
        soiling_min_loss: smallest performance-ratio loss over the window reported (0.05).
        soiling_min_confidence: smallest fraction of negative pairwise slopes (0.75).
        soiling_min_clear_days: fewest clear days in a window (5).
        clear_max_dispersion: a clear day has (q90 - q10) / q50 of its interval ratios at
            most this (0.15: clouds make the ratio fluctuate within the day).
        clear_min_fraction: ... and a median ratio at least this fraction of the best of
            the last `clear_reference_days` (0.7: overcast days are uniform but dark).
        clear_reference_days: look-back of that best, days (30).
        daylight_min_fraction: intervals whose expectation is at least this fraction of
            the day's largest expectation enter the daily ratios (0.3: low sun is where
            the clear-sky model and the orientation matter most).
        anomaly_reference_days: days whose median profile is removed before scoring
            anomalies (3: one odd day cannot move a median of three).
        anomaly_window: trailing window of the anomaly detector, intervals (61).
        anomaly_threshold: |modified z| above which a reading is anomalous (8.0, as
            `pipeline.analyze.RobustZScoreDetector`).
        anomaly_mad_floor_fraction: smallest MAD as a fraction of the nameplate energy of
            one interval (0.02).
    """

    trip_min_expected_fraction: float = 0.2
    trip_max_ratio: float = 0.02
    trip_min_duration_s: float = 1800.0
    stuck_min_duration_s: float = 7200.0
    stuck_min_readings: int = 4
    stuck_exempt_fraction: float = 0.97
    curtail_tolerance_fraction: float = 0.01
    curtail_window_s: float = 6 * 3600.0
    curtail_min_level_fraction: float = 0.05
    curtail_max_level_fraction: float = 0.95
    curtail_min_visit_s: float = 1800.0
    curtail_min_visits: int = 2
    curtail_max_gap_s: float = 24 * 3600.0
    curtail_min_duration_s: float = 7200.0
    soiling_window_days: tuple[int, ...] = (14, 30, 60)
    soiling_min_loss: float = 0.05
    soiling_min_confidence: float = 0.75
    soiling_min_clear_days: int = 5
    clear_max_dispersion: float = 0.15
    clear_min_fraction: float = 0.7
    clear_reference_days: int = 30
    daylight_min_fraction: float = 0.3
    anomaly_reference_days: int = 3
    anomaly_window: int = 61
    anomaly_threshold: float = 8.0
    anomaly_mad_floor_fraction: float = 0.02

    def __post_init__(self) -> None:
        if (
            not self.soiling_window_days
            or min(self.soiling_window_days) < 3
            or self.soiling_min_clear_days < 3
        ):
            raise ValueError("soiling_window_days and soiling_min_clear_days must be >= 3")
        if self.curtail_min_visits < 1 or not self.curtail_window_s > 0:
            raise ValueError("curtail_min_visits must be >= 1 and curtail_window_s > 0")
        if self.anomaly_window < 3:
            raise ValueError("anomaly_window must be >= 3")


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
    days = np.floor(time_s / _SECONDS_PER_DAY).astype(np.int64).astype("datetime64[D]")
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
    jd = time_s / _SECONDS_PER_DAY + _UNIX_EPOCH_JD
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
    minutes_utc = np.mod(time_s, _SECONDS_PER_DAY) / 60.0
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
    doy = _day_of_year(time_s) + np.mod(time_s, _SECONDS_PER_DAY) / _SECONDS_PER_DAY
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
    minutes_utc = np.mod(time_s, _SECONDS_PER_DAY) / 60.0
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


# ======================================================================================
# Daily performance
# ======================================================================================


@dataclass(frozen=True, eq=False)
class DailyPerformance:
    """Per local solar day of a PV series against its clear-sky expectation.

    Attributes:
        day_start_s: int64 epoch seconds of each local solar day's start (UTC midnight
            shifted by the longitude: solar noon mid-day).
        performance_ratio: measured / expected energy over the day's daylight intervals
            (see `DetectorParams.daylight_min_fraction`); NaN without data.
        median_ratio: median of the interval ratios measured/expected (the clear-day level).
        dispersion: (q90 - q10) / q50 of the interval ratios (low on clear days).
        n_intervals: daylight intervals with a reading.
        clear: the day counts as clear (see `DetectorParams.clear_max_dispersion`).
    """

    day_start_s: np.ndarray
    performance_ratio: np.ndarray
    median_ratio: np.ndarray
    dispersion: np.ndarray
    n_intervals: np.ndarray
    clear: np.ndarray


def _day_index(start_s: np.ndarray, longitude_deg: float) -> tuple[np.ndarray, int]:
    """Local solar day of each time, and the shift used (s added to UTC)."""
    shift = round(longitude_deg / 15.0 * 3600.0)
    return np.floor_divide(np.asarray(start_s, dtype=np.int64) + shift, _SECONDS_PER_DAY), shift


def _grouped_quantiles(
    group: np.ndarray, values: np.ndarray, n_groups: int, qs: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles (lower-order statistic at floor(q (n-1))) of `values` per integer group in
    [0, n_groups), vectorised with one lexsort; returns ([len(qs), n_groups], counts)."""
    order = np.lexsort((values, group))
    g = group[order]
    v = values[order]
    counts = np.bincount(g, minlength=n_groups)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.full((len(qs), n_groups), np.nan)
    has = counts > 0
    for i, q in enumerate(qs):
        pos = first[has] + np.floor(q * (counts[has] - 1)).astype(np.int64)
        out[i, has] = v[pos]
    return out, counts


def daily_performance(
    site: SiteMeta,
    series: Series,
    expected_wh: np.ndarray | None = None,
    params: DetectorParams | None = None,
) -> DailyPerformance:
    """Daily performance ratio of a PV series against its clear-sky expectation, and which
    days were clear (see `DailyPerformance`)."""
    p = DetectorParams() if params is None else params
    exp = (
        expected_energy_wh(site, series.start_s, series.interval_length_s)
        if expected_wh is None
        else np.asarray(expected_wh, dtype=np.float64)
    )
    day, shift = _day_index(series.start_s, site.longitude_deg)
    if day.size == 0:
        empty = np.zeros(0)
        return DailyPerformance(
            np.zeros(0, np.int64), empty, empty, empty, np.zeros(0, np.int64), np.zeros(0, bool)
        )
    d0 = int(day[0])
    di = day - d0
    n_days = int(di[-1]) + 1
    day_max = np.zeros(n_days)
    np.maximum.at(day_max, di, exp)
    meas = series.energy_wh
    use = (exp >= p.daylight_min_fraction * day_max[di]) & (exp > 0) & np.isfinite(meas)
    ratio = meas[use] / exp[use]
    (q10, q50, q90), counts = _grouped_quantiles(di[use], ratio, n_days, (0.1, 0.5, 0.9))
    sum_m = np.bincount(di[use], weights=meas[use], minlength=n_days)
    sum_e = np.bincount(di[use], weights=exp[use], minlength=n_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        pr = np.where(sum_e > 0, sum_m / sum_e, np.nan)
        dispersion = (q90 - q10) / q50
    # expected daylight intervals per day: require half of them
    n_expected = np.bincount(
        di, weights=(exp >= p.daylight_min_fraction * day_max[di]) & (exp > 0), minlength=n_days
    )
    enough = counts >= np.maximum(3, 0.5 * n_expected)
    calm = enough & (dispersion <= p.clear_max_dispersion)
    # level near the best calm day of the look-back (overcast days are calm but dark)
    level = np.where(calm, q50, np.nan)
    best = _rolling_nanmax(level, p.clear_reference_days)
    clear = calm & (q50 >= p.clear_min_fraction * best)
    day_start = (d0 + np.arange(n_days)) * _SECONDS_PER_DAY - shift
    return DailyPerformance(
        day_start.astype(np.int64), pr, q50, dispersion, counts.astype(np.int64), clear
    )


def _rolling_nanmax(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing max over `window` values, NaN skipped (NaN when all are NaN)."""
    pad = np.concatenate((np.full(window - 1, -np.inf), np.where(np.isnan(x), -np.inf, x)))
    m = np.lib.stride_tricks.sliding_window_view(pad, window).max(axis=1)
    return np.where(np.isinf(m), np.nan, m)


# ======================================================================================
# Detectors
# ======================================================================================


def _utc(t_s: float) -> str:
    return datetime.fromtimestamp(int(t_s), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600.0:.1f} h"


def _power_text(w: float) -> str:
    if abs(w) >= 1e6:
        return f"{w / 1e6:.2f} MW"
    if abs(w) >= 1e3:
        return f"{w / 1e3:.1f} kW"
    return f"{w:.0f} W"


def _theil_sen_windows(
    y: np.ndarray, window: int, min_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Theil-Sen slope, intercept at the window start, and fraction of negative pairwise
    slopes, of y over every trailing window (NaN skipped); results at each window's last
    index, NaN where fewer than `min_points` values. Vectorised over windows x pairs."""
    n = y.shape[0]
    slope = np.full(n, np.nan)
    intercept = np.full(n, np.nan)
    neg = np.full(n, np.nan)
    if n < window:
        return slope, intercept, neg
    win = np.lib.stride_tricks.sliding_window_view(y, window)  # [n - w + 1, w]
    i, j = np.triu_indices(window, k=1)
    pair = (win[:, j] - win[:, i]) / (j - i)  # [nw, n_pairs], NaN where either is NaN
    valid_pts = np.sum(~np.isnan(win), axis=1)
    ok = valid_pts >= min_points
    if not ok.any():
        return slope, intercept, neg
    with np.errstate(invalid="ignore"):
        s = np.nanmedian(np.where(ok[:, None], pair, 0.0), axis=1)
        n_pairs = np.sum(~np.isnan(pair), axis=1)
        frac_neg = np.sum(pair < 0, axis=1) / np.maximum(n_pairs, 1)
        resid = win - s[:, None] * np.arange(window)[None, :]
        b = np.nanmedian(np.where(ok[:, None], resid, 0.0), axis=1)
    end = np.arange(window - 1, n)
    slope[end[ok]] = s[ok]
    intercept[end[ok]] = b[ok]
    neg[end[ok]] = frac_neg[ok]
    return slope, intercept, neg


def _ramp_fit(d: np.ndarray, y: np.ndarray, lo: int, hi: int) -> tuple[int, int, float, float]:
    """Least-squares "flat, linear decline, flat" fit of points (d, y):
    ``y = a - b * clip(d - k1, 0, k2 - k1)`` over every pair of knee days lo <= k1 < k2 <=
    hi (vectorised over the pairs; on spans over 120 days the knees are tried on a coarser
    grid of at most 121 days, to bound memory); returns (k1, k2, a, b) of the smallest
    residual with b > 0, or (lo, lo, mean(y), 0) when no decline fits."""
    stride = max(1, -(-(hi - lo) // 120))
    knees = np.unique(np.concatenate((np.arange(lo, hi + 1, stride), [hi])))
    i, j = np.triu_indices(knees.size, k=1)
    k1 = knees[i]
    k2 = knees[j]
    x = np.clip(d[None, :] - k1[:, None], 0.0, (k2 - k1)[:, None]).astype(float)  # [K, m]
    m = d.size
    sx = x.sum(axis=1)
    sxx = (x * x).sum(axis=1)
    sy = float(y.sum())
    sxy = x @ y
    det = m * sxx - sx * sx
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (m * sxy - sx * sy) / det  # coefficient of x in y = a + slope x
        a = (sy - slope * sx) / m
        sse = (
            (y * y).sum()
            + m * a * a
            + slope * slope * sxx
            - 2 * a * sy
            - 2 * slope * sxy
            + 2 * a * slope * sx
        )
    sse = np.where((slope < 0) & (det > 0), sse, np.inf)
    if sse.size == 0 or not np.isfinite(sse.min()):
        return lo, lo, float(np.mean(y)), 0.0
    best = int(np.argmin(sse))
    return int(k1[best]), int(k2[best]), float(a[best]), float(-slope[best])


def detect_soiling(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Soiling: the clear-day performance ratio declining over days.

    For each day and each trailing window of `DetectorParams.soiling_window_days` (short
    windows catch fast soiling early, long ones slow soiling at all), the Theil-Sen slope
    of the clear days' median ratio (robust to the odd misjudged day); the day *fires*
    when, in some window, the line loses at least `soiling_min_loss` of its starting level
    and at least `soiling_min_confidence` of the pairwise slopes are negative. A run of
    firing days is one detection: its onset, end and total loss come from a least-squares
    ramp fit (flat, linear decline, flat) of the clear days from the first firing window's
    start to the last firing day (streaks closer than a window are merged). Confidence: the
    largest
    fraction of negative pairwise slopes seen. Magnitude: the fractional loss of
    performance ratio from the ramp fit; `Detection.start_s` and `end_s` are the fitted
    start and end of the decline (the end is the last evidence while it goes on).
    """
    # a series touches at most span // 1 day + 2 local days: too few for any window
    if series.n * series.interval_length_s // _SECONDS_PER_DAY + 2 < min(
        params.soiling_window_days
    ):
        return []
    daily = daily_performance(site, series, expected_wh, params)
    n_days = daily.day_start_s.shape[0]
    y = np.where(daily.clear, daily.median_ratio, np.nan)
    fire = np.zeros(n_days, dtype=bool)
    span = np.zeros(n_days, dtype=np.int64)  # longest window firing on each day
    neg = np.full(n_days, np.nan)
    loss = np.full(n_days, np.nan)
    min_points = params.soiling_min_clear_days
    for w in sorted(params.soiling_window_days):  # a few window lengths, not readings
        if n_days < w:
            continue
        slope_w, level_w, neg_w = _theil_sen_windows(y, w, min_points)
        with np.errstate(invalid="ignore", divide="ignore"):
            loss_w = -slope_w * (w - 1) / level_w
        fire_w = (loss_w >= params.soiling_min_loss) & (neg_w >= params.soiling_min_confidence)
        fire |= fire_w
        span = np.where(fire_w, w, span)
        neg = np.where(fire_w, np.fmax(neg, neg_w), neg)
        loss = np.where(fire_w, np.fmax(loss, loss_w), loss)
    out: list[Detection] = []
    starts, stops = true_runs(fire)
    if starts.size == 0:
        return out
    # streaks whose windows overlap are one episode
    w_max = int(max(params.soiling_window_days))
    join = np.ones(starts.size, dtype=bool)
    join[1:] = starts[1:] - stops[:-1] >= w_max
    first_of = np.flatnonzero(join)
    last_of = np.concatenate((first_of[1:] - 1, [starts.size - 1]))
    for s, e in zip(starts[first_of].tolist(), stops[last_of].tolist(), strict=True):
        lo = max(0, s - int(span[s]) + 1)
        days = np.arange(lo, e)
        sel = ~np.isnan(y[lo:e])
        k1, k2, a, b = _ramp_fit(days[sel].astype(float), y[lo:e][sel], lo, e - 1)
        total = b * (k2 - k1) / a if a > 0 and b > 0 else float(np.nanmax(loss[s:e]))
        if b <= 0:
            k1, k2 = lo, e - 1
        # a day's median ratio stands for its middle (solar noon): knees sit there
        onset = int(daily.day_start_s[0]) + k1 * _SECONDS_PER_DAY + _SECONDS_PER_DAY // 2
        end = int(daily.day_start_s[0]) + k2 * _SECONDS_PER_DAY + _SECONDS_PER_DAY // 2
        detected = int(daily.day_start_s[s]) + _SECONDS_PER_DAY
        conf = float(np.nanmax(neg[s:e]))
        out.append(
            Detection(
                kind=SOILING,
                series_id=series.series_id,
                start_s=onset,
                end_s=end,
                detected_s=detected,
                confidence=conf,
                magnitude=float(total),
                message=(
                    f"performance ratio of site {site.site_id} down {total:.0%} over "
                    f"{k2 - k1} days ({_utc(onset)[:10]} to {_utc(end)[:10]}, clear days "
                    "against the clear-sky expectation): soiling"
                ),
            )
        )
    return out


def detect_inverter_trip(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Inverter trip: (near) zero output in daylight while the clear-sky expectation is high.

    Daylight intervals are those whose expectation is at least
    `DetectorParams.trip_min_expected_fraction` of the nameplate energy of one interval;
    the run of daylight intervals reading at most `trip_max_ratio` of the expectation is
    followed across nights and missing readings, and reported when it covers at least
    `trip_min_duration_s`. Confidence ``1 - exp(-duration / trip_min_duration_s)`` (0.63
    at the threshold, 0.95 at three times it). Magnitude: expected energy lost, Wh.
    """
    step_s = series.interval_length_s
    exp = (
        expected_energy_wh(site, series.start_s, step_s)
        if expected_wh is None
        else np.asarray(expected_wh, dtype=np.float64)
    )
    meas = series.energy_wh
    e_name = site.nameplate_w * step_s / 3600.0
    bright = exp >= params.trip_min_expected_fraction * e_name
    daylight = np.flatnonzero(bright & np.isfinite(meas))
    if daylight.size == 0:
        return []
    tripped = meas[daylight] <= params.trip_max_ratio * exp[daylight]
    starts, stops = true_runs(tripped)
    k_min = max(1, math.ceil(params.trip_min_duration_s / step_s))
    out: list[Detection] = []
    for s, e in zip(starts.tolist(), stops.tolist(), strict=True):
        if e - s < k_min:
            continue
        idx = daylight[s:e]
        first, last = int(idx[0]), int(idx[-1])
        duration = (e - s) * step_s
        lost = float(np.sum(exp[idx] - meas[idx]))
        mean_expected_w = float(np.mean(exp[idx])) * 3600.0 / step_s
        t0 = int(series.start_s[first])
        t1 = int(series.start_s[last]) + step_s
        out.append(
            Detection(
                kind=INVERTER_TRIP,
                series_id=series.series_id,
                start_s=t0,
                end_s=t1,
                detected_s=int(series.start_s[daylight[s + k_min - 1]]) + step_s,
                confidence=float(1.0 - math.exp(-duration / params.trip_min_duration_s)),
                magnitude=lost,
                message=(
                    f"no output at site {site.site_id} from {_utc(t0)} to {_utc(t1)} "
                    f"({_hours(duration)} of daylight) while clear sky allowed "
                    f"{_power_text(mean_expected_w)} on average: inverter trip, "
                    f"about {lost / 1000.0:.1f} kWh lost"
                ),
            )
        )
    return out


class _Plateau(NamedTuple):
    level_wh: float
    first: int  # grid index of the first interval of the episode
    stop: int  # one past the last
    visits: int
    time_at_level_s: float
    detected: int  # grid index at which min visits and min time were both reached


def _plateau_episodes(
    x: np.ndarray, step_s: int, rated_wh: float, p: DetectorParams
) -> list[_Plateau]:
    """Curtailment ceilings (see `detect_curtailment`), tolerant of meter noise."""
    n = x.shape[0]
    if n < 2:
        return []
    tol = p.curtail_tolerance_fraction
    half = max(1, round(p.curtail_window_s / step_s / 2))
    ceiling = rolling_max(x, 2 * half + 1, center=True, min_periods=1)
    with np.errstate(invalid="ignore"):
        at = (
            (x >= (1.0 - tol) * ceiling)
            & (ceiling >= p.curtail_min_level_fraction * rated_wh)
            & (ceiling <= p.curtail_max_level_fraction * rated_wh)
        )
    s, e = true_runs(at)
    count = e - s
    keep = (count >= 2) & (count * step_s >= p.curtail_min_visit_s)
    s, e, count = s[keep], e[keep], count[keep]
    if s.size == 0:
        return []
    csum = np.concatenate(([0.0], np.cumsum(np.nan_to_num(x))))
    level = (csum[e] - csum[s]) / count
    # cluster levels (sorted, split where neighbours differ by more than the tolerance)
    by_level = np.argsort(level, kind="stable")
    lv = level[by_level]
    cluster = np.empty(s.size, dtype=np.int64)
    cluster[by_level] = np.concatenate(([0], np.cumsum(np.diff(lv) > tol * lv[1:])))
    # episodes: same cluster, consecutive in time, gaps <= max gap
    order = np.lexsort((s, cluster))
    cs, ss, es = cluster[order], s[order], e[order]
    new = np.ones(s.size, dtype=bool)
    new[1:] = (cs[1:] != cs[:-1]) | ((ss[1:] - es[:-1]) * step_s > p.curtail_max_gap_s)
    ep = np.cumsum(new) - 1
    n_ep = int(ep[-1]) + 1
    visits = np.bincount(ep, minlength=n_ep)
    time_s = np.bincount(ep, weights=count[order] * step_s, minlength=n_ep)
    candidates = np.flatnonzero(
        (visits >= p.curtail_min_visits) & (time_s >= p.curtail_min_duration_s)
    )
    out: list[_Plateau] = []
    ep_first = np.flatnonzero(new)
    for c in candidates.tolist():  # a handful of episodes, not readings
        members = np.arange(ep_first[c], ep_first[c] + visits[c])
        first = int(ss[members[0]])
        stop = int(es[members[-1]])
        lvl = float(
            np.sum(level[order][members] * count[order][members]) / np.sum(count[order][members])
        )
        if np.nanmax(x[first:stop]) > lvl * (1.0 + tol):
            continue  # the output went above the level: not a ceiling
        # detection: when both the visit count and the time at level were reached
        cum_time = np.cumsum(count[order][members] * step_s)
        ok = (np.arange(1, members.size + 1) >= p.curtail_min_visits) & (
            cum_time >= p.curtail_min_duration_s
        )
        k = int(np.argmax(ok))
        run_first = int(ss[members[k]])
        run_last = int(es[members[k]]) - 1
        need = p.curtail_min_duration_s - (float(cum_time[k - 1]) if k > 0 else 0.0)
        det = min(run_last, run_first + max(0, math.ceil(need / step_s) - 1))
        out.append(_Plateau(lvl, first, stop, int(visits[c]), float(time_s[c]), det))
    return out


def detect_curtailment(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Turbine curtailment: output flat-topped below rated, from the meter series alone.

    A reading is *at a ceiling* when it is within `DetectorParams.curtail_tolerance_fraction`
    (relative) of the highest reading within `curtail_window_s` around it
    (`pipeline.kernels.rolling_max`, centred), and that ceiling lies between
    `curtail_min_level_fraction` and `curtail_max_level_fraction` of rated. A *visit* is a
    run of such readings lasting at least `curtail_min_visit_s`. A curtailment episode is
    one level (visits' mean levels within the tolerance of each other) visited at least
    `curtail_min_visits` times, each visit no more than `curtail_max_gap_s` after the
    previous one, never exceeded (beyond the tolerance) in between, for at least
    `curtail_min_duration_s` in total: the output keeps coming back to the same ceiling
    although the wind varies. The relative tolerance absorbs meter error (IEC 62053 class 1:
    per-reading spread well under 1 %). Confidence ``1 - 0.5**visits`` (each return to the
    same ceiling halves the odds of a coincidence). Magnitude: the ceiling / rated power.
    """
    step_s = series.interval_length_s
    rated_wh = site.nameplate_w * step_s / 3600.0
    out: list[Detection] = []
    for pl in _plateau_episodes(series.energy_wh, step_s, rated_wh, params):
        t0 = int(series.start_s[pl.first])
        t1 = int(series.start_s[pl.stop - 1]) + step_s
        level_w = pl.level_wh * 3600.0 / step_s
        frac = pl.level_wh / rated_wh
        out.append(
            Detection(
                kind=CURTAILMENT,
                series_id=series.series_id,
                start_s=t0,
                end_s=t1,
                detected_s=int(series.start_s[pl.detected]) + step_s,
                confidence=float(1.0 - 0.5**pl.visits),
                magnitude=float(frac),
                message=(
                    f"output of {site.site_id} capped at {_power_text(level_w)} ({frac:.0%} of "
                    f"rated {_power_text(site.nameplate_w)}) {pl.visits} times for "
                    f"{_hours(pl.time_at_level_s)} in total between {_utc(t0)} and {_utc(t1)}, "
                    "while the wind allowed more in between: curtailment"
                ),
            )
        )
    return out


def detect_stuck_meter(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Stuck meter: the same non-zero reading repeated for at least
    `DetectorParams.stuck_min_duration_s` (and `stuck_min_readings` readings).

    Not stuck: runs at or above `stuck_exempt_fraction` of the nameplate energy (inverter
    clipping, a turbine at rated power) and, for wind, runs that belong to a curtailment
    episode (`detect_curtailment`). Confidence: 0.99 for a PV run through the night or
    through a change of the clear-sky expectation of more than 20 % of nameplate (the
    output *had* to change); otherwise ``1 - 0.5**(duration / stuck_min_duration_s)``.
    Magnitude: the repeated value, Wh.
    """
    step_s = series.interval_length_s
    x = series.energy_wh
    if x.shape[0] < 2:
        return []
    e_name = site.nameplate_w * step_s / 3600.0
    same = x[1:] == x[:-1]
    s, e = true_runs(same)
    count = e - s + 1
    level = x[s]
    keep = (
        (count >= params.stuck_min_readings)
        & (count * step_s >= params.stuck_min_duration_s)
        & (level > 0)
        & (level < params.stuck_exempt_fraction * e_name)
    )
    s, e, count, level = s[keep], e[keep], count[keep], level[keep]
    if s.size == 0:
        return []
    plateaus = _plateau_episodes(x, step_s, e_name, params) if site.kind == "wind" else []
    exp = None
    if site.kind == "pv":
        exp = (
            expected_energy_wh(site, series.start_s, step_s)
            if expected_wh is None
            else np.asarray(expected_wh, dtype=np.float64)
        )
    k_min = max(params.stuck_min_readings, math.ceil(params.stuck_min_duration_s / step_s))
    out: list[Detection] = []
    for first, last, lvl in zip(s.tolist(), e.tolist(), level.tolist(), strict=True):
        if any(
            pl.first <= first
            and last < pl.stop
            and abs(lvl - pl.level_wh) <= params.curtail_tolerance_fraction * pl.level_wh
            for pl in plateaus
        ):
            continue
        duration = (last - first + 1) * step_s
        why = ""
        conf = 1.0 - 0.5 ** (duration / params.stuck_min_duration_s)
        if exp is not None:
            window = exp[first : last + 1]
            if np.any(window <= 0):
                conf, why = 0.99, ", through the night"
            elif np.ptp(window) > 0.2 * e_name:
                conf, why = 0.99, ", while the clear-sky expectation changed"
        t0 = int(series.start_s[first])
        t1 = int(series.start_s[last]) + step_s
        out.append(
            Detection(
                kind=STUCK_METER,
                series_id=series.series_id,
                start_s=t0,
                end_s=t1,
                detected_s=int(series.start_s[first + k_min - 1]) + step_s,
                confidence=float(conf),
                magnitude=float(lvl),
                message=(
                    f"meter {series.series_id} repeated the reading {lvl:g} Wh "
                    f"{last - first + 1} times ({_hours(duration)}) from {_utc(t0)}{why}: "
                    "register stuck"
                ),
            )
        )
    return out


def _seasonal_baseline(x: np.ndarray, period: int, days: int) -> np.ndarray:
    """Median of the same interval on the previous `days` days (NaN skipped; NaN when
    none): a daily profile that one odd day cannot move (so a spike leaves no echo)."""
    n = x.shape[0]
    shifted = np.full((days, n), np.nan)
    for k in range(1, days + 1):  # a few days, not readings
        if k * period < n:
            shifted[k - 1, k * period :] = x[: n - k * period]
    out = np.full(n, np.nan)
    ok = np.any(~np.isnan(shifted), axis=0)
    out[ok] = np.nanmedian(shifted[:, ok], axis=0)
    return out


def detect_anomalies(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Robust anomalies: readings far from what the recent days and hours say.

    The daily cycle is removed first: the residual is the reading minus the median of the
    same interval on the previous `DetectorParams.anomaly_reference_days` days (when the
    interval divides a day and such days exist; else the raw reading). Each residual is
    scored by the trailing modified z-score (rolling median and MAD over `anomaly_window`
    intervals, `pipeline.kernels.rolling_robust_z`; MAD floored at
    `anomaly_mad_floor_fraction` of the nameplate energy of one interval); one detection
    per run of readings with |z| > `anomaly_threshold`. Confidence
    ``1 - threshold / max|z|`` (0 at the threshold, towards 1 for gross outliers).
    Magnitude: the largest |z|."""
    step_s = series.interval_length_s
    x = np.asarray(series.energy_wh, dtype=np.float64)
    resid = x
    if _SECONDS_PER_DAY % step_s == 0 and params.anomaly_reference_days > 0:
        base = _seasonal_baseline(x, _SECONDS_PER_DAY // step_s, params.anomaly_reference_days)
        resid = np.where(np.isnan(base), x, x - base)
        if np.all(np.isnan(base)):
            resid = x
    floor = params.anomaly_mad_floor_fraction * site.nameplate_w * step_s / 3600.0
    z = rolling_robust_z(
        resid,
        params.anomaly_window,
        min_periods=params.anomaly_window // 2 + 1,
        mad_floor=floor,
    )
    big = np.abs(np.nan_to_num(z, nan=0.0)) > params.anomaly_threshold
    s, e = true_runs(big)
    out: list[Detection] = []
    for first, stop in zip(s.tolist(), e.tolist(), strict=True):
        zmax = float(np.max(np.abs(z[first:stop])))
        t0 = int(series.start_s[first])
        t1 = int(series.start_s[stop - 1]) + step_s
        out.append(
            Detection(
                kind=ANOMALY,
                series_id=series.series_id,
                start_s=t0,
                end_s=t1,
                detected_s=t0 + step_s,
                confidence=float(1.0 - params.anomaly_threshold / zmax) if zmax > 0 else 0.0,
                magnitude=zmax,
                message=(
                    f"{stop - first} unusual reading(s) at {series.series_id} from {_utc(t0)} "
                    f"(robust z up to {zmax:.0f} against the recent days and hours)"
                ),
            )
        )
    return out


Detector = Callable[[SiteMeta, Series, np.ndarray | None, DetectorParams], list[Detection]]

#: Detectors: kind -> f(site, series, expected_wh or None, params) -> detections.
DETECTORS: dict[str, Detector] = {
    SOILING: detect_soiling,
    INVERTER_TRIP: detect_inverter_trip,
    STUCK_METER: detect_stuck_meter,
    CURTAILMENT: detect_curtailment,
    ANOMALY: detect_anomalies,
}

#: Which detectors run for which kind of site.
SITE_DETECTORS: dict[str, tuple[str, ...]] = {
    "pv": (SOILING, INVERTER_TRIP, STUCK_METER),
    "wind": (CURTAILMENT, STUCK_METER),
    "load": (ANOMALY, STUCK_METER),
}


# ======================================================================================
# Forecast
# ======================================================================================


class _ForecastInputs(NamedTuple):
    x: np.ndarray  # history (and, in backtests, the targets), Wh per interval
    expected: np.ndarray | None  # clear-sky expectation over the same grid, extended
    period: int  # samples per day
    tau: float  # blend e-folding horizon, samples


def _pred_persistence(inp: _ForecastInputs, origin: np.ndarray, h: int) -> np.ndarray:
    return inp.x[origin]


def _take(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x[idx] with NaN where idx is out of range."""
    ok = (idx >= 0) & (idx < x.shape[0])
    out = np.full(idx.shape, np.nan)
    out[ok] = x[idx[ok]]
    return out


def _pred_seasonal(inp: _ForecastInputs, origin: np.ndarray, h: int) -> np.ndarray:
    back = inp.period * max(1, -(-h // inp.period))
    return _take(inp.x, origin + h - back)


def _pred_blend(inp: _ForecastInputs, origin: np.ndarray, h: int) -> np.ndarray:
    """Seasonal naive plus the current anomaly against yesterday, decaying with the
    horizon: x[t+h-P] + exp(-h/tau) (x[t] - x[t-P])."""
    w = math.exp(-h / inp.tau)
    anomaly = inp.x[origin] - _take(inp.x, origin - inp.period)
    return _pred_seasonal(inp, origin, h) + w * anomaly


def _pred_clear_sky(inp: _ForecastInputs, origin: np.ndarray, h: int) -> np.ndarray:
    """Clear-sky index persistence: (sum of the last hour's readings / their expectation)
    times the expectation at the target; the blend where the sun is too low for a ratio."""
    if inp.expected is None:
        raise ValueError("the clear_sky_persistence forecast needs the expected energy")
    m = max(1, inp.period // 24)  # one hour of samples
    cx = np.concatenate(([0.0], np.cumsum(np.nan_to_num(inp.x))))
    ce = np.concatenate(([0.0], np.cumsum(inp.expected[: inp.x.shape[0]])))
    lo = np.maximum(origin - m + 1, 0)
    sx = cx[origin + 1] - cx[lo]
    se = ce[origin + 1] - ce[lo]
    target_e = _take(inp.expected, origin + h)
    peak = float(np.max(inp.expected)) if inp.expected.size else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(se > 0.05 * peak * (origin + 1 - lo), sx / se, np.nan)
    pred = k * target_e
    fallback = _pred_blend(inp, origin, h)
    return np.where(np.isfinite(pred), pred, np.where(target_e <= 0, 0.0, fallback))


#: Forecast methods: name -> f(inputs, origin indices, horizon in samples) -> predictions.
FORECAST_METHODS: dict[str, Callable[[_ForecastInputs, np.ndarray, int], np.ndarray]] = {
    "persistence": _pred_persistence,
    "seasonal_naive": _pred_seasonal,
    "blend": _pred_blend,
    "clear_sky_persistence": _pred_clear_sky,
}


def _forecast_inputs(
    energy_wh: np.ndarray,
    interval_length_s: int,
    expected_wh: np.ndarray | None,
    blend_tau_s: float,
) -> _ForecastInputs:
    if _SECONDS_PER_DAY % interval_length_s:
        raise ValueError("forecasts need an interval length that divides a day")
    period = _SECONDS_PER_DAY // interval_length_s
    exp = None if expected_wh is None else np.asarray(expected_wh, dtype=np.float64)
    return _ForecastInputs(
        np.asarray(energy_wh, dtype=np.float64), exp, period, blend_tau_s / interval_length_s
    )


def forecast(
    energy_wh: np.ndarray,
    interval_length_s: int,
    horizon_steps: int,
    *,
    method: str = "blend",
    expected_wh: np.ndarray | None = None,
    blend_tau_s: float = 3 * 3600.0,
) -> np.ndarray:
    """Forecast the next `horizon_steps` intervals after the end of `energy_wh`, Wh.

    Args:
        energy_wh: the history on a regular grid, Wh per interval (NaN: missing).
        interval_length_s: grid step, s (must divide a day: the seasonal period).
        horizon_steps: intervals to forecast.
        method: a key of `FORECAST_METHODS`: ``persistence`` (the last value),
            ``seasonal_naive`` (the same interval a day earlier), ``blend`` (seasonal naive
            plus today's anomaly against yesterday, fading with e-folding time
            `blend_tau_s`), ``clear_sky_persistence`` (the last hour's clear-sky index times
            the clear-sky expectation; PV).
        expected_wh: clear-sky expectation for history *and* horizon (length
            ``len(energy_wh) + horizon_steps``), for ``clear_sky_persistence``.
        blend_tau_s: e-folding time of the anomaly in ``blend``, s (default 3 h).

    Returns:
        float64 [horizon_steps] forecasts, clipped at 0 (interval energy is never
        negative); ESPI quality 12 "projected (forecast)" if published.
    """
    if method not in FORECAST_METHODS:
        raise ValueError(f"unknown forecast method {method!r}; known: {sorted(FORECAST_METHODS)}")
    if horizon_steps < 1:
        raise ValueError(f"horizon_steps must be >= 1, got {horizon_steps}")
    inp = _forecast_inputs(energy_wh, interval_length_s, expected_wh, blend_tau_s)
    n = inp.x.shape[0]
    if n == 0:
        return np.full(horizon_steps, np.nan)
    if inp.expected is not None and inp.expected.shape[0] < n + horizon_steps:
        raise ValueError("expected_wh must cover the history and the horizon")
    # extend the series with NaN targets so that seasonal look-ups index one array
    ext = inp._replace(x=np.concatenate((inp.x, np.full(horizon_steps, np.nan))))
    origin = np.array([n - 1])
    fn = FORECAST_METHODS[method]
    pred = np.array([fn(ext, origin, h)[0] for h in range(1, horizon_steps + 1)])
    return np.maximum(pred, 0.0)  # interval energy is never negative (NaN stays NaN)


@dataclass(frozen=True)
class ForecastScore:
    """Backtest of a forecast method on history (all origins, horizons 1..H).

    Attributes:
        method: the method's name.
        horizon_steps: H.
        n: forecast-target pairs scored (both known).
        mae_wh: mean absolute error, Wh per interval.
        rmse_wh: root mean square error, Wh per interval.
        rmse_persistence_wh: RMSE of persistence on the same pairs.
        skill: 1 - rmse_wh / rmse_persistence_wh (> 0: better than persistence).
        rmse_by_horizon_wh: RMSE per horizon step 1..H.
        mae_persistence_wh: MAE of persistence on the same pairs, Wh per interval.
    """

    method: str
    horizon_steps: int
    n: int
    mae_wh: float
    rmse_wh: float
    rmse_persistence_wh: float
    skill: float
    rmse_by_horizon_wh: tuple[float, ...] = field(default=())
    mae_persistence_wh: float = float("nan")


def backtest_forecast(
    energy_wh: np.ndarray,
    interval_length_s: int,
    horizon_steps: int,
    *,
    method: str = "blend",
    expected_wh: np.ndarray | None = None,
    blend_tau_s: float = 3 * 3600.0,
    origin_every: int = 1,
) -> ForecastScore:
    """Score `method` on history: forecasts from every `origin_every`-th interval (with a
    day of history before it) for horizons 1..H, against what was then measured; errors
    and skill against persistence on exactly the same pairs. Vectorised over origins."""
    if method not in FORECAST_METHODS:
        raise ValueError(f"unknown forecast method {method!r}; known: {sorted(FORECAST_METHODS)}")
    inp = _forecast_inputs(energy_wh, interval_length_s, expected_wh, blend_tau_s)
    n = inp.x.shape[0]
    origins = np.arange(inp.period, n - 1, max(1, int(origin_every)))
    fn = FORECAST_METHODS[method]
    abs_sum = sq_sum = sq_pers = abs_pers = 0.0
    count = 0
    by_h: list[float] = []
    for h in range(1, horizon_steps + 1):  # horizons, not readings
        o = origins[origins + h < n]
        if o.size == 0:
            by_h.append(float("nan"))
            continue
        target = inp.x[o + h]
        pred = np.maximum(fn(inp, o, h), 0.0)
        pers = inp.x[o]
        ok = np.isfinite(target) & np.isfinite(pred) & np.isfinite(pers)
        err = pred[ok] - target[ok]
        perr = pers[ok] - target[ok]
        abs_sum += float(np.abs(err).sum())
        sq_sum += float((err * err).sum())
        sq_pers += float((perr * perr).sum())
        abs_pers += float(np.abs(perr).sum())
        count += int(ok.sum())
        by_h.append(float(np.sqrt(np.mean(err * err))) if err.size else float("nan"))
    if count == 0:
        nan = float("nan")
        return ForecastScore(method, horizon_steps, 0, nan, nan, nan, nan, tuple(by_h))
    rmse = math.sqrt(sq_sum / count)
    rmse_p = math.sqrt(sq_pers / count)
    return ForecastScore(
        method=method,
        horizon_steps=horizon_steps,
        n=count,
        mae_wh=abs_sum / count,
        rmse_wh=rmse,
        rmse_persistence_wh=rmse_p,
        skill=1.0 - rmse / rmse_p if rmse_p > 0 else float("nan"),
        rmse_by_horizon_wh=tuple(by_h),
        mae_persistence_wh=abs_pers / count,
    )


# ======================================================================================
# Recommendations and the per-site run
# ======================================================================================


def _recommend_soiling(d: Detection) -> str:
    days = max(1, round((d.end_s - d.start_s) / _SECONDS_PER_DAY))
    return (
        f"clean panels at site {d.series_id}: performance ratio down {d.magnitude:.0%} "
        f"over {days} days"
    )


def _recommend_trip(d: Detection) -> str:
    return (
        f"inspect and reset the inverter at site {d.series_id}: no output since "
        f"{_utc(d.start_s)} in good sun (about {d.magnitude / 1000.0:.0f} kWh lost so far)"
    )


def _recommend_stuck(d: Detection) -> str:
    return (
        f"check meter {d.series_id}: the same reading ({d.magnitude:g} Wh) for "
        f"{_hours(d.end_s - d.start_s)} since {_utc(d.start_s)}; data since then are "
        "not real (estimate them and repair or replace the meter)"
    )


def _recommend_curtailment(d: Detection) -> str:
    return (
        f"review curtailment at {d.series_id}: output held at {d.magnitude:.0%} of rated "
        f"from {_utc(d.start_s)} to {_utc(d.end_s)}; if the grid operator did not order "
        "it, check the turbine controller's power limit"
    )


def _recommend_anomaly(d: Detection) -> str:
    return f"look at {d.series_id} around {_utc(d.start_s)}: {d.message}"


#: Recommendation templates: detection kind -> f(detection) -> sentence.
RECOMMENDERS: dict[str, Callable[[Detection], str]] = {
    SOILING: _recommend_soiling,
    INVERTER_TRIP: _recommend_trip,
    STUCK_METER: _recommend_stuck,
    CURTAILMENT: _recommend_curtailment,
    ANOMALY: _recommend_anomaly,
}


def recommendations(detections: Sequence[Detection], min_confidence: float = 0.5) -> list[str]:
    """Sentences a person can act on, one per detection at or above `min_confidence`,
    most confident first."""
    ranked = sorted(
        (d for d in detections if d.confidence >= min_confidence),
        key=lambda d: (-d.confidence, d.start_s),
    )
    return [RECOMMENDERS[d.kind](d) for d in ranked]


@dataclass(frozen=True)
class SiteReport:
    """`analyze_site` output: detections and the recommendations drawn from them."""

    site_id: str
    detections: tuple[Detection, ...]
    recommendations: tuple[str, ...]


def analyze_site(
    site: SiteMeta,
    series: Series,
    *,
    detectors: Sequence[str] | None = None,
    params: DetectorParams | None = None,
) -> SiteReport:
    """Run the site kind's detectors (`SITE_DETECTORS`, or the given names) on a series;
    the clear-sky expectation is computed once and shared (PV)."""
    p = DetectorParams() if params is None else params
    names = SITE_DETECTORS[site.kind] if detectors is None else tuple(detectors)
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detectors {unknown}; known: {sorted(DETECTORS)}")
    expected = (
        expected_energy_wh(site, series.start_s, series.interval_length_s)
        if site.kind == "pv"
        else None
    )
    found: list[Detection] = []
    for name in names:
        found.extend(DETECTORS[name](site, series, expected, p))
    found.sort(key=lambda d: (d.start_s, d.kind))
    return SiteReport(site.site_id, tuple(found), tuple(recommendations(found)))
