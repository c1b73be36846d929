"""Detectors of PV losses that build up or recur, on the fleet grid
(`pipeline.analyze.fleet.FleetView`), and of a meter clock that is off.

All three read the *performance index* of a PV generation meter: its energy over the
energy expected under its neighbours' sky (`pipeline.analyze.fleet`), over bins whose
expectation is at least 30 % of the nameplate's. With neighbours under the same sky the
index of a healthy site stays flat within a few per cent, whatever the clouds and the air
temperature do.

- `detect_gradual_loss`: the hourly index against time, fitted by a flat line and by a
  *hinge* (flat, then declining linearly from an onset found by search), vectorised over
  sites and onsets; a decline is reported when the hinge beats the flat line by an F
  statistic of `DetectorParams.gradual_min_f` (the change-point regression of soiling and
  degradation studies: M. G. Deceglie, L. Micheli & M. Muller, "Quantifying soiling loss
  directly from PV yield", IEEE J. Photovolt. 8(2):547, 2018, fit soiling intervals between
  cleanings; D. C. Jordan & S. R. Kurtz, Prog. Photovolt. 21:12, 2013, fit degradation by
  regression of the performance index) and the loss reaches `gradual_min_loss`.
  **Soiling or degradation.** Both lower the output in proportion and linearly with time,
  so the shape of the decline cannot tell them apart; two things can: a *recovery* (the
  index steps back up to where it was: a cleaning or rain, which never undoes degradation)
  and the *rate* (soiling builds up by per cent per day in a dust event; degradation, even
  accelerated, by per cent per year: `DetectorParams.soiling_min_rate_per_day`). A decline
  that recovered, or runs faster than that rate, is soiling; else degradation.
- `detect_shading`: a dip of the index at the same times of day on at least
  `DetectorParams.shading_min_days` days, against that day's median index (so a loss over
  the whole day, soiling, is no dip): a new obstruction (a tree, a building) shading the
  array as the sun passes behind it (the daily-profile comparison of IEA PVPS Task 13,
  "Assessment of Photovoltaic Module Failures in the Field", 2017, §4 on shading).
- `detect_clock_offset`: the site's energy over the last `clock_window_bins` against its
  expectation shifted by whole bins (-`clock_max_lag_bins`..+), each with its best scale
  (so that a loss of level is no shift): when a shift of at least `clock_min_lag_bins`
  fits far better than none, and each half of the window prefers it (under broken clouds
  a shift can fit one stretch better by chance, not two), the meter's clock is off by it
  (the readings carry labels an hour away from the sun that made them, as after a jump of
  its real-time clock).

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pipeline.analyze.detectors import utc_text
from pipeline.analyze.faults import (
    CLOCK_OFFSET,
    DEGRADATION,
    PARTIAL_SHADING,
    SOILING,
    DetectorParams,
)
from pipeline.analyze.fleet import FLEET_STEP_S, REF_CLEAR_SKY, FleetView, bins_per_day
from pipeline.analyze.kernels import quiet_nan, true_runs
from pipeline.analyze.register_detectors import bin_detection
from pipeline.analyze.series import SECONDS_PER_DAY
from pipeline.store.alerts import Detection

__all__ = ["detect_clock_offset", "detect_gradual_loss", "detect_shading", "performance_index"]

#: Bins whose expectation is at least this fraction of the nameplate's enter the index.
_INDEX_MIN_EXPECTED = 0.3
#: Bins of the index per point of the gradual-loss fit (two hours).
_BINS_PER_POINT = 8
#: Onsets tried, every this many hourly points.
_ONSET_STEP = 2
#: Noise floor of the index in the F statistic (per-point standard deviation).
_INDEX_NOISE_FLOOR = 0.003


def performance_index(view: FleetView, min_ratio: float = 0.02) -> np.ndarray:
    """The index [S, B] of PV generation meters (module docstring): NaN for other sites, in
    bins with less expectation, frozen bins, bins reading under `min_ratio` of the
    expectation (no output is not a performance level), and bins whose reference is the
    clear sky alone (no neighbours, no station: the index would be the sky's clouds, not
    the site's performance)."""
    enp = view.nameplate_wh[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = view.gen / view.expected_wh
        ok = (
            (view.is_pv & ~view.net)[:, None] & np.isfinite(r)
            & (view.expected_wh >= _INDEX_MIN_EXPECTED * enp) & ~view.gen_frozen & (r >= min_ratio)
            & (view.reference != REF_CLEAR_SKY)
        )  # fmt: skip
    return np.where(ok, r, np.nan)


def _points(r: np.ndarray) -> np.ndarray:
    """Points of the gradual-loss fit: the mean index over `_BINS_PER_POINT` bins, NaN
    where fewer than two of them have one."""
    s, b = r.shape
    h = b // _BINS_PER_POINT
    blocks = r[:, : h * _BINS_PER_POINT].reshape(s, h, _BINS_PER_POINT)
    count = np.count_nonzero(np.isfinite(blocks), axis=2)
    total = np.nansum(blocks, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count >= 2, total / count, np.nan)


class _RampFit(NamedTuple):
    """The best ramp of each site (`_fit_ramps`), [S] arrays: its F statistic against a
    flat index, onset (point index), loss rate per day and loss at the last point, both
    relative to the index's level, and the last point with a value."""

    f_stat: np.ndarray
    onset: np.ndarray
    rate: np.ndarray
    loss: np.ndarray
    last: np.ndarray


def _fit_ramps(y: np.ndarray, valid: np.ndarray, per_day: int) -> _RampFit:
    """The flat-then-declining fit of the points `y` [S, H] (whole days of `per_day`
    points; `valid` where a point counts), for all sites and onsets at once.

    The fit has a level per time of day (the index of a site whose orientation differs
    from its neighbours' has a daily shape under clouds) and one ramp, solved with the
    regression's "within" transformation (the slot means are taken out of the index and of
    the ramp). Of the onsets, the earliest whose fit is within the noise of the best (an
    AIC difference of 2: a later onset with a steeper ramp is not told apart from an
    earlier, gentler one by noise alone, so the longer evidence is preferred)."""
    s, h = y.shape
    days = h // per_day
    t_days = np.arange(h) * (_BINS_PER_POINT * FLEET_STEP_S / SECONDS_PER_DAY)
    has = valid.any(axis=0)
    first_point = int(np.argmax(has)) if has.any() else 0
    onsets = np.arange(first_point, max(first_point + 1, h - 3), _ONSET_STEP)
    x = np.maximum(0.0, t_days[None, :] - t_days[onsets][:, None])  # [C, H]
    yv = np.where(valid, y, 0.0).reshape(s, days, per_day)
    vd = valid.reshape(s, days, per_day)
    n_slot = vd.sum(axis=1)  # [S, P]
    with np.errstate(invalid="ignore", divide="ignore"):
        y_slot = yv.sum(axis=1) / n_slot
        x_slot = np.einsum("sdp,cdp->scp", vd, x.reshape(-1, days, per_day)) / n_slot[:, None]
    y_t = np.nan_to_num(np.where(vd, yv - y_slot[:, None, :], 0.0).reshape(s, h))
    x_t = np.nan_to_num(
        np.where(vd[:, None], x.reshape(-1, days, per_day)[None] - x_slot[:, :, None, :], 0.0)
    ).reshape(s, -1, h)
    sxx = (x_t * x_t).sum(axis=2)
    sxy = np.einsum("sch,sh->sc", x_t, y_t)
    sse0 = (y_t * y_t).sum(axis=1)
    after = np.einsum("sh,ch->sc", valid, (x > 0).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = sxy / sxx  # index per day (negative: a loss)
        sse = np.where((after >= 4) & (sxx > 1e-9), sse0[:, None] - slope * sxy, np.inf)
    rows = np.arange(s)
    dof = valid.sum(axis=1) - np.count_nonzero(n_slot, axis=1) - 1
    least = np.min(sse, axis=1)
    noise = np.maximum(least / np.maximum(dof, 1), _INDEX_NOISE_FLOOR**2)
    best = np.argmax(sse <= (least + 2.0 * noise)[:, None], axis=1)
    b_slope = slope[rows, best]
    with quiet_nan():
        f_stat = np.where(dof >= 3, (sse0 - sse[rows, best]) / noise, 0.0)
        level = np.nanmedian(np.where(n_slot > 0, y_slot, np.nan), axis=1)
    last = np.where(valid.any(axis=1), h - 1 - np.argmax(valid[:, ::-1], axis=1), 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = -b_slope / level
    return _RampFit(
        np.nan_to_num(f_stat), onsets[best], rate, rate * (t_days[last] - t_days[onsets[best]]),
        last,
    )  # fmt: skip


def _recoveries(y: np.ndarray, valid: np.ndarray, min_step: float) -> np.ndarray:
    """Per site, the point where the index steps up most (the mean of the next three
    points over that of the previous three), if by at least `min_step`; -1 otherwise."""
    out = np.full(y.shape[0], -1, dtype=np.int64)
    v = np.where(valid, y, np.nan)
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(v, axis=1, initial=-np.inf) - np.nanmin(v, axis=1, initial=np.inf)
    candidates = np.flatnonzero(spread >= min_step)
    for row in candidates.tolist():  # sites with a jump (few), not readings
        idx = np.flatnonzero(valid[row])
        v = y[row, idx]
        if v.size < 6:
            continue
        c = np.concatenate(([0.0], np.cumsum(v)))
        k = np.arange(3, v.size - 2)
        step = (c[np.minimum(k + 3, v.size)] - c[k]) / (np.minimum(k + 3, v.size) - k) - (
            c[k] - c[k - 3]
        ) / 3.0
        best = int(np.argmax(step))
        if step[best] >= min_step:
            out[row] = int(idx[k[best]])
    return out


def detect_gradual_loss(view: FleetView, params: DetectorParams) -> list[Detection]:
    """Soiling and degradation (module docstring), at most one detection per site: the
    ramp fit over all points, and for a site whose index stepped back up (a cleaning) the
    fit over the points before the step; a ramp followed by such a recovery of at least
    half its loss is soiling, else the rate decides. Confidence ``1 - 0.5**(F / F_min)``
    (a half at the threshold `DetectorParams.gradual_min_f`); magnitude: the loss."""
    r = performance_index(view, 0.5)
    y = _points(r)
    s, h = y.shape
    per_day = SECONDS_PER_DAY // (_BINS_PER_POINT * FLEET_STEP_S)
    if s == 0 or h == 0:
        return []
    days = -(-h // per_day)
    y = np.concatenate((y, np.full((s, days * per_day - h), np.nan)), axis=1)
    valid = np.isfinite(y)
    if np.count_nonzero(valid.any(axis=0)) < 6:
        return []
    whole = _fit_ramps(y, valid, per_day)
    step_at = _recoveries(y, valid, 0.5 * params.gradual_min_loss)
    until = np.where(step_at >= 0, step_at, 2**31)
    before = valid & (np.arange(y.shape[1])[None, :] < until[:, None])
    cut = _fit_ramps(y, before, per_day)
    out = []
    for row in range(s):  # sites: a few numbers each
        recovered = bool(
            step_at[row] >= 0 and cut.f_stat[row] >= params.gradual_min_f
            and cut.loss[row] >= params.gradual_min_loss
            and y[row, step_at[row]] >= y[row, cut.last[row]] + 0.5 * cut.loss[row]
        )  # fmt: skip
        fit = cut if recovered else whole
        if not (
            fit.f_stat[row] >= params.gradual_min_f and fit.rate[row] > 0
            and fit.loss[row] >= params.gradual_min_loss
        ):  # fmt: skip
            continue
        rate = float(fit.rate[row])
        kind = SOILING if recovered or rate >= params.soiling_min_rate_per_day else DEGRADATION
        first_bin = int(fit.onset[row]) * _BINS_PER_POINT
        last_bin = min(int(fit.last[row]) * _BINS_PER_POINT + _BINS_PER_POINT - 1, view.n_bins - 1)
        seen = np.flatnonzero(np.isfinite(r[row]))
        detected = int(seen[-1]) if seen.size else last_bin
        why = (
            "then recovered (a cleaning or rain): soiling" if recovered
            else f"at {rate:.1%} per day: " + ("soiling" if kind == SOILING else "degradation")
        )  # fmt: skip
        out.append(bin_detection(
            view, row, kind, first_bin, last_bin, detected,
            1.0 - 0.5 ** (float(fit.f_stat[row]) / params.gradual_min_f),
            float(fit.loss[row]),
            f"performance of {view.sites[row].site_id} against its neighbours fell "
            f"{fit.loss[row]:.0%} from {utc_text(view.start_s[first_bin])} {why}",
        ))  # fmt: skip
    return out


def detect_shading(view: FleetView, params: DetectorParams) -> list[Detection]:
    """Recurring partial shading (module docstring), one detection per site and window."""
    per_day = bins_per_day()
    r = performance_index(view)
    s, b = r.shape
    d = b // per_day
    if d < params.shading_min_days:
        return []
    off = int((view.start_s[0] % SECONDS_PER_DAY) // FLEET_STEP_S)
    if off:  # align the columns on UTC days
        r = r[:, per_day - off :]
        d = r.shape[1] // per_day
        off = per_day - off
    grid = r[:, : d * per_day].reshape(s, d, per_day)
    with quiet_nan():
        day_level = np.nanmedian(grid, axis=2)
        dip = 1.0 - grid / day_level[..., None]
    shaded = dip >= params.shading_min_dip
    seen = np.isfinite(dip)
    n_shaded = shaded.sum(axis=1)
    n_seen = seen.sum(axis=1)
    candidate = (n_shaded >= params.shading_min_days) & (n_shaded >= 0.8 * n_seen)
    bright_cols = n_seen.max(axis=1) if n_seen.size else np.zeros(0)
    out = []
    for row in np.flatnonzero(candidate.any(axis=1)).tolist():
        starts, stops = true_runs(candidate[row])
        for j0, j1 in zip(starts.tolist(), stops.tolist(), strict=True):
            if j1 - j0 < params.shading_min_bins:
                continue
            if (j1 - j0) > 0.5 * np.count_nonzero(n_seen[row] >= max(1, bright_cols[row] // 2)):
                continue  # most of the day: a loss over the day, not a shadow
            days = np.flatnonzero(shaded[row, :, j0:j1].sum(axis=1) >= params.shading_min_bins)
            if days.size < params.shading_min_days:
                continue
            depth = float(np.nanmedian(dip[row][np.ix_(days, np.arange(j0, j1))]))
            first = off + int(days[0]) * per_day + j0
            last = off + int(days[-1]) * per_day + j1 - 1
            second = off + int(days[params.shading_min_days - 1]) * per_day + j0
            detected = second + params.shading_min_bins - 1
            t0, t1 = view.start_s[off + j0], view.start_s[off + j1 - 1] + FLEET_STEP_S
            out.append(bin_detection(
                view, row, PARTIAL_SHADING, first, last, detected,
                1.0 - 0.5 ** days.size, depth,
                f"output of {view.sites[row].site_id} drops {depth:.0%} every day between "
                f"{_clock(t0)} and {_clock(t1)} UTC ({days.size} days from "
                f"{utc_text(view.start_s[first])}) while its neighbours' does not: partial "
                "shading by a new obstruction",
            ))  # fmt: skip
    return out


def _clock(t_s: int | float) -> str:
    minutes = int(t_s % SECONDS_PER_DAY) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def detect_clock_offset(view: FleetView, params: DetectorParams) -> list[Detection]:
    """Meter clocks off by whole bins (module docstring), over the view's last bins."""
    w, lmax = params.clock_window_bins, params.clock_max_lag_bins
    b = view.n_bins
    if b < w + 2 * lmax:
        return []
    enp = view.nameplate_wh[:, None]
    pv = (view.is_pv & ~view.net)[:, None]
    e = view.gen[:, b - w :]
    # bins of no output (a trip) or of a frozen register say nothing of the clock
    with np.errstate(invalid="ignore"):
        x0 = view.expected_wh[:, b - w :]
        frozen = view.gen_frozen[:, b - w :]
        producing = np.isfinite(e) & ~frozen & ~((e <= 0.02 * x0) & (x0 >= 0.05 * enp))
    mse = []
    counts = []
    for lag in range(-lmax, lmax + 1):  # the offsets tried, not readings
        lo, hi = b - w - lag, b - lag
        x = np.full_like(e, np.nan)
        x[:, : min(hi, b) - lo] = view.expected_wh[:, lo : min(hi, b)]
        with np.errstate(invalid="ignore"):
            m = pv & producing & np.isfinite(x) & ((e >= 0.1 * enp) | (x >= 0.1 * enp))
        em, xm = np.where(m, e, 0.0) / enp, np.where(m, x, 0.0) / enp
        sxx = (xm * xm).sum(axis=1)
        scale = np.where(sxx > 0, (em * xm).sum(axis=1) / np.where(sxx > 0, sxx, 1.0), 0.0)
        sq = (em - scale[:, None] * xm) ** 2
        halves = [slice(0, w // 2), slice(w // 2, w)]
        mse.append([sq[:, h].sum(axis=1) / np.maximum(m[:, h].sum(axis=1), 1) for h in halves])
        counts.append([m[:, h].sum(axis=1) for h in halves])
    err, cnt = np.array(mse), np.array(counts)  # [L, 2, S]: lags, halves of the window
    zero = lmax
    total = err.mean(axis=1)
    best = np.argmin(total, axis=0)
    rows = np.arange(total.shape[1])
    half_best = np.argmin(err, axis=0)  # [2, S]
    ok = (
        (np.abs(best - zero) >= params.clock_min_lag_bins)
        & (half_best == best[None, :]).all(axis=0)  # both halves of the window agree
        & (cnt[zero].min(axis=0) >= 6) & (cnt[best, :, rows].min(axis=1) >= 6)
        & (total[zero] >= 0.05**2)
        & (total[best, rows] <= params.clock_max_error_ratio * total[zero])
    )  # fmt: skip
    err = total
    out = []
    for row in np.flatnonzero(ok).tolist():
        offset_s = (int(best[row]) - zero) * FLEET_STEP_S
        out.append(bin_detection(
            view, row, CLOCK_OFFSET, b - w, b - 1, b - 1,
            1.0 - float(err[best[row], row] / err[zero, row]), offset_s,
            f"readings of {view.sites[row].site_id} fit its neighbours' sky "
            f"{abs(offset_s) / 3600.0:.2g} h {'later' if offset_s > 0 else 'earlier'} than "
            f"they are labelled (since about {utc_text(view.start_s[b - w])}): the meter's "
            "clock is off; resynchronise it",
        ))  # fmt: skip
    return out
