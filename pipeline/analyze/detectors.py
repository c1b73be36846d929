"""Site fault detectors on interval-energy series, and the daily performance ratio the
soiling detector reads.

**Performance ratio.** `daily_performance` gives, per local solar day, the ratio of
measured to expected (clear-sky) energy over the daylight intervals: IEC 61724-1's
performance ratio with the clear-sky expectation as the reference yield. Clouds lower it on
cloudy days; the soiling detector therefore only uses *clear days* (a low spread of the
interval ratios within the day and a level near the recent best).

**Detectors** (`DETECTORS`, chosen per site kind by
`pipeline.analyze.faults.SITE_DETECTORS`) each return
`Detection` records (kind, series id, start, end, detection time, confidence, magnitude,
message) for the field faults the twin injects:

- ``soiling``: the clear-day performance ratio declining over days (Theil-Sen slope over a
  sliding window of days; onset, end and loss from a flat-ramp-flat least-squares fit);
- ``inverter_trip``: no output for a while during daylight, while the clear-sky expectation
  is high;
- ``stuck_meter``: the same non-zero reading repeated for hours;
- ``curtailment``: wind output flat-topped below rated: a ceiling reached again and again
  at the same level, with the output dipping below it in between (with only the meter
  series, a turbine held at one level without a dip is indistinguishable from a stuck
  register and is reported as ``stuck_meter``);
- ``anomaly``: generic robust anomaly detection, the rolling modified z-score of
  `pipeline.analyze.kernels.rolling_robust_z` on the residual against the median daily profile of
  the last days (for load series; PV under clouds is not predictable enough for it).

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from pipeline.analyze.clearsky import expected_energy_wh
from pipeline.analyze.faults import (
    ANOMALY,
    CURTAILMENT,
    INVERTER_TRIP,
    SOILING,
    STUCK_METER,
    DetectorParams,
)
from pipeline.analyze.kernels import rolling_max, rolling_robust_z, true_runs
from pipeline.analyze.series import SECONDS_PER_DAY, Series
from pipeline.store.alerts import Detection
from pipeline.store.sites import SiteMeta

__all__ = [
    "DETECTORS",
    "DailyPerformance",
    "Detector",
    "daily_performance",
    "detect_anomalies",
    "detect_curtailment",
    "detect_inverter_trip",
    "detect_soiling",
    "detect_stuck_meter",
    "hours_text",
    "utc_text",
]


# ======================================================================================
# Daily performance
# ======================================================================================


@dataclass(frozen=True, eq=False)
class DailyPerformance:
    """Per local solar day of a PV series against its clear-sky expectation.

    Attributes:
        day_start_s: int64 epoch seconds of each local solar day's start (UTC midnight
            shifted by the longitude: solar noon mid-day).
        performance_ratio: measured / expected energy over the day's daylight intervals
            (see `DetectorParams.daylight_min_fraction`); NaN without data.
        median_ratio: median of the interval ratios measured/expected (the clear-day level).
        dispersion: (q90 - q10) / q50 of the interval ratios (low on clear days).
        n_intervals: daylight intervals with a reading.
        clear: the day counts as clear (see `DetectorParams.clear_max_dispersion`).
    """

    day_start_s: np.ndarray
    performance_ratio: np.ndarray
    median_ratio: np.ndarray
    dispersion: np.ndarray
    n_intervals: np.ndarray
    clear: np.ndarray


def _day_index(start_s: np.ndarray, longitude_deg: float) -> tuple[np.ndarray, int]:
    """Local solar day of each time, and the shift used (s added to UTC)."""
    shift = round(longitude_deg / 15.0 * 3600.0)
    return np.floor_divide(np.asarray(start_s, dtype=np.int64) + shift, SECONDS_PER_DAY), shift


def _grouped_quantiles(
    group: np.ndarray, values: np.ndarray, n_groups: int, qs: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles (lower-order statistic at floor(q (n-1))) of `values` per integer group in
    [0, n_groups), vectorised with one lexsort; returns ([len(qs), n_groups], counts)."""
    order = np.lexsort((values, group))
    g = group[order]
    v = values[order]
    counts = np.bincount(g, minlength=n_groups)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.full((len(qs), n_groups), np.nan)
    has = counts > 0
    for i, q in enumerate(qs):
        pos = first[has] + np.floor(q * (counts[has] - 1)).astype(np.int64)
        out[i, has] = v[pos]
    return out, counts


def daily_performance(
    site: SiteMeta,
    series: Series,
    expected_wh: np.ndarray | None = None,
    params: DetectorParams | None = None,
) -> DailyPerformance:
    """Daily performance ratio of a PV series against its clear-sky expectation, and which
    days were clear (see `DailyPerformance`)."""
    p = DetectorParams() if params is None else params
    exp = (
        expected_energy_wh(site, series.start_s, series.interval_length_s)
        if expected_wh is None
        else np.asarray(expected_wh, dtype=np.float64)
    )
    day, shift = _day_index(series.start_s, site.longitude_deg)
    if day.size == 0:
        empty = np.zeros(0)
        return DailyPerformance(
            np.zeros(0, np.int64), empty, empty, empty, np.zeros(0, np.int64), np.zeros(0, bool)
        )
    d0 = int(day[0])
    di = day - d0
    n_days = int(di[-1]) + 1
    day_max = np.zeros(n_days)
    np.maximum.at(day_max, di, exp)
    meas = series.energy_wh
    use = (exp >= p.daylight_min_fraction * day_max[di]) & (exp > 0) & np.isfinite(meas)
    ratio = meas[use] / exp[use]
    (q10, q50, q90), counts = _grouped_quantiles(di[use], ratio, n_days, (0.1, 0.5, 0.9))
    sum_m = np.bincount(di[use], weights=meas[use], minlength=n_days)
    sum_e = np.bincount(di[use], weights=exp[use], minlength=n_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        pr = np.where(sum_e > 0, sum_m / sum_e, np.nan)
        dispersion = (q90 - q10) / q50
    # expected daylight intervals per day: require half of them
    n_expected = np.bincount(
        di, weights=(exp >= p.daylight_min_fraction * day_max[di]) & (exp > 0), minlength=n_days
    )
    enough = counts >= np.maximum(3, 0.5 * n_expected)
    calm = enough & (dispersion <= p.clear_max_dispersion)
    # level near the best calm day of the look-back (overcast days are calm but dark)
    level = np.where(calm, q50, np.nan)
    best = _rolling_nanmax(level, p.clear_reference_days)
    clear = calm & (q50 >= p.clear_min_fraction * best)
    day_start = (d0 + np.arange(n_days)) * SECONDS_PER_DAY - shift
    return DailyPerformance(
        day_start.astype(np.int64), pr, q50, dispersion, counts.astype(np.int64), clear
    )


def _rolling_nanmax(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing max over `window` values, NaN skipped (NaN when all are NaN)."""
    pad = np.concatenate((np.full(window - 1, -np.inf), np.where(np.isnan(x), -np.inf, x)))
    m = np.lib.stride_tricks.sliding_window_view(pad, window).max(axis=1)
    return np.where(np.isinf(m), np.nan, m)


# ======================================================================================
# Detectors
# ======================================================================================


def utc_text(t_s: float) -> str:
    """An epoch instant, s, for a message: ``2026-06-21 14:00 UTC``."""
    return datetime.fromtimestamp(int(t_s), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def hours_text(seconds: float) -> str:
    """A duration, s, for a message: ``2.5 h``."""
    return f"{seconds / 3600.0:.1f} h"


def _power_text(w: float) -> str:
    if abs(w) >= 1e6:
        return f"{w / 1e6:.2f} MW"
    if abs(w) >= 1e3:
        return f"{w / 1e3:.1f} kW"
    return f"{w:.0f} W"


def _theil_sen_windows(
    y: np.ndarray, window: int, min_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Theil-Sen slope, intercept at the window start, and fraction of negative pairwise
    slopes, of y over every trailing window (NaN skipped); results at each window's last
    index, NaN where fewer than `min_points` values. Vectorised over windows x pairs."""
    n = y.shape[0]
    slope = np.full(n, np.nan)
    intercept = np.full(n, np.nan)
    neg = np.full(n, np.nan)
    if n < window:
        return slope, intercept, neg
    win = np.lib.stride_tricks.sliding_window_view(y, window)  # [n - w + 1, w]
    i, j = np.triu_indices(window, k=1)
    pair = (win[:, j] - win[:, i]) / (j - i)  # [nw, n_pairs], NaN where either is NaN
    valid_pts = np.sum(~np.isnan(win), axis=1)
    ok = valid_pts >= min_points
    if not ok.any():
        return slope, intercept, neg
    with np.errstate(invalid="ignore"):
        s = np.nanmedian(np.where(ok[:, None], pair, 0.0), axis=1)
        n_pairs = np.sum(~np.isnan(pair), axis=1)
        frac_neg = np.sum(pair < 0, axis=1) / np.maximum(n_pairs, 1)
        resid = win - s[:, None] * np.arange(window)[None, :]
        b = np.nanmedian(np.where(ok[:, None], resid, 0.0), axis=1)
    end = np.arange(window - 1, n)
    slope[end[ok]] = s[ok]
    intercept[end[ok]] = b[ok]
    neg[end[ok]] = frac_neg[ok]
    return slope, intercept, neg


def _ramp_fit(d: np.ndarray, y: np.ndarray, lo: int, hi: int) -> tuple[int, int, float, float]:
    """Least-squares "flat, linear decline, flat" fit of points (d, y):
    ``y = a - b * clip(d - k1, 0, k2 - k1)`` over every pair of knee days lo <= k1 < k2 <=
    hi (vectorised over the pairs; on spans over 120 days the knees are tried on a coarser
    grid of at most 121 days, to bound memory); returns (k1, k2, a, b) of the smallest
    residual with b > 0, or (lo, lo, mean(y), 0) when no decline fits."""
    stride = max(1, -(-(hi - lo) // 120))
    knees = np.unique(np.concatenate((np.arange(lo, hi + 1, stride), [hi])))
    i, j = np.triu_indices(knees.size, k=1)
    k1 = knees[i]
    k2 = knees[j]
    x = np.clip(d[None, :] - k1[:, None], 0.0, (k2 - k1)[:, None]).astype(float)  # [K, m]
    m = d.size
    sx = x.sum(axis=1)
    sxx = (x * x).sum(axis=1)
    sy = float(y.sum())
    sxy = x @ y
    det = m * sxx - sx * sx
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (m * sxy - sx * sy) / det  # coefficient of x in y = a + slope x
        a = (sy - slope * sx) / m
        sse = (
            (y * y).sum()
            + m * a * a
            + slope * slope * sxx
            - 2 * a * sy
            - 2 * slope * sxy
            + 2 * a * slope * sx
        )
    sse = np.where((slope < 0) & (det > 0), sse, np.inf)
    if sse.size == 0 or not np.isfinite(sse.min()):
        return lo, lo, float(np.mean(y)), 0.0
    best = int(np.argmin(sse))
    return int(k1[best]), int(k2[best]), float(a[best]), float(-slope[best])


def detect_soiling(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Soiling: the clear-day performance ratio declining over days.

    For each day and each trailing window of `DetectorParams.soiling_window_days` (short
    windows catch fast soiling early, long ones slow soiling at all), the Theil-Sen slope
    of the clear days' median ratio (robust to the odd misjudged day); the day *fires*
    when, in some window, the line loses at least `soiling_min_loss` of its starting level
    and at least `soiling_min_confidence` of the pairwise slopes are negative. A run of
    firing days is one detection: its onset, end and total loss come from a least-squares
    ramp fit (flat, linear decline, flat) of the clear days from the first firing window's
    start to the last firing day (streaks closer than a window are merged). Confidence: the
    largest
    fraction of negative pairwise slopes seen. Magnitude: the fractional loss of
    performance ratio from the ramp fit; `Detection.start_s` and `end_s` are the fitted
    start and end of the decline (the end is the last evidence while it goes on).
    """
    # a series touches at most span // 1 day + 2 local days: too few for any window
    if series.n * series.interval_length_s // SECONDS_PER_DAY + 2 < min(
        params.soiling_window_days
    ):
        return []
    daily = daily_performance(site, series, expected_wh, params)
    n_days = daily.day_start_s.shape[0]
    y = np.where(daily.clear, daily.median_ratio, np.nan)
    fire = np.zeros(n_days, dtype=bool)
    span = np.zeros(n_days, dtype=np.int64)  # longest window firing on each day
    neg = np.full(n_days, np.nan)
    loss = np.full(n_days, np.nan)
    min_points = params.soiling_min_clear_days
    for w in sorted(params.soiling_window_days):  # a few window lengths, not readings
        if n_days < w:
            continue
        slope_w, level_w, neg_w = _theil_sen_windows(y, w, min_points)
        with np.errstate(invalid="ignore", divide="ignore"):
            loss_w = -slope_w * (w - 1) / level_w
        fire_w = (loss_w >= params.soiling_min_loss) & (neg_w >= params.soiling_min_confidence)
        fire |= fire_w
        span = np.where(fire_w, w, span)
        neg = np.where(fire_w, np.fmax(neg, neg_w), neg)
        loss = np.where(fire_w, np.fmax(loss, loss_w), loss)
    out: list[Detection] = []
    starts, stops = true_runs(fire)
    if starts.size == 0:
        return out
    # streaks whose windows overlap are one episode
    w_max = int(max(params.soiling_window_days))
    join = np.ones(starts.size, dtype=bool)
    join[1:] = starts[1:] - stops[:-1] >= w_max
    first_of = np.flatnonzero(join)
    last_of = np.concatenate((first_of[1:] - 1, [starts.size - 1]))
    for s, e in zip(starts[first_of].tolist(), stops[last_of].tolist(), strict=True):
        lo = max(0, s - int(span[s]) + 1)
        days = np.arange(lo, e)
        sel = ~np.isnan(y[lo:e])
        k1, k2, a, b = _ramp_fit(days[sel].astype(float), y[lo:e][sel], lo, e - 1)
        total = b * (k2 - k1) / a if a > 0 and b > 0 else float(np.nanmax(loss[s:e]))
        if b <= 0:
            k1, k2 = lo, e - 1
        # a day's median ratio stands for its middle (solar noon): knees sit there
        onset = int(daily.day_start_s[0]) + k1 * SECONDS_PER_DAY + SECONDS_PER_DAY // 2
        end = int(daily.day_start_s[0]) + k2 * SECONDS_PER_DAY + SECONDS_PER_DAY // 2
        detected = int(daily.day_start_s[s]) + SECONDS_PER_DAY
        conf = float(np.nanmax(neg[s:e]))
        out.append(
            Detection(
                kind=SOILING,
                series_id=series.series_id,
                start_s=onset,
                end_s=end,
                detected_s=detected,
                confidence=conf,
                magnitude=float(total),
                message=(
                    f"performance ratio of site {site.site_id} down {total:.0%} over "
                    f"{k2 - k1} days ({utc_text(onset)[:10]} to {utc_text(end)[:10]}, clear days "
                    "against the clear-sky expectation): soiling"
                ),
            )
        )
    return out


def detect_inverter_trip(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Inverter trip: (near) zero output in daylight while the clear-sky expectation is high.

    Daylight intervals are those whose expectation is at least
    `DetectorParams.trip_min_expected_fraction` of the nameplate energy of one interval;
    the run of daylight intervals reading at most `trip_max_ratio` of the expectation is
    followed across nights and missing readings, and reported when it covers at least
    `trip_min_duration_s`. Confidence ``1 - exp(-duration / trip_min_duration_s)`` (0.63
    at the threshold, 0.95 at three times it). Magnitude: expected energy lost, Wh.
    """
    step_s = series.interval_length_s
    exp = (
        expected_energy_wh(site, series.start_s, step_s)
        if expected_wh is None
        else np.asarray(expected_wh, dtype=np.float64)
    )
    meas = series.energy_wh
    e_name = site.nameplate_w * step_s / 3600.0
    bright = exp >= params.trip_min_expected_fraction * e_name
    daylight = np.flatnonzero(bright & np.isfinite(meas))
    if daylight.size == 0:
        return []
    tripped = meas[daylight] <= params.trip_max_ratio * exp[daylight]
    starts, stops = true_runs(tripped)
    k_min = max(1, math.ceil(params.trip_min_duration_s / step_s))
    out: list[Detection] = []
    for s, e in zip(starts.tolist(), stops.tolist(), strict=True):
        if e - s < k_min:
            continue
        idx = daylight[s:e]
        first, last = int(idx[0]), int(idx[-1])
        duration = (e - s) * step_s
        lost = float(np.sum(exp[idx] - meas[idx]))
        mean_expected_w = float(np.mean(exp[idx])) * 3600.0 / step_s
        t0 = int(series.start_s[first])
        t1 = int(series.start_s[last]) + step_s
        out.append(
            Detection(
                kind=INVERTER_TRIP,
                series_id=series.series_id,
                start_s=t0,
                end_s=t1,
                detected_s=int(series.start_s[daylight[s + k_min - 1]]) + step_s,
                confidence=float(1.0 - math.exp(-duration / params.trip_min_duration_s)),
                magnitude=lost,
                message=(
                    f"no output at site {site.site_id} from {utc_text(t0)} to {utc_text(t1)} "
                    f"({hours_text(duration)} of daylight) while clear sky allowed "
                    f"{_power_text(mean_expected_w)} on average: inverter trip, "
                    f"about {lost / 1000.0:.1f} kWh lost"
                ),
            )
        )
    return out


class _Plateau(NamedTuple):
    level_wh: float
    first: int  # grid index of the first interval of the episode
    stop: int  # one past the last
    visits: int
    time_at_level_s: float
    detected: int  # grid index at which min visits and min time were both reached


def _plateau_episodes(
    x: np.ndarray, step_s: int, rated_wh: float, p: DetectorParams
) -> list[_Plateau]:
    """Curtailment ceilings (see `detect_curtailment`), tolerant of meter noise."""
    n = x.shape[0]
    if n < 2:
        return []
    tol = p.curtail_tolerance_fraction
    half = max(1, round(p.curtail_window_s / step_s / 2))
    ceiling = rolling_max(x, 2 * half + 1, center=True, min_periods=1)
    with np.errstate(invalid="ignore"):
        at = (
            (x >= (1.0 - tol) * ceiling)
            & (ceiling >= p.curtail_min_level_fraction * rated_wh)
            & (ceiling <= p.curtail_max_level_fraction * rated_wh)
        )
    s, e = true_runs(at)
    count = e - s
    keep = (count >= 2) & (count * step_s >= p.curtail_min_visit_s)
    s, e, count = s[keep], e[keep], count[keep]
    if s.size == 0:
        return []
    csum = np.concatenate(([0.0], np.cumsum(np.nan_to_num(x))))
    level = (csum[e] - csum[s]) / count
    # cluster levels (sorted, split where neighbours differ by more than the tolerance)
    by_level = np.argsort(level, kind="stable")
    lv = level[by_level]
    cluster = np.empty(s.size, dtype=np.int64)
    cluster[by_level] = np.concatenate(([0], np.cumsum(np.diff(lv) > tol * lv[1:])))
    # episodes: same cluster, consecutive in time, gaps <= max gap
    order = np.lexsort((s, cluster))
    cs, ss, es = cluster[order], s[order], e[order]
    new = np.ones(s.size, dtype=bool)
    new[1:] = (cs[1:] != cs[:-1]) | ((ss[1:] - es[:-1]) * step_s > p.curtail_max_gap_s)
    ep = np.cumsum(new) - 1
    n_ep = int(ep[-1]) + 1
    visits = np.bincount(ep, minlength=n_ep)
    time_s = np.bincount(ep, weights=count[order] * step_s, minlength=n_ep)
    candidates = np.flatnonzero(
        (visits >= p.curtail_min_visits) & (time_s >= p.curtail_min_duration_s)
    )
    out: list[_Plateau] = []
    ep_first = np.flatnonzero(new)
    for c in candidates.tolist():  # a handful of episodes, not readings
        members = np.arange(ep_first[c], ep_first[c] + visits[c])
        first = int(ss[members[0]])
        stop = int(es[members[-1]])
        lvl = float(
            np.sum(level[order][members] * count[order][members]) / np.sum(count[order][members])
        )
        if np.nanmax(x[first:stop]) > lvl * (1.0 + tol):
            continue  # the output went above the level: not a ceiling
        # detection: when both the visit count and the time at level were reached
        cum_time = np.cumsum(count[order][members] * step_s)
        ok = (np.arange(1, members.size + 1) >= p.curtail_min_visits) & (
            cum_time >= p.curtail_min_duration_s
        )
        k = int(np.argmax(ok))
        run_first = int(ss[members[k]])
        run_last = int(es[members[k]]) - 1
        need = p.curtail_min_duration_s - (float(cum_time[k - 1]) if k > 0 else 0.0)
        det = min(run_last, run_first + max(0, math.ceil(need / step_s) - 1))
        out.append(_Plateau(lvl, first, stop, int(visits[c]), float(time_s[c]), det))
    return out


def detect_curtailment(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Turbine curtailment: output flat-topped below rated, from the meter series alone.

    A reading is *at a ceiling* when it is within `DetectorParams.curtail_tolerance_fraction`
    (relative) of the highest reading within `curtail_window_s` around it
    (`pipeline.analyze.kernels.rolling_max`, centred), and that ceiling lies between
    `curtail_min_level_fraction` and `curtail_max_level_fraction` of rated. A *visit* is a
    run of such readings lasting at least `curtail_min_visit_s`. A curtailment episode is
    one level (visits' mean levels within the tolerance of each other) visited at least
    `curtail_min_visits` times, each visit no more than `curtail_max_gap_s` after the
    previous one, never exceeded (beyond the tolerance) in between, for at least
    `curtail_min_duration_s` in total: the output keeps coming back to the same ceiling
    although the wind varies. The relative tolerance absorbs meter error (IEC 62053 class 1:
    per-reading spread well under 1 %). Confidence ``1 - 0.5**visits`` (each return to the
    same ceiling halves the odds of a coincidence). Magnitude: the ceiling / rated power.
    """
    step_s = series.interval_length_s
    rated_wh = site.nameplate_w * step_s / 3600.0
    out: list[Detection] = []
    for pl in _plateau_episodes(series.energy_wh, step_s, rated_wh, params):
        t0 = int(series.start_s[pl.first])
        t1 = int(series.start_s[pl.stop - 1]) + step_s
        level_w = pl.level_wh * 3600.0 / step_s
        frac = pl.level_wh / rated_wh
        out.append(
            Detection(
                kind=CURTAILMENT,
                series_id=series.series_id,
                start_s=t0,
                end_s=t1,
                detected_s=int(series.start_s[pl.detected]) + step_s,
                confidence=float(1.0 - 0.5**pl.visits),
                magnitude=float(frac),
                message=(
                    f"output of {site.site_id} capped at {_power_text(level_w)} ({frac:.0%} of "
                    f"rated {_power_text(site.nameplate_w)}) {pl.visits} times for "
                    f"{hours_text(pl.time_at_level_s)} in total between {utc_text(t0)} and "
                    f"{utc_text(t1)}, "
                    "while the wind allowed more in between: curtailment"
                ),
            )
        )
    return out


def detect_stuck_meter(
    site: SiteMeta, series: Series, expected_wh: np.ndarray | None, params: DetectorParams
) -> list[Detection]:
    """Stuck meter: the same non-zero reading repeated for at least
    `DetectorParams.stuck_min_duration_s` (and `stuck_min_readings` readings).

    Not stuck: runs at or above `stuck_exempt_fraction` of the nameplate energy (inverter
    clipping, a turbine at rated power) and, for wind, runs that belong to a curtailment
    episode (`detect_curtailment`). Confidence: 0.99 for a PV run through the night or
    through a change of the clear-sky expectation of more than 20 % of nameplate (the
    output *had* to change); otherwise ``1 - 0.5**(duration / stuck_min_duration_s)``.
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
    if s.size == 0:
        return []
    plateaus = _plateau_episodes(x, step_s, e_name, params) if site.kind == "wind" else []
    exp = None
    if site.kind == "pv":
        exp = (
            expected_energy_wh(site, series.start_s, step_s)
            if expected_wh is None
            else np.asarray(expected_wh, dtype=np.float64)
        )
    k_min = max(params.stuck_min_readings, math.ceil(params.stuck_min_duration_s / step_s))
    out: list[Detection] = []
    for first, last, lvl in zip(s.tolist(), e.tolist(), level.tolist(), strict=True):
        if any(
            pl.first <= first
            and last < pl.stop
            and abs(lvl - pl.level_wh) <= params.curtail_tolerance_fraction * pl.level_wh
            for pl in plateaus
        ):
            continue
        duration = (last - first + 1) * step_s
        why = ""
        conf = 1.0 - 0.5 ** (duration / params.stuck_min_duration_s)
        if exp is not None:
            window = exp[first : last + 1]
            if np.any(window <= 0):
                conf, why = 0.99, ", through the night"
            elif np.ptp(window) > 0.2 * e_name:
                conf, why = 0.99, ", while the clear-sky expectation changed"
        t0 = int(series.start_s[first])
        t1 = int(series.start_s[last]) + step_s
        out.append(
            Detection(
                kind=STUCK_METER,
                series_id=series.series_id,
                start_s=t0,
                end_s=t1,
                detected_s=int(series.start_s[first + k_min - 1]) + step_s,
                confidence=float(conf),
                magnitude=float(lvl),
                message=(
                    f"meter {series.series_id} repeated the reading {lvl:g} Wh "
                    f"{last - first + 1} times ({hours_text(duration)}) from {utc_text(t0)}{why}: "
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
    SOILING: detect_soiling,
    INVERTER_TRIP: detect_inverter_trip,
    STUCK_METER: detect_stuck_meter,
    CURTAILMENT: detect_curtailment,
    ANOMALY: detect_anomalies,
}
