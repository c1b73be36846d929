"""Meter RTC drift with periodic sync, and how the meter labels its intervals."""

from __future__ import annotations

import numpy as np
import pytest

from meters.clock import (
    IEC_62054_21_PPM,
    clock_offset_s,
    energy_on_meter_clock_wh,
    interval_labels_s,
    label_residual_s,
    rtc_offset_after_outage_s,
    tuning_fork_drift_ppm,
)


def test_sawtooth_amplitude_is_drift_times_period() -> None:
    step_s, period_s = 10.0, 86400.0
    t = np.arange(0.0, 3 * 86400.0, step_s)
    drift = np.array([5.0, -3.0, 20.0])
    phase = np.array([0.0, 3600.0, 43210.0])
    off = clock_offset_s(t, drift, period_s, phase)
    assert off.shape == (3, len(t))
    amplitude = drift * 1e-6 * period_s
    # the largest offset is reached one sample before each sync
    np.testing.assert_allclose(
        np.abs(off).max(axis=1), np.abs(amplitude), atol=drift.max() * 1e-6 * step_s
    )
    assert np.all(np.sign(off) * np.sign(drift)[:, None] >= 0)
    # reset to 0 at each sync (multiples of the period from the phase)
    for i in range(3):
        at_sync = np.isclose(np.mod(t - phase[i], period_s), 0.0)
        assert at_sync.sum() == 3
        assert np.all(off[i, at_sync] == 0.0)
    # between syncs it grows at the drift rate
    slope = np.diff(off, axis=1) / step_s
    grows = slope > 0 if drift[0] > 0 else slope < 0
    np.testing.assert_allclose(slope[0, grows[0]], drift[0] * 1e-6)


def test_iec_62054_21_limit_is_half_a_second_a_day() -> None:
    assert abs(IEC_62054_21_PPM - 5.787) < 1e-3
    never = clock_offset_s(np.array([86400.0]), np.array([IEC_62054_21_PPM]), np.inf)
    assert never[0, 0] == pytest.approx(0.5)


def test_tuning_fork_parabola() -> None:
    # -0.034 ppm/degC^2 around 25 degC: -54.4 ppm at -15 degC and at 65 degC
    np.testing.assert_allclose(
        tuning_fork_drift_ppm(np.array([25.0, -15.0, 65.0]), 3.0), [3.0, -51.4, -51.4]
    )


def test_labels_keep_nominal_under_drift_and_shift_by_whole_steps_on_a_jump() -> None:
    nominal = 1_750_000_000 + 60 * np.arange(10, dtype=np.int64)
    offsets = np.array([[0.4] * 10, [-29.0] * 10, [3600.0] * 10, [90.0] * 10, [-90.0] * 10])
    labels = interval_labels_s(nominal, offsets, 60)
    assert labels.dtype == np.int64
    assert np.all(labels[0] == nominal) and np.all(labels[1] == nominal)
    assert np.all(labels[2] == nominal + 3600)
    assert np.all(labels[3] == nominal + 120)  # 1.5 steps rounds half up
    assert np.all(labels[4] == nominal - 60)
    residual = label_residual_s(offsets[:, 0], 60.0)
    np.testing.assert_allclose(residual, [0.4, -29.0, 0.0, -30.0, -30.0])
    as_float = interval_labels_s(nominal.astype(float), offsets, 60.5)
    assert as_float.dtype == np.float64


def test_energy_on_the_meters_clock_covers_the_shifted_window() -> None:
    energy = np.array([[0.0, 0.0, 60.0, 60.0]])
    # 10 s fast: reading i covers true [60 i - 10, 60 (i+1) - 10)
    fast = energy_on_meter_clock_wh(energy, np.full((1, 4), 10.0), 60.0)
    np.testing.assert_allclose(fast, [[0.0, 0.0, 50.0, 60.0]])
    slow = energy_on_meter_clock_wh(energy, np.full((1, 4), -10.0), 60.0)
    np.testing.assert_allclose(slow, [[0.0, 10.0, 60.0, 60.0]])
    # an offset of whole steps moves the labels, not the window
    whole = energy_on_meter_clock_wh(energy, np.full((1, 4), 120.0), 60.0)
    np.testing.assert_allclose(whole, energy)
    # a growing offset: windows tile the time axis, energy is conserved away from the ends
    rng = np.random.default_rng(5)
    e = np.concatenate((np.zeros((3, 5)), rng.uniform(0, 100, (3, 200)), np.zeros((3, 5))), axis=1)
    drift_off = clock_offset_s(60.0 * np.arange(210), np.array([20.0, -20.0, 1e4]), 3600.0)
    shifted = energy_on_meter_clock_wh(e, drift_off, 60.0)
    np.testing.assert_allclose(shifted.sum(axis=1), e.sum(axis=1))
    assert np.all(shifted >= 0)


def test_rtc_after_an_outage_is_behind_only_when_the_backup_ran_out() -> None:
    outage_s = np.array([3600.0, 2 * 86400.0, 2 * 86400.0])
    backup_s = np.array([86400.0, 86400.0, np.inf])
    np.testing.assert_allclose(
        rtc_offset_after_outage_s(outage_s, backup_s), np.array([0.0, -86400.0, 0.0])
    )
