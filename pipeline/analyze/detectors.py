"""The per-series detectors, for interval-energy series that are not on the fleet grid (a
site's consumption, a meter without a registered PV or wind site): a register that
repeats one reading (`detect_stuck_meter`) and robust anomalies (`detect_anomalies`); and
the wording helpers every detector's messages share (`utc_text`, `hours_text`).

The fleet's detectors (`pipeline.analyze.register_detectors`,
`pipeline.analyze.wind_detectors`, `pipeline.analyze.pv_detectors`) compare each PV and
wind site with its neighbours; these have only the series itself.

- ``stuck_meter``: the same non-zero reading repeated for hours;
- ``anomaly``: generic robust anomaly detection, the rolling modified z-score of
  `pipeline.analyze.kernels.rolling_robust_z` on the residual against the median daily
  profile of the last days (for load series).

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from pipeline.analyze.faults import ANOMALY, STUCK_METER, DetectorParams
from pipeline.analyze.kernels import rolling_robust_z, true_runs
from pipeline.analyze.series import SECONDS_PER_DAY, Series
from pipeline.store.alerts import Detection
from pipeline.store.sites import SiteMeta

__all__ = [
    "DETECTORS",
    "Detector",
    "detect_anomalies",
    "detect_stuck_meter",
    "hours_text",
    "utc_text",
]


def utc_text(t_s: float) -> str:
    """An epoch instant, s, for a message: ``2026-06-21 14:00 UTC``."""
    return datetime.fromtimestamp(int(t_s), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def hours_text(seconds: float) -> str:
    """A duration, s, for a message: ``2.5 h``."""
    return f"{seconds / 3600.0:.1f} h"


def detect_stuck_meter(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Stuck meter: the same non-zero reading repeated for at least
    `DetectorParams.stuck_min_duration_s` (and `stuck_min_readings` readings).

    Not stuck: runs at or above `stuck_exempt_fraction` of the site's ceiling (the
    nameplate, or the observed flat top of a series without one: inverter clipping, a
    turbine at rated power). Confidence ``1 - 0.5**(duration / stuck_min_duration_s)``.
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
    k_min = max(params.stuck_min_readings, math.ceil(params.stuck_min_duration_s / step_s))
    out: list[Detection] = []
    for first, last, lvl in zip(s.tolist(), e.tolist(), level.tolist(), strict=True):
        duration = (last - first + 1) * step_s
        t0 = int(series.start_s[first])
        t1 = int(series.start_s[last]) + step_s
        out.append(
            Detection(
                kind=STUCK_METER,
                series_id=series.series_id,
                start_s=t0,
                end_s=t1,
                detected_s=int(series.start_s[first + k_min - 1]) + step_s,
                confidence=float(1.0 - 0.5 ** (duration / params.stuck_min_duration_s)),
                magnitude=float(lvl),
                message=(
                    f"meter {series.series_id} repeated the reading {lvl:g} Wh "
                    f"{last - first + 1} times ({hours_text(duration)}) from {utc_text(t0)}: "
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
    intervals, `pipeline.analyze.kernels.rolling_robust_z`; MAD floored at
    `anomaly_mad_floor_fraction` of the nameplate energy of one interval); one detection
    per run of readings with |z| > `anomaly_threshold`. Confidence
    ``1 - threshold / max|z|`` (0 at the threshold, towards 1 for gross outliers).
    Magnitude: the largest |z|."""
    step_s = series.interval_length_s
    x = np.asarray(series.energy_wh, dtype=np.float64)
    resid = x
    if SECONDS_PER_DAY % step_s == 0 and params.anomaly_reference_days > 0:
        base = _seasonal_baseline(x, SECONDS_PER_DAY // step_s, params.anomaly_reference_days)
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
                    f"{stop - first} unusual reading(s) at {series.series_id} from {utc_text(t0)} "
                    f"(robust z up to {zmax:.0f} against the recent days and hours)"
                ),
            )
        )
    return out


Detector = Callable[[SiteMeta, Series, np.ndarray | None, DetectorParams], list[Detection]]

#: Detectors: kind -> f(site, series, expected_wh or None, params) -> detections.
DETECTORS: dict[str, Detector] = {
    STUCK_METER: detect_stuck_meter,
    ANOMALY: detect_anomalies,
}
