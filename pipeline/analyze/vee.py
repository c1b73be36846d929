"""VEE — validation, estimation and editing of one meter's interval series.

Utilities run every interval series through VEE before anyone uses it: *validate* each
reading against rules, *estimate* what is missing or failed, *edit* (correct what can be
corrected), and keep the raw data untouched beside the result, with a quality flag per
interval. This module does that on columnar numpy arrays, vectorised (no per-reading Python
loop), for one series at a time:

    result = vee(start_s, value, interval_length_s, VeeLimits(max_value=...))

Sources of the rules (the shape of the checks; the thresholds are per market and are the
caller's, in `VeeLimits`, with the defaults documented there):

- IMO (now IESO, Ontario), *Validating, Estimating and Editing* standard MDP_STD_0002 and
  the IMO *Revenue Metering* course workbook, §2 "Data validation, estimation and edit"
  (2001): checks for missing intervals, intervals found vs. expected, time tolerance
  (meter clock synchronism), and the estimation rule "point-to-point" (linear interpolation
  between the readings before and after) for missing data of one hour or less and
  "historical" estimation (the same intervals of earlier weeks) beyond.
- *Standards for Validating, Editing and Estimating Monthly and Interval Data*, §A "CA
  Interval Data VEE Rules" (California Direct Access Standards for Metering and Meter
  Data, CPUC D.98-12-080, 1999): time check of the recorder, spike / high-low checks,
  zero and consecutive-identical checks, estimation by interpolation for short gaps and by
  "like days" for longer ones; raw data retained.
- Itron IEE MDM and Oracle Utilities MDM documentation of their interval rules (gap check,
  high/low limit check, consecutive-intervals check, linear interpolation with a maximum
  span, proxy/like-day estimation), which implement the same utility practice.

Quality codes are ESPI ``QualityOfReading`` (NAESB REQ.21 ``espiDerived.xsd``; the full
enumeration is `pipeline.espi.codes.QUALITY_OF_READING`):

- 0 *valid*: passed every check;
- 8 *estimated using reference day*: filled from the same interval on earlier (or later)
  days;
- 9 *estimated using linear interpolation*: filled between the readings around a gap;
- 10 *questionable*: failed a check whose readings are kept as read (a stuck run, a
  duplicate with a conflicting value, an overlap, a wrong duration), or could not be
  estimated (value NaN).

Checks (each finding names its kind, the grid slots it covers, what was done, and why):

- ``gap``: grid slots without a reading;
- ``duplicate`` / ``duplicate_conflict``: more than one reading for one interval, with the
  same / different values (the first one in input order is kept, as the store does);
- ``overlap``: a reading's interval (start + ``duration_s``) runs into the next one's;
- ``duration_mismatch``: ``duration_s`` differs from the series' interval length;
- ``clock_skew``: an interval start off the grid (multiples of the interval length from
  `VeeLimits.grid_origin_s`); within `VeeLimits.clock_tolerance_fraction` of the interval
  it is *snapped* to the nearest slot (a time edit, value kept as valid), beyond it the
  reading is *dropped* from the grid (its slot is then a gap) and listed in
  `VeeResult.dropped_index`;
- ``clock_drift``: the off-grid offsets grow linearly over time (a free-running meter
  clock), reported once with its rate in s/day;
- ``range_low`` / ``range_high``: below `VeeLimits.min_value` (negative energy on a
  one-direction register) or above `VeeLimits.max_value` (more than the nameplate allows);
- ``spike``: a reading far from its neighbours: modified z-score (Iglewicz & Hoaglin 1993)
  against the median and MAD of a centred window (the Hampel filter), see
  `pipeline.analyze.kernels.rolling_median_mad`;
- ``stuck``: a run of identical non-zero readings lasting longer than
  `VeeLimits.stuck_max_duration_s`.

Readings that fail a check listed in `VeeLimits.estimate_kinds` (default: range and spike)
are estimated like gaps; the others are flagged questionable and kept. Raw values are never
overwritten: `VeeResult.raw_value` holds what was read, `VeeResult.value` the validated and
estimated series; the caller's arrays are never written to.

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from pipeline.analyze.kernels import MAD_TO_SIGMA, rolling_median_mad, true_runs
from pipeline.espi.codes import (
    QUALITY_ESTIMATED_LINEAR,
    QUALITY_ESTIMATED_REFERENCE_DAY,
    QUALITY_QUESTIONABLE,
)

__all__ = [
    "CHECKS",
    "Finding",
    "VeeLimits",
    "VeeResult",
    "max_interval_value",
    "vee",
]

_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class VeeLimits:
    """Thresholds of the VEE checks for one series, in the series' own units.

    Values (`min_value`, `max_value`, `spike_mad_floor`, `stuck_*` levels) are in the units
    of the values given to `vee` (raw register counts in the pipeline: multiply Wh by
    ``10**-powerOfTenMultiplier``). The defaults are this project's choices for PV, wind and
    site-load interval energy, stated per field; the standards cited in the module
    docstring prescribe the checks, each market sets its numbers.

    Attributes:
        min_value: lowest valid value. Default 0: interval energy on a one-direction
            register (ESPI flowDirection 1 or 19) cannot be negative.
        max_value: highest valid value, None for no high check; use `max_interval_value`
            (nameplate power over one interval plus a margin).
        spike_window: centred window of the spike check, intervals (odd, >= 3). Default 9.
        spike_z: modified z-score above which a reading is a spike. Default 8.0, as the
            anomaly detector's (`pipeline.analyze.faults.DetectorParams.anomaly_threshold`;
            well above Iglewicz & Hoaglin's 3.5, because PV and wind interval energy is
            heavy-tailed under clouds and gusts).
        spike_mad_floor: smallest MAD of the spike check, value units (default 1.0: one
            register count, so that a flat quantised series does not divide by zero).
        spike_mad_floor_fraction: smallest MAD as a fraction of the window median's
            magnitude (default 0.1): a flat top (inverter clipping, curtailment) has MAD 0,
            and a passing cloud must not score as a spike against it.
        stuck_max_duration_s: a run of identical non-zero readings longer than this is
            stuck. Default 7200 s (2 h): PV and wind output under real weather does not hold
            one register value for hours, except at a flat top (see
            `stuck_exempt_at_or_above`).
        stuck_min_readings: a stuck run also needs at least this many readings. Default 4,
            so that hourly series are not flagged on three equal hours of standby load.
        stuck_ignore_at_or_below: runs at or below this value are not stuck (default 0: a
            PV meter reads 0 all night).
        stuck_exempt_at_or_above: runs at or above this value are not stuck, None for no
            exemption; set it to the nameplate level to accept inverter clipping and wind
            turbines at rated power.
        clock_tolerance_fraction: largest off-grid offset of an interval start that is
            snapped to the grid, as a fraction of the interval length (default 0.1: 90 s
            for 15-minute intervals); a reading further off is dropped from the grid.
        clock_drift_min_s: smallest change of the off-grid offset over the series, s, that
            is reported as clock drift (default 5 s), when the offsets also correlate with
            time (|r| >= 0.9).
        grid_origin_s: epoch second of a grid point (default 0: intervals aligned to whole
            multiples of the interval length in UTC, as meters stamp them).
        max_linear_gap_s: longest run of missing or failed intervals estimated by linear
            interpolation, s (default 3600: the IMO's point-to-point rule for missing data
            of one hour or less); longer runs use reference days.
        reference_days: days looked back (then forward) for the same interval of the day
            in reference-day estimation (default 21: the IMO workbook's "previous three
            weeks"); the estimate is the mean of the valid readings found.
        estimate_kinds: check kinds whose failed readings are replaced by estimates in
            `VeeResult.value`; readings failing other checks are kept and flagged
            questionable. Default range and spike failures (readings that cannot be true);
            add ``"stuck"`` to estimate over stuck runs too.
        max_grid_intervals: largest grid `vee` builds (default 5,000,000: nearly ten years
            of 1-minute intervals); a series spanning more raises ValueError (usually a
            corrupt timestamp).
        max_findings_per_kind: findings listed one by one per check (default 1000); the
            runs beyond are summarised in one more finding (a meter gone mad must not
            make VEE build a million Python objects; the quality column still marks
            every interval).
    """

    min_value: float = 0.0
    max_value: float | None = None
    spike_window: int = 9
    spike_z: float = 8.0
    spike_mad_floor: float = 1.0
    spike_mad_floor_fraction: float = 0.1
    stuck_max_duration_s: int = 7200
    stuck_min_readings: int = 4
    stuck_ignore_at_or_below: float = 0.0
    stuck_exempt_at_or_above: float | None = None
    clock_tolerance_fraction: float = 0.1
    clock_drift_min_s: float = 5.0
    grid_origin_s: int = 0
    max_linear_gap_s: int = 3600
    reference_days: int = 21
    estimate_kinds: frozenset[str] = frozenset({"range_low", "range_high", "spike"})
    max_grid_intervals: int = 5_000_000
    max_findings_per_kind: int = 1000

    def __post_init__(self) -> None:
        if self.max_value is not None and not self.max_value > self.min_value:
            raise ValueError(
                f"max_value must be > min_value, got {self.max_value!r} <= {self.min_value!r}"
            )
        if int(self.spike_window) != self.spike_window or self.spike_window < 3:
            raise ValueError(f"spike_window must be an integer >= 3, got {self.spike_window!r}")
        if self.spike_window % 2 == 0:
            raise ValueError(f"spike_window must be odd, got {self.spike_window}")
        if self.max_findings_per_kind < 2:
            raise ValueError(
                f"max_findings_per_kind must be >= 2, got {self.max_findings_per_kind!r}"
            )
        for name in ("spike_z", "stuck_max_duration_s", "max_grid_intervals"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in (
            "spike_mad_floor",
            "spike_mad_floor_fraction",
            "clock_drift_min_s",
            "max_linear_gap_s",
            "reference_days",
        ):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.clock_tolerance_fraction < 0.5:
            raise ValueError(
                "clock_tolerance_fraction must be in [0, 0.5), got "
                f"{self.clock_tolerance_fraction!r}"
            )
        if self.stuck_min_readings < 2:
            raise ValueError(f"stuck_min_readings must be >= 2, got {self.stuck_min_readings!r}")
        unknown = set(self.estimate_kinds) - set(CHECKS)
        if unknown:
            raise ValueError(
                f"estimate_kinds {sorted(unknown)} are not value checks; known: {sorted(CHECKS)}"
            )


def max_interval_value(
    nameplate_w: float,
    interval_length_s: int,
    power_of_ten_multiplier: int = 0,
    margin: float = 0.1,
) -> float:
    """Register value of one interval at nameplate power, plus a margin: a `VeeLimits.max_value`.

    ``nameplate_w * interval_length_s / 3600 * (1 + margin) / 10**power_of_ten_multiplier``
    (Wh in the register's unit, ESPI uom 72 with the ReadingType's powerOfTenMultiplier).
    Default margin 10 %: this project's allowance for meter error (class 0.5S: 0.5 %),
    inverter overload and turbine gust overshoot above nameplate.
    """
    if not nameplate_w > 0 or not interval_length_s > 0 or not margin >= 0:
        raise ValueError("nameplate_w and interval_length_s must be > 0 and margin >= 0")
    return float(nameplate_w) * interval_length_s / 3600.0 * (1.0 + margin) / 10.0 ** int(
        power_of_ten_multiplier
    )


@dataclass(frozen=True)
class Finding:
    """One VEE finding: a check that fired on a run of grid slots.

    Attributes:
        kind: the check (``gap``, ``duplicate``, ``duplicate_conflict``, ``overlap``,
            ``duration_mismatch``, ``clock_skew``, ``clock_drift``, ``range_low``,
            ``range_high``, ``spike``, ``stuck``).
        first: index of the first grid slot concerned (into `VeeResult.start_s`).
        stop: one past the last grid slot concerned (``first < stop``).
        start_s: epoch seconds, start of slot `first`.
        end_s: epoch seconds, end of slot ``stop - 1``.
        action: what VEE did: ``estimated`` (value replaced by an estimate),
            ``flagged`` (kept, quality questionable), ``unestimated`` (no estimate was
            possible: value NaN), ``kept_first`` (duplicates ignored), ``snapped`` (start
            moved to the grid), ``dropped`` (reading left off the grid), ``reported``
            (informational: clock drift).
        reason: a sentence for a person.
    """

    kind: str
    first: int
    stop: int
    start_s: int
    end_s: int
    action: str
    reason: str


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class VeeResult:
    """Output of `vee`: the series on its interval grid, raw beside validated.

    Attributes:
        interval_length_s: the grid step, s.
        start_s: int64 epoch seconds of every grid slot, from the first to the last
            reading's slot, step `interval_length_s`.
        raw_value: float64 raw reading placed in each slot (NaN: none); never modified.
        value: float64 validated value: the raw value, or an estimate where the slot was
            missing or failed a check in `VeeLimits.estimate_kinds`; NaN where no estimate
            was possible.
        quality: uint16 ESPI QualityOfReading code of each slot (see module docstring).
        source_index: int64 index into the input arrays of the reading in each slot, -1
            for none.
        dropped_index: int64 input indices of readings not placed on the grid (starts
            beyond the clock tolerance), in input order.
        findings: the findings, ordered by first slot then kind.
    """

    interval_length_s: int
    start_s: np.ndarray
    raw_value: np.ndarray
    value: np.ndarray
    quality: np.ndarray
    source_index: np.ndarray
    dropped_index: np.ndarray
    findings: tuple[Finding, ...]

    @property
    def n_intervals(self) -> int:
        """Number of grid slots."""
        return int(self.start_s.shape[0])

    def findings_of(self, kind: str) -> list[Finding]:
        """The findings of one kind."""
        return [f for f in self.findings if f.kind == kind]

    def quality_counts(self) -> dict[int, int]:
        """Number of slots per quality code (codes that occur only)."""
        codes, counts = np.unique(self.quality, return_counts=True)
        return {int(c): int(k) for c, k in zip(codes, counts, strict=True)}


# --------------------------------------------------------------------------------------
# value checks: a registry of name -> (mask function, reason function)
# --------------------------------------------------------------------------------------


class _Check(NamedTuple):
    """A value check: ``fails(v, limits, interval_length_s)`` -> bool mask over the grid
    (``v`` is NaN where there is nothing to check), and ``reason(run_values, limits,
    interval_length_s)`` -> sentence for one run of failed slots."""

    fails: Callable[[np.ndarray, VeeLimits, int], np.ndarray]
    reason: Callable[[np.ndarray, VeeLimits, int], str]


def _fails_range_low(v: np.ndarray, limits: VeeLimits, interval_length_s: int) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return v < limits.min_value


def _reason_range_low(run: np.ndarray, limits: VeeLimits, interval_length_s: int) -> str:
    return (
        f"{run.size} reading(s) below the minimum {limits.min_value:g} "
        f"(lowest {np.nanmin(run):g})"
    )


def _fails_range_high(v: np.ndarray, limits: VeeLimits, interval_length_s: int) -> np.ndarray:
    if limits.max_value is None:
        return np.zeros(v.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return v > limits.max_value


def _reason_range_high(run: np.ndarray, limits: VeeLimits, interval_length_s: int) -> str:
    return (
        f"{run.size} reading(s) above the physical maximum {limits.max_value:g} "
        f"(highest {np.nanmax(run):g})"
    )


def _fails_spike(v: np.ndarray, limits: VeeLimits, interval_length_s: int) -> np.ndarray:
    w = int(limits.spike_window)
    med, mad = rolling_median_mad(v, w, center=True, min_periods=w // 2 + 1)
    scale = MAD_TO_SIGMA * np.maximum(
        np.maximum(mad, limits.spike_mad_floor), limits.spike_mad_floor_fraction * np.abs(med)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(v - med) / scale
    return np.asarray(z > limits.spike_z)


def _reason_spike(run: np.ndarray, limits: VeeLimits, interval_length_s: int) -> str:
    return (
        f"{run.size} reading(s) more than {limits.spike_z:g} robust standard deviations "
        f"from the median of their {limits.spike_window} neighbouring intervals "
        f"(value {run[np.nanargmax(np.abs(run))]:g})"
    )


def _fails_stuck(v: np.ndarray, limits: VeeLimits, interval_length_s: int) -> np.ndarray:
    n = v.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n < 2:
        return mask
    same = v[1:] == v[:-1]  # NaN never equals: missing slots break runs
    starts, stops = true_runs(same)  # runs of equal neighbours: slots [s, e] with e = stop
    if starts.size == 0:
        return mask
    first, last = starts, stops  # slot run is [first, last] inclusive (stop index of same)
    count = last - first + 1
    level = v[first]
    ok = (count >= limits.stuck_min_readings) & (
        count * interval_length_s > limits.stuck_max_duration_s
    )
    ok &= level > limits.stuck_ignore_at_or_below
    if limits.stuck_exempt_at_or_above is not None:
        ok &= level < limits.stuck_exempt_at_or_above
    _fill_runs(mask, first[ok], last[ok] + 1)
    return mask


def _reason_stuck(run: np.ndarray, limits: VeeLimits, interval_length_s: int) -> str:
    hours = run.size * interval_length_s / 3600.0
    return (
        f"{run.size} identical readings of {run[0]:g} in a row ({hours:.1f} h, more than "
        f"{limits.stuck_max_duration_s / 3600.0:.1f} h): register stuck?"
    )


#: The value checks, run in this order on the grid values. Range failures are removed
#: before the spike and stuck checks see the series.
CHECKS: dict[str, _Check] = {
    "range_low": _Check(_fails_range_low, _reason_range_low),
    "range_high": _Check(_fails_range_high, _reason_range_high),
    "spike": _Check(_fails_spike, _reason_spike),
    "stuck": _Check(_fails_stuck, _reason_stuck),
}


# --------------------------------------------------------------------------------------
# helpers on boolean masks
# --------------------------------------------------------------------------------------


def _fill_runs(mask: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> None:
    """Set mask[s:e] = True for each run, vectorised (difference array)."""
    if starts.size == 0:
        return
    diff = np.zeros(mask.shape[0] + 1, dtype=np.int64)
    np.add.at(diff, starts, 1)
    np.add.at(diff, stops, -1)
    mask |= np.cumsum(diff[:-1]) > 0


def _run_counts(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Sum of `values` over each run [s, e) (runs non-empty)."""
    if starts.size == 0:
        return np.zeros(0, dtype=values.dtype)
    c = np.concatenate(([0], np.cumsum(values)))
    return np.asarray(c[stops] - c[starts])


def _duration_text(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * _SECONDS_PER_DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / _SECONDS_PER_DAY:.1f} days"


# --------------------------------------------------------------------------------------
# the VEE run
# --------------------------------------------------------------------------------------


class _Grid(NamedTuple):
    first_slot: int
    start_s: np.ndarray
    source_index: np.ndarray
    dropped_index: np.ndarray
    slot_of: np.ndarray  # grid index of every input reading (placed or not)
    offset_s: np.ndarray  # signed off-grid offset of every input reading, s
    placed: np.ndarray  # bool per input reading
    kept: np.ndarray  # bool per input reading: the reading used for its slot


def _build_grid(start_s: np.ndarray, interval_length_s: int, limits: VeeLimits) -> _Grid:
    step_s = interval_length_s
    rel = start_s - np.int64(limits.grid_origin_s)
    slot = np.floor_divide(rel + step_s // 2, step_s)  # nearest slot (ties: the later one)
    offset = rel - slot * step_s
    tolerance = limits.clock_tolerance_fraction * step_s
    placed = np.abs(offset) <= tolerance
    n = start_s.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Grid(0, empty, empty, empty, empty, empty, np.zeros(0, bool), np.zeros(0, bool))
    first_slot = int(slot.min())
    n_grid = int(slot.max()) - first_slot + 1
    if n_grid > limits.max_grid_intervals:
        raise ValueError(
            f"the readings span {n_grid} intervals of {step_s} s (more than max_grid_intervals="
            f"{limits.max_grid_intervals}): corrupt timestamps?"
        )
    idx = slot - first_slot
    grid_slots = first_slot + np.arange(n_grid)
    grid_start = np.int64(limits.grid_origin_s) + grid_slots * np.int64(step_s)
    if placed.all() and bool(np.all(idx[1:] > idx[:-1])):  # the usual case: sorted, unique
        source = np.full(n_grid, -1, dtype=np.int64)
        source[idx] = np.arange(n)
        none = np.zeros(0, dtype=np.int64)
        return _Grid(first_slot, grid_start, source, none, idx, offset, placed, placed.copy())
    # first placed reading of each slot, in input order
    order = np.lexsort((np.arange(n), idx, ~placed))  # placed first, then by slot, input order
    n_placed = int(placed.sum())
    po = order[:n_placed]
    first_of_slot = np.ones(n_placed, dtype=bool)
    first_of_slot[1:] = idx[po][1:] != idx[po][:-1]
    kept = np.zeros(n, dtype=bool)
    kept[po[first_of_slot]] = True
    source = np.full(n_grid, -1, dtype=np.int64)
    source[idx[kept]] = np.flatnonzero(kept)
    dropped = np.flatnonzero(~placed)
    return _Grid(first_slot, grid_start, source, dropped, idx, offset, placed, kept)


class _Collector:
    """Gathers findings and per-slot flags during one VEE run."""

    def __init__(
        self, grid_start_s: np.ndarray, interval_length_s: int, max_per_kind: int
    ) -> None:
        self.grid_start_s = grid_start_s
        self.step_s = interval_length_s
        self.max_per_kind = max_per_kind
        self.findings: list[Finding] = []

    def add_runs(
        self,
        kind: str,
        mask: np.ndarray,
        action: str,
        reason: Callable[[int, int], str],
    ) -> None:
        """One finding per run of True in `mask`; beyond `max_per_kind` runs, the rest are
        summarised in one finding (their slots stay marked in the quality column)."""
        starts, stops = true_runs(mask)
        limit = self.max_per_kind
        for s, e in zip(starts[: limit - 1].tolist(), stops[: limit - 1].tolist(), strict=True):
            self.add(kind, s, e, action, reason(s, e))
        if starts.size >= limit:
            rest = starts.size - (limit - 1)
            s, e = int(starts[limit - 1]), int(stops[-1])
            n_slots = int(np.count_nonzero(mask[s:e]))
            self.add(
                kind,
                s,
                e,
                action,
                f"{rest} more runs of this check ({n_slots} intervals) from here on; "
                "see the quality column",
            )

    def add(self, kind: str, first: int, stop: int, action: str, reason: str) -> None:
        self.findings.append(
            Finding(
                kind=kind,
                first=first,
                stop=stop,
                start_s=int(self.grid_start_s[first]),
                end_s=int(self.grid_start_s[stop - 1]) + self.step_s,
                action=action,
                reason=reason,
            )
        )


def vee(
    start_s: np.ndarray,
    value: np.ndarray,
    interval_length_s: int,
    limits: VeeLimits | None = None,
    *,
    duration_s: np.ndarray | None = None,
) -> VeeResult:
    """Validate, estimate and edit one interval series.

    Args:
        start_s: interval starts, epoch seconds (integers), one per reading, any order.
        value: raw interval values (register counts or any unit, see `VeeLimits`).
        interval_length_s: the series' interval length, s (ESPI ReadingType
            intervalLength).
        limits: thresholds; default `VeeLimits()` (no high-range check).
        duration_s: each reading's own interval length, s (ESPI timePeriod/duration);
            default all `interval_length_s`. Used by the overlap and duration checks.

    Returns:
        The series on its grid with raw and validated values, quality codes and findings.
        The input arrays are not modified.

    Raises:
        ValueError: arrays of different lengths or not 1-D, a non-positive interval
            length, or a span of more than `VeeLimits.max_grid_intervals` intervals.
    """
    lim = VeeLimits() if limits is None else limits
    step_s = int(interval_length_s)
    if interval_length_s != step_s or step_s <= 0:
        raise ValueError(f"interval_length_s must be a positive integer, got {interval_length_s!r}")
    starts = np.asarray(start_s)
    values = np.asarray(value, dtype=np.float64)
    if starts.ndim != 1 or starts.shape != values.shape:
        raise ValueError(
            f"start_s and value must be 1-D of equal length, got {starts.shape} and "
            f"{values.shape}"
        )
    if (
        starts.size
        and not np.issubdtype(starts.dtype, np.integer)
        and (not np.all(np.isfinite(starts)) or np.any(starts != np.round(starts)))
    ):
        raise ValueError("start_s must hold whole epoch seconds")
    starts = starts.astype(np.int64)
    durations = (
        np.full(starts.shape, step_s, dtype=np.int64)
        if duration_s is None
        else np.asarray(duration_s).astype(np.int64)
    )
    if durations.shape != starts.shape:
        raise ValueError(f"duration_s must have the shape of start_s, got {durations.shape}")

    grid = _build_grid(starts, step_s, lim)
    n_grid = grid.start_s.shape[0]
    col = _Collector(grid.start_s, step_s, lim.max_findings_per_kind)
    source = grid.source_index
    raw = np.full(n_grid, np.nan)
    raw[source >= 0] = values[source[source >= 0]]
    present = np.isfinite(raw)  # a NaN or infinite reading counts as missing
    quality = np.zeros(n_grid, dtype=np.uint16)
    flagged = np.zeros(n_grid, dtype=bool)  # questionable, value kept

    _check_clock(col, grid, starts, lim, step_s)
    flagged |= _check_duplicates(col, grid, values, n_grid)
    flagged |= _check_durations(col, grid, starts, durations, n_grid, step_s)

    # value checks on the grid, in registry order
    to_estimate = ~present
    checked = raw.copy()
    for kind, check in CHECKS.items():
        fails = check.fails(checked, lim, step_s) & present
        if not fails.any():
            continue
        estimate = kind in lim.estimate_kinds
        if estimate:
            to_estimate |= fails
        else:
            flagged |= fails

        def reason(s: int, e: int, c: _Check = check) -> str:
            return c.reason(raw[s:e], lim, step_s)

        col.add_runs(kind, fails, "estimated" if estimate else "flagged", reason)
        if kind.startswith("range"):
            checked[fails] = np.nan  # impossible values must not bias spike/stuck checks

    validated = raw.copy()
    validated[to_estimate] = np.nan
    quality[flagged] = QUALITY_QUESTIONABLE
    usable_ref = ~to_estimate & ~flagged  # valid actual readings: reference-day sources
    method = _estimate(validated, to_estimate, usable_ref, lim, step_s)
    quality[method == QUALITY_ESTIMATED_LINEAR] = QUALITY_ESTIMATED_LINEAR
    quality[method == QUALITY_ESTIMATED_REFERENCE_DAY] = QUALITY_ESTIMATED_REFERENCE_DAY
    unestimated = to_estimate & np.isnan(validated)
    quality[unestimated] = QUALITY_QUESTIONABLE

    # findings for estimated slots: one per gap, one line per failed run added above
    missing = ~present
    g_starts, g_stops = true_runs(missing)
    gap_lin = _run_counts((method == QUALITY_ESTIMATED_LINEAR) & missing, g_starts, g_stops)
    gap_ref = _run_counts(
        (method == QUALITY_ESTIMATED_REFERENCE_DAY) & missing, g_starts, g_stops
    )
    for i, (s, e) in enumerate(zip(g_starts.tolist(), g_stops.tolist(), strict=True)):
        n_lin, n_ref = int(gap_lin[i]), int(gap_ref[i])
        n_none = (e - s) - n_lin - n_ref
        parts = []
        if n_lin:
            parts.append(f"{n_lin} by linear interpolation")
        if n_ref:
            parts.append(f"{n_ref} from reference days")
        if n_none:
            parts.append(f"{n_none} not estimable")
        col.add(
            "gap",
            s,
            e,
            "estimated" if n_none == 0 else "unestimated",
            f"{e - s} interval(s) missing ({_duration_text((e - s) * step_s)}): "
            + ", ".join(parts),
        )
    # a failed run that could not be estimated everywhere says so
    for i, f in enumerate(col.findings):
        if f.action == "estimated" and f.kind != "gap":
            n_none = int(np.count_nonzero(unestimated[f.first : f.stop]))
            if n_none:
                col.findings[i] = replace(
                    f, action="unestimated", reason=f"{f.reason}; {n_none} not estimable"
                )
    col.findings.sort(key=lambda f: (f.first, f.kind))
    return VeeResult(
        interval_length_s=step_s,
        start_s=grid.start_s,
        raw_value=raw,
        value=validated,
        quality=quality,
        source_index=source,
        dropped_index=grid.dropped_index,
        findings=tuple(col.findings),
    )


def _check_clock(
    col: _Collector, grid: _Grid, starts: np.ndarray, lim: VeeLimits, step_s: int
) -> None:
    """clock_skew findings (runs of snapped / dropped readings) and clock_drift."""
    n_grid = grid.start_s.shape[0]
    off = grid.offset_s
    if off.size == 0:
        return
    skewed = off != 0
    if not skewed.any():
        return
    tol_s = lim.clock_tolerance_fraction * step_s
    for placed_state, action in ((True, "snapped"), (False, "dropped")):
        sel = skewed & (grid.placed == placed_state)
        if not sel.any():
            continue
        mask = np.zeros(n_grid, dtype=bool)
        mask[grid.slot_of[sel]] = True
        lo = np.full(n_grid, np.inf)
        hi = np.full(n_grid, -np.inf)
        np.minimum.at(lo, grid.slot_of[sel], off[sel].astype(float))
        np.maximum.at(hi, grid.slot_of[sel], off[sel].astype(float))

        def reason(
            s: int, e: int, lo: np.ndarray = lo, hi: np.ndarray = hi, a: str = action
        ) -> str:
            o_lo = float(np.min(lo[s:e][np.isfinite(lo[s:e])]))
            o_hi = float(np.max(hi[s:e][np.isfinite(hi[s:e])]))
            what = (
                f"snapped to the grid (tolerance {tol_s:g} s)"
                if a == "snapped"
                else f"beyond the tolerance {tol_s:g} s: left off the grid"
            )
            return (
                f"interval starts {o_lo:+.0f}..{o_hi:+.0f} s off the {step_s} s grid, {what}"
            )

        col.add_runs("clock_skew", mask, action, reason)

    # drift: offsets (unwrapped across the grid period) trending with time
    order = np.argsort(starts, kind="stable")
    t = starts[order].astype(float)
    o = np.unwrap(off[order].astype(float), period=step_s)
    if o.size >= 3 and np.ptp(o) >= lim.clock_drift_min_s and np.ptp(t) > 0:
        tc = t - t.mean()
        oc = o - o.mean()
        denom = np.sqrt(np.dot(tc, tc) * np.dot(oc, oc))
        r = float(np.dot(tc, oc) / denom) if denom > 0 else 0.0
        slope = float(np.dot(tc, oc) / np.dot(tc, tc))
        change = slope * np.ptp(t)
        if abs(r) >= 0.9 and abs(change) >= lim.clock_drift_min_s:
            col.add(
                "clock_drift",
                0,
                n_grid,
                "reported",
                f"interval starts drift {slope * _SECONDS_PER_DAY:+.1f} s/day against the "
                f"{step_s} s grid ({change:+.0f} s over {_duration_text(np.ptp(t))}, r = {r:.2f}): "
                "meter clock not synchronised",
            )


def _check_duplicates(
    col: _Collector, grid: _Grid, values: np.ndarray, n_grid: int
) -> np.ndarray:
    """duplicate / duplicate_conflict findings; returns the conflicting slots (flagged)."""
    extra = grid.placed & ~grid.kept
    flagged = np.zeros(n_grid, dtype=bool)
    if not extra.any():
        return flagged
    slot = grid.slot_of[extra]
    kept_value = values[grid.source_index[slot]]
    differs = ~((values[extra] == kept_value) | (np.isnan(values[extra]) & np.isnan(kept_value)))
    dup = np.zeros(n_grid, dtype=bool)
    dup[slot] = True
    flagged[slot[differs]] = True
    dup &= ~flagged
    n_extra = np.bincount(slot, minlength=n_grid)
    col.add_runs(
        "duplicate",
        dup,
        "kept_first",
        lambda s, e: f"{int(n_extra[s:e].sum())} repeated reading(s) with the same value",
    )
    col.add_runs(
        "duplicate_conflict",
        flagged,
        "flagged",
        lambda s, e: (
            f"{int(n_extra[s:e].sum())} repeated reading(s) with a different value; kept the "
            "first received"
        ),
    )
    return flagged


def _check_durations(
    col: _Collector,
    grid: _Grid,
    starts: np.ndarray,
    durations: np.ndarray,
    n_grid: int,
    step_s: int,
) -> np.ndarray:
    """duration_mismatch and overlap findings among the kept readings; flagged slots."""
    flagged = np.zeros(n_grid, dtype=bool)
    kept = np.flatnonzero(grid.kept)
    if kept.size == 0:
        return flagged
    slot = grid.slot_of[kept]
    dur = durations[kept]
    bad = dur != step_s
    if bad.any():
        mask = np.zeros(n_grid, dtype=bool)
        mask[slot[bad]] = True
        flagged |= mask
        col.add_runs(
            "duration_mismatch",
            mask,
            "flagged",
            lambda s, e: f"interval duration differs from the series' {step_s} s",
        )
    # overlaps, on grid-snapped starts in time order
    order = np.argsort(slot, kind="stable")
    s_start = grid.start_s[slot[order]]
    s_end = s_start + dur[order]
    if s_start.size > 1:
        reach = np.maximum.accumulate(s_end)[:-1]
        over = s_start[1:] < reach
        if over.any():
            mask = np.zeros(n_grid, dtype=bool)
            mask[slot[order][1:][over]] = True
            prev = np.flatnonzero(over)  # the reading(s) reaching into the next one
            mask[slot[order][prev]] = True
            flagged |= mask
            col.add_runs(
                "overlap",
                mask,
                "flagged",
                lambda s, e: "interval(s) overlap the next reading's interval",
            )
    return flagged


def _estimate(
    validated: np.ndarray,
    need: np.ndarray,
    usable_ref: np.ndarray,
    lim: VeeLimits,
    step_s: int,
) -> np.ndarray:
    """Fill `validated` where `need` (in place); return the quality code per slot (0 where
    nothing was estimated or no estimate was possible)."""
    n = validated.shape[0]
    method = np.zeros(n, dtype=np.uint16)
    if not need.any():
        return method
    starts, stops = true_runs(need)
    lengths = stops - starts
    bounded = (starts > 0) & (stops < n)
    short = bounded & (lengths * step_s <= lim.max_linear_gap_s)
    # linear interpolation between the slots around each short run
    lin_mask = np.zeros(n, dtype=bool)
    _fill_runs(lin_mask, starts[short], stops[short])
    _interpolate(validated, method, lin_mask, starts, stops, bounded)
    # reference days for the long runs (and runs at the ends of the series)
    long_mask = need & ~lin_mask
    if long_mask.any() and _SECONDS_PER_DAY % step_s == 0 and lim.reference_days > 0:
        j = np.flatnonzero(long_mask)
        period = _SECONDS_PER_DAY // step_s
        ref = np.where(usable_ref, validated, np.nan)
        est = np.full(j.shape, np.nan)
        for sign in (-1, 1):  # earlier days first, then later ones
            todo = np.isnan(est)
            if not todo.any():
                break
            k = np.arange(1, lim.reference_days + 1)
            cand = j[todo][:, None] + sign * k[None, :] * period
            inside = (cand >= 0) & (cand < n)
            vals = np.where(inside, ref[np.clip(cand, 0, n - 1)], np.nan)
            cnt = np.sum(~np.isnan(vals), axis=1)
            tot = np.nansum(vals, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                est[todo] = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
        got = ~np.isnan(est)
        validated[j[got]] = est[got]
        method[j[got]] = QUALITY_ESTIMATED_REFERENCE_DAY
    # what is still missing: interpolate if the run is bounded (a long gap with no history)
    rest = need & (method == 0)
    if rest.any():
        _interpolate(validated, method, rest, starts, stops, bounded)
    return method


def _interpolate(
    validated: np.ndarray,
    method: np.ndarray,
    mask: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    bounded: np.ndarray,
) -> None:
    """Linear interpolation of the `mask` slots inside bounded runs [start, stop) of the
    need mask, from validated[start - 1] to validated[stop]."""
    n = validated.shape[0]
    is_start = np.zeros(n, dtype=np.int64)
    is_start[starts] = 1
    inside = np.zeros(n, dtype=bool)
    _fill_runs(inside, starts, stops)
    run_id = np.where(inside, np.cumsum(is_start) - 1, -1)
    j = np.flatnonzero(mask & (run_id >= 0))
    if j.size == 0:
        return
    r = run_id[j]
    ok = bounded[r]
    j, r = j[ok], r[ok]
    a = starts[r] - 1
    b = stops[r]
    va = validated[a]
    vb = validated[b]
    good = ~np.isnan(va) & ~np.isnan(vb)
    j, a, b, va, vb = j[good], a[good], b[good], va[good], vb[good]
    validated[j] = va + (vb - va) * (j - a) / (b - a)
    method[j] = QUALITY_ESTIMATED_LINEAR
