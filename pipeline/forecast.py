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

from pipeline.sites import _SECONDS_PER_DAY

__all__ = [
    "FORECAST_METHODS",
    "ForecastScore",
    "backtest_forecast",
    "forecast",
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
