"""Analyze stage: streaming anomaly detection on interval energy, per meter (opt-in).

`pipeline.service.Pipeline` runs this detector on every upload only when given one
(``detector=``): on real-looking data (clouds, gusts, a net meter switching between import
and export, meter noise) a z-score of each upload against the last hour fires thousands of
false alerts a day, so faults are found by the batch analysis instead
(`pipeline.service.Pipeline.analyze`: VEE and the site detectors of `pipeline.analytics`
over the stored history). It stays for backward compatibility and for experiments.

`RobustZScoreDetector` scores each new reading's first difference (the change of interval
energy from the previous interval) against the recent differences of the same meter with
the modified z-score of Iglewicz & Hoaglin:

    z = (d - median(d_ref)) / (1.4826 * max(MAD(d_ref), mad_floor, f * median(|x_ref|)))

where ``MAD`` is the median absolute deviation from the median and 1.4826 = 1/Φ⁻¹(3/4)
makes ``1.4826 * MAD`` a consistent estimate of the standard deviation for normal data
(B. Iglewicz and D. C. Hoaglin, *How to Detect and Handle Outliers*, ASQC Quality Press,
1993, which writes the same score as ``0.6745 (x - median) / MAD`` and flags ``|M| > 3.5``).
``mad_floor`` keeps quantised series (integer register counts, where the MAD of a flat
stretch is 0) from dividing by zero or exploding on a one-count step. The relative floor
``f * median(|x_ref|)`` (``mad_floor_fraction``, default 2 %) keeps the score about change
relative to the level: the differences of a smooth ramp are nearly constant, so their MAD
collapses and a mere change of slope (a weather front; the hour boundaries of interpolated
hourly weather) would otherwise score as a spike.

The sliding window and the medians run in a numba kernel over the new readings of one call
(sequential by nature: each reading's reference window ends at the reading before it).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

__all__ = ["MAD_TO_SIGMA", "ROBUST_Z_SPIKE", "Alert", "RobustZScoreDetector"]

#: Scale from MAD to standard deviation for normal data, 1/Φ⁻¹(0.75) (Iglewicz & Hoaglin 1993).
MAD_TO_SIGMA = 1.4826
#: Alert kind of `RobustZScoreDetector`.
ROBUST_Z_SPIKE = "robust_z_spike"


@dataclass(frozen=True)
class Alert:
    """One anomaly found in a meter's series.

    Attributes:
        meter_id: the meter (as passed to the detector).
        start_s: epoch seconds of the start of the anomalous interval.
        kind: what was detected, e.g. ``"robust_z_spike"``.
        score: the detector's score; for ``robust_z_spike`` the modified z-score of the
            interval's first difference (dimensionless, signed: > 0 for a jump up).
        value: the interval's value, in the units passed to the detector (the pipeline
            passes raw register counts, see `pipeline.process.ReadingBatch.value`).
    """

    meter_id: str
    start_s: int
    kind: str
    score: float
    value: float


#: `_SeriesState.last_start_s` before the first reading: every start is newer.
_NO_START_S = np.iinfo(np.int64).min


@numba.njit(cache=True, nogil=True)
def _robust_z_scores(
    x: np.ndarray,
    n_hist: int,
    window: int,
    threshold: float,
    mad_floor: float,
    mad_floor_fraction: float,
    prev_big: bool,
) -> tuple[np.ndarray, np.ndarray, bool]:  # pragma: no cover - compiled
    """Modified z-scores of the first differences of ``x[n_hist:]``.

    ``x`` is the history (``x[:n_hist]``, at most `window` values) followed by the new
    values. The reference of the difference ``x[k] - x[k-1]`` is the differences among
    the `window` values before ``x[k]`` (up to ``window - 1`` of them); with fewer than
    ``window // 2`` the score is NaN. An alert starts where ``|z| > threshold`` and the
    previous reading's difference was not over the threshold (`prev_big` carries that
    across calls), so a spike and the drop back from it make one alert, at the spike.

    Returns (z, alert, last_big); z and alert have one element per new value.
    """
    n = x.shape[0]
    n_new = n - n_hist
    z = np.full(n_new, np.nan)
    alert = np.zeros(n_new, dtype=np.bool_)
    ref = np.empty(max(window - 1, 1))
    dev = np.empty(max(window - 1, 1))
    min_ref = window // 2
    big_before = prev_big
    for k in range(n_hist, n):
        j = k - n_hist
        if k == 0:
            big_before = False
            continue
        lo = max(1, k - window + 1)
        m = k - lo
        if m < min_ref or m == 0:
            big_before = False
            continue
        for i in range(m):
            ref[i] = x[lo + i] - x[lo + i - 1]
        med = np.median(ref[:m])
        for i in range(m):
            dev[i] = abs(ref[i] - med)
        mad = np.median(dev[:m])
        level = np.median(np.abs(x[lo - 1 : k]))
        spread = max(mad, mad_floor, mad_floor_fraction * level)
        score = (x[k] - x[k - 1] - med) / (MAD_TO_SIGMA * spread)
        z[j] = score
        big = abs(score) > threshold
        alert[j] = big and not big_before
        big_before = big
    return z, alert, big_before


@numba.njit(cache=True, nogil=True)
def _robust_z_kernel(
    history: np.ndarray,
    last_start_s: int,
    start_s: np.ndarray,
    value: np.ndarray,
    window: int,
    threshold: float,
    mad_floor: float,
    mad_floor_fraction: float,
    prev_big: bool,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, np.ndarray, int, bool
]:  # pragma: no cover - compiled
    """One `RobustZScoreDetector.update` of one meter, in one compiled call.

    Keeps the readings that start after `last_start_s`, sorts them by start (dropping
    repeated starts, first one kept) if they are out of order, scores them against
    `history` with `_robust_z_scores`, and returns (starts, values, z, alert, n_alerts,
    new_history, new_last_start_s, last_big) with one element per kept reading in the
    first four arrays.
    """
    n_in = start_s.shape[0]
    starts = np.empty(n_in, dtype=np.int64)
    values = np.empty(n_in, dtype=np.float64)
    n = 0
    ordered = True
    for i in range(n_in):
        if start_s[i] > last_start_s:
            if n > 0 and start_s[i] <= starts[n - 1]:
                ordered = False
            starts[n] = start_s[i]
            values[n] = value[i]
            n += 1
    starts = starts[:n]
    values = values[:n]
    if not ordered:
        order = np.argsort(starts, kind="mergesort")  # stable: first of a repeat stays first
        sorted_starts = starts[order]
        sorted_values = values[order]
        m = 0
        for i in range(n):
            if i == 0 or sorted_starts[i] != sorted_starts[i - 1]:
                starts[m] = sorted_starts[i]
                values[m] = sorted_values[i]
                m += 1
        starts = starts[:m]
        values = values[:m]
        n = m
    if n == 0:
        empty = np.empty(0)
        return (
            starts,
            values,
            empty,
            np.zeros(0, dtype=np.bool_),
            0,
            history,
            last_start_s,
            prev_big,
        )
    x = np.concatenate((history, values))
    z, alert, big = _robust_z_scores(
        x, history.shape[0], window, threshold, mad_floor, mad_floor_fraction, prev_big
    )
    new_history = x[max(0, x.shape[0] - window) :].copy()
    return starts, values, z, alert, int(alert.sum()), new_history, starts[n - 1], big


@dataclass
class _SeriesState:
    """Detector memory of one meter."""

    values: np.ndarray = field(default_factory=lambda: np.empty(0))  # last `window` values
    last_start_s: int = _NO_START_S  # newest interval start seen, epoch s
    big: bool = False  # was the newest difference over the threshold


class RobustZScoreDetector:
    """Per-meter robust z-score of the first differences of interval energy.

    Args:
        window: values kept per meter; each new difference is scored against the
            differences among the `window` values before it. Default 60: an hour of
            1-minute readings, or 15 hours of 15-minute ones.
        threshold: ``|z|`` above which a reading alerts. Default 8.0, well above Iglewicz &
            Hoaglin's 3.5 for single outliers, because interval energy of PV and wind is
            heavy-tailed (clouds, gusts) and a false alert costs a site visit.
        mad_floor: smallest MAD used, in the units of the values (1.0 = one register count
            for the raw values the pipeline passes); must be > 0.
        mad_floor_fraction: smallest MAD as a fraction of the median absolute value of the
            reference window (dimensionless, >= 0; default 0.02). See the module docstring.

    An alert is raised once the meter has at least ``window // 2`` differences of history,
    at the first reading of a run of over-threshold differences (a one-interval spike and
    the drop back make one alert, at the spike's start). Readings whose start is not after
    the newest one already seen for the meter are ignored, so a re-delivered upload does
    not disturb the state; a batch out of order is sorted first. State is per `meter_id`
    and in memory only.
    """

    def __init__(
        self,
        window: int = 60,
        threshold: float = 8.0,
        mad_floor: float = 1.0,
        mad_floor_fraction: float = 0.02,
    ) -> None:
        if int(window) != window or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold!r}")
        if not mad_floor > 0:
            raise ValueError(f"mad_floor must be > 0, got {mad_floor!r}")
        if not mad_floor_fraction >= 0:
            raise ValueError(f"mad_floor_fraction must be >= 0, got {mad_floor_fraction!r}")
        self.window = int(window)
        self.threshold = float(threshold)
        self.mad_floor = float(mad_floor)
        self.mad_floor_fraction = float(mad_floor_fraction)
        self._series: dict[str, _SeriesState] = {}
        # Compile the kernel (or load it from numba's cache) now, with the argument types
        # `update` uses, so that no upload's measured analyze cost includes JIT compilation.
        _robust_z_kernel(
            np.empty(0),
            _NO_START_S,
            np.zeros(2, dtype=np.int64),
            np.zeros(2),
            self.window,
            self.threshold,
            self.mad_floor,
            self.mad_floor_fraction,
            False,
        )

    def update(self, meter_id: str, start_s: np.ndarray, value: np.ndarray) -> list[Alert]:
        """Feed a meter's new readings; return the alerts they raise.

        Args:
            meter_id: the series' key.
            start_s: interval starts, epoch seconds (int64), one per reading.
            value: interval values (energy, in any unit; see `mad_floor`), one per reading.

        Returns:
            The alerts, in time order (usually none).
        """
        starts = np.array(start_s, dtype=np.int64)  # copies: writable, C-ordered
        values = np.array(value, dtype=np.float64)
        if starts.ndim != 1 or starts.shape != values.shape:
            raise ValueError(
                f"start_s and value must be 1-D of equal length, got {starts.shape} and "
                f"{values.shape}"
            )
        state = self._series.get(meter_id)
        if state is None:
            state = self._series[meter_id] = _SeriesState()
        kept_starts, kept_values, z, alert, n_alerts, history, last_start_s, big = _robust_z_kernel(
            state.values,
            state.last_start_s,
            starts,
            values,
            self.window,
            self.threshold,
            self.mad_floor,
            self.mad_floor_fraction,
            state.big,
        )
        state.values = history
        state.last_start_s = int(last_start_s)
        state.big = bool(big)
        if n_alerts == 0:
            return []
        return [
            Alert(meter_id, int(kept_starts[i]), ROBUST_Z_SPIKE, float(z[i]), float(kept_values[i]))
            for i in np.flatnonzero(alert)
        ]

    def forget(self, meter_id: str) -> None:
        """Drop a meter's state (for example when it is decommissioned)."""
        self._series.pop(meter_id, None)
