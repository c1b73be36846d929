"""Field faults: each changes exactly its window and row, and its ground truth says what."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from meters.clock import clock_offset_s, interval_labels_s
from meters.energy import INT48_MAX
from meters.faults import (
    FIELD_FAULTS,
    GROUND_TRUTH_FIELDS,
    FaultInstance,
    apply_register_faults,
    apply_source_faults,
    clock_fault_offsets,
)

STEP_S = 60.0
N_SITES, N_STEPS = 4, 2 * 1440  # two days of 1-min intervals
START = pd.Timestamp("2026-06-21T00:00:00Z")
TIMES_UTC = START + pd.to_timedelta((np.arange(N_STEPS) + 0.5) * STEP_S, unit="s")
NOMINAL_W = np.full(N_SITES, 4000.0)

#: Parameters that make each kind act inside a window of 3 h .. 8 h (shade at 04..06 UTC).
PARAMS: dict[str, dict[str, float]] = {
    "partial_shading": {"from_hour": 4.0, "to_hour": 6.0},
    "spike": {"count": 7.0, "factor": 3.0},
    "soiling": {"rate_pct_per_day": 5.0},
    "degradation": {"rate_pct_per_year": 900.0},
    "clock_jump": {"offset_s": 3600.0},
}


def _power() -> np.ndarray:
    return np.random.default_rng(2).uniform(100.0, 5000.0, size=(N_SITES, N_STEPS))


def _values() -> np.ndarray:
    return np.random.default_rng(2).integers(1, 90, size=(N_SITES, N_STEPS)).astype(np.int64)


def _expected_window(kind: str, at_s: float, duration_s: float) -> tuple[int, int]:
    """Readings the window touches, from the kind's documented window rule."""
    horizon = N_STEPS * STEP_S
    end = at_s + duration_s
    if kind == "storm_cutout":
        end += FIELD_FAULTS[kind].params["restart_delay_s"].default
    if kind == "degradation":
        end = horizon
    if kind == "spike":
        first = math.ceil(at_s / STEP_S)
        return first, first + 7
    layer = FIELD_FAULTS[kind].layer
    if layer == "source":
        return math.floor(at_s / STEP_S), math.ceil(min(end, horizon) / STEP_S)
    return math.ceil(at_s / STEP_S), math.ceil(min(end, horizon) / STEP_S)


@pytest.mark.parametrize("kind", sorted(FIELD_FAULTS))
@pytest.mark.parametrize("at_s", [3 * 3600.0, 3 * 3600.0 + 25.0])
def test_each_kind_changes_exactly_its_window_and_row(kind: str, at_s: float) -> None:
    duration_s = 5 * 3600.0 + 10.0
    fault = FaultInstance(kind, 2, "site-00002", at_s, duration_s, PARAMS.get(kind, {}))
    layer = FIELD_FAULTS[kind].layer
    if layer == "source":
        before: np.ndarray = _power()
        after, truth = apply_source_faults(before, [fault], STEP_S, TIMES_UTC, NOMINAL_W)
    elif layer == "register":
        before = _values()
        after, truth = apply_register_faults(before, [fault], STEP_S, power_of_ten_multiplier=1)
    else:
        before = np.zeros((N_SITES, N_STEPS))
        after, truth = clock_fault_offsets([fault], N_SITES, N_STEPS, STEP_S)
    (record,) = truth
    assert set(record) == set(GROUND_TRUTH_FIELDS)
    assert record["kind"] == kind and record["meter_id"] == "site-00002" and record["row"] == 2
    assert record["params"] == fault.params
    lo, hi = record["first_reading"], record["end_reading"]
    assert (lo, hi) == _expected_window(kind, at_s, duration_s)
    assert record["window_readings"] == hi - lo
    # other rows and the target row outside its window: byte-identical
    others = [0, 1, 3]
    assert after[others].tobytes() == before[others].tobytes()
    assert after[2, :lo].tobytes() == before[2, :lo].tobytes()
    assert after[2, hi:].tobytes() == before[2, hi:].tobytes()
    changed = np.flatnonzero(after[2] != before[2])
    assert record["affected_readings"] == len(changed) > 0
    diff = (after[2] - before[2]).astype(np.float64)
    if layer == "source":
        # the energy delta is the integral of the power difference
        assert record["energy_delta_wh"] == pytest.approx(diff.sum() * STEP_S / 3600.0)
        assert record["energy_delta_wh"] < 0  # all source faults lose energy
    elif layer == "register":
        assert record["energy_delta_wh"] == pytest.approx(diff.sum() * 10.0)
    else:
        assert record["energy_delta_wh"] is None
    assert record["start_s"] == at_s and record["end_s"] <= N_STEPS * STEP_S


def test_soiling_ramps_at_its_rate_and_cleaning_restores() -> None:
    power = np.full((1, N_STEPS), 1000.0)
    fault = FaultInstance("soiling", 0, "pv-00000", 3600.0, 86400.0, {"rate_pct_per_day": 2.0})
    after, (truth,) = apply_source_faults(power, [fault], STEP_S)
    inside = slice(60, 60 + 1440)
    t_mid = (np.arange(N_STEPS) + 0.5) * STEP_S
    loss = 1.0 - after[0, inside] / 1000.0
    slope, intercept = np.polyfit(t_mid[inside] - 3600.0, loss, 1)
    assert slope * 86400.0 == pytest.approx(0.02, rel=1e-9)  # 2 %/day
    assert intercept == pytest.approx(0.0, abs=1e-12)
    assert np.all(after[0, 60 + 1440 :] == 1000.0)  # cleaned
    # the integral of a linear ramp to 2 % over a day of 1 kW: 0.5 * 0.02 * 24 kWh
    assert truth["energy_delta_wh"] == pytest.approx(-0.5 * 0.02 * 24_000.0)


def test_soiling_saturates_at_its_maximum_loss() -> None:
    power = np.full((1, N_STEPS), 1000.0)
    params = {"rate_pct_per_day": 10.0, "max_loss_pct": 5.0}
    fault = FaultInstance("soiling", 0, "pv", 0.0, 0.0, params)
    after, _ = apply_source_faults(power, [fault], STEP_S)
    assert after.min() == pytest.approx(950.0) and after[0, -1] == pytest.approx(950.0)


def test_storm_cutout_stops_the_turbine_until_the_restart_delay_has_passed() -> None:
    power = np.full((1, 200), 2000.0)
    fault = FaultInstance("storm_cutout", 0, "wind", 600.0, 1200.0, {"restart_delay_s": 630.0})
    after, (truth,) = apply_source_faults(power, [fault], STEP_S, nominal_power_w=np.array([2e6]))
    # stopped on [600, 2430): readings 10..39 and half of reading 40
    assert np.all(after[0, 10:40] == 0.0)
    assert after[0, 40] == pytest.approx(1000.0)
    assert np.all(after[0, :10] == 2000.0) and np.all(after[0, 41:] == 2000.0)
    assert truth["end_s"] == 2430.0
    assert truth["energy_delta_wh"] == pytest.approx(-2000.0 * 1830.0 / 3600.0)


def test_stuck_value_repeats_the_value_at_the_fault_start() -> None:
    values = _values()
    fault = FaultInstance("stuck_value", 1, "pv-00001", 600.0, 3000.0)
    after, (truth,) = apply_register_faults(values, [fault], STEP_S)
    assert np.all(after[1, 10:60] == values[1, 10])
    assert truth["affected_readings"] == int(np.count_nonzero(values[1, 10:60] != values[1, 10]))


def test_spike_clips_to_the_espi_int48_range_and_zero_value_reads_zero() -> None:
    values = np.full((1, 10), 2**46, dtype=np.int64)
    spike = FaultInstance("spike", 0, "m", 0.0, 0.0, {"factor": 8.0})
    spiked, _ = apply_register_faults(values, [spike], STEP_S)
    assert spiked[0, 0] == INT48_MAX and np.all(spiked[0, 1:] == 2**46)
    zero = FaultInstance("zero_value", 0, "m", 120.0, 0.0)
    zeroed, (truth,) = apply_register_faults(values, [zero], STEP_S)
    assert np.all(zeroed[0, 2:] == 0) and truth["affected_readings"] == 8
    assert truth["end_s"] == 600.0  # open-ended: the end of the run


def test_curtailment_caps_at_the_limit_and_trip_covers_part_of_an_interval() -> None:
    power = np.full((2, 20), 3000.0)
    faults = [
        FaultInstance("turbine_curtailment", 0, "wind-00000", 0.0, 600.0, {"limit_fraction": 0.3}),
        FaultInstance("inverter_trip", 1, "pv-00001", 90.0, 0.0),
    ]
    nominal = np.array([5000.0, 5000.0])
    after, truth = apply_source_faults(power, faults, STEP_S, nominal_power_w=nominal)
    assert np.all(after[0, :10] == 1500.0) and np.all(after[0, 10:] == 3000.0)
    assert after[1, 1] == pytest.approx(1500.0)  # tripped half-way through the interval
    assert np.all(after[1, 2:] == 0.0) and after[1, 0] == 3000.0
    assert truth[1]["energy_delta_wh"] == pytest.approx(-3000.0 * (1200.0 - 90.0) / 3600.0)
    with pytest.raises(ValueError, match="turbine_curtailment: needs nominal_power_w"):
        apply_source_faults(power, faults[:1], STEP_S)
    with pytest.raises(ValueError, match="partial_shading: needs times_utc"):
        apply_source_faults(power, [FaultInstance("partial_shading", 0, "pv", 0.0)], STEP_S)


def test_shading_follows_local_hours_every_day() -> None:
    power = np.full((1, N_STEPS), 1000.0)
    fault = FaultInstance(
        "partial_shading",
        0,
        "pv",
        0.0,
        0.0,
        {"from_hour": 15.0, "to_hour": 17.0, "utc_offset_h": -5.0, "shade_fraction": 0.5},
    )
    after, (truth,) = apply_source_faults(power, [fault], STEP_S, TIMES_UTC)
    local_hour = ((np.arange(N_STEPS) + 0.5) * STEP_S / 3600.0 - 5.0) % 24.0
    shaded = (local_hour >= 15.0) & (local_hour < 17.0)
    assert np.all(after[0, shaded] == 500.0) and np.all(after[0, ~shaded] == 1000.0)
    assert truth["affected_readings"] == 2 * 120  # two days x two hours


def test_deltas_of_overlapping_faults_add_up_to_the_total_change() -> None:
    power = _power()
    faults = [
        FaultInstance("icing", 3, "wind-00003", 0.0, 7200.0, {"loss_fraction": 0.4}),
        FaultInstance("turbine_curtailment", 3, "wind-00003", 3600.0, 7200.0),
        FaultInstance("degradation", 3, "wind-00003", 1800.0, 0.0, {"rate_pct_per_year": 100.0}),
    ]
    after, truth = apply_source_faults(power, faults, STEP_S, nominal_power_w=NOMINAL_W)
    total = (after[3] - power[3]).sum() * STEP_S / 3600.0
    assert sum(t["energy_delta_wh"] for t in truth) == pytest.approx(total)
    np.testing.assert_array_equal(power, _power())  # the input is left alone


def test_a_clock_jump_shifts_labels_until_the_next_sync() -> None:
    n_steps = 3 * 60  # three hours of 1-min intervals
    fault = FaultInstance("clock_jump", 0, "pv-00000", 1800.0, 0.0, {"offset_s": 3600.0})
    jump, (truth,) = clock_fault_offsets(
        [fault], 2, n_steps, STEP_S, sync_period_s=3600.0, sync_phase_s=np.array([0.0, 0.0])
    )
    assert truth["end_s"] == 3600.0 and truth["affected_readings"] == 30
    starts = 60 * np.arange(n_steps, dtype=np.int64)
    drift = clock_offset_s(starts.astype(float), np.array([5.0, -5.0]), 3600.0, 0.0)
    labels = interval_labels_s(starts, drift + jump, 60)
    assert np.all(labels[1] == starts)
    assert np.all(labels[0, 30:60] == starts[30:60] + 3600)
    assert np.all(labels[0, :30] == starts[:30]) and np.all(labels[0, 60:] == starts[60:])
    # after the sync the meter re-uses labels it already sent: duplicates for the pipeline
    assert len(np.unique(labels[0])) == n_steps - 30
    # a jump of less than half an interval moves no label
    small = FaultInstance("clock_jump", 0, "pv", 0.0, 600.0, {"offset_s": 20.0})
    _, (t_small,) = clock_fault_offsets([small], 1, n_steps, STEP_S)
    assert t_small["affected_readings"] == 0 and t_small["window_readings"] == 10


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        (
            "soiling",
            {"params": {"rate_pct_per_day": 12.0}},
            r"soiling: rate_pct_per_day=12.0 out of range: "
            r"expected 0 <= rate_pct_per_day <= 10 \(%/day\)",
        ),
        (
            "spike",
            {"params": {"count": 2.5}},
            r"spike: count=2.5 out of range: expected an integer 1 <= count <= 10000",
        ),
        (
            "icing",
            {"params": {"loss": 0.2}},
            r"icing: unknown parameter loss=0.2: expected one of: loss_fraction",
        ),
        (
            "icing",
            {"params": {"loss_fraction": "high"}},
            r"icing: loss_fraction='high' is not a number: expected 0 <= loss_fraction <= 1",
        ),
        (
            "partial_shading",
            {"params": {"utc_offset_h": 15.0}},
            r"utc_offset_h=15.0 out of range: expected -12 <= utc_offset_h <= 14 \(h\)",
        ),
        (
            "storm_cutout",
            {"params": {"restart_delay_s": math.nan}},
            r"restart_delay_s=nan out of range",
        ),
        ("icing", {"at_s": -5.0}, r"icing: at_s=-5.0: expected a finite number >= 0 s"),
        (
            "icing",
            {"duration_s": math.inf},
            r"icing: duration_s=inf: expected a finite number >= 0 s",
        ),
        ("icing", {"row": -1}, r"icing: row=-1: expected an integer >= 0"),
        ("hail", {}, r"kind='hail': expected one of \["),
    ],
)
def test_bad_parameters_name_the_parameter_value_and_range(
    kind: str, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"row": 0, "meter_id": "m", "at_s": 0.0} | kwargs
    with pytest.raises(ValueError, match=message):
        FaultInstance(kind, **args)


def test_targets_are_checked_against_the_arrays_and_the_fleet_kind() -> None:
    power = np.ones((2, 10))
    with pytest.raises(ValueError, match=r"icing on wind-00005: row=5 outside the 2 rows \(0..1\)"):
        apply_source_faults(power, [FaultInstance("icing", 5, "wind-00005", 0.0)], STEP_S)
    wrong = FaultInstance("icing", 1, "pv-00001", 0.0)
    with pytest.raises(ValueError, match="icing on pv-00001: applies to wind fleets, not to a pv"):
        apply_source_faults(power, [wrong], STEP_S, fleet_kind="pv")
    # each function takes only its own layer, so one list can go to all three
    mixed = [FaultInstance("zero_value", 0, "m", 0.0), FaultInstance("icing", 1, "m", 0.0)]
    _, truth = apply_source_faults(power, mixed, STEP_S)
    assert [t["kind"] for t in truth] == ["icing"]


def test_registry_declares_layers_fleets_and_parameter_defaults_in_range() -> None:
    assert set(FIELD_FAULTS) == {
        "inverter_trip",
        "soiling",
        "degradation",
        "partial_shading",
        "turbine_curtailment",
        "icing",
        "storm_cutout",
        "stuck_value",
        "zero_value",
        "spike",
        "clock_jump",
    }
    for name, kind in FIELD_FAULTS.items():
        assert kind.name == name and kind.layer in ("source", "register", "clock")
        assert kind.fleet_kinds and set(kind.fleet_kinds) <= {"pv", "wind"}
        assert kind.doc
        for param_name, spec in kind.params.items():
            assert spec.minimum <= spec.default <= spec.maximum, (name, param_name)
            assert spec.unit and spec.doc


def _apply(faults: list[FaultInstance]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The faults' effect on their layer's array (power, register values or clock offsets)."""
    layer = faults[0].spec.layer
    if layer == "source":
        return apply_source_faults(_power(), faults, STEP_S, TIMES_UTC, NOMINAL_W)
    if layer == "register":
        return apply_register_faults(_values(), faults, STEP_S)
    return clock_fault_offsets(faults, N_SITES, N_STEPS, STEP_S)


#: Kinds whose window is set by ``at`` and ``duration`` (a spike's is set by its count).
_TIMED_KINDS = sorted(k for k in FIELD_FAULTS if k != "spike")


#: Times in whole seconds (sums of them are exact in float64), s.
_SECONDS = st.integers(0, 20 * 3600).map(float)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(_TIMED_KINDS),
    at_s=_SECONDS,
    duration_s=st.integers(1, 8 * 3600).map(float),
    inner=st.tuples(st.floats(0.0, 1.0), st.integers(1, 8 * 3600).map(float)),
    reverse=st.booleans(),
)
def test_overlapping_faults_of_one_kind_act_as_one_over_the_union_of_their_windows(
    kind: str,
    at_s: float,
    duration_s: float,
    inner: tuple[float, float],
    reverse: bool,
) -> None:
    # the second starts inside the first (or where it ends): nested or overlapping
    second_at_s = at_s + round(inner[0] * duration_s)
    params = PARAMS.get(kind, {})
    first = FaultInstance(kind, 1, "site-00001", at_s, duration_s, params)
    second = FaultInstance(kind, 1, "site-00001", second_at_s, inner[1], params)
    end_s = max(at_s + duration_s, second_at_s + inner[1])
    union = FaultInstance(kind, 1, "site-00001", at_s, end_s - at_s, params)
    pair = [second, first] if reverse else [first, second]
    composed, truth = _apply(pair)
    expected, (union_truth,) = _apply([union])
    np.testing.assert_array_equal(composed, expected)
    assert truth == [union_truth]  # one fault, one ground-truth record


def test_overlapping_spikes_multiply_each_reading_once() -> None:
    values = _values()
    spikes = [
        FaultInstance("spike", 0, "m", 600.0, 0.0, {"factor": 10.0, "count": 5.0}),
        FaultInstance("spike", 0, "m", 780.0, 0.0, {"factor": 10.0, "count": 5.0}),
    ]
    after, (truth,) = apply_register_faults(values, spikes, STEP_S)
    np.testing.assert_array_equal(after[0, 10:18], values[0, 10:18] * 10)  # not x100
    assert after[0, 9] == values[0, 9] and after[0, 18] == values[0, 18]
    assert (truth["first_reading"], truth["end_reading"], truth["affected_readings"]) == (10, 18, 8)


@settings(max_examples=40, deadline=None)
@given(
    kinds=st.sampled_from(
        [
            ("zero_value", "stuck_value"),
            ("icing", "turbine_curtailment"),
            ("inverter_trip", "soiling"),
            ("clock_jump", "clock_jump"),
        ]
    ),
    starts_s=st.tuples(st.floats(0.0, 10 * 3600.0), st.floats(0.0, 10 * 3600.0)),
    durations_s=st.tuples(st.floats(60.0, 8 * 3600.0), st.floats(60.0, 8 * 3600.0)),
)
def test_faults_compose_in_the_order_they_start_whatever_order_they_are_listed(
    kinds: tuple[str, str], starts_s: tuple[float, float], durations_s: tuple[float, float]
) -> None:
    assume(starts_s[0] != starts_s[1])  # among equal starts, the order given decides
    offsets = ({"offset_s": 3600.0}, {"offset_s": -1800.0})
    faults = [
        FaultInstance(kind, 3, "m", at, dur, offsets[i] if kind == "clock_jump" else {})
        for i, (kind, at, dur) in enumerate(zip(kinds, starts_s, durations_s, strict=True))
    ]
    forward, truth = _apply(faults)
    backward, truth_backward = _apply(faults[::-1])
    np.testing.assert_array_equal(forward, backward)
    assert truth == truth_backward[::-1]  # records in the order the faults were given


def test_a_register_stuck_while_it_reads_zero_stays_at_zero() -> None:
    values = _values()
    zero = FaultInstance("zero_value", 0, "m", 0.0, 2400.0)  # readings 0..39
    stuck = FaultInstance("stuck_value", 0, "m", 1200.0, 2400.0)  # readings 20..59
    after, _ = apply_register_faults(values, [stuck, zero], STEP_S)
    assert np.all(after[0, :60] == 0) and after[0, 60] == values[0, 60]
