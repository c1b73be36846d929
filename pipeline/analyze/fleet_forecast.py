"""Short-term forecasts of the fleet's generation meters, on the fleet grid
(`pipeline.analyze.fleet`), vectorised over sites: hourly energy of the next
`pipeline.analyze.forecast.FORECAST_HORIZON_S`, each issued with its reference forecast on
the same hours so that its skill can be scored.

**PV.** The reference is *smart persistence* (clear-sky index persistence): the last
complete hour's clear-sky index of the site times its clear-sky energy of each hour ahead,
the standard baseline of solar forecasting (R. Marquez & C. F. M. Coimbra, "Proposed
metric for evaluation of solar forecasting models", J. Sol. Energy Eng. 135:011016, 2013;
D. Yang et al., "Verification of deterministic solar forecasts", Solar Energy 210:20,
2020). With the region's forecast product the method is ``feed_error_persistence``: the
product's clear-sky index at the station for each hour ahead, corrected by its current
error decaying with the lead time, ``kc(t+h) = kc_nwp(t+h) + phi^h (kc_obs(t) -
kc_nwp(t))`` (the persistence of the NWP error, the simplest model-output-statistics
correction: e.g. P. Mathiesen & J. Kleissl, Solar Energy 85:967, 2011, §4; E. Lorenz et
al., IEEE JSTARS 2(1):2, 2009), scaled to the site by the ratio of its clear-sky index to
the station's over the last day. ``phi`` is the lag-one autocorrelation of the product's
hourly error over the last days (0.8 before there are enough), so the blend leans on the
measurement for the first hours and on the product beyond. Without the product the method
is smart persistence itself.

**Wind.** Persistence of the last complete hour's energy (method and reference).

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import numpy as np

from pipeline.analyze.fleet import FLEET_STEP_S, FleetGrid
from pipeline.analyze.forecast import FORECAST_HORIZON_S, FORECAST_STEP_S, ForecastRecord
from pipeline.espi.codes import FLOW_RECEIVED
from pipeline.store.weather import WeatherRepository

__all__ = ["FORECAST_AHEAD_S", "SMART_PERSISTENCE", "fleet_forecasts", "error_persistence"]

#: How far ahead of ``now`` the grid holds clear-sky energy for the forecasts, s.
FORECAST_AHEAD_S = FORECAST_HORIZON_S + FORECAST_STEP_S
SMART_PERSISTENCE = "smart_persistence"
FEED_METHOD = "feed_error_persistence"
_PER_HOUR = FORECAST_STEP_S // FLEET_STEP_S
#: Hours looked back for the last daylight clear-sky index and the site/station ratio.
_LOOKBACK_H = 24
#: Hours of the product's errors its autocorrelation is estimated over, and the default.
_PHI_HOURS = 72
_PHI_DEFAULT = 0.8
#: An hour's clear-sky index counts when its clear-sky energy is at least this fraction of
#: the nameplate's (dawn and dusk: the ratio of two small numbers).
_MIN_CS_FRACTION = 0.1


def _hours(a: np.ndarray) -> np.ndarray:
    """[S, 4 H] bins to [S, H] hourly sums (NaN if any bin is)."""
    s, b = a.shape
    return a[:, : b - b % _PER_HOUR].reshape(s, -1, _PER_HOUR).sum(axis=2)


def _last_finite(x: np.ndarray) -> np.ndarray:
    """The last finite value of each row of [S, H] (NaN where none)."""
    ok = np.isfinite(x)
    idx = x.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
    return np.where(ok.any(axis=1), x[np.arange(x.shape[0]), idx], np.nan)


def error_persistence(errors: np.ndarray) -> float:
    """Lag-one autocorrelation of an hourly error series (NaN: no value), clipped to
    [0, 0.98]; `_PHI_DEFAULT` with fewer than 12 pairs."""
    a, b = errors[1:], errors[:-1]
    ok = np.isfinite(a) & np.isfinite(b)
    if np.count_nonzero(ok) < 12 or not np.any(b[ok] != 0):
        return _PHI_DEFAULT
    return float(np.clip(np.sum(a[ok] * b[ok]) / np.sum(b[ok] * b[ok]), 0.0, 0.98))


def _station_kc_forecast(
    grid: FleetGrid, weather: WeatherRepository, k: int, issued: int, steps: int,
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """For station `k`: the observed clear-sky index of the last `_LOOKBACK_H` hours, the
    product's of those hours and the next `steps` (from the latest issue in effect), and
    the persistence of the product's error; None without a product."""
    station = grid.stations[k]
    first = issued - _PHI_HOURS * 3600
    fc = weather.forecast_in_effect(station.station_id, first, issued + steps * 3600)
    if fc.n == 0:
        return None
    hours = first + 3600 * np.arange(_PHI_HOURS + steps)
    b = grid.bin_of(first)
    idx = b + np.arange((_PHI_HOURS + steps) * _PER_HOUR)
    ok = (idx >= 0) & (idx < grid.n_bins)
    ghi = np.full(idx.shape, np.nan)
    clear = np.full(idx.shape, np.nan)
    ghi[ok], clear[ok] = grid.st_ghi[k, idx[ok]], grid.st_ghi_clear[k, idx[ok]]
    ghi_h = ghi.reshape(-1, _PER_HOUR).mean(axis=1)
    clear_h = clear.reshape(-1, _PER_HOUR).mean(axis=1)
    fc_ghi = np.full(hours.shape, np.nan)
    pos = np.searchsorted(hours, fc.start_s)
    inside = (pos < hours.size) & (hours[np.minimum(pos, hours.size - 1)] == fc.start_s)
    fc_ghi[pos[inside]] = fc.ghi[inside]
    with np.errstate(invalid="ignore", divide="ignore"):
        day = clear_h > 50.0
        kc_obs = np.where(day, ghi_h / clear_h, np.nan)
        kc_fc = np.where(day, fc_ghi / clear_h, np.nan)
    phi = error_persistence((kc_obs - kc_fc)[:_PHI_HOURS])
    return kc_obs[:_PHI_HOURS], kc_fc, phi


def fleet_forecasts(grid: FleetGrid, weather: WeatherRepository, now_s: int) -> list[ForecastRecord]:
    """The forecasts of every generation meter of the grid, issued at the last whole hour
    before `now_s` (module docstring)."""
    if grid.t0_s is None or not grid.sites:
        return []
    issued = int(now_s) // FORECAST_STEP_S * FORECAST_STEP_S
    steps = FORECAST_HORIZON_S // FORECAST_STEP_S
    b_now = grid.bin_of(issued)
    view = grid.view(b_now - _LOOKBACK_H * _PER_HOUR, b_now + steps * _PER_HOUR)
    if view.n_bins < (_LOOKBACK_H + steps) * _PER_HOUR:
        return []
    gen = _hours(view.gen)[:, :_LOOKBACK_H]
    cs = _hours(view.clear_sky_wh)
    enp_h = view.nameplate_wh * _PER_HOUR
    with np.errstate(invalid="ignore", divide="ignore"):
        kc_hist = np.where(cs[:, :_LOOKBACK_H] >= _MIN_CS_FRACTION * enp_h[:, None],
                           gen / cs[:, :_LOOKBACK_H], np.nan)  # fmt: skip
    kc_now = _last_finite(kc_hist)
    last_gen = _last_finite(gen)
    cs_ahead = cs[:, _LOOKBACK_H:]
    smart = np.minimum(kc_now[:, None] * cs_ahead, enp_h[:, None])
    method = np.full(len(grid.sites), SMART_PERSISTENCE, dtype=object)
    forecast = smart.copy()
    products = {
        k: _station_kc_forecast(grid, weather, k, issued, steps) for k in range(len(grid.stations))
    }
    for k, product in products.items():
        if product is None:
            continue
        kc_obs_all, kc_fc_all, phi = product
        rows = np.flatnonzero(view.is_pv & ~view.net & (grid.station_of == k))
        if rows.size == 0:
            continue
        kc_obs = kc_obs_all[-_LOOKBACK_H:]
        kc_fc = kc_fc_all[_PHI_HOURS - _LOOKBACK_H :]
        now_err = _last_finite((kc_obs - kc_fc[:_LOOKBACK_H])[None, :])[0]
        if not np.isfinite(now_err):
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.nanmedian(kc_hist[rows] / kc_obs[None, :], axis=1)
        ratio = np.where(np.isfinite(ratio), ratio, 1.0)
        lead = np.arange(1, steps + 1)
        kc_pred = np.clip(np.nan_to_num(kc_fc[_LOOKBACK_H:], nan=0.0) + phi**lead * now_err, 0, 1.3)
        forecast[rows] = np.minimum(ratio[:, None] * kc_pred[None, :] * cs_ahead[rows],
                                    enp_h[rows, None])  # fmt: skip
        method[rows] = FEED_METHOD
    out = []
    for row, site in enumerate(grid.sites):
        if grid.net[row]:
            continue  # export is generation minus the site's load: not forecast
        if site.kind == "pv":
            f, ref, name, ref_name = forecast[row], smart[row], str(method[row]), SMART_PERSISTENCE
        else:
            f = ref = np.full(steps, last_gen[row])
            name = ref_name = "persistence"
        if not (np.isfinite(f).all() and np.isfinite(ref).all()):
            continue
        out.append(ForecastRecord(
            series_id=site.site_id, flow_direction=FLOW_RECEIVED, method=name, issued_s=issued,
            interval_length_s=FORECAST_STEP_S, horizon_steps=steps,
            forecast_wh=tuple(float(v) for v in np.maximum(f, 0.0)),
            reference_method=ref_name, reference_wh=tuple(float(v) for v in np.maximum(ref, 0.0)),
        ))  # fmt: skip
    return out
