"""Scoring the pipeline's short-term forecasts against what the twin knows happened.

Every batch analysis may issue, per generation series, a forecast of the next hours'
energy (``pipeline.service.ForecastRecord``) with its own backtest on the history it had.
The twin knows each site's true AC output (``FleetData.power_w``), so it scores every
forecast interval that ended within the run: realised MAE and RMSE per horizon step and
overall, and the skill against persistence (the last hour repeated) on the same intervals,
``1 - RMSE / RMSE_persistence`` (A. H. Murphy, "Skill scores based on the mean square
error and their relationships to the correlation coefficient", Mon. Wea. Rev. 116, 1988).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.service import ForecastRecord
from twin.world.fleet import FleetData


class TrueEnergy:
    """True AC energy of each meter's site over intervals of the run, Wh (cumulative sums
    of ``FleetData.power_w`` per site, built on first use)."""

    def __init__(self, fleets: Sequence[FleetData]) -> None:
        self._where = {m: (f, i) for f in fleets for i, m in enumerate(f.meter_ids)}
        self._cumulative_wh: dict[str, np.ndarray] = {}

    def __call__(self, meter_id: str, start_s: np.ndarray, step_s: float) -> np.ndarray:
        """Energy over [start_s, start_s + step_s) (s after the run's start), Wh; NaN where
        an interval leaves the run."""
        fleet, row = self._where[meter_id]
        sample_s = fleet.spec.meter.sample_s
        cumulative = self._cumulative_wh.get(meter_id)
        if cumulative is None:
            energy_wh = fleet.power_w[row] * sample_s / 3600.0
            cumulative = np.concatenate(([0.0], np.cumsum(energy_wh)))
            self._cumulative_wh[meter_id] = cumulative
        lo = np.round(start_s / sample_s).astype(np.int64)
        hi = lo + round(step_s / sample_s)
        ok = (lo >= 0) & (hi < len(cumulative))
        out = np.full(len(start_s), np.nan)
        out[ok] = cumulative[hi[ok]] - cumulative[lo[ok]]
        return out


def score_forecasts(
    records: Sequence[ForecastRecord], fleets: Sequence[FleetData], epoch_s: int
) -> dict[str, Any]:
    """Realised errors of ``records`` (flat, JSON-friendly summary; see the module doc)."""
    if not records:
        return {"issued": 0}
    true_energy_wh = TrueEnergy(fleets)
    horizon = max(r.horizon_steps for r in records)
    errors: list[list[float]] = [[] for _ in range(horizon)]
    persistence: list[list[float]] = [[] for _ in range(horizon)]
    for r in records:
        step = float(r.interval_length_s)
        issued = float(r.issued_s - epoch_s)
        starts = issued + step * np.arange(-1, r.horizon_steps)
        truth = true_energy_wh(r.series_id, starts, step)
        last_hour, future = truth[0], truth[1:]
        forecast = np.asarray(r.forecast_wh)
        for k in np.flatnonzero(np.isfinite(future)).tolist():
            errors[k].append(forecast[k] - future[k])
            if np.isfinite(last_hour):
                persistence[k].append(last_hour - future[k])
    all_errors = np.array([e for step in errors for e in step])
    all_persistence = np.array([e for step in persistence for e in step])
    if all_errors.size == 0:
        return {"issued": len(records), "scored": 0}
    rmse = float(np.sqrt(np.mean(all_errors**2)))
    rmse_persistence = float(np.sqrt(np.mean(all_persistence**2)))
    return {
        "issued": len(records),
        "methods": sorted({r.method for r in records}),
        "scored": int(all_errors.size),
        "mae_wh": float(np.mean(np.abs(all_errors))),
        "rmse_wh": rmse,
        "mae_persistence_wh": float(np.mean(np.abs(all_persistence))),
        "rmse_persistence_wh": rmse_persistence,
        "skill": 1.0 - rmse / rmse_persistence if rmse_persistence > 0 else None,
        "mae_wh_by_step": [float(np.mean(np.abs(e))) if e else None for e in errors],
        "backtest_skill_mean": float(np.mean([r.skill for r in records])),
    }
