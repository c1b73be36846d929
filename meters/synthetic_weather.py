"""Synthetic weather for any place and dates, with spatially correlated clouds and wind.

:func:`synthetic_weather` returns a :class:`~meters.weather.Weather` with one row per site
(or one row at the reference location when the request names no sites), drawn from the
statistics of a :class:`SyntheticClimate`. :meth:`SyntheticClimate.from_tmy3` estimates those
statistics from a TMY3 file shipped with pvlib.

Model
-----
**Irradiance.** ``GHI = kc * GHI_clear``: clear-sky GHI from Ineichen & Perez (2002) with the
Linke turbidity climatology of Remund et al. (2003) (:func:`meters.weather.clearsky_ghi`),
solar position (NREL SPA) computed **once per time step at the reference location** (the
step's mean clear-sky GHI from sub-samples of at most 5 min). The clear-sky index ``kc`` has
two layers:

1. *Hourly layer*, a Gaussian-copula autoregressive model in the manner of the TAG model
   (Aguiar & Collares-Pereira 1992, "TAG: a time-dependent, autoregressive, Gaussian model
   for generating synthetic hourly radiation", Solar Energy 49(3), 167-174): a latent
   standard-normal process ``z`` is mapped through the month's distribution of hourly
   clear-sky index, ``kc_hour = Q_month(Phi(z))``. ``Q_month`` is the clear-sky-weighted
   quantile function of the TMY3 hours, so the expected monthly GHI equals the TMY3's. ``z`` is
   the sum of a day-scale and an hour-scale component, each a first-order autoregressive
   (AR(1)) process, fitted to the autocorrelation of the TMY3's normal scores (lags 1-6, 24 and
   48 h), so cloudy and clear spells persist as in the file.
2. *Minute layer*, after the two-state idea of Morf (2011, "The stochastic two-state cloud
   cover model STSCCM", Solar Energy 85): the sun is either free (``kc =
   sun_free_clearsky_index``) or covered (``kc`` = the month's 10 % quantile of the hourly
   index). The state is a thresholded per-site AR(1) Gaussian process with time constant
   ``cloud_passage_s``, its probability of "free" set so that the expected index equals
   ``kc_hour``; a step's index is the mean over its 1-minute sub-steps. This simplifies Morf's
   and Bright et al.'s Markov models of cloud cover (Bright, Smith, Taylor & Crook 2015,
   "Stochastic generation of synthetic minutely irradiance time series derived from mean
   hourly weather observation data", Solar Energy 115, 229-242): no cloud-cover input and
   Gaussian rather than Markov-chain switching, kept because it preserves the hourly layer's
   mean exactly and makes minute variability largest under broken clouds and small under
   clear or overcast skies, as observed (Smith, Bright & Crook 2017, Solar Energy 144, 10-21).

DNI and DHI are split from GHI with :func:`pvlib.irradiance.erbs` (Erbs, Klein & Duffie 1982,
Solar Energy 28(4), 293-302), here a fused numba copy (:func:`erbs_kernel`, equal to pvlib's
to rounding, tested).

**Air temperature** = monthly mean + diurnal cosine (per-month amplitude, peak hour) + an AR(1)
anomaly. Monthly means and amplitudes are interpolated between mid-month nodes chosen so that
each month's mean is the configured one. The temperature is one regional series for all
sites: temperature anomalies stay correlated over ~1000 km (Hansen & Lebedeff 1987, J.
Geophys. Res. 92(D11), 13345-13372).

**Wind speed** at ``wind_height_m`` = ``c(t) * W`` where ``W`` has a Weibull(k) marginal
obtained from a latent AR(1) Gaussian process through its CDF (a Gaussian copula, as in
Cordeiro-Costas et al. 2021, Appl. Sci. 11, 3355), and ``c(t)`` follows a diurnal cosine.
``k`` and ``c`` are adjusted for the diurnal mixing so that the speeds of a whole day follow
the configured Weibull distribution (log-variance and mean matched).

**Pressure** is the standard-atmosphere pressure at the reference altitude
(:func:`pvlib.atmosphere.alt2pres`, ISO 2533).

**Space.** Sites of one region see correlated clouds and wind: each latent field (day-scale
clouds, hour-scale clouds, wind) has the exponential correlation ``exp(-d/L)`` with distance d, the
form of Lave & Kleissl's wavelet variability model (Lave, Kleissl & Stein 2013, IEEE Trans.
Sustain. Energy 4(2), 501-509: ``rho = exp(-d / (A t))``, ``A = v/2``, as in
:func:`pvlib.scaling.wvm`) and of Hoff & Perez (2012, Solar Energy 86(8), 2177-2189). Each field
is a spectral (random-Fourier-feature) Gaussian field: ``N_FEATURES`` plane waves with wave
vectors from the exponential kernel's 2-D spectral density (stratified radii, golden-angle
directions), each wave with its own AR(1) amplitude series. Its correlation is exactly
``(1/N) sum cos(k_n . d)``, within about 0.03 of ``exp(-d/L)`` for N = 256. Sites sit on an
equirectangular projection around the reference location (fine for regions of a few hundred
km). The minute layer is per site: 1-minute irradiance changes decorrelate within about a
kilometre (Perez et al. 2012, Solar Energy 86(8), 2170-2176).

**Determinism.** Randomness comes only from ``request.rng_for(key)``: the shared fields from
``"weather/cloud-day"``, ``"weather/cloud-hour"``, ``"weather/wind"`` and
``"weather/temp_air"``, each site's minute layer from ``"weather/site/{site_id}"``. A site's row
depends only on its id, its position and these shared processes, so adding a site changes no
other row, and the same seed gives the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import pvlib
from numba import njit

from meters.weather import (
    MAX_ZENITH_DEG,
    Weather,
    WeatherRequest,
    clearsky_ghi,
    epoch_s_to_index,
    read_tmy3_year,
    sample_grid_s,
)

#: Probabilities at which the monthly clear-sky-index quantiles are tabulated.
PROBABILITIES = np.linspace(0.0, 1.0, 21)
#: Plane waves per spatial field (see the module docstring): correlation error about 0.03.
N_FEATURES = 256
#: IUGG mean Earth radius (Moritz 2000, Geodetic Reference System 1980), km.
EARTH_RADIUS_KM = 6371.0088
#: Probability whose monthly clear-sky index is the "sun covered" state of the minute layer.
COVERED_PROBABILITY = 0.1
#: Resolution of the minute layer, s.
MINUTE_LAYER_S = 60.0
#: Knot spacing (s) of the latent processes, interpolated linearly (variance-corrected).
_KNOT_DAY_S = 3600.0
_KNOT_HOUR_S = 600.0
_KNOT_WIND_S = 900.0
_KNOT_TEMP_S = 3600.0
#: Sub-samples of clear-sky GHI per step: at most this many seconds apart.
_CLEARSKY_SUBSAMPLE_S = 300.0
#: Hours with mean clear-sky GHI below this (W/m2) carry no clear-sky-index statistics.
_MIN_CLEARSKY_W_M2 = 50.0
#: Sites per block: at most 1024, and at most this many minute-layer values per block
#: (bounds the temporary arrays to ~130 MB whatever the window).
_SITES_PER_BLOCK = 1024
_BLOCK_ELEMENTS = 1 << 24
_ND = NormalDist()
#: Uniform grid of standard-normal values on which Phi and the Weibull quantile are tabulated
#: (linear interpolation error below 3e-7 for Phi).
_Z_MIN = -8.5
_Z_MAX = 8.5
_Z_STEP = 17.0 / 8192
_Z_GRID = _Z_MIN + _Z_STEP * np.arange(8193)
_PHI_TABLE = np.array([_ND.cdf(float(z)) for z in _Z_GRID])

# Defaults: SyntheticClimate.from_tmy3("723170TYA") (Greensboro NC, the TMY3 file shipped with
# pvlib), rounded to 3-4 digits; tests/meters/test_synthetic_weather.py checks that they match.
# fmt: off
_GSO_CLEARSKY_INDEX_QUANTILES = (
    (0.234, 0.285, 0.334, 0.403, 0.46, 0.491, 0.531, 0.586, 0.638, 0.674, 0.736,
     0.815, 0.888, 0.93, 0.961, 0.979, 0.996, 1.027, 1.046, 1.067, 1.237),
    (0.185, 0.214, 0.237, 0.278, 0.305, 0.318, 0.491, 0.589, 0.674, 0.724, 0.787,
     0.856, 0.908, 0.945, 0.96, 0.983, 1.003, 1.021, 1.027, 1.029, 1.294),
    (0.205, 0.29, 0.328, 0.431, 0.485, 0.503, 0.534, 0.638, 0.72, 0.788, 0.855,
     0.894, 0.936, 0.954, 0.973, 0.983, 1.0, 1.048, 1.066, 1.083, 1.278),
    (0.207, 0.292, 0.379, 0.435, 0.48, 0.517, 0.646, 0.746, 0.842, 0.872, 0.906,
     0.942, 0.957, 0.982, 0.998, 1.008, 1.028, 1.048, 1.067, 1.088, 1.494),
    (0.216, 0.295, 0.347, 0.42, 0.461, 0.493, 0.525, 0.589, 0.672, 0.734, 0.82,
     0.856, 0.899, 0.932, 0.959, 0.975, 1.003, 1.03, 1.049, 1.059, 1.33),
    (0.201, 0.293, 0.382, 0.466, 0.541, 0.633, 0.699, 0.782, 0.822, 0.881, 0.907,
     0.933, 0.947, 0.97, 0.985, 0.991, 1.003, 1.018, 1.032, 1.05, 1.326),
    (0.205, 0.312, 0.428, 0.489, 0.542, 0.62, 0.705, 0.784, 0.831, 0.851, 0.895,
     0.922, 0.943, 0.963, 0.976, 0.987, 1.0, 1.015, 1.036, 1.057, 1.289),
    (0.164, 0.244, 0.382, 0.505, 0.654, 0.78, 0.812, 0.849, 0.895, 0.932, 0.955,
     0.965, 0.977, 0.985, 0.991, 0.998, 1.002, 1.011, 1.018, 1.027, 1.5),
    (0.157, 0.178, 0.27, 0.363, 0.453, 0.498, 0.598, 0.65, 0.726, 0.837, 0.902,
     0.96, 0.973, 0.979, 0.984, 0.992, 0.999, 1.004, 1.013, 1.029, 1.176),
    (0.239, 0.324, 0.38, 0.407, 0.445, 0.486, 0.531, 0.653, 0.768, 0.825, 0.881,
     0.904, 0.934, 0.952, 0.977, 0.999, 1.01, 1.024, 1.044, 1.055, 1.166),
    (0.204, 0.237, 0.258, 0.283, 0.295, 0.371, 0.433, 0.617, 0.688, 0.802, 0.841,
     0.889, 0.917, 0.934, 0.945, 0.956, 0.978, 0.987, 0.993, 1.025, 1.339),
    (0.221, 0.328, 0.36, 0.446, 0.479, 0.522, 0.563, 0.63, 0.705, 0.786, 0.858,
     0.935, 0.951, 0.97, 0.991, 1.002, 1.015, 1.026, 1.034, 1.06, 1.19),
)
_GSO_TEMP_AIR_MEAN_C = (0.332, 5.03, 11.414, 14.685, 19.032, 23.592, 25.433, 24.761, 20.076, 13.12,
                        10.821, 4.229)
_GSO_TEMP_AIR_AMPLITUDE_C = (3.297, 3.348, 4.393, 5.286, 4.636, 4.307, 4.206, 4.112, 3.897, 4.35,
                             4.303, 4.285)
# fmt: on


@dataclass(frozen=True)
class SyntheticClimate:
    """Statistics of a climate that :func:`synthetic_weather` draws weather from.

    Defaults are ``SyntheticClimate.from_tmy3("723170TYA")`` (Greensboro NC, the TMY3 file
    shipped with pvlib; Wilcox & Marion 2008, NREL/TP-581-43156), except the correlation
    lengths and the minute-layer constants, whose sources are given per field.
    """

    # Reference location: the 723170TYA header.
    latitude_deg: float = 36.1
    longitude_deg: float = -79.95
    altitude_m: float = 273.0
    #: Local standard time - UTC, h (months and diurnal cycles are in local standard time).
    utc_offset_h: float = -5.0
    #: Per month (Jan..Dec), the clear-sky-weighted quantiles of the hourly clear-sky index at
    #: :data:`PROBABILITIES` (from_tmy3: TMY3 GHI over Ineichen clear-sky GHI, hours with mean
    #: clear-sky GHI >= 50 W/m2, weights = clear-sky GHI so that mean GHI is reproduced).
    clearsky_index_quantiles: tuple[tuple[float, ...], ...] = _GSO_CLEARSKY_INDEX_QUANTILES
    #: The latent cloud process is ``sqrt(a) D + sqrt(1 - a) H``, D and H unit AR(1) processes
    #: with lag-1 h autocorrelations ``cloud_day_lag1`` (slow, day scale) and
    #: ``cloud_hour_lag1`` (fast), ``a = cloud_day_share``. from_tmy3: least-squares fit of
    #: ``a phi_D^k + (1 - a) phi_H^k`` to the autocorrelation at lags 1-6, 24 and 48 h of the
    #: TMY3 hourly index's normal scores, with their mean per month and hour removed.
    cloud_day_share: float = 0.6429
    cloud_day_lag1: float = 0.9425
    cloud_hour_lag1: float = 0.5775
    #: Correlation lengths L (km) of the D and H fields, ``rho = exp(-d/L)``: Lave & Kleissl's
    #: ``L = A t`` with ``A = v/2`` (:func:`pvlib.scaling.wvm`) at time scales t = 24 h and
    #: 1 h with an assumed typical cloud speed v = 10 m/s: 432 km and 18 km.
    cloud_day_correlation_km: float = 432.0
    cloud_hour_correlation_km: float = 18.0
    #: Clear-sky index with the sun free of clouds: the clear-sky model itself (Morf 2011;
    #: cloud enhancement above 1 is left out).
    sun_free_clearsky_index: float = 1.0
    #: Time constant (s) of the minute layer's sun-free/covered switching: assumption, the
    #: passage of a ~3 km cumulus at 10 m/s.
    cloud_passage_s: float = 300.0
    #: Per month, mean air temperature (degC) and half the mean diurnal range as the first
    #: harmonic of the mean daily profile (degC).
    temp_air_monthly_mean_c: tuple[float, ...] = _GSO_TEMP_AIR_MEAN_C
    temp_air_monthly_amplitude_c: tuple[float, ...] = _GSO_TEMP_AIR_AMPLITUDE_C
    #: Hour of the daily temperature maximum, local standard time.
    temp_air_peak_hour: float = 15.235
    #: Standard deviation (degC) and lag-1 h autocorrelation of the temperature anomaly.
    temp_air_anomaly_std_c: float = 4.581
    temp_air_anomaly_lag1: float = 0.9734
    #: Weibull shape k and scale c (m/s) of the wind speed at wind_height_m over a whole day
    #: (from_tmy3: moment estimate of Justus et al. 1978, J. Appl. Meteorol. 17, 350-353).
    wind_weibull_k: float = 1.7319
    wind_weibull_c_m_s: float = 3.4274
    #: Lag-1 h autocorrelation of wind speed without its diurnal cycle.
    wind_lag1: float = 0.7553
    #: Relative amplitude of the diurnal cycle of wind speed and the hour of its maximum (LST).
    wind_diurnal_amplitude: float = 0.2513
    wind_peak_hour: float = 13.316
    #: Correlation length of hourly wind speed, km: assumption of synoptic scale; the
    #: correlation length of wind fluctuations grows with their time scale and reaches hundreds
    #: of km at hours to days (St. Martin, Lundquist & Handschy 2015, Environ. Res. Lett. 10,
    #: 044004).
    wind_correlation_km: float = 200.0
    #: Measurement height of wind speed: the standard 10 m (WMO; TMY3 manual).
    wind_height_m: float = 10.0
    name: str = "synthetic:723170TYA"

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_tmy3(cls, station: str) -> SyntheticClimate:
        """Statistics estimated from the TMY3 file of ``station`` shipped with pvlib.

        Raises ValueError for an unknown station (listing the available ones).
        """
        return _estimate_from_tmy3(station)

    @property
    def quantile_table(self) -> np.ndarray:
        """``clearsky_index_quantiles`` as a float64 array [12, len(PROBABILITIES)]."""
        return np.asarray(self.clearsky_index_quantiles, dtype=np.float64)


def _validate(c: SyntheticClimate) -> None:
    """Raise ValueError naming the first field out of range and what was expected."""

    def check(name: str, low: float, high: float, *, open_low: bool = False) -> None:
        value = getattr(c, name)
        ok = isinstance(value, int | float) and math.isfinite(value)
        ok = ok and (value > low if open_low else value >= low) and value <= high
        if not ok:
            bracket = "(" if open_low else "["
            raise ValueError(
                f"SyntheticClimate.{name} = {value!r}; expected a number in {bracket}{low}, {high}]"
            )

    check("latitude_deg", -90.0, 90.0)
    check("longitude_deg", -180.0, 180.0)
    check("altitude_m", -500.0, 9000.0)
    check("utc_offset_h", -12.0, 14.0)
    check("cloud_day_share", 0.0, 1.0)
    for name in ("cloud_day_lag1", "cloud_hour_lag1", "temp_air_anomaly_lag1", "wind_lag1"):
        check(name, 0.0, 0.9999)
    for name in ("cloud_day_correlation_km", "cloud_hour_correlation_km", "wind_correlation_km"):
        check(name, 0.0, 1e5, open_low=True)
    check("sun_free_clearsky_index", 0.0, 2.0, open_low=True)
    check("cloud_passage_s", 0.0, 1e6, open_low=True)
    check("temp_air_peak_hour", 0.0, 24.0)
    check("temp_air_anomaly_std_c", 0.0, 30.0)
    check("wind_weibull_k", 0.5, 10.0)
    check("wind_weibull_c_m_s", 0.0, 50.0, open_low=True)
    check("wind_diurnal_amplitude", 0.0, 0.9)
    check("wind_peak_hour", 0.0, 24.0)
    check("wind_height_m", 0.0, 500.0, open_low=True)
    table = np.asarray(c.clearsky_index_quantiles, dtype=np.float64)
    if table.shape != (12, len(PROBABILITIES)):
        raise ValueError(
            f"SyntheticClimate.clearsky_index_quantiles has shape {table.shape}; expected "
            f"(12, {len(PROBABILITIES)}): per month, the quantiles at PROBABILITIES"
        )
    if not (np.all(np.isfinite(table)) and np.all(table >= 0) and np.all(table <= 2.0)):
        raise ValueError(
            "SyntheticClimate.clearsky_index_quantiles must lie in [0, 2]; got min "
            f"{np.nanmin(table)!r}, max {np.nanmax(table)!r}"
        )
    if np.any(np.diff(table, axis=1) < 0):
        month = int(np.argmax(np.any(np.diff(table, axis=1) < 0, axis=1))) + 1
        raise ValueError(
            f"SyntheticClimate.clearsky_index_quantiles of month {month} decrease; expected "
            f"non-decreasing quantiles"
        )
    for name, low, high in (
        ("temp_air_monthly_mean_c", -80.0, 60.0),
        ("temp_air_monthly_amplitude_c", 0.0, 30.0),
    ):
        values = np.asarray(getattr(c, name), dtype=np.float64)
        if values.shape != (12,) or not np.all((values >= low) & (values <= high)):
            raise ValueError(
                f"SyntheticClimate.{name} = {getattr(c, name)!r}; expected 12 numbers (Jan..Dec) "
                f"in [{low}, {high}]"
            )


# --------------------------------------------------------------------------- estimation


def _norm_ppf(p: np.ndarray) -> np.ndarray:
    """Standard-normal quantiles (statistics.NormalDist), elementwise."""
    return np.array([_ND.inv_cdf(float(x)) for x in np.ravel(p)]).reshape(np.shape(p))


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Quantiles of the distribution giving ``values`` the probabilities ``weights``.

    Each value holds its weight's share of probability centred on its mid-point cumulative
    weight; the end points are the minimum and maximum.
    """
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    out: np.ndarray = np.interp(probs, np.concatenate([[0.0], cum, [1.0]]), np.r_[v[0], v, v[-1]])
    return out


def _first_harmonic(profile: np.ndarray, hours: np.ndarray) -> tuple[float, float]:
    """Amplitude and peak hour (in [0, 24)) of the 24-h harmonic of ``profile`` at ``hours``."""
    angle = 2.0 * np.pi * hours / 24.0
    a = 2.0 * np.mean(profile * np.cos(angle))
    b = 2.0 * np.mean(profile * np.sin(angle))
    return float(math.hypot(a, b)), float((math.degrees(math.atan2(b, a)) / 15.0) % 24.0)


def _lag_corr(x: np.ndarray, lag: int) -> float:
    """Pearson correlation of x[t] and x[t+lag] over pairs where both are finite."""
    a, b = x[:-lag], x[lag:]
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


#: Lags (h) whose autocorrelation the two-scale cloud model is fitted to.
_FIT_LAGS_H = np.array([1, 2, 3, 4, 5, 6, 24, 48])


def _deseasonalised(z: np.ndarray, month: np.ndarray) -> np.ndarray:
    """Normal scores minus their mean per (month, hour of day), rescaled to unit variance, so
    that a systematic daily course of cloudiness does not pass for persistence."""
    hour = np.tile(np.arange(24), 365)
    out = z.copy()
    for mo in range(12):
        for h in range(24):
            sel = (month == mo) & (hour == h) & np.isfinite(z)
            if sel.sum() >= 5:
                out[sel] -= z[sel].mean()
    result: np.ndarray = out / np.nanstd(out)
    return result


def _fit_two_scale(z: np.ndarray) -> tuple[float, float, float]:
    """Least-squares fit of ``r(k) = a phi_day^k + (1 - a) phi_hour^k`` to the autocorrelation
    of ``z`` (NaN = no data) at lags :data:`_FIT_LAGS_H`: (a, phi_day, phi_hour), phi_day >=
    phi_hour. Grid over both phis (step 0.0025), ``a`` in closed form per grid point."""
    r = np.array([_lag_corr(z, int(lag)) for lag in _FIT_LAGS_H])
    grid = np.linspace(0.0, 0.9975, 400)
    slow = grid[:, None, None] ** _FIT_LAGS_H
    fast = grid[None, :, None] ** _FIT_LAGS_H
    diff = slow - fast
    share = np.clip(((r - fast) * diff).sum(-1) / np.maximum((diff * diff).sum(-1), 1e-12), 0, 1)
    error = ((share[..., None] * diff + fast - r) ** 2).sum(-1)
    error[grid[:, None] < grid[None, :]] = np.inf  # the "day" component is the slower one
    i, j = np.unravel_index(int(np.argmin(error)), error.shape)
    return float(share[i, j]), float(grid[i]), float(grid[j])


@lru_cache(maxsize=8)
def _estimate_from_tmy3(station: str) -> SyntheticClimate:
    """`SyntheticClimate.from_tmy3`, estimated once per process per station (a frozen value)."""
    year = read_tmy3_year(station)
    offset_s = year.utc_offset_h * 3600.0
    # Hour h of the file covers LST [h, h+1) after Jan 1 00:00 of a non-leap year (1990).
    lst_hour0 = int(np.datetime64("1990-01-01T00", "h").astype(np.int64))
    hours = lst_hour0 + np.arange(8760)
    m = 12  # 5-min clear-sky sub-samples per hour
    mid_s = ((hours * 3600.0 - offset_s)[:, None] + (np.arange(m) + 0.5) * 300.0).ravel()
    clear_ghi, _ = clearsky_ghi(
        epoch_s_to_index(mid_s), year.latitude_deg, year.longitude_deg, year.altitude_m
    )
    clear_hour = clear_ghi.reshape(-1, m).mean(axis=1)
    month, _ = _typical_year_calendar()
    valid = clear_hour >= _MIN_CLEARSKY_W_M2
    kc = np.clip(year.ghi / np.where(valid, clear_hour, 1.0), 0.0, 1.5)
    table = np.empty((12, len(PROBABILITIES)))
    z = np.full(8760, np.nan)
    for mo in range(12):
        sel = np.flatnonzero(valid & (month == mo))
        table[mo] = _weighted_quantiles(kc[sel], clear_hour[sel], PROBABILITIES)
        order = np.argsort(kc[sel], kind="stable")
        w = clear_hour[sel][order]
        u = (np.cumsum(w) - 0.5 * w) / w.sum()
        z[sel[order]] = _norm_ppf(u)
    day_share, day_lag1, hour_lag1 = _fit_two_scale(_deseasonalised(z, month))
    # Temperature and wind are values at the end of each row's hour (TMY3 manual, Table 1-1).
    hour_of_day = np.tile(np.arange(1.0, 25.0), 365)
    _, month_fraction = _typical_year_calendar()
    temp = year.temp_air
    temp_mean = np.array([temp[month == mo].mean() for mo in range(12)])
    temp_amp = np.empty(12)
    for mo in range(12):
        profile = temp[month == mo].reshape(-1, 24).mean(axis=0)
        temp_amp[mo], _ = _first_harmonic(profile - profile.mean(), hour_of_day[:24])
    _, temp_peak = _first_harmonic(
        temp.reshape(-1, 24).mean(axis=0) - temp.mean(), hour_of_day[:24]
    )
    temp_fit = (
        _monthly_curve(temp_mean, month, month_fraction)
        + _monthly_curve(temp_amp, month, month_fraction)
        * np.cos(2 * np.pi * (hour_of_day - temp_peak) / 24.0)
    )
    anomaly = temp - temp_fit

    wind = year.wind_speed
    wind_profile = wind.reshape(-1, 24).mean(axis=0)
    wind_amp, wind_peak = _first_harmonic(wind_profile / wind_profile.mean(), hour_of_day[:24])
    diurnal = 1.0 + wind_amp * np.cos(2 * np.pi * (hour_of_day - wind_peak) / 24.0)
    k = (wind.std() / wind.mean()) ** -1.086  # Justus et al. 1978
    c = wind.mean() / math.gamma(1.0 + 1.0 / k)

    return SyntheticClimate(
        latitude_deg=year.latitude_deg,
        longitude_deg=year.longitude_deg,
        altitude_m=year.altitude_m,
        utc_offset_h=year.utc_offset_h,
        clearsky_index_quantiles=tuple(tuple(float(v) for v in row) for row in table),
        cloud_day_share=day_share,
        cloud_day_lag1=day_lag1,
        cloud_hour_lag1=hour_lag1,
        temp_air_monthly_mean_c=tuple(float(v) for v in temp_mean),
        temp_air_monthly_amplitude_c=tuple(float(v) for v in temp_amp),
        temp_air_peak_hour=temp_peak,
        temp_air_anomaly_std_c=float(anomaly.std()),
        temp_air_anomaly_lag1=_lag_corr(anomaly, 1),
        wind_weibull_k=float(k),
        wind_weibull_c_m_s=float(c),
        wind_lag1=_lag_corr(wind / diurnal, 1),
        wind_diurnal_amplitude=wind_amp,
        wind_peak_hour=wind_peak,
        wind_height_m=year.wind_height_m,
        name=f"synthetic:{station}",
    )


# --------------------------------------------------------------------------- shared helpers


def _mean_preserving_nodes(monthly: np.ndarray) -> np.ndarray:
    """Mid-month node values whose cyclic piecewise-linear curve has the given monthly means.

    With nodes at mid-month, the mean over month m of the linear interpolation is
    ``v[m-1]/8 + 3 v[m]/4 + v[m+1]/8`` (months taken as equal); solve that circulant system.
    """
    eye = np.eye(12)
    a = 0.75 * eye + 0.125 * (np.roll(eye, 1, axis=1) + np.roll(eye, -1, axis=1))
    nodes: np.ndarray = np.linalg.solve(a, np.asarray(monthly, dtype=np.float64))
    return nodes


def _monthly_curve(monthly: np.ndarray, month: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """Smooth seasonal curve with the given monthly means, at (month index 0..11, fraction of
    the month elapsed in [0, 1)): linear between the mid-month nodes of
    :func:`_mean_preserving_nodes`, cyclic over the year."""
    nodes = _mean_preserving_nodes(monthly)
    before = fraction < 0.5
    neighbour = np.where(before, nodes[(month - 1) % 12], nodes[(month + 1) % 12])
    w_self = np.where(before, 0.5 + fraction, 1.5 - fraction)
    out: np.ndarray = w_self * nodes[month] + (1.0 - w_self) * neighbour
    return out


def _typical_year_calendar() -> tuple[np.ndarray, np.ndarray]:
    """Month index (0..11) and fraction of the month elapsed at the midpoint of each of the
    8760 hour-ending rows of a typical (365-day) year."""
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    first = np.concatenate([[0], np.cumsum(days)[:-1]])
    t_days = (np.arange(8760) + 0.5) / 24.0
    month = np.searchsorted(np.cumsum(days), np.floor(t_days), side="right")
    return month, (t_days - first[month]) / days[month]


def _wave_vectors(n: int) -> np.ndarray:
    """[n, 2] wave vectors (1/length unit, for L = 1) of the exponential kernel's spectrum.

    The 2-D spectral density of ``exp(-r)`` is ``(1 + k^2)^(-3/2)`` (up to a constant), whose
    radial CDF is ``1 - (1 + k^2)^(-1/2)``; radii at the mid-quantiles ``(i + 0.5)/n`` and
    directions on the golden angle (deterministic, low-discrepancy).
    """
    u = (np.arange(n) + 0.5) / n
    radius = np.sqrt((1.0 - u) ** -2 - 1.0)
    angle = np.arange(n) * math.pi * (3.0 - math.sqrt(5.0))
    out: np.ndarray = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return out


@njit(cache=True, fastmath=False)
def _ar1_rows(normals: np.ndarray, phi: float) -> np.ndarray:
    """Unit-variance stationary AR(1) along axis 1 of ``normals`` [n_series, n_knots]."""
    out = np.empty_like(normals)
    innovation = math.sqrt(1.0 - phi * phi)
    for i in range(normals.shape[0]):
        out[i, 0] = normals[i, 0]
        for j in range(1, normals.shape[1]):
            out[i, j] = phi * out[i, j - 1] + innovation * normals[i, j]
    return out


class _Field:
    """One latent spatial field: wave vectors (1/km), AR(1) amplitude series of the waves on
    knots ``knot_s`` apart starting one knot before the first step, and the interpolation of
    the knots to the step midpoints ``grid_s``."""

    def __init__(
        self,
        rng: np.random.Generator,
        correlation_km: float,
        lag1_per_hour: float,
        knot_s: float,
        grid_s: np.ndarray,
    ) -> None:
        first_s = grid_s[0] - knot_s
        n_knots = math.ceil((grid_s[-1] - first_s) / knot_s) + 2
        phi = lag1_per_hour ** (knot_s / 3600.0)
        self.waves_per_km = _wave_vectors(N_FEATURES) / correlation_km
        self.series = _ar1_rows(rng.standard_normal((2 * N_FEATURES, n_knots)), phi)
        self.index, self.weight, self.norm = _knot_interpolation(grid_s, first_s, knot_s, phi)

    def at(self, x_km: np.ndarray, y_km: np.ndarray) -> np.ndarray:
        """The field at points (km east, km north of the reference) [n_points, n_steps]."""
        out: np.ndarray = _field_rows(
            x_km, y_km, self.waves_per_km, self.series, self.index, self.weight, self.norm
        )
        return out


def _knot_interpolation(
    grid_s: np.ndarray, first_s: float, knot_s: float, rho: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left knot, weight of the right knot and the factor that restores unit variance when a
    unit AR(1) with knot-to-knot correlation ``rho`` is interpolated linearly at ``grid_s``."""
    pos = (grid_s - first_s) / knot_s
    index = np.floor(pos).astype(np.int64)
    weight = pos - index
    variance = (1 - weight) ** 2 + weight**2 + 2 * weight * (1 - weight) * rho
    return index, weight, 1.0 / np.sqrt(variance)


def _project_km(
    lat_deg: np.ndarray, lon_deg: np.ndarray, lat0_deg: float, lon0_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """East and north offsets (km) from the reference location, equirectangular projection."""
    dlon = (np.asarray(lon_deg) - lon0_deg + 180.0) % 360.0 - 180.0
    x = EARTH_RADIUS_KM * math.cos(math.radians(lat0_deg)) * np.radians(dlon)
    y = EARTH_RADIUS_KM * np.radians(np.asarray(lat_deg) - lat0_deg)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def field_correlation(
    correlation_km: float, dx_km: np.ndarray, dy_km: np.ndarray
) -> np.ndarray:
    """Exact correlation of a latent field between two points ``(dx, dy)`` km apart:
    ``(1/N) sum_n cos(k_n . d)`` (target ``exp(-d/L)``)."""
    waves = _wave_vectors(N_FEATURES) / correlation_km
    phase = np.multiply.outer(np.asarray(dx_km), waves[:, 0]) + np.multiply.outer(
        np.asarray(dy_km), waves[:, 1]
    )
    out: np.ndarray = np.cos(phase).mean(axis=-1)
    return out


@njit(cache=True, fastmath=False)
def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@njit(cache=True, fastmath=False)
def _norm_cdf_array(x: np.ndarray) -> np.ndarray:
    """Standard-normal CDF, elementwise."""
    flat = x.ravel()
    out = np.empty(flat.size)
    for i in range(flat.size):
        out[i] = _norm_cdf(flat[i])
    return out.reshape(x.shape)


@njit(cache=True, fastmath=False)
def _field_rows(
    x_km: np.ndarray,
    y_km: np.ndarray,
    waves: np.ndarray,
    series: np.ndarray,
    index: np.ndarray,
    weight: np.ndarray,
    norm: np.ndarray,
) -> np.ndarray:
    """A latent field at each site [n_sites, n_steps]: the plane waves summed on the knots,
    then interpolated linearly to the steps (variance restored by ``norm``)."""
    n_waves = waves.shape[0]
    n_knots = series.shape[1]
    scale = 1.0 / math.sqrt(n_waves)
    out = np.empty((x_km.size, index.size))
    knots = np.empty(n_knots)
    for s in range(x_km.size):
        knots[:] = 0.0
        for f in range(n_waves):
            phase = waves[f, 0] * x_km[s] + waves[f, 1] * y_km[s]
            c = math.cos(phase)
            si = math.sin(phase)
            a = series[2 * f]
            b = series[2 * f + 1]
            for j in range(n_knots):
                knots[j] += c * a[j] + si * b[j]
        for t in range(index.size):
            i = index[t]
            w = weight[t]
            out[s, t] = ((1.0 - w) * knots[i] + w * knots[i + 1]) * scale * norm[t]
    return out


@njit(cache=True, fastmath=False)
def erbs_kernel(
    ghi: float, cos_zenith: float, zenith_deg: float, extra_radiation: float
) -> tuple[float, float]:
    """(dni, dhi) of :func:`pvlib.irradiance.erbs` for one value, with its defaults
    ``min_cos_zenith=0.065``, ``max_zenith=87`` (Erbs, Klein & Duffie 1982)."""
    kt = ghi / (extra_radiation * max(cos_zenith, 0.065))
    kt = min(max(kt, 0.0), 1.0)
    if kt > 0.8:
        df = 0.165
    elif kt > 0.22:
        df = 0.9511 - 0.1604 * kt + 4.388 * kt**2 - 16.638 * kt**3 + 12.336 * kt**4
    else:
        df = 1.0 - 0.09 * kt
    dhi = df * ghi
    dni = (ghi - dhi) / cos_zenith
    if zenith_deg > MAX_ZENITH_DEG or ghi < 0.0 or not dni >= 0.0:
        return 0.0, ghi
    return dni, dhi


@njit(cache=True, fastmath=False)
def _lookup(table: np.ndarray, x: float) -> float:
    """Linear interpolation in a table of a function on the uniform grid :data:`_Z_GRID`."""
    pos = (min(max(x, _Z_MIN), _Z_MAX) - _Z_MIN) / _Z_STEP
    i = min(int(pos), table.size - 2)
    return table[i] + (pos - i) * (table[i + 1] - table[i])


@njit(cache=True, fastmath=False)
def _site_rows(
    z_day: np.ndarray,
    z_hour: np.ndarray,
    z_wind: np.ndarray,
    day_weight: float,
    month: np.ndarray,
    quantiles: np.ndarray,
    covered: np.ndarray,
    free_index: float,
    minute_normals: np.ndarray,
    n_sub: int,
    phi_minute: float,
    clear_ghi: np.ndarray,
    zenith_deg: np.ndarray,
    extra_radiation: np.ndarray,
    wind_scale: np.ndarray,
    wind_table: np.ndarray,
    out_ghi: np.ndarray,
    out_dni: np.ndarray,
    out_dhi: np.ndarray,
    out_wind: np.ndarray,
) -> None:
    """Irradiance and wind of a block of sites, written into the ``out_*`` rows.

    Clear-sky index: hourly layer ``Q_month(Phi(z))`` with ``z = sqrt(a) z_day +
    sqrt(1 - a) z_hour``; minute layer: the sun is free while ``Phi(w) < p_free`` for a
    per-site AR(1) ``w`` (from ``minute_normals``), the step's index is the mean over its
    ``n_sub`` sub-steps. Then GHI, Erbs DNI/DHI and Weibull wind ``scale[t] * table(z_wind)``.
    """
    n_sites, n_steps = z_day.shape
    n_probs = quantiles.shape[1]
    hour_weight = math.sqrt(1.0 - day_weight * day_weight)
    innovation = math.sqrt(1.0 - phi_minute * phi_minute)
    cos_zenith = np.cos(np.radians(zenith_deg))
    for s in range(n_sites):
        normals = minute_normals[s]
        w = normals[0]
        j = 0
        for t in range(n_steps):
            z = day_weight * z_day[s, t] + hour_weight * z_hour[s, t]
            pos = _lookup(_PHI_TABLE, z) * (n_probs - 1)
            i = min(int(pos), n_probs - 2)
            mo = month[t]
            kc_hour = quantiles[mo, i] + (pos - i) * (quantiles[mo, i + 1] - quantiles[mo, i])
            low = covered[mo]
            mixed = low < kc_hour < free_index
            p_free = (kc_hour - low) / (free_index - low) if mixed else 0.0
            n_free = 0
            for _ in range(n_sub):
                if j > 0:
                    w = phi_minute * w + innovation * normals[j]
                if _lookup(_PHI_TABLE, w) < p_free:
                    n_free += 1
                j += 1
            kc = low + (free_index - low) * n_free / n_sub if mixed else kc_hour
            ghi = kc * clear_ghi[t]
            out_ghi[s, t] = ghi
            out_dni[s, t], out_dhi[s, t] = erbs_kernel(
                ghi, cos_zenith[t], zenith_deg[t], extra_radiation[t]
            )
            out_wind[s, t] = wind_scale[t] * _lookup(wind_table, z_wind[s, t])


# --------------------------------------------------------------------------- wind margins


def _diurnal_log_variance(amplitude: float) -> float:
    """Variance over a day of ``ln(1 + amplitude cos(theta))``."""
    theta = (np.arange(1440) + 0.5) * 2 * np.pi / 1440
    return float(np.var(np.log1p(amplitude * np.cos(theta))))


def _weibull_for_mixing(k: float, c: float, amplitude: float) -> tuple[float, float]:
    """Shape and scale of the Weibull whose diurnally scaled mixture has log-variance
    ``pi^2 / (6 k^2)`` (that of Weibull(k)) and mean ``c Gamma(1 + 1/k)``."""
    target = math.pi**2 / (6.0 * k * k) - _diurnal_log_variance(amplitude)
    k_inner = math.pi / math.sqrt(6.0 * target) if target > 0 else k
    c_inner = c * math.gamma(1.0 + 1.0 / k) / math.gamma(1.0 + 1.0 / k_inner)
    return k_inner, c_inner


def _latent_lag1(target: float, k: float) -> float:
    """Latent Gaussian correlation that gives Weibull(k) speeds the correlation ``target``.

    ``corr(g(z1), g(z2))`` for ``g(z) = (-ln(1 - Phi(z)))^(1/k)`` and ``corr(z1, z2) = rho`` by
    60-point Gauss-Hermite quadrature, inverted by bisection (the map is increasing in rho).
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    pair_weights = weights[:, None] * weights[None, :]

    def speeds(z: np.ndarray) -> np.ndarray:
        tail = _norm_cdf_array(-z)  # 1 - Phi(z)
        out: np.ndarray = (-np.log(np.maximum(tail, 1e-300))) ** (1.0 / k)
        return out

    g = speeds(nodes)
    mean = float(weights @ g)
    var = float(weights @ (g - mean) ** 2)

    def corr(rho: float) -> float:
        g2 = speeds(rho * nodes[:, None] + math.sqrt(1.0 - rho * rho) * nodes[None, :])
        return float((pair_weights * (g[:, None] - mean) * (g2 - mean)).sum() / var)

    low, high = 0.0, 0.9999
    for _ in range(40):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if corr(mid) < target else (low, mid)
    return 0.5 * (low + high)


# --------------------------------------------------------------------------- generator


def _month_and_fraction(t_lst_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Month index (0..11) and fraction of the month elapsed at local-standard epoch seconds."""
    stamps = epoch_s_to_index(t_lst_s)
    month = stamps.month.to_numpy() - 1
    days = stamps.days_in_month.to_numpy()
    elapsed = (stamps.day.to_numpy() - 1) + (
        stamps.hour.to_numpy() * 3600 + stamps.minute.to_numpy() * 60 + stamps.second.to_numpy()
    ) / 86400.0
    return month.astype(np.int64), elapsed / days


def synthetic_weather(climate: SyntheticClimate, request: WeatherRequest) -> Weather:
    """Synthetic weather for the request's window, one row per site (see the module docstring).

    ``n_rows = len(request.site_ids)``, or 1 (the reference location) when no sites are named.
    ``temp_air`` and ``pressure`` are the same for every row (read-only broadcast views).
    Raises ValueError when ``request.rng_for`` is missing or the sites lack coordinates.
    """
    if request.rng_for is None:
        raise ValueError(
            "synthetic weather needs request.rng_for (the run's generator per stable key); "
            "got None"
        )
    n_sites = len(request.site_ids)
    if n_sites and request.site_latitude_deg.size != n_sites:
        raise ValueError(
            f"synthetic weather needs site_latitude_deg and site_longitude_deg for each of the "
            f"{n_sites} sites; got {request.site_latitude_deg.size} coordinates"
        )
    rng_for = request.rng_for
    grid_s = sample_grid_s(request.duration_s, request.step_s)
    n_steps = grid_s.size
    start_s = request.start_s
    times_utc = epoch_s_to_index(start_s + grid_s)

    # Solar geometry and clear sky once per step at the reference location.
    n_cs = max(1, math.ceil(request.step_s / _CLEARSKY_SUBSAMPLE_S))
    offsets_s = ((np.arange(n_cs) + 0.5) / n_cs - 0.5) * request.step_s
    clear_sub, _ = clearsky_ghi(
        epoch_s_to_index((start_s + grid_s[:, None] + offsets_s[None, :]).ravel()),
        climate.latitude_deg,
        climate.longitude_deg,
        climate.altitude_m,
    )
    clear_ghi = clear_sub.reshape(n_steps, n_cs).mean(axis=1)
    zenith_deg = pvlib.solarposition.get_solarposition(
        times_utc, climate.latitude_deg, climate.longitude_deg, altitude=climate.altitude_m
    )["zenith"].to_numpy(dtype=np.float64)
    extra_radiation = np.asarray(pvlib.irradiance.get_extra_radiation(times_utc), dtype=np.float64)

    # Calendar in local standard time.
    t_lst_s = start_s + grid_s + climate.utc_offset_h * 3600.0
    month, fraction = _month_and_fraction(t_lst_s)
    hour_lst = (t_lst_s % 86400.0) / 3600.0

    # Shared latent fields, knots from one knot before the first step.
    k_inner, c_inner = _weibull_for_mixing(
        climate.wind_weibull_k, climate.wind_weibull_c_m_s, climate.wind_diurnal_amplitude
    )
    cloud_day, cloud_hour, wind = (
        _Field(rng_for(key), length_km, lag1_per_hour, knot_s, grid_s)
        for key, length_km, lag1_per_hour, knot_s in (
            ("weather/cloud-day", climate.cloud_day_correlation_km,
             climate.cloud_day_lag1, max(_KNOT_DAY_S, request.step_s)),
            ("weather/cloud-hour", climate.cloud_hour_correlation_km,
             climate.cloud_hour_lag1, max(_KNOT_HOUR_S, request.step_s)),
            ("weather/wind", climate.wind_correlation_km,
             _latent_lag1(climate.wind_lag1, k_inner), max(_KNOT_WIND_S, request.step_s)),
        )
    )  # fmt: skip
    wind_scale = c_inner * (
        1.0 + climate.wind_diurnal_amplitude
        * np.cos(2 * np.pi * (hour_lst - climate.wind_peak_hour) / 24.0)
    )  # fmt: skip
    quantiles = climate.quantile_table
    covered = np.array([np.interp(COVERED_PROBABILITY, PROBABILITIES, row) for row in quantiles])
    n_sub = max(1, math.ceil(request.step_s / MINUTE_LAYER_S))
    phi_minute = math.exp(-(request.step_s / n_sub) / climate.cloud_passage_s)

    if n_sites:
        x_km, y_km = _project_km(
            request.site_latitude_deg, request.site_longitude_deg,
            climate.latitude_deg, climate.longitude_deg,
        )  # fmt: skip
        keys = [f"weather/site/{site}" for site in request.site_ids]
    else:
        x_km, y_km = np.zeros(1), np.zeros(1)
        keys = ["weather/site/reference"]
    n_rows = len(keys)
    ghi = np.empty((n_rows, n_steps))
    dni = np.empty((n_rows, n_steps))
    dhi = np.empty((n_rows, n_steps))
    wind_speed = np.empty((n_rows, n_steps))
    tail = np.array([0.5 * math.erfc(float(z) / math.sqrt(2.0)) for z in _Z_GRID])  # 1 - Phi
    wind_table = (-np.log(np.maximum(tail, 1e-300))) ** (1.0 / k_inner)
    block = max(1, min(_SITES_PER_BLOCK, _BLOCK_ELEMENTS // (n_steps * n_sub)))
    for first in range(0, n_rows, block):
        rows = slice(first, min(first + block, n_rows))
        x, y = x_km[rows], y_km[rows]
        normals = np.stack([rng_for(key).standard_normal(n_steps * n_sub) for key in keys[rows]])
        _site_rows(
            cloud_day.at(x, y), cloud_hour.at(x, y), wind.at(x, y),
            math.sqrt(climate.cloud_day_share), month, quantiles, covered,
            climate.sun_free_clearsky_index, normals, n_sub, phi_minute, clear_ghi, zenith_deg,
            extra_radiation, wind_scale, wind_table,
            ghi[rows], dni[rows], dhi[rows], wind_speed[rows],
        )  # fmt: skip

    # One regional temperature series; standard-atmosphere pressure.
    temp_knot_s = max(_KNOT_TEMP_S, request.step_s)
    phi_temp = climate.temp_air_anomaly_lag1 ** (temp_knot_s / 3600.0)
    first_knot_s = grid_s[0] - temp_knot_s
    n_knots = math.ceil((grid_s[-1] - first_knot_s) / temp_knot_s) + 2
    knots = _ar1_rows(rng_for("weather/temp_air").standard_normal((1, n_knots)), phi_temp)[0]
    index, weight, norm = _knot_interpolation(grid_s, first_knot_s, temp_knot_s, phi_temp)
    anomaly = ((1.0 - weight) * knots[index] + weight * knots[index + 1]) * norm
    temp_air = (
        _monthly_curve(np.asarray(climate.temp_air_monthly_mean_c), month, fraction)
        + _monthly_curve(np.asarray(climate.temp_air_monthly_amplitude_c), month, fraction)
        * np.cos(2 * np.pi * (hour_lst - climate.temp_air_peak_hour) / 24.0)
        + climate.temp_air_anomaly_std_c * anomaly
    )
    pressure = np.full(n_steps, float(pvlib.atmosphere.alt2pres(climate.altitude_m)))
    return Weather(
        times_utc=times_utc,
        step_s=float(request.step_s),
        ghi=ghi,
        dni=dni,
        dhi=dhi,
        temp_air=np.broadcast_to(temp_air, (n_rows, n_steps)),
        wind_speed=wind_speed,
        pressure=np.broadcast_to(pressure, (n_rows, n_steps)),
        latitude_deg=climate.latitude_deg,
        longitude_deg=climate.longitude_deg,
        altitude_m=climate.altitude_m,
        wind_height_m=climate.wind_height_m,
        name=climate.name,
    )
