"""Scoring the pipeline's short-term forecasts against what the twin knows happened.

Every batch analysis may issue, per generation series, a forecast of the next hours'
energy (``pipeline.ForecastRecord``) with its own backtest on the history it had.
The twin knows each site's true AC output, so it scores every forecast interval that ended
within the run: realised MAE and RMSE per horizon step and overall, and the skill against
persistence (the last hour repeated) on the same intervals, ``1 - RMSE / RMSE_persistence``
(A. H. Murphy, "Skill scores based on the mean square error and their relationships to the
correlation coefficient", Mon. Wea. Rev. 116, 1988).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pipeline import ForecastRecord

#: Per meter: its site's true AC output, W [n_steps] (interval means), and the step, s.
SitePower = Mapping[str, tuple[np.ndarray, float]]


class TrueEnergy:
    """True AC energy of each meter's site over intervals of the run, Wh (cumulative sums
    of the site's power, built on first use)."""

    def __init__(self, sites: SitePower) -> None:
        self._sites = sites
        self._cumulative_wh: dict[str, np.ndarray] = {}

    def __call__(self, meter_id: str, start_s: np.ndarray, step_s: float) -> np.ndarray:
        """Energy over [start_s, start_s + step_s) (s after the run's start), Wh; NaN where
        an interval leaves the run."""
        power_w, sample_s = self._sites[meter_id]
        cumulative = self._cumulative_wh.get(meter_id)
        if cumulative is None:
            energy_wh = power_w * sample_s / 3600.0
            cumulative = np.concatenate(([0.0], np.cumsum(energy_wh)))
            self._cumulative_wh[meter_id] = cumulative
        lo = np.round(start_s / sample_s).astype(np.int64)
        hi = lo + round(step_s / sample_s)
        ok = (lo >= 0) & (hi < len(cumulative))
        out = np.full(len(start_s), np.nan)
        out[ok] = cumulative[hi[ok]] - cumulative[lo[ok]]
        return out


@dataclass(frozen=True)
class RealisedErrors:
    """Realised errors of the forecasts, Wh per interval (the forecasts' intervals are
    hours): the forecast ``methods``, MAE and RMSE, the same for persistence on the same
    intervals, the skill ``1 - RMSE / RMSE_persistence`` (None if persistence was exact),
    the MAE per horizon step (None where no interval was scored) and the mean of the
    forecasts' own backtest skills."""

    methods: list[str]
    mae_wh: float
    rmse_wh: float
    mae_persistence_wh: float
    rmse_persistence_wh: float
    skill: float | None
    mae_wh_by_step: list[float | None]
    backtest_skill_mean: float


@dataclass(frozen=True)
class ForecastScores:
    """Forecasts ``issued`` over the run; of their intervals, the ones that ended within the
    run and were ``scored`` (None when none was issued) and their :class:`RealisedErrors`
    (None when none was scored). ``to_json`` leaves out what is None, flattening the rest."""

    issued: int
    scored: int | None = None
    realised: RealisedErrors | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"issued": self.issued}
        if self.scored is not None:
            data["scored"] = self.scored
        if self.realised is not None:
            data |= asdict(self.realised)
        return data


def score_forecasts(
    records: Sequence[ForecastRecord], sites: SitePower, epoch_s: int
) -> ForecastScores:
    """Realised errors of ``records`` against the sites' true output (module docstring)."""
    if not records:
        return ForecastScores(0)
    true_energy_wh = TrueEnergy(sites)
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
        return ForecastScores(len(records), 0)
    rmse = float(np.sqrt(np.mean(all_errors**2)))
    rmse_persistence = float(np.sqrt(np.mean(all_persistence**2)))
    return ForecastScores(
        len(records),
        int(all_errors.size),
        RealisedErrors(
            methods=sorted({r.method for r in records}),
            mae_wh=float(np.mean(np.abs(all_errors))),
            rmse_wh=rmse,
            mae_persistence_wh=float(np.mean(np.abs(all_persistence))),
            rmse_persistence_wh=rmse_persistence,
            skill=1.0 - rmse / rmse_persistence if rmse_persistence > 0 else None,
            mae_wh_by_step=[float(np.mean(np.abs(e))) if e else None for e in errors],
            backtest_skill_mean=float(np.mean([r.skill for r in records])),
        ),
    )
