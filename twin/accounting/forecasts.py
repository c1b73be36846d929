"""Scoring the pipeline's short-term forecasts against what the twin knows happened.

Every batch analysis may issue, per generation meter, a forecast of the next hours'
energy (``pipeline.ForecastRecord``) with its reference forecast of the same hours (smart
persistence for PV, persistence otherwise). The twin knows each site's true AC output, so
it scores every forecast interval that ended within the run, per horizon step and overall,
for the forecast and its reference on exactly the same intervals: MAE, RMSE and the skill
``1 - RMSE / RMSE_reference`` (A. H. Murphy, "Skill scores based on the mean square error
and their relationships to the correlation coefficient", Mon. Wea. Rev. 116, 1988; against
smart persistence as D. Yang et al., "Verification of deterministic solar forecasts",
Solar Energy 210:20, 2020, recommend). Night hours, where both forecasts and the truth are
0, add nothing to either error; they are left out of the counts too (a PV hour counts when
the truth or either forecast is above 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
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
class StepErrors:
    """Realised errors at one horizon step (or over all of them), Wh per interval: pairs
    scored, MAE and RMSE of the forecast and of its reference, and the skill (None when
    the reference was exact or nothing was scored)."""

    n: int
    mae_wh: float | None
    rmse_wh: float | None
    reference_mae_wh: float | None
    reference_rmse_wh: float | None
    skill: float | None


@dataclass(frozen=True)
class ForecastScores:
    """The forecasts of one kind of method over the run: how many were issued, the methods
    and references used, and the realised errors overall and per horizon step (1..H)."""

    issued: int
    methods: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    overall: StepErrors | None = None
    by_step: list[StepErrors] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _errors(err: list[float], ref: list[float]) -> StepErrors:
    if not err:
        return StepErrors(0, None, None, None, None, None)
    e, r = np.array(err), np.array(ref)
    rmse, rmse_ref = float(np.sqrt(np.mean(e**2))), float(np.sqrt(np.mean(r**2)))
    return StepErrors(
        n=int(e.size),
        mae_wh=float(np.mean(np.abs(e))),
        rmse_wh=rmse,
        reference_mae_wh=float(np.mean(np.abs(r))),
        reference_rmse_wh=rmse_ref,
        skill=1.0 - rmse / rmse_ref if rmse_ref > 0 else None,
    )


def score_forecasts(
    records: Sequence[ForecastRecord], sites: SitePower, epoch_s: int
) -> ForecastScores:
    """Realised errors of ``records`` and their references against the sites' true output
    (module docstring)."""
    if not records:
        return ForecastScores(0)
    true_energy_wh = TrueEnergy(sites)
    horizon = max(r.horizon_steps for r in records)
    errors: list[list[float]] = [[] for _ in range(horizon)]
    reference: list[list[float]] = [[] for _ in range(horizon)]
    for r in records:
        step = float(r.interval_length_s)
        starts = float(r.issued_s - epoch_s) + step * np.arange(r.horizon_steps)
        truth = true_energy_wh(r.series_id, starts, step)
        forecast, ref = np.asarray(r.forecast_wh), np.asarray(r.reference_wh)
        live = np.isfinite(truth) & ((truth > 0) | (forecast > 0) | (ref > 0))
        for k in np.flatnonzero(live).tolist():
            errors[k].append(forecast[k] - truth[k])
            reference[k].append(ref[k] - truth[k])
    return ForecastScores(
        issued=len(records),
        methods=sorted({r.method for r in records}),
        references=sorted({r.reference_method for r in records}),
        overall=_errors([e for s in errors for e in s], [e for s in reference for e in s]),
        by_step=[_errors(e, r) for e, r in zip(errors, reference, strict=True)],
    )


def score_forecasts_by_kind(
    records: Sequence[ForecastRecord], sites: SitePower, epoch_s: int, kind_of: Mapping[str, str]
) -> dict[str, ForecastScores]:
    """`score_forecasts` per kind of site (``pv``, ``wind``; meters not in `kind_of`:
    ``other``)."""
    groups: dict[str, list[ForecastRecord]] = {}
    for r in records:
        groups.setdefault(kind_of.get(r.series_id, "other"), []).append(r)
    return {k: score_forecasts(v, sites, epoch_s) for k, v in sorted(groups.items())}
