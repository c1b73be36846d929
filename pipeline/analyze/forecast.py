"""Short-term forecasts of interval-energy series and their backtests.

**Forecast.** `forecast` predicts the next hours with a method from `FORECAST_METHODS`
(persistence, seasonal naive, persistence of the anomaly against yesterday, clear-sky index
persistence); `backtest_forecast` scores a method on history (MAE, RMSE and skill against
persistence, 1 - RMSE/RMSE_persistence, the skill score of Murphy 1988 as used in solar
forecasting, e.g. Coimbra, Kleissl & Marquez 2013).

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from pipeline.analyze.series import SECONDS_PER_DAY, Series

__all__ = [
    "DEFAULT_FORECAST_METHOD",
    "FORECAST_HORIZON_S",
    "FORECAST_METHODS",
    "FORECAST_METHOD_BY_KIND",
    "FORECAST_MIN_HISTORY_S",
    "FORECAST_STEP_S",
    "ForecastRecord",
    "ForecastScore",
    "backtest_forecast",
    "forecast",
    "forecast_series",
]


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
    if SECONDS_PER_DAY % interval_length_s:
        raise ValueError("forecasts need an interval length that divides a day")
    period = SECONDS_PER_DAY // interval_length_s
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
# The forecast the batch analysis issues per generation series
# ======================================================================================


#: Step of the short-term forecast of `Pipeline.analyze`, s: hourly energy (the series is
#: summed over whole clock hours first; the interval length must divide it). This
#: project's choice: the resolution a dispatcher or a site operator plans in.
FORECAST_STEP_S = 3600
#: How far the forecast reaches, s: the next 6 hours ("intra-day" in solar forecasting,
#: e.g. Coimbra, Kleissl & Marquez 2013). This project's choice.
FORECAST_HORIZON_S = 6 * 3600
#: Least history for a forecast, s: two days of whole hours, so that the seasonal methods
#: have yesterday and the backtest has a day of origins with a day behind each.
FORECAST_MIN_HISTORY_S = 2 * SECONDS_PER_DAY
#: Forecast method (`FORECAST_METHODS`) per registered site kind; a
#: generation series without metadata (or of a kind not listed) gets `DEFAULT_FORECAST_METHOD`.
#: PV: clear-sky index persistence (the last hour's output over its clear-sky expectation,
#: times the expectation ahead); wind: seasonal naive plus today's anomaly, fading.
FORECAST_METHOD_BY_KIND: dict[str, str] = {"pv": "clear_sky_persistence", "wind": "blend"}
DEFAULT_FORECAST_METHOD = "blend"


@dataclass(frozen=True)
class ForecastRecord:
    """The short-term forecast of one generation series, issued by `Pipeline.analyze`,
    with the backtest of its method on the same window (flat, JSON-friendly: ints, floats,
    strings and a tuple of floats; ``dataclasses.asdict`` gives a dict for ``json.dumps``).

    Attributes:
        series_id: the meter id.
        flow_direction: the series' ESPI flowDirection (19 for a generation meter).
        method: the `FORECAST_METHODS` name used.
        issued_s: epoch s: the end of the last whole hour of history used, which is the
            start of the first forecast interval.
        interval_length_s: forecast step, s (`FORECAST_STEP_S`).
        horizon_steps: number of forecast intervals.
        forecast_wh: energy forecast of each interval ``[issued_s + k * step, + step)``,
            Wh (k = 0 .. horizon_steps - 1), never negative.
        mae_wh: backtest mean absolute error of the method over the window (every hour
            with a day of history before it, horizons 1..horizon_steps), Wh per interval.
        rmse_wh: backtest root mean square error, Wh per interval.
        mae_persistence_wh: MAE of persistence (the last hour's energy) on the same pairs.
        rmse_persistence_wh: RMSE of persistence on the same pairs.
        skill: 1 - rmse_wh / rmse_persistence_wh (> 0: better than persistence; Murphy
            1988).
        n_scored: forecast-target pairs of the backtest.
    """

    series_id: str
    flow_direction: int
    method: str
    issued_s: int
    interval_length_s: int
    horizon_steps: int
    forecast_wh: tuple[float, ...]
    mae_wh: float
    rmse_wh: float
    mae_persistence_wh: float
    rmse_persistence_wh: float
    skill: float
    n_scored: int


def _hourly(
    start_s: np.ndarray, energy_wh: np.ndarray, interval_length_s: int
) -> tuple[int, np.ndarray] | None:
    """(start of the first whole step, energy of each whole `FORECAST_STEP_S` step) of a
    regular grid, NaN where an interval of the step is unknown; None when the grid's step
    does not divide `FORECAST_STEP_S` or its intervals do not start on multiples of it."""
    step = int(interval_length_s)
    if step <= 0 or FORECAST_STEP_S % step or start_s.shape[0] == 0 or int(start_s[0]) % step:
        return None
    k = FORECAST_STEP_S // step
    i0 = (-int(start_s[0]) % FORECAST_STEP_S) // step  # first interval on a whole hour
    m = (start_s.shape[0] - i0) // k
    if m <= 0:
        return None
    x = np.asarray(energy_wh[i0 : i0 + m * k], dtype=np.float64).reshape(m, k).sum(axis=1)
    return int(start_s[i0]), x


def forecast_series(
    series: Series,
    flow_direction: int,
    method: str,
    expected_wh: np.ndarray | None = None,
) -> ForecastRecord | None:
    """The `ForecastRecord` of one interval-energy series (see `Pipeline.analyze`), or None
    without enough history (`FORECAST_MIN_HISTORY_S` of whole hours), on a grid that does
    not fit whole hours, or when the forecast or its backtest is not finite (no data in
    the last hour, or an all-zero series on which persistence is exact).

    Args:
        series: the validated series in Wh on its regular grid.
        flow_direction: recorded in the result.
        method: a `FORECAST_METHODS` name.
        expected_wh: clear-sky expectation of each interval of the grid and of
            `FORECAST_HORIZON_S` after it (``series.n + horizon / step`` values), for
            ``clear_sky_persistence``; else None.

    Vectorised: the series is summed per hour with one reshape, the forecast and the
    backtest are numpy over all origins (a Python loop over the horizon steps only).
    """
    step = series.interval_length_s
    binned = _hourly(series.start_s, series.energy_wh, step)
    if binned is None:
        return None
    first_s, x = binned
    m = x.shape[0]
    horizon = FORECAST_HORIZON_S // FORECAST_STEP_S
    if m * FORECAST_STEP_S < FORECAST_MIN_HISTORY_S:
        return None
    expected = None
    if expected_wh is not None:
        k = FORECAST_STEP_S // step
        i0 = (first_s - int(series.start_s[0])) // step
        need = (m + horizon) * k
        e = np.asarray(expected_wh, dtype=np.float64)[i0 : i0 + need]
        if e.shape[0] < need:
            return None
        expected = e.reshape(m + horizon, k).sum(axis=1)
    predicted = forecast(x, FORECAST_STEP_S, horizon, method=method, expected_wh=expected)
    score = backtest_forecast(x, FORECAST_STEP_S, horizon, method=method, expected_wh=expected)
    metrics = (score.mae_wh, score.rmse_wh, score.mae_persistence_wh, score.rmse_persistence_wh)
    if (
        score.n == 0
        or not np.isfinite(predicted).all()
        or not np.isfinite([*metrics, score.skill]).all()
    ):
        return None
    return ForecastRecord(
        series_id=series.series_id,
        flow_direction=int(flow_direction),
        method=method,
        issued_s=first_s + m * FORECAST_STEP_S,
        interval_length_s=FORECAST_STEP_S,
        horizon_steps=horizon,
        forecast_wh=tuple(float(v) for v in predicted),
        mae_wh=float(score.mae_wh),
        rmse_wh=float(score.rmse_wh),
        mae_persistence_wh=float(score.mae_persistence_wh),
        rmse_persistence_wh=float(score.rmse_persistence_wh),
        skill=float(score.skill),
        n_scored=int(score.n),
    )
