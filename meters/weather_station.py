"""A region's met station and its forecast product, made from the scenario's weather: what
an MDC's weather feed carries (DESIGN.md §4), and the documents the station uploads
(``docs/upload-format.md`` §6, "The weather feed").

**Observations** (`station_observations`). Every ``sample_s`` the station reports the mean
global horizontal irradiance, the air temperature and the 10-m wind speed of the weather
at its place, each with its sensor's noise (independent Gaussian draws per reading; the
uncertainties are the "achievable measurement uncertainty" of the WMO *Guide to
Instruments and Methods of Observation* (WMO-No. 8, 2018 edition, Vol. I, Annex 1.A),
taken as two standard deviations):

- GHI: a thermopile pyranometer, 3 % of the reading (the Guide's "high quality" hourly
  uncertainty for global radiation) plus 2 W/m2 of thermal offset: sigma 1.5 % + 1 W/m2,
  never negative;
- air temperature: a shielded platinum thermometer, 0.2 K: sigma 0.1 K;
- wind speed: a cup anemometer, 0.5 m/s up to 5 m/s and 10 % above: sigma
  max(0.25 m/s, 5 %), never negative.

The station has outages of its own (power, logger, modem): alternating up and down times,
exponentially distributed with means ``outage_mtbf_s`` and ``outage_mttr_s``
(`station_outages`); it records nothing while down (NaN in its arrays).

**Forecast product** (`forecast_product`). Every ``issue_every_s`` (6 h, the cycle of
operational NWP runs) the product gives hourly means of GHI, air temperature and 10-m
wind speed for ``horizon_s`` (48 h) from its issue time. Its errors grow with the lead
time, the shape NWP verification studies report: for GHI, the clear-sky index of each hour
is the truth's plus an error whose standard deviation grows linearly with the lead time
(`ForecastErrorModel`), correlated from one lead hour to the next within an issue (an
NWP run's error is a weather situation missed for hours, not noise); temperature and wind
speed likewise. The defaults give hourly GHI a relative RMSE of about 0.25-0.35 of the
mean daytime GHI over the first three forecast days, the range R. Perez et al., "Comparison
of numerical weather prediction solar irradiance forecasts in the US, Canada and Europe",
Solar Energy 94:305 (2013) report for the ECMWF-based forecasts (growing from the first
forecast day to the third); J. Remund, R. Perez & E. Lorenz, "Comparison of solar
radiation forecasts for the USA", 23rd EU PVSEC (2008) find such forecasts break even
with persistence 2-3 h ahead, which these errors reproduce. The tests measure the
product's realised errors per lead day.

Randomness: each station draws from its own generators (``rng_for`` keys
``station/{id}/noise``, ``station/{id}/outages``, ``station/{id}/forecast``), so the
station changes no meter's stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: XML namespace of the weather feed's resources (``docs/upload-format.md`` §6).
WEATHER_NS = "urn:imdc:weather:1"
#: Quantities of the feed, in document order, with their units.
QUANTITIES: dict[str, str] = {"ghi": "W/m2", "temp_air": "degC", "wind_speed": "m/s"}


@dataclass(frozen=True)
class StationSpec:
    """One region's met station.

    Attributes:
        station_id: its id (the "meter id" of its uploads' envelope and feed id).
        latitude_deg, longitude_deg, altitude_m: where it stands.
        wind_height_m: anemometer height, m (10 m, the WMO standard exposure).
        sample_s: observation interval, s (60 s).
        outage_mtbf_s, outage_mttr_s: mean up and down times of the station, s (30 days and
            6 h: this project's choice for an unattended station; 0 MTBF: never down).
    """

    station_id: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    wind_height_m: float = 10.0
    sample_s: float = 60.0
    outage_mtbf_s: float = 30 * 86400.0
    outage_mttr_s: float = 6 * 3600.0


@dataclass(frozen=True)
class ForecastErrorModel:
    """Standard deviation of the forecast error at lead time L (hours): ``a + b * L / 24``,
    and its lag-1 correlation from one lead hour to the next within an issue.

    Attributes:
        kc_sigma, kc_sigma_per_day: clear-sky index error, 1 (0.16 and 0.03 per day: see
            the module docstring for what they give).
        temp_sigma_k, temp_sigma_k_per_day: air temperature, K (1.0 and 0.4 per day, of the
            order of global NWP 2-m temperature errors).
        wind_sigma_m_s, wind_sigma_m_s_per_day: 10-m wind speed, m/s (1.2 and 0.3 per day,
            of the order of global NWP 10-m wind errors).
        lead_correlation: correlation of errors one lead hour apart (0.9).
    """

    kc_sigma: float = 0.16
    kc_sigma_per_day: float = 0.03
    temp_sigma_k: float = 1.0
    temp_sigma_k_per_day: float = 0.4
    wind_sigma_m_s: float = 1.2
    wind_sigma_m_s_per_day: float = 0.3
    lead_correlation: float = 0.9


@dataclass(frozen=True, eq=False)
class StationObservations:
    """What a station recorded: readings at ``start_s + k * sample_s`` (s after the run's
    start; each the mean, or for temperature and wind the value, of its interval), NaN
    while the station was down."""

    sample_s: float
    ghi: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray


@dataclass(frozen=True, eq=False)
class ForecastIssue:
    """One issue of the forecast product: ``issued_s`` (s after the run's start) and the
    hourly steps from it (starts ``step_start_s``, s after the run's start), values NaN
    where the run's weather does not reach."""

    issued_s: float
    step_start_s: np.ndarray
    ghi: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray

    @property
    def reached(self) -> np.ndarray:
        """The steps the run's weather reaches (bool [steps]): those an upload carries."""
        return np.isfinite(self.ghi)


def station_outages(
    horizon_s: float, mtbf_s: float, mttr_s: float, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """Down windows [start, end) of a station over [0, horizon_s): alternating exponential
    up (mean `mtbf_s`) and down (mean `mttr_s`) times from an up start; none for mtbf 0."""
    out: list[tuple[float, float]] = []
    if mtbf_s <= 0:
        return out
    t = 0.0
    while True:
        t += float(rng.exponential(mtbf_s))
        if t >= horizon_s:
            return out
        end = t + float(rng.exponential(mttr_s))
        out.append((t, min(end, horizon_s)))
        t = end


def station_observations(
    spec: StationSpec,
    ghi: np.ndarray,
    temp_air: np.ndarray,
    wind_speed: np.ndarray,
    rng_for: Callable[[str], np.random.Generator],
) -> StationObservations:
    """The station's readings of the true weather at its place (1-D arrays on its
    ``sample_s`` grid from the run's start), with sensor noise and outages (module
    docstring)."""
    n = len(ghi)
    noise = rng_for(f"station/{spec.station_id}/noise").standard_normal((3, n))
    ghi_obs = np.maximum(ghi * (1.0 + 0.015 * noise[0]) + 1.0 * noise[1], 0.0)
    temp_obs = temp_air + 0.1 * noise[2]
    wind_noise = rng_for(f"station/{spec.station_id}/noise/wind").standard_normal(n)
    wind_obs = np.maximum(wind_speed + np.maximum(0.25, 0.05 * wind_speed) * wind_noise, 0.0)
    horizon_s = n * spec.sample_s
    rng = rng_for(f"station/{spec.station_id}/outages")
    down = np.zeros(n, dtype=bool)
    for a, b in station_outages(horizon_s, spec.outage_mtbf_s, spec.outage_mttr_s, rng):
        down[math.floor(a / spec.sample_s) : math.ceil(b / spec.sample_s)] = True
    ghi_obs[down] = temp_obs[down] = wind_obs[down] = np.nan
    return StationObservations(spec.sample_s, ghi_obs, temp_obs, wind_obs)


def _lead_correlated(rng: np.random.Generator, n: int, sigma: np.ndarray, phi: float) -> np.ndarray:
    """An AR(1) series of n values with lag-1 correlation `phi` and unit variance, scaled
    by `sigma` [n] (the error of one issue over its lead hours)."""
    z = rng.standard_normal(n)
    out = np.empty(n)
    prev = 0.0
    scale = math.sqrt(1.0 - phi * phi)
    for k in range(n):  # lead hours of one issue (48), not readings
        prev = z[k] if k == 0 else phi * prev + scale * z[k]
        out[k] = prev
    return out * sigma


def forecast_product(
    spec: StationSpec,
    hourly_ghi: np.ndarray,
    hourly_clear_ghi: np.ndarray,
    hourly_temp_air: np.ndarray,
    hourly_wind_speed: np.ndarray,
    first_hour_s: float,
    rng: np.random.Generator,
    *,
    issue_every_s: float = 6 * 3600.0,
    horizon_s: float = 48 * 3600.0,
    errors: ForecastErrorModel | None = None,
) -> list[ForecastIssue]:
    """The issues of the forecast product over the hours of the true weather given (hourly
    means starting at `first_hour_s`, s after the run's start; the clear-sky GHI of the
    same hours), one every `issue_every_s` at multiples of it from the first hour (module
    docstring). GHI forecasts are ``kc_forecast x clear-sky GHI`` with the clear-sky index
    clipped to [0, 1.2]; temperature and wind speed the truth plus their errors (wind
    never negative)."""
    e = ForecastErrorModel() if errors is None else errors
    n_hours = len(hourly_ghi)
    steps = round(horizon_s / 3600.0)
    lead_h = np.arange(steps, dtype=np.float64) + 0.5
    sigma_kc = e.kc_sigma + e.kc_sigma_per_day * lead_h / 24.0
    sigma_t = e.temp_sigma_k + e.temp_sigma_k_per_day * lead_h / 24.0
    sigma_w = e.wind_sigma_m_s + e.wind_sigma_m_s_per_day * lead_h / 24.0
    with np.errstate(invalid="ignore", divide="ignore"):
        kc_true = np.where(hourly_clear_ghi > 1.0, hourly_ghi / hourly_clear_ghi, np.nan)
    issues = []
    every_h = round(issue_every_s / 3600.0)
    for first in range(0, n_hours, every_h):
        idx = first + np.arange(steps)
        inside = idx < n_hours
        take = np.minimum(idx, n_hours - 1)
        kc_err = _lead_correlated(rng, steps, sigma_kc, e.lead_correlation)
        t_err = _lead_correlated(rng, steps, sigma_t, e.lead_correlation)
        w_err = _lead_correlated(rng, steps, sigma_w, e.lead_correlation)
        kc = np.clip(np.nan_to_num(kc_true[take], nan=0.0) + kc_err, 0.0, 1.2)
        ghi = np.where(hourly_clear_ghi[take] > 1.0, kc * hourly_clear_ghi[take], 0.0)
        nan = np.full(steps, np.nan)
        issues.append(
            ForecastIssue(
                issued_s=first_hour_s + first * 3600.0,
                step_start_s=first_hour_s + idx * 3600.0,
                ghi=np.where(inside, ghi, nan),
                temp_air=np.where(inside, hourly_temp_air[take] + t_err, nan),
                wind_speed=np.where(inside, np.maximum(hourly_wind_speed[take] + w_err, 0.0), nan),
            )
        )
    return issues


# -- the documents (docs/upload-format.md §6) -------------------------------------------


def _iso8601_utc(epoch_s: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _values(x: np.ndarray, decimals: int) -> str:
    """Space-separated decimals, ``NaN`` where unknown."""
    return " ".join("NaN" if not math.isfinite(v) else f"{v:.{decimals}f}" for v in x.tolist())


_DECIMALS = {"ghi": 1, "temp_air": 2, "wind_speed": 2}


def _document(spec: StationSpec, sequence_no: int, created_epoch_s: int, body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:wx="{WEATHER_NS}">'
        f"<id>urn:imdc:upload:{spec.station_id}:{sequence_no}</id>"
        f"<title>weather feed</title><updated>{_iso8601_utc(created_epoch_s)}</updated>"
        "<entry><content>"
        f'<wx:Station id="{spec.station_id}" latitude="{spec.latitude_deg:.6f}" '
        f'longitude="{spec.longitude_deg:.6f}" altitude="{spec.altitude_m:.1f}" '
        f'wind_height="{spec.wind_height_m:g}"/>'
        f"</content></entry><entry><content>{body}</content></entry></feed>"
    ).encode()


def encode_observations(
    spec: StationSpec,
    sequence_no: int,
    start_epoch_s: int,
    interval_s: int,
    values: dict[str, np.ndarray],
    created_epoch_s: int,
) -> bytes:
    """A station's observation upload: readings at ``start_epoch_s + k * interval_s`` of
    each `QUANTITIES` key of `values` (equal lengths, NaN where not recorded)."""
    n = len(next(iter(values.values())))
    series = "".join(
        f'<wx:{q} unit="{unit}">{_values(values[q], _DECIMALS[q])}</wx:{q}>'
        for q, unit in QUANTITIES.items()
    )
    body = (
        f'<wx:Observations start="{start_epoch_s}" interval="{interval_s}" count="{n}">'
        f"{series}</wx:Observations>"
    )
    return _document(spec, sequence_no, created_epoch_s, body)


def encode_forecast(
    spec: StationSpec, sequence_no: int, issue: ForecastIssue, epoch_s: int
) -> bytes:
    """A forecast issue as an upload (times shifted by the run's start ``epoch_s``); the
    steps the run's weather does not reach are left out."""
    inside = issue.reached
    n = int(np.count_nonzero(inside))
    start = epoch_s + round(issue.issued_s)
    series = "".join(
        f'<wx:{q} unit="{unit}">{_values(getattr(issue, q)[inside], _DECIMALS[q])}</wx:{q}>'
        for q, unit in QUANTITIES.items()
    )
    first = epoch_s + round(float(issue.step_start_s[0])) if n else start
    body = (
        f'<wx:Forecast issued="{start}" start="{first}" interval="3600" count="{n}">'
        f"{series}</wx:Forecast>"
    )
    return _document(spec, sequence_no, start, body)
