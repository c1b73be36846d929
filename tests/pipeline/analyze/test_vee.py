"""VEE: every check on a series crafted to trip it (and only it), estimates flagged with the
ESPI QualityOfReading codes of espiDerived.xsd, raw values never overwritten, and a clean
realistic PV series passing untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest

from pipeline.analyze.vee import CHECKS, VeeLimits, VeeResult, max_interval_value, vee
from pipeline.espi.codes import (
    QUALITY_ESTIMATED_LINEAR,
    QUALITY_ESTIMATED_REFERENCE_DAY,
    QUALITY_QUESTIONABLE,
    QUALITY_VALID,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*dayofyear.*")

STEP_S = 900
DAY = 86_400 // STEP_S
T0 = 1_782_000_000 - 1_782_000_000 % 86_400  # a UTC midnight in 2026


def grid(n: int) -> np.ndarray:
    return T0 + STEP_S * np.arange(n, dtype=np.int64)


def smooth(n: int) -> np.ndarray:
    """A load-like integer series: daily cycle, 500..1500 counts, no noise."""
    k = np.arange(n)
    return np.round(1000 + 500 * np.sin(2 * np.pi * k / DAY)).astype(np.int64)


def kinds(result: VeeResult) -> list[str]:
    return [f.kind for f in result.findings]


def assert_raw_kept(result: VeeResult, values: np.ndarray) -> None:
    """The raw column is exactly the input reading of each slot."""
    src = result.source_index
    placed = src >= 0
    assert np.array_equal(result.raw_value[placed], values[src[placed]].astype(float))
    assert np.all(np.isnan(result.raw_value[~placed]))


def test_a_clean_series_passes_untouched() -> None:
    values = smooth(3 * DAY)
    r = vee(grid(values.size), values, STEP_S, VeeLimits(max_value=2000))
    assert r.findings == ()
    assert np.all(r.quality == QUALITY_VALID)
    assert np.array_equal(r.value, values.astype(float))
    assert np.array_equal(r.start_s, grid(values.size))
    assert_raw_kept(r, values)


def test_inputs_are_never_written_and_order_does_not_matter() -> None:
    values = smooth(2 * DAY)
    values[30] = -7
    starts = grid(values.size)
    keep = np.ones(values.size, dtype=bool)
    keep[50:54] = False
    starts, values = starts[keep], values[keep]
    order = np.random.default_rng(0).permutation(values.size)
    s_in, v_in = starts[order].copy(), values[order].copy()
    s_in.setflags(write=False)
    v_in.setflags(write=False)
    r = vee(s_in, v_in, STEP_S)
    ref = vee(starts, values, STEP_S)
    assert np.array_equal(s_in, starts[order]) and np.array_equal(v_in, values[order])
    assert np.array_equal(r.value, ref.value, equal_nan=True)
    assert np.array_equal(r.quality, ref.quality)
    assert kinds(r) == kinds(ref)
    assert_raw_kept(r, v_in)


def test_short_gap_is_linearly_interpolated_and_flagged_9() -> None:
    values = smooth(DAY)
    starts = grid(values.size)
    keep = np.ones(values.size, dtype=bool)
    keep[40:43] = False  # 45 minutes
    r = vee(starts[keep], values[keep], STEP_S)
    [gap] = r.findings
    assert (gap.kind, gap.first, gap.stop, gap.action) == ("gap", 40, 43, "estimated")
    assert (gap.start_s, gap.end_s) == (int(starts[40]), int(starts[43]))
    assert "3 by linear interpolation" in gap.reason
    a, b = float(values[39]), float(values[43])
    assert np.allclose(r.value[40:43], a + (b - a) * np.arange(1, 4) / 4, rtol=0, atol=1e-9)
    assert np.all(r.quality[40:43] == QUALITY_ESTIMATED_LINEAR)
    assert np.all(np.isnan(r.raw_value[40:43]))
    assert np.all(r.quality[np.r_[0:40, 43 : values.size]] == QUALITY_VALID)


def test_long_gap_is_estimated_from_reference_days_and_flagged_8() -> None:
    rng = np.random.default_rng(1)
    values = smooth(4 * DAY) + rng.integers(-20, 21, 4 * DAY)
    starts = grid(values.size)
    keep = np.ones(values.size, dtype=bool)
    gap = slice(3 * DAY + 20, 3 * DAY + 40)  # 5 h on the fourth day
    keep[gap] = False
    r = vee(starts[keep], values[keep], STEP_S)
    [finding] = r.findings
    assert finding.kind == "gap" and "20 from reference days" in finding.reason
    j = np.arange(gap.start, gap.stop)
    expected = (values[j - DAY] + values[j - 2 * DAY] + values[j - 3 * DAY]) / 3
    assert np.allclose(r.value[gap], expected, rtol=0, atol=1e-9)
    assert np.all(r.quality[gap] == QUALITY_ESTIMATED_REFERENCE_DAY)
    # with reference days disabled, a bounded long gap falls back to interpolation
    r2 = vee(starts[keep], values[keep], STEP_S, VeeLimits(reference_days=0))
    assert np.all(r2.quality[gap] == QUALITY_ESTIMATED_LINEAR)


def test_a_failed_reading_is_estimated_and_at_the_edge_from_a_later_day() -> None:
    values = smooth(2 * DAY)
    starts = grid(values.size)
    values[DAY + 5] = 10**9  # a wild reading inside the series
    values[0] = 10**9  # and one at its very start: no reading before it
    r = vee(starts, values, STEP_S, VeeLimits(max_value=5000))
    assert r.raw_value[DAY + 5] == 10**9 and r.raw_value[0] == 10**9  # raw kept
    assert r.value[DAY + 5] == pytest.approx((values[DAY + 4] + values[DAY + 6]) / 2)
    assert r.quality[DAY + 5] == QUALITY_ESTIMATED_LINEAR
    assert r.value[0] == values[DAY]  # the same interval one day later
    assert r.quality[0] == QUALITY_ESTIMATED_REFERENCE_DAY
    assert [(f.kind, f.first, f.action) for f in r.findings] == [
        ("range_high", 0, "estimated"),
        ("range_high", DAY + 5, "estimated"),
    ]


def test_unestimable_reading_is_nan_and_questionable() -> None:
    starts = grid(3)
    values = np.array([10**9, 700, 710])
    r = vee(starts, values, STEP_S, VeeLimits(max_value=5000))  # no other day to borrow
    assert np.isnan(r.value[0]) and r.raw_value[0] == 10**9
    assert r.quality.tolist() == [QUALITY_QUESTIONABLE, QUALITY_VALID, QUALITY_VALID]
    [f] = r.findings
    assert (f.kind, f.action) == ("range_high", "unestimated")
    assert f.reason.endswith("1 not estimable")


def test_a_long_gap_without_history_falls_back_to_interpolation() -> None:
    starts = np.array([T0, T0 + 10 * 86_400], dtype=np.int64)  # two readings ten days apart
    r = vee(starts, np.array([5, 7]), STEP_S)
    assert r.n_intervals == 10 * DAY + 1
    j = np.arange(1, 10 * DAY)
    on_day = j % DAY == 0  # the first reading's interval on later days: a reference day
    assert np.all(r.quality[j[on_day]] == QUALITY_ESTIMATED_REFERENCE_DAY)
    assert np.all(r.value[j[on_day]] == 5.0)
    assert np.all(r.quality[j[~on_day]] == QUALITY_ESTIMATED_LINEAR)
    assert np.allclose(r.value[j[~on_day]], 5 + 2 * j[~on_day] / (10 * DAY))
    [f] = r.findings
    assert f.action == "estimated" and "10.0 days" in f.reason
    assert f"{on_day.sum()} from reference days" in f.reason


@pytest.mark.parametrize(("bad", "kind"), [(-3, "range_low"), (99_999, "range_high")])
def test_range_checks(bad: int, kind: str) -> None:
    values = smooth(DAY)
    values[10] = bad
    limits = VeeLimits(max_value=max_interval_value(6000, STEP_S))
    r = vee(grid(values.size), values, STEP_S, limits)
    assert kinds(r) == [kind]
    assert r.findings[0].first == 10 and r.findings[0].action == "estimated"
    assert r.raw_value[10] == bad and r.quality[10] == QUALITY_ESTIMATED_LINEAR
    assert r.value[10] == pytest.approx((values[9] + values[11]) / 2)


def test_max_interval_value() -> None:
    # 10 kW for 15 minutes = 2500 Wh, +10 %; in units of 10 Wh (multiplier 1): 275
    assert max_interval_value(10_000, 900) == pytest.approx(2750.0)
    assert max_interval_value(10_000, 900, power_of_ten_multiplier=1) == pytest.approx(275.0)
    with pytest.raises(ValueError):
        max_interval_value(0, 900)


def test_spike_against_neighbours_is_found_and_estimated() -> None:
    rng = np.random.default_rng(2)
    values = smooth(2 * DAY) + rng.integers(-15, 16, 2 * DAY)
    values[70] += 900  # far beyond the noise, inside the physical range
    r = vee(grid(values.size), values, STEP_S, VeeLimits(max_value=5000))
    assert kinds(r) == ["spike"]
    assert (r.findings[0].first, r.findings[0].stop) == (70, 71)
    assert r.quality[70] == QUALITY_ESTIMATED_LINEAR
    assert abs(r.value[70] - (values[69] + values[71]) / 2) < 1e-9


def test_no_spike_on_a_cloud_passing_over_a_clipped_plateau() -> None:
    values = np.full(60, 2500)
    values[:20] = np.linspace(0, 2500, 20).round()
    values[30] = 1300  # a cloud for one interval under inverter clipping
    r = vee(grid(60), values, STEP_S, VeeLimits(stuck_exempt_at_or_above=2500))
    assert "spike" not in kinds(r)


def test_stuck_run_is_flagged_questionable_but_kept() -> None:
    values = smooth(DAY)
    values[20:31] = 1234  # 11 intervals = 2.75 h > 2 h
    values[60:66] = 1500  # 6 intervals = 1.5 h: not stuck
    r = vee(grid(values.size), values, STEP_S)
    [f] = r.findings
    assert (f.kind, f.first, f.stop, f.action) == ("stuck", 20, 31, "flagged")
    assert "11 identical readings of 1234" in f.reason
    assert np.all(r.quality[20:31] == QUALITY_QUESTIONABLE)
    assert np.array_equal(r.value[20:31], np.full(11, 1234.0))
    # estimated instead when asked to
    r2 = vee(grid(values.size), values, STEP_S, VeeLimits(estimate_kinds=frozenset({"stuck"})))
    assert np.all(r2.quality[20:31] == QUALITY_ESTIMATED_REFERENCE_DAY) or np.all(
        r2.quality[20:31] == QUALITY_ESTIMATED_LINEAR
    )


def test_stuck_check_ignores_zeros_and_the_exempt_flat_top() -> None:
    values = np.zeros(DAY, dtype=np.int64)  # a PV night, then a clipped noon
    values[40:56] = 2500
    assert vee(grid(DAY), values, STEP_S, VeeLimits(stuck_exempt_at_or_above=2500)).findings == ()
    assert kinds(vee(grid(DAY), values, STEP_S)) == ["stuck"]


def test_duplicates_same_value_are_ignored_conflicts_are_questionable() -> None:
    values = smooth(DAY)
    starts = grid(DAY)
    s = np.concatenate((starts, starts[[5, 5, 9]]))
    v = np.concatenate((values, [values[5], values[5], values[9] + 40]))
    r = vee(s, v, STEP_S)
    dup = r.findings_of("duplicate")
    conflict = r.findings_of("duplicate_conflict")
    assert [(f.first, f.action) for f in dup] == [(5, "kept_first")]
    assert "2 repeated" in dup[0].reason
    assert [(f.first, f.action) for f in conflict] == [(9, "flagged")]
    assert r.quality[5] == QUALITY_VALID and r.quality[9] == QUALITY_QUESTIONABLE
    assert r.raw_value[9] == values[9] and r.source_index[9] == 9  # first received kept


def test_overlap_and_duration_mismatch() -> None:
    values = smooth(DAY)
    duration = np.full(DAY, STEP_S)
    duration[10] = 2 * STEP_S  # runs into the next interval
    r = vee(grid(DAY), values, STEP_S, duration_s=duration)
    assert sorted(kinds(r)) == ["duration_mismatch", "overlap"]
    overlap = r.findings_of("overlap")[0]
    assert (overlap.first, overlap.stop) == (10, 12)
    assert np.all(r.quality[10:12] == QUALITY_QUESTIONABLE)


def test_clock_skew_within_tolerance_is_snapped_beyond_it_dropped() -> None:
    values = smooth(DAY)
    starts = grid(DAY).copy()
    starts[20] += 40  # within 10 % of 900 s
    starts[30] -= 300  # beyond
    r = vee(starts, values, STEP_S)
    skew = r.findings_of("clock_skew")
    assert [(f.first, f.action) for f in skew] == [(20, "snapped"), (30, "dropped")]
    assert "+40..+40 s off the 900 s grid" in skew[0].reason
    assert r.raw_value[20] == values[20] and r.quality[20] == QUALITY_VALID
    assert r.dropped_index.tolist() == [30]
    assert np.isnan(r.raw_value[30]) and r.quality[30] == QUALITY_ESTIMATED_LINEAR
    assert [f.first for f in r.findings_of("gap")] == [30]


def test_clock_drift_is_reported_with_its_rate() -> None:
    n = 4 * DAY
    values = smooth(n)
    drift = np.floor(np.arange(n) * 10.0 / DAY).astype(np.int64)  # +10 s per day
    r = vee(grid(n) + drift, values, STEP_S)
    [f] = r.findings_of("clock_drift")
    assert f.action == "reported" and (f.first, f.stop) == (0, n)
    assert "+10.0 s/day" in f.reason
    assert np.all(r.quality == QUALITY_VALID)  # 0..39 s: all snapped, values kept
    # a constant offset is skew, not drift
    assert vee(grid(n) + 20, values, STEP_S).findings_of("clock_drift") == []


def test_nan_readings_count_as_missing() -> None:
    values = smooth(DAY).astype(float)
    values[12] = np.nan
    r = vee(grid(DAY), values, STEP_S)
    assert kinds(r) == ["gap"] and r.quality[12] == QUALITY_ESTIMATED_LINEAR


def test_findings_beyond_the_cap_are_summarised() -> None:
    values = smooth(DAY)
    values[10:50:4] = -1  # ten separate negative readings
    r = vee(grid(DAY), values, STEP_S, VeeLimits(max_findings_per_kind=3))
    found = r.findings_of("range_low")
    assert [f.first for f in found] == [10, 14, 18]
    assert (found[-1].stop, found[-1].reason[:16]) == (47, "8 more runs of t")
    assert np.count_nonzero(r.quality == QUALITY_ESTIMATED_LINEAR) == 10  # all still marked


def test_empty_series_and_bad_arguments() -> None:
    r = vee(np.zeros(0, dtype=np.int64), np.zeros(0), STEP_S)
    assert r.n_intervals == 0 and r.findings == ()
    with pytest.raises(ValueError, match="equal length"):
        vee(grid(3), np.zeros(4), STEP_S)
    with pytest.raises(ValueError, match="interval_length_s"):
        vee(grid(3), np.zeros(3), 0)
    with pytest.raises(ValueError, match="max_grid_intervals"):
        vee(np.array([0, 10**12]), np.zeros(2), STEP_S)
    with pytest.raises(ValueError, match="whole epoch seconds"):
        vee(np.array([0.5, 900.0]), np.zeros(2), STEP_S)
    for kwargs in (
        {"spike_window": 4},
        {"max_value": -1.0},
        {"clock_tolerance_fraction": 0.5},
        {"estimate_kinds": frozenset({"gap"})},
        {"stuck_min_readings": 1},
        {"max_findings_per_kind": 1},
    ):
        with pytest.raises(ValueError):
            VeeLimits(**kwargs)
    assert set(CHECKS) == {"range_low", "range_high", "spike", "stuck"}


def test_realistic_clean_pv_series_raises_no_finding() -> None:
    """Ten days of a 10 kW PV site (pvlib clear sky, passing clouds, clipping at 8.5 kW AC)
    in Wh at 15 minutes: VEE with the site's limits finds nothing (no false positives)."""
    rng = np.random.default_rng(7)
    loc = pvlib.location.Location(40.0, -105.0, altitude=1600)
    starts = grid(10 * DAY)
    times = pd.to_datetime(starts + STEP_S // 2, unit="s", utc=True)
    sun = loc.get_solarposition(times)
    cs = loc.get_clearsky(times, model="ineichen", linke_turbidity=3.0)
    poa = pvlib.irradiance.get_total_irradiance(
        30, 180, sun.apparent_zenith, sun.azimuth, cs.dni, cs.ghi, cs.dhi
    ).poa_global.to_numpy()
    cloud = np.clip(1 - 0.6 * rng.random(starts.size) * (rng.random(starts.size) < 0.3), 0, 1)
    power_w = np.minimum(10_000 * poa / 1000 * cloud, 8500)
    energy = np.round(power_w * STEP_S / 3600).astype(np.int64)
    limits = VeeLimits(
        max_value=max_interval_value(8500, STEP_S),
        stuck_exempt_at_or_above=0.99 * 8500 * STEP_S / 3600,
    )
    r = vee(starts, energy, STEP_S, limits)
    assert r.findings == ()
    assert np.all(r.quality == QUALITY_VALID)
