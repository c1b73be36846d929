"""Meter real-time clock: drift in ppm, periodic time sync, and how a meter labels intervals.

Drift. A meter's RTC runs off a 32.768 kHz tuning-fork crystal: frequency tolerance about
+-20 ppm at 25 degC and a parabolic temperature dependence of -0.034 ppm/degC^2 around a 25 degC
turnover (typical tuning-fork data, e.g. Epson FC-135 and Micro Crystal CM7V-T1A datasheets;
Maxim application note 504 gives the same parabola). Meters trim it: IEC 62054-21 (time
switches) requires +-0.5 s/day at reference conditions, i.e. +-5.8 ppm, the figure meter
RTCs are built to. The scenario default draws each meter's drift from +-5 ppm.

Sync. The head end (or NTP over the cellular link) sets the clock every ``sync_period_s``;
the offset then restarts from ~0 (the sync error of NTP over cellular is tens of ms, below
the 1 s resolution of ESPI timestamps, so it is taken as 0). Between syncs the offset grows
linearly at the drift rate: a sawtooth of amplitude ``drift * period``.

Labels. A meter closes its intervals on its OWN clock: its interval labelled ``L`` (a
boundary on its clock grid) covers the true window ``[L - o, L + step - o)`` when its clock
is ``o`` seconds ahead. Matched to the twin's true reading ``i`` (window
``[i step, (i+1) step)``), the label is ``i step + step round(o / step)``: the nominal
boundary while ``|o| < step/2`` (every drift between syncs in practice: 5.8 ppm over a day is
0.5 s), but the energy covers a window shifted by the residual ``r = o - step round(o/step)``
(:func:`energy_on_meter_clock_wh`). A clock JUMP (a fault, or a reboot whose RTC backup ran
out) of a step or more shifts the labels by whole steps until the next sync: a forward jump
skips labels, and the sync that undoes it re-uses labels already sent (duplicates for the
pipeline, which keeps the first).
"""

from __future__ import annotations

import numpy as np

SECONDS_PER_DAY = 86400.0

#: IEC 62054-21:2004 time-switch accuracy at reference conditions: +-0.5 s per day.
IEC_62054_21_S_PER_DAY = 0.5

#: 32.768 kHz tuning-fork crystal, typical: tolerance at 25 degC, turnover temperature and
#: parabolic coefficient (Epson FC-135, Micro Crystal CM7V-T1A datasheets).
TUNING_FORK_TOLERANCE_PPM = 20.0
TUNING_FORK_TURNOVER_C = 25.0
TUNING_FORK_PARABOLIC_PPM_PER_C2 = -0.034

#: Default time-sync period: daily (the scenario's ``meter.time_sync``).
DEFAULT_SYNC_PERIOD_S = SECONDS_PER_DAY


def drift_ppm_from_s_per_day(s_per_day: float | np.ndarray) -> np.ndarray:
    """Clock error rate in ppm from seconds per day (0.5 s/day = 5.787 ppm)."""
    return np.asarray(s_per_day, dtype=np.float64) / SECONDS_PER_DAY * 1e6


#: The IEC 62054-21 limit as a drift rate, ppm.
IEC_62054_21_PPM = float(drift_ppm_from_s_per_day(IEC_62054_21_S_PER_DAY))


def tuning_fork_drift_ppm(
    temp_air: np.ndarray | float,
    offset_ppm: np.ndarray | float = 0.0,
    turnover_c: float = TUNING_FORK_TURNOVER_C,
    parabolic_ppm_per_c2: float = TUNING_FORK_PARABOLIC_PPM_PER_C2,
) -> np.ndarray:
    """Drift of a tuning-fork RTC crystal at ``temp_air`` (degC), ppm:
    ``offset + k (T - T0)^2`` (crystal datasheets above; ``offset_ppm`` is the crystal's
    tolerance at the turnover, after any trim)."""
    t = np.asarray(temp_air, dtype=np.float64)
    out: np.ndarray = np.asarray(offset_ppm) + parabolic_ppm_per_c2 * (t - turnover_c) ** 2
    return out


def clock_offset_s(
    t_s: np.ndarray,
    drift_ppm: np.ndarray,
    sync_period_s: float | np.ndarray,
    sync_phase_s: np.ndarray | float = 0.0,
) -> np.ndarray:
    """How far each meter's clock is ahead of true time, s, [n_meters, n_t].

    Meter i is set right at ``sync_phase_s[i] + k * sync_period_s`` for every integer k (also
    before the start of the run) and gains ``drift_ppm[i] * 1e-6`` s per s in between:
    ``offset = drift * 1e-6 * ((t - phase) mod period)``, a sawtooth from 0 to
    ``drift * period`` (module docstring). ``sync_period_s`` may be ``inf`` (never synced:
    ``offset = drift * 1e-6 * (t - phase)``). ``t_s`` [n_t] is seconds since the run's start.
    """
    t = np.asarray(t_s, dtype=np.float64)[None, :]
    drift = np.atleast_1d(np.asarray(drift_ppm, dtype=np.float64))[:, None]
    period = np.asarray(sync_period_s, dtype=np.float64)
    if np.any(period <= 0):
        raise ValueError(f"sync_period_s={sync_period_s}: expected > 0 (or inf)")
    period = np.broadcast_to(period, drift.shape[:1])[:, None]
    phase = np.broadcast_to(np.asarray(sync_phase_s, dtype=np.float64), drift.shape[:1])[:, None]
    since = t - phase
    finite = np.isfinite(period)
    elapsed = np.where(finite, np.mod(since, np.where(finite, period, 1.0)), since)
    out: np.ndarray = drift * 1e-6 * elapsed
    return out


def interval_labels_s(
    nominal_start_s: np.ndarray, offset_s: np.ndarray, step_s: float
) -> np.ndarray:
    """Interval starts a meter writes for the true readings whose starts are
    ``nominal_start_s`` [n_t] (or [n_meters, n_t]) when its clock is ``offset_s``
    [n_meters, n_t] ahead: ``nominal + step * round(offset / step)`` (module docstring).

    Integer (epoch-second) starts with an integer ``step_s`` stay int64. Rounding is half-up,
    so the result does not depend on IEEE half-even ties."""
    shift = np.floor(np.asarray(offset_s, dtype=np.float64) / step_s + 0.5).astype(np.int64)
    nominal = np.asarray(nominal_start_s)
    if np.issubdtype(nominal.dtype, np.integer) and float(step_s).is_integer():
        out: np.ndarray = nominal + shift * np.int64(step_s)
        return out
    return nominal.astype(np.float64) + shift * float(step_s)


def label_residual_s(offset_s: np.ndarray, step_s: float) -> np.ndarray:
    """What is left of the offset after the label shift: ``o - step round(o/step)``, s, in
    ``[-step/2, step/2)``. The meter's labelled window starts this much before the true one."""
    offset = np.asarray(offset_s, dtype=np.float64)
    out: np.ndarray = offset - step_s * np.floor(offset / step_s + 0.5)
    return out


def energy_on_meter_clock_wh(
    energy_wh: np.ndarray, offset_s: np.ndarray, step_s: float
) -> np.ndarray:
    """Energy [n_meters, n_steps] the meter records for each labelled interval, Wh.

    Reading i's window on the meter's clock is ``[b_i, b_{i+1})`` in true time with
    ``b_i = i step - r_i`` (``r`` = :func:`label_residual_s` of the offset). The true energy
    ``energy_wh`` holds interval totals (constant power within an interval, as the source
    models' interval means), so the cumulative energy is piecewise linear and the energy
    in any window is exact: ``C(b_{i+1}) - C(b_i)``. Energy before the run's start or after
    its end is taken as the first/last interval's power continued. Vectorised; the windows
    tile the time axis, so the total changes only at the two ends."""
    energy = np.atleast_2d(np.asarray(energy_wh, dtype=np.float64))
    n_meters, n_steps = energy.shape
    residual = np.broadcast_to(label_residual_s(offset_s, step_s), energy.shape)
    # boundaries in units of steps; b_n uses the last residual
    bounds = np.arange(n_steps + 1, dtype=np.float64)[None, :] - np.concatenate(
        (residual, residual[:, -1:]), axis=1
    ) / step_s
    cumulative = np.concatenate((np.zeros((n_meters, 1)), np.cumsum(energy, axis=1)), axis=1)
    k = np.clip(np.floor(bounds).astype(np.int64), 0, n_steps - 1)
    frac = bounds - k  # may be < 0 before the start or > 1 after the end: extrapolates
    rows = np.arange(n_meters)[:, None]
    at_bounds = cumulative[rows, k] + frac * energy[rows, k]
    out: np.ndarray = np.diff(at_bounds, axis=1)
    return out


def rtc_offset_after_outage_s(
    outage_s: np.ndarray | float, backup_s: np.ndarray | float
) -> np.ndarray:
    """Clock jump after a power outage, s (negative = the clock is behind).

    An RTC on a backup supply (a lithium cell or a supercapacitor) keeps running while the
    meter is unpowered. When the outage outlasts the backup (``outage_s > backup_s``), the RTC
    stopped when the backup ran out and resumes from there, ``outage_s - backup_s`` behind,
    until the next time sync sets it right. ``backup_s = inf`` for a battery-backed RTC."""
    outage = np.asarray(outage_s, dtype=np.float64)
    out: np.ndarray = -np.maximum(outage - np.asarray(backup_s, dtype=np.float64), 0.0)
    return out
