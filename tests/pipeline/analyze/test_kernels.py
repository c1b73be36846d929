"""Rolling kernels against a naive numpy reference (np.median / np.mean / np.std over every
window): the sorted-window median and MAD are exact, bit for bit; the running mean and
standard deviation agree to rounding; the robust z-score is the Iglewicz-Hoaglin formula."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline.analyze.kernels import (
    MAD_TO_SIGMA,
    rolling_max,
    rolling_median,
    rolling_median_mad,
    rolling_robust_z,
    runs_across_skips,
    true_runs,
)


def windows(x: np.ndarray, window: int, center: bool) -> list[np.ndarray]:
    """The valid values of every sample's window (trailing or centred)."""
    out = []
    h = window // 2
    for i in range(x.size):
        w = x[i - h : i + h + 1] if center and i >= h else x[max(0, i - window + 1) : i + 1]
        if center and i < h:
            w = x[: i + h + 1]
        out.append(w[np.isfinite(w)])
    return out


def naive_median_mad(
    x: np.ndarray, window: int, min_periods: int, center: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    med = np.full(x.size, np.nan)
    mad = np.full(x.size, np.nan)
    for i, w in enumerate(windows(x, window, center)):
        if w.size >= min_periods:
            med[i] = np.median(w)
            mad[i] = np.median(np.abs(w - med[i]))
    return med, mad


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Exactly equal, NaN where the other is NaN."""
    return bool(np.array_equal(a, b, equal_nan=True))


@pytest.mark.parametrize("window", [1, 2, 3, 4, 7, 60, 61])
@pytest.mark.parametrize("kind", ["normal", "integers", "with_nan"])
def test_sorted_window_median_and_mad_equal_the_naive_median_exactly(
    window: int, kind: str
) -> None:
    rng = np.random.default_rng(window)
    n = 700
    # integers: many ties, like register counts
    x = rng.integers(0, 6, n).astype(float) if kind == "integers" else rng.normal(1e3, 50.0, n)
    if kind == "with_nan":
        x[rng.random(n) < 0.15] = np.nan
        x[100:140] = np.nan  # a long gap empties whole windows
    for min_periods in sorted({1, max(1, window // 2), window}):
        med, mad = rolling_median_mad(x, window, min_periods=min_periods)
        ref_med, ref_mad = naive_median_mad(x, window, min_periods)
        assert same(med, ref_med)
        assert same(mad, ref_mad)
        assert same(rolling_median(x, window, min_periods=min_periods), ref_med)


@pytest.mark.parametrize("window", [1, 3, 9, 61])
def test_centred_windows_equal_the_naive_centred_median(window: int) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=400)
    x[rng.random(400) < 0.1] = np.nan
    med, mad = rolling_median_mad(x, window, center=True, min_periods=1)
    ref_med, ref_mad = naive_median_mad(x, window, 1, center=True)
    assert same(med, ref_med)
    assert same(mad, ref_mad)
    # full windows only by default: NaN in the first and last window // 2 samples
    full = rolling_median(np.arange(20.0), window, center=True)
    h = window // 2
    assert np.all(np.isnan(full[:h])) and np.all(np.isnan(full[20 - h :]))
    assert np.array_equal(full[h : 20 - h], np.arange(h, 20 - h, dtype=float))


@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        st.integers(0, 120),
        elements=st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
            st.sampled_from([np.nan, 0.0, 1.0, 1.0, -1.0, np.inf]),
        ),
    ),
    window=st.integers(1, 25),
    data=st.data(),
)
def test_property_median_and_mad_are_exact_on_any_input(
    x: np.ndarray, window: int, data: st.DataObject
) -> None:
    """Any values, ties, NaN and inf (both missing), any window and min_periods."""
    min_periods = data.draw(st.integers(1, window))
    med, mad = rolling_median_mad(x, window, min_periods=min_periods)
    ref_med, ref_mad = naive_median_mad(x, window, min_periods)
    assert same(med, ref_med)
    assert same(mad, ref_mad)


@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        st.integers(0, 120),
        elements=st.one_of(st.integers(-5, 5).map(float), st.just(np.nan)),
    ),
    window=st.integers(1, 25),
    data=st.data(),
)
def test_property_rolling_max_equals_the_naive_max(
    x: np.ndarray, window: int, data: st.DataObject
) -> None:
    min_periods = data.draw(st.integers(1, window))
    center = window % 2 == 1 and data.draw(st.booleans())
    got = rolling_max(x, window, center=center, min_periods=min_periods)
    want = np.array(
        [w.max() if w.size >= min_periods else np.nan for w in windows(x, window, center)]
    )
    assert same(got, want)


def test_robust_z_is_the_modified_z_score_of_each_window() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, 500)
    x[250] = 40.0
    z = rolling_robust_z(x, 31, center=True, mad_floor=0.1)
    med, mad = naive_median_mad(x, 31, 31, center=True)
    expected = (x - med) / (MAD_TO_SIGMA * np.maximum(mad, 0.1))
    assert same(z, expected)
    assert np.argmax(np.abs(np.nan_to_num(z))) == 250
    # trailing window: the sample is in its own window
    zt = rolling_robust_z(x, 31)
    med_t, mad_t = naive_median_mad(x, 31, 31)
    assert same(zt, (x - med_t) / (MAD_TO_SIGMA * mad_t))


def test_robust_z_on_a_flat_series_is_zero_or_infinite_without_a_floor() -> None:
    x = np.full(20, 5.0)
    x[15] = 6.0
    z = rolling_robust_z(x, 5)
    assert np.all(np.isnan(z[:4]))
    assert np.all(z[4:15] == 0.0)
    assert z[15] == np.inf
    assert np.isfinite(rolling_robust_z(x, 5, mad_floor=0.5)[15])


def test_bad_arguments_are_rejected() -> None:
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="window"):
        rolling_median(x, 0)
    with pytest.raises(ValueError, match="odd"):
        rolling_median(x, 4, center=True)
    with pytest.raises(ValueError, match="min_periods"):
        rolling_median(x, 3, min_periods=4)
    with pytest.raises(ValueError, match="1-D"):
        rolling_median(np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="mad_floor"):
        rolling_robust_z(x, 3, mad_floor=-1.0)


def test_integer_input_is_accepted_and_not_modified() -> None:
    x = np.array([5, 1, 4, 2, 3, 9], dtype=np.int64)
    x.setflags(write=False)
    assert same(rolling_median(x, 3), np.array([np.nan, np.nan, 4.0, 2.0, 3.0, 3.0]))
    assert same(rolling_median(x[:0], 3), np.zeros(0))


def test_true_runs() -> None:
    starts, stops = true_runs(np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool))
    assert starts.tolist() == [0, 3, 6] and stops.tolist() == [2, 4, 9]
    starts, stops = true_runs(np.zeros(0, dtype=bool))
    assert starts.size == 0 and stops.size == 0


def test_runs_across_skips() -> None:
    """Hits (H) break only on misses (M); cells of neither (.) are skipped."""
    rows = ["HH.H.MH", "..M..HH", "MMMMMMM"]
    hit = np.array([[c == "H" for c in r] for r in rows])
    miss = np.array([[c == "M" for c in r] for r in rows])
    runs, cols = runs_across_skips(hit, miss)
    assert runs.row.tolist() == [0, 0, 1]
    assert runs.first.tolist() == [0, 6, 5] and runs.last.tolist() == [3, 6, 6]
    assert runs.hits.tolist() == [3, 1, 2]
    assert cols[runs.first_hit[0] : runs.first_hit[0] + 3].tolist() == [0, 1, 3]
    empty, _ = runs_across_skips(np.zeros((2, 3), dtype=bool), np.ones((2, 3), dtype=bool))
    assert empty.row.size == 0
