"""Rolling-window kernels on one series: median, MAD, maximum, robust z; runs of true
values; and `quiet_nan`, for NaN as an intended answer.

Every function takes a 1-D array ``x`` (any real dtype; computed in float64) and a window
length in samples, and returns float64 arrays of the same length. Window conventions, the
same for all functions (and those of ``pandas.Series.rolling`` with ``closed="right"``):

- trailing (default): the window of sample ``i`` is ``x[i - window + 1 : i + 1]`` (the
  sample and the ``window - 1`` before it), for streaming use;
- ``center=True`` (odd ``window`` only): ``x[i - h : i + h + 1]`` with ``h = window // 2``
  (the Hampel filter's window), for validation after the fact.

Missing values: NaN and ±inf are *missing* and are skipped; a window yields a result only
when it holds at least ``min_periods`` valid values (default: ``window``, i.e. full windows
only), otherwise NaN. At the ends of a centred series the windows are partial, so use a
smaller ``min_periods`` to get results there.

Algorithms:

- Median and MAD use a *sorted window*: a buffer holding the window's valid values in
  order. Each step removes the outgoing value and inserts the incoming one by binary search
  and shifting only the elements between the two positions (O(window) worst case, usually
  far less), so the median is read off the middle in O(1). The MAD (median absolute
  deviation from the median) is then found in O(log window) without sorting the
  deviations: the ``k + 1`` values closest to the median are a contiguous block of the
  sorted buffer, found by binary search (the "k closest elements" search), and the k-th
  smallest deviation is the larger of the block's two end deviations. Results equal
  ``np.median`` of the window (and of its absolute deviations) exactly, bit for bit: the
  even case is ``(a + b) / 2`` like numpy's mean of the two middle values.
- The robust z-score is the modified z-score of Iglewicz & Hoaglin (1993),
  ``(x - median) / (1.4826 * max(MAD, mad_floor))``; 1.4826 = 1/Φ⁻¹(3/4) scales the MAD to
  the standard deviation of normal data (`MAD_TO_SIGMA`). With a
  trailing window the sample is part of its own reference window (as in the Hampel filter:
  F. R. Hampel, "The influence curve and its role in robust estimation", JASA 69, 1974;
  R. K. Pearson, "Outliers in process modeling and identification", IEEE TCST 10, 2002).

Speed (DESIGN §7): a numpy ``sliding_window_view`` median costs a partition per window; the
sorted window does not (``bench/test_analytics_bench.py`` measures the robust z-score
against that numpy reference).

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numba
import numpy as np

__all__ = [
    "MAD_TO_SIGMA",
    "Runs",
    "quiet_nan",
    "rolling_max",
    "rolling_median",
    "rolling_median_mad",
    "rolling_robust_z",
    "runs_across_skips",
    "true_runs",
]

#: Scale from MAD to standard deviation for normal data, 1/Φ⁻¹(0.75) (Iglewicz & Hoaglin
#: 1993).
MAD_TO_SIGMA = 1.4826


# --------------------------------------------------------------------------------------
# compiled kernels (trailing windows; centring is done by the Python wrappers)
# --------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, inline="always")
def _is_valid(v: float) -> bool:  # pragma: no cover - compiled
    return np.isfinite(v)


@numba.njit(cache=True, nogil=True)
def _bisect_left(buf: np.ndarray, cnt: int, v: float) -> int:  # pragma: no cover - compiled
    """First index p in buf[:cnt] (sorted) with buf[p] >= v."""
    lo = 0
    hi = cnt
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _window_step(
    buf: np.ndarray, cnt: int, x_out: float, out_valid: bool, x_in: float, in_valid: bool
) -> int:  # pragma: no cover - compiled
    """Replace `x_out` (if valid) by `x_in` (if valid) in the sorted buffer; new count."""
    if out_valid and in_valid:
        p = _bisect_left(buf, cnt, x_out)
        if x_in > x_out:
            while p + 1 < cnt and buf[p + 1] < x_in:
                buf[p] = buf[p + 1]
                p += 1
        else:
            while p > 0 and buf[p - 1] > x_in:
                buf[p] = buf[p - 1]
                p -= 1
        buf[p] = x_in
        return cnt
    if out_valid:
        p = _bisect_left(buf, cnt, x_out)
        for j in range(p, cnt - 1):
            buf[j] = buf[j + 1]
        return cnt - 1
    if in_valid:
        p = _bisect_left(buf, cnt, x_in)
        for j in range(cnt, p, -1):
            buf[j] = buf[j - 1]
        buf[p] = x_in
        return cnt + 1
    return cnt


@numba.njit(cache=True, nogil=True, inline="always")
def _sorted_median(buf: np.ndarray, cnt: int) -> float:  # pragma: no cover - compiled
    h = cnt >> 1
    if cnt & 1:
        return buf[h]
    return (buf[h - 1] + buf[h]) / 2.0


@numba.njit(cache=True, nogil=True)
def _kth_abs_deviation(
    buf: np.ndarray, cnt: int, m: float, k: int
) -> float:  # pragma: no cover - compiled
    """k-th smallest (0-based) of |buf[:cnt] - m| for sorted buf, in O(log cnt).

    The k + 1 values closest to m form a contiguous block buf[lo : lo + k + 1]; the
    leftmost such block is found by binary search, and its largest deviation (at one of
    its ends) is the k-th smallest deviation.
    """
    size = k + 1
    lo = 0
    hi = cnt - size
    while lo < hi:
        mid = (lo + hi) >> 1
        if m - buf[mid] > buf[mid + size] - m:
            lo = mid + 1
        else:
            hi = mid
    left = m - buf[lo]
    right = buf[lo + size - 1] - m
    return left if left > right else right


@numba.njit(cache=True, nogil=True, inline="always")
def _sorted_mad(buf: np.ndarray, cnt: int, m: float) -> float:  # pragma: no cover - compiled
    h = cnt >> 1
    if cnt & 1:
        return _kth_abs_deviation(buf, cnt, m, h)
    return (_kth_abs_deviation(buf, cnt, m, h - 1) + _kth_abs_deviation(buf, cnt, m, h)) / 2.0


@numba.njit(cache=True, nogil=True)
def _median_mad_kernel(
    x: np.ndarray, window: int, min_periods: int, want_mad: bool
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    n = x.shape[0]
    med = np.full(n, np.nan)
    mad = np.full(n if want_mad else 0, np.nan)
    buf = np.empty(window)
    cnt = 0
    for i in range(n):
        x_in = x[i]
        in_valid = _is_valid(x_in)
        if i >= window:
            x_out = x[i - window]
            cnt = _window_step(buf, cnt, x_out, _is_valid(x_out), x_in, in_valid)
        else:
            cnt = _window_step(buf, cnt, 0.0, False, x_in, in_valid)
        if cnt >= min_periods and cnt > 0:
            m = _sorted_median(buf, cnt)
            med[i] = m
            if want_mad:
                mad[i] = _sorted_mad(buf, cnt, m)
    return med, mad


@numba.njit(cache=True, nogil=True)
def _robust_z_kernel(
    x: np.ndarray, ref: np.ndarray, window: int, min_periods: int, mad_floor: float, lag: int
) -> np.ndarray:  # pragma: no cover - compiled
    """z[i] = (ref[i] - med) / (1.4826 max(MAD, floor)) over the trailing window of x that
    ends at i + lag (lag = window // 2 for a centred window over NaN-padded x)."""
    n_out = ref.shape[0]
    n = x.shape[0]
    z = np.full(n_out, np.nan)
    buf = np.empty(window)
    cnt = 0
    for i in range(n):
        x_in = x[i]
        in_valid = _is_valid(x_in)
        if i >= window:
            x_out = x[i - window]
            cnt = _window_step(buf, cnt, x_out, _is_valid(x_out), x_in, in_valid)
        else:
            cnt = _window_step(buf, cnt, 0.0, False, x_in, in_valid)
        j = i - lag
        if j < 0 or cnt < min_periods or cnt == 0:
            continue
        v = ref[j]
        if not _is_valid(v):
            continue
        m = _sorted_median(buf, cnt)
        scale = _sorted_mad(buf, cnt, m)
        if scale < mad_floor:
            scale = mad_floor
        scale *= MAD_TO_SIGMA
        d = v - m
        if scale > 0.0:
            z[j] = d / scale
        elif d == 0.0:
            z[j] = 0.0
        else:
            z[j] = np.inf if d > 0.0 else -np.inf
    return z


@numba.njit(cache=True, nogil=True)
def _max_kernel(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:  # pragma: no cover
    """Trailing-window max with a monotone deque of indices (each index pushed and popped
    once: O(n)); missing values are skipped."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    dq = np.empty(n, dtype=np.int64)  # ring not needed: head only moves forward
    head = 0
    tail = 0
    cnt = 0
    for i in range(n):
        v = x[i]
        if _is_valid(v):
            cnt += 1
            while tail > head and x[dq[tail - 1]] <= v:
                tail -= 1
            dq[tail] = i
            tail += 1
        if i >= window:
            if _is_valid(x[i - window]):
                cnt -= 1
            while tail > head and dq[head] <= i - window:
                head += 1
        if cnt >= min_periods and cnt > 0 and tail > head:
            out[i] = x[dq[head]]
    return out


# --------------------------------------------------------------------------------------
# public wrappers
# --------------------------------------------------------------------------------------


def _prepare(
    x: np.ndarray, window: int, center: bool, min_periods: int | None
) -> tuple[np.ndarray, int, int]:
    """(x as contiguous float64, NaN-padded at the end when centred; min_periods; lag)."""
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {arr.shape}")
    if int(window) != window or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    window = int(window)
    mp = window if min_periods is None else int(min_periods)
    if not 1 <= mp <= window:
        raise ValueError(f"min_periods must be in [1, window={window}], got {min_periods!r}")
    lag = 0
    if center:
        if window % 2 == 0:
            raise ValueError(f"a centred window must have an odd length, got {window}")
        lag = window // 2
        arr = np.concatenate((arr, np.full(lag, np.nan)))
    return arr, mp, lag


def rolling_median(
    x: np.ndarray, window: int, *, center: bool = False, min_periods: int | None = None
) -> np.ndarray:
    """Rolling median of `x` over `window` samples (sorted-window kernel).

    Args:
        x: the series, 1-D; NaN/inf are missing and skipped.
        window: window length, samples (>= 1).
        center: centred window (odd `window`) instead of trailing.
        min_periods: fewest valid values for a result (default `window`).

    Returns:
        float64 array like `x`; NaN where the window holds fewer than `min_periods` valid
        values. Equal to ``np.median`` of each window's valid values, exactly.
    """
    arr, mp, lag = _prepare(x, window, center, min_periods)
    med, _ = _median_mad_kernel(arr, int(window), mp, False)
    return med[lag:]


def rolling_median_mad(
    x: np.ndarray, window: int, *, center: bool = False, min_periods: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling median and MAD (median absolute deviation from the window's median).

    Same arguments as `rolling_median`. The MAD is not scaled (multiply by `MAD_TO_SIGMA`
    for a standard-deviation estimate). Both equal numpy's ``np.median(w)`` and
    ``np.median(np.abs(w - np.median(w)))`` of each window's valid values ``w``, exactly.
    """
    arr, mp, lag = _prepare(x, window, center, min_periods)
    med, mad = _median_mad_kernel(arr, int(window), mp, True)
    return med[lag:], mad[lag:]


def rolling_max(
    x: np.ndarray, window: int, *, center: bool = False, min_periods: int | None = None
) -> np.ndarray:
    """Rolling maximum (monotone-deque kernel, O(n) whatever the window), with the window
    conventions of `rolling_median`; equal to ``np.max`` of each window's valid values."""
    arr, mp, lag = _prepare(x, window, center, min_periods)
    return _max_kernel(arr, int(window), mp)[lag:]


def rolling_robust_z(
    x: np.ndarray,
    window: int,
    *,
    center: bool = False,
    min_periods: int | None = None,
    mad_floor: float = 0.0,
) -> np.ndarray:
    """Rolling modified z-score ``(x - median) / (1.4826 * max(MAD, mad_floor))``.

    Iglewicz & Hoaglin (1993) score each sample against the median and MAD of its window
    (the sample included: the Hampel filter's convention). Same window arguments as
    `rolling_median`; `mad_floor` (units of `x`, >= 0) keeps quantised or flat series from
    dividing by zero. Where the scale is 0 the score is 0 for a sample equal to the median
    and ±inf otherwise; NaN for missing samples and windows short of `min_periods`.
    """
    if not mad_floor >= 0:
        raise ValueError(f"mad_floor must be >= 0, got {mad_floor!r}")
    arr, mp, lag = _prepare(x, window, center, min_periods)
    ref = arr[: arr.shape[0] - lag] if lag else arr
    return _robust_z_kernel(arr, ref, int(window), mp, float(mad_floor), lag)


@contextmanager
def quiet_nan() -> Iterator[None]:
    """Silence numpy's warnings where NaN is the intended answer: medians and means of
    all-NaN (or empty) slices, and invalid or zero divisions, which give NaN or inf that
    the caller masks. Not thread-safe (it sets the warnings filters)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and stops (exclusive) of the runs of True in a 1-D boolean mask, as int64
    arrays (vectorised: the edges of the mask padded with False)."""
    m = np.concatenate(([False], np.asarray(mask, dtype=bool).ravel(), [False]))
    edges = np.flatnonzero(m[1:] != m[:-1])
    return edges[0::2], edges[1::2]


class Runs(NamedTuple):
    """Runs of hits found by `runs_across_skips`, one entry per run (int64 arrays): the row,
    the first and last column holding a hit, the number of hits, and `first_hit`, the flat
    index into the row-major order of the hits (``np.nonzero(hit)``) of each run's first."""

    row: np.ndarray
    first: np.ndarray
    last: np.ndarray
    hits: np.ndarray
    first_hit: np.ndarray


def runs_across_skips(hit: np.ndarray, miss: np.ndarray) -> tuple[Runs, np.ndarray]:
    """Runs of hits along the columns of each row of a 2-D boolean mask, broken only by a
    miss: cells that are neither (no evidence: night, a missing reading) are skipped, so a
    run may continue across them. Vectorised (one cumulative sum, one ``nonzero``).
    Returns the runs and the columns of all hits in row-major order (so that the k-th hit
    of run i is at ``columns[runs.first_hit[i] + k]``)."""
    hit = np.asarray(hit, dtype=bool)
    breaks = np.cumsum(np.asarray(miss, dtype=bool), axis=1)
    rows, cols = np.nonzero(hit)
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Runs(empty, empty, empty, empty, empty), empty
    key = breaks[rows, cols]
    new = np.ones(rows.size, dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (key[1:] != key[:-1])
    starts = np.flatnonzero(new)
    stops = np.append(starts[1:], rows.size)
    runs = Runs(
        rows[starts].astype(np.int64),
        cols[starts].astype(np.int64),
        cols[stops - 1].astype(np.int64),
        (stops - starts).astype(np.int64),
        starts.astype(np.int64),
    )
    return runs, cols.astype(np.int64)
