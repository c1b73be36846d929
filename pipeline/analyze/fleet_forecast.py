"""Short-term forecasts of the fleet's generation meters, on the fleet grid
(`pipeline.analyze.fleet`), vectorised over sites: hourly energy of the next
`pipeline.analyze.forecast.FORECAST_HORIZON_S`, each issued with its reference forecast on
the same hours so that its skill can be scored.

**PV.** The reference is *smart persistence* (clear-sky index persistence): the last
complete hour's clear-sky index of the site times its clear-sky energy of each hour ahead,
the standard baseline of solar forecasting (R. Marquez & C. F. M. Coimbra, "Proposed
metric for evaluation of solar forecasting models", J. Sol. Energy Eng. 135:011016, 2013;
D. Yang et al., "Verification of deterministic solar forecasts", Solar Energy 210:20,
2020). With the region's forecast product the method is ``feed_regression``: for each lead
h a linear model of the station's clear-sky index h hours ahead on the index measured now
and the product's index for that hour, ``kc(t+h) = a_h kc_obs(t) + b_h kc_nwp(t+h) + c_h``,
fitted by ridge regression on the last `_FIT_HOURS` of the station's observations and the
issues of the product that were out at each origin (model output statistics, H. R. Glahn
& D. A. Lowry, J. Appl. Meteor. 11:1203, 1972; the measured index in the regression is
the short-lead blend of persistence and NWP of e.g. P. Mathiesen & J. Kleissl, Solar
Energy 85:967, 2011, and E. Lorenz et al., IEEE JSTARS 2(1):2, 2009). The ridge pulls the
coefficients towards ``a_h = 0.7^h, b_h = 1 - a_h`` (persistence first, the product
beyond), so that a few days of history cannot make it wild. The site's own index of the
last hour (its energy inverted through its plane's transposition,
`pipeline.analyze.fleet`) stands in for the station's measured one, and its forecast is
its energy at the predicted index (`pipeline.analyze.fleet.FleetGrid.energy_at_index`);
without a measured hour in the last two (night), the product's index alone.
Without the product the method is smart persistence itself.

**Wind.** Persistence of the last complete hour's energy (method and reference).

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import numpy as np

from pipeline.analyze.fleet import FLEET_STEP_S, FleetGrid
from pipeline.analyze.forecast import FORECAST_HORIZON_S, FORECAST_STEP_S, ForecastRecord
from pipeline.analyze.kernels import quiet_nan
from pipeline.espi.codes import FLOW_RECEIVED
from pipeline.store.weather import WeatherRepository

__all__ = ["FEED_METHOD", "FORECAST_AHEAD_S", "SMART_PERSISTENCE", "fleet_forecasts"]

#: How far ahead of ``now`` the grid holds clear-sky energy for the forecasts, s.
FORECAST_AHEAD_S = FORECAST_HORIZON_S + FORECAST_STEP_S
SMART_PERSISTENCE = "smart_persistence"
FEED_METHOD = "feed_regression"
_PER_HOUR = FORECAST_STEP_S // FLEET_STEP_S
#: Hours looked back for the last daylight clear-sky index and the site/station ratio.
_LOOKBACK_H = 24
#: Hours of history the per-lead regression is fitted on (three days).
_FIT_HOURS = 72
#: Ridge strength of the regression (in units of summed squared index), and the
#: persistence coefficient per hour of the prior it pulls towards.
_RIDGE = 2.0
_PRIOR_PERSISTENCE = 0.7
#: Latest measured hour the regression's "now" may be, hours before the first forecast
#: hour (the last hour may still be uploading).
_MAX_NOW_AGE_H = 2
#: Hours whose clear-sky GHI is below this, W/m2, have no index (dawn, dusk).
_MIN_CLEAR_GHI_W_M2 = 50.0
#: An hour's clear-sky index counts when its clear-sky energy is at least this fraction of
#: the nameplate's (dawn and dusk: the ratio of two small numbers).
_MIN_CS_FRACTION = 0.1


def _hours(a: np.ndarray) -> np.ndarray:
    """[S, 4 H] bins to [S, H] hourly sums (NaN if any bin is)."""
    s, b = a.shape
    return a[:, : b - b % _PER_HOUR].reshape(s, -1, _PER_HOUR).sum(axis=2)


def _last_finite(x: np.ndarray, max_age: int | None = None) -> np.ndarray:
    """The last finite value of each row of [S, H] (NaN where none, or where it is more
    than `max_age` columns before the last)."""
    ok = np.isfinite(x)
    age = np.argmax(ok[:, ::-1], axis=1)
    idx = x.shape[1] - 1 - age
    found = ok.any(axis=1) & (True if max_age is None else age <= max_age)
    return np.where(found, x[np.arange(x.shape[0]), idx], np.nan)


def _kc_hours(grid: FleetGrid, k: int, first_s: int, hours: int) -> np.ndarray:
    """The station's observed clear-sky index of each hour from `first_s` (NaN at night,
    where not recorded, or outside the grid)."""
    idx = grid.bin_of(first_s) + np.arange(hours * _PER_HOUR)
    ok = (idx >= 0) & (idx < grid.n_bins)
    ghi = np.full(idx.shape, np.nan)
    clear = np.full(idx.shape, np.nan)
    ghi[ok], clear[ok] = grid.st_ghi[k, idx[ok]], grid.st_ghi_clear[k, idx[ok]]
    with np.errstate(invalid="ignore", divide="ignore"):
        ghi_h = ghi.reshape(-1, _PER_HOUR).mean(axis=1)
        clear_h = clear.reshape(-1, _PER_HOUR).mean(axis=1)
        return np.asarray(np.where(clear_h > _MIN_CLEAR_GHI_W_M2, ghi_h / clear_h, np.nan))


def _clear_hours(grid: FleetGrid, k: int, first_s: int, hours: int) -> np.ndarray:
    idx = grid.bin_of(first_s) + np.arange(hours * _PER_HOUR)
    ok = (idx >= 0) & (idx < grid.n_bins)
    clear = np.full(idx.shape, np.nan)
    clear[ok] = grid.st_ghi_clear[k, idx[ok]]
    return np.asarray(clear.reshape(-1, _PER_HOUR).mean(axis=1))


def _product_at_origins(
    weather: WeatherRepository, station_id: str, origins_s: np.ndarray, steps: int,
    clear_ghi: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """[O, steps]: the product's clear-sky index for hour ``origin + h`` (h = 0..steps-1
    after the origin hour) from the latest issue out when the origin hour had been
    measured, at its end (NaN where none)."""
    known_s = origins_s + FORECAST_STEP_S
    issues = weather.issues(station_id, int(origins_s[0]) - 2 * 86_400, int(known_s[-1]))
    out = np.full((origins_s.size, steps), np.nan)
    if not issues:
        return out
    issued = np.array([i.issued_s for i in issues])
    which = np.searchsorted(issued, known_s, side="right") - 1
    for o in np.flatnonzero(which >= 0).tolist():  # origins (hours), not readings
        issue = issues[int(which[o])]
        targets = origins_s[o] + FORECAST_STEP_S * np.arange(steps)
        pos = np.searchsorted(issue.start_s, targets)
        pos_ok = pos < issue.n
        hit = np.zeros(steps, dtype=bool)
        hit[pos_ok] = issue.start_s[pos[pos_ok]] == targets[pos_ok]
        out[o, hit] = issue.ghi[pos[hit]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(clear_ghi > _MIN_CLEAR_GHI_W_M2, out / clear_ghi, np.nan))


def _fit_leads(kc_obs: np.ndarray, kc_nwp: np.ndarray, steps: int) -> np.ndarray:
    """Ridge coefficients [steps, 3] (measured now, product ahead, intercept) per lead 1..
    steps, from origins o with ``kc_obs[o]``, ``kc_nwp[o, h]`` and ``kc_obs[o + h]``."""
    beta = np.zeros((steps, 3))
    n = kc_obs.size
    for h in range(1, steps + 1):  # leads, not readings
        prior_a = _PRIOR_PERSISTENCE**h
        prior = np.array([prior_a, 1.0 - prior_a, 0.0])
        o = np.arange(n - h)
        x = np.column_stack((kc_obs[o], kc_nwp[o, h], np.ones(o.size)))
        y = kc_obs[o + h]
        ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
        x, y = x[ok], y[ok]
        lam = _RIDGE * np.eye(3)
        beta[h - 1] = np.linalg.solve(x.T @ x + lam, x.T @ y + lam @ prior)
    return beta


def fleet_forecasts(
    grid: FleetGrid, weather: WeatherRepository, now_s: int
) -> list[ForecastRecord]:
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
    lead = np.arange(1, steps + 1)
    with quiet_nan():
        sky_h = np.nanmean(
            grid.sky_index[:, b_now - _LOOKBACK_H * _PER_HOUR : b_now].reshape(
                len(grid.sites), _LOOKBACK_H, _PER_HOUR
            ),
            axis=2,
        )
    # each site's sky index on the horizontal in its last hour measured, if recent (after
    # the night, the product alone: yesterday's sky says little of this morning's)
    sky_now = _last_finite(sky_h, _MAX_NOW_AGE_H)
    for k, station in enumerate(grid.stations):
        rows = np.flatnonzero(view.is_pv & ~view.net & (grid.station_of == k))
        if rows.size == 0:
            continue
        first = issued - _FIT_HOURS * FORECAST_STEP_S
        kc_obs = _kc_hours(grid, k, first, _FIT_HOURS)
        origins = first + FORECAST_STEP_S * np.arange(_FIT_HOURS)  # the last: issued - 1 h
        clear = _clear_hours(grid, k, first, _FIT_HOURS + steps + 1)
        clear_ahead = np.stack([clear[h : h + origins.size] for h in range(steps + 1)], axis=1)
        kc_nwp = _product_at_origins(weather, station.station_id, origins, steps + 1, clear_ahead)
        if not np.isfinite(kc_nwp[-1, 1:]).any():
            continue  # no product out now
        beta = _fit_leads(kc_obs, kc_nwp, steps)
        now = sky_now[rows]
        nwp = np.nan_to_num(kc_nwp[-1, lead], nan=1.0)
        kc_pred = np.clip(
            beta[None, :, 0] * now[:, None] + beta[None, :, 1] * nwp[None, :] + beta[None, :, 2],
            0.0, 1.3,
        )  # fmt: skip
        kc_pred = np.where(np.isfinite(now)[:, None], kc_pred, np.clip(nwp, 0.0, 1.3)[None, :])
        per_bin = np.repeat(kc_pred, _PER_HOUR, axis=1)
        energy = grid.energy_at_index(rows, b_now, b_now + steps * _PER_HOUR, per_bin)
        forecast[rows] = energy.reshape(rows.size, steps, _PER_HOUR).sum(axis=2)
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
