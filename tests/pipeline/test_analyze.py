"""Robust z-score detector: quiet on smooth and quantised series, exactly one alert per
spike, at the spike, with the Iglewicz & Hoaglin score; state per meter."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analyze import (
    MAD_TO_SIGMA,
    ROBUST_Z_SPIKE,
    Alert,
    RobustZScoreDetector,
    _robust_z_kernel,
)

T0 = 1_782_000_000
STEP_S = 900


def starts(n: int, first: int = 0) -> np.ndarray:
    return T0 + STEP_S * np.arange(first, first + n, dtype=np.int64)


def feed(
    detector: RobustZScoreDetector, meter_id: str, values: np.ndarray, chunk: int = 15
) -> list[Alert]:
    """Feed `values` as uploads of `chunk` readings; all alerts raised."""
    alerts: list[Alert] = []
    for first in range(0, len(values), chunk):
        part = values[first : first + chunk]
        alerts += detector.update(meter_id, starts(len(part), first), part)
    return alerts


def noisy(n: int, seed: int = 1) -> np.ndarray:
    """Integer interval energy around 1000 with small noise."""
    return 1000 + np.random.default_rng(seed).integers(-3, 4, n)


def reference_score(values: np.ndarray, k: int, window: int = 60) -> float:
    """Modified z-score of values[k] - values[k-1] against the differences of the `window`
    values before it, computed directly with numpy."""
    before = values[max(0, k - window) : k].astype(float)
    ref = np.diff(before)
    med = np.median(ref)
    mad = np.median(np.abs(ref - med))
    spread = max(mad, 1.0, 0.02 * np.median(np.abs(before)))
    return float((values[k] - values[k - 1] - med) / (MAD_TO_SIGMA * spread))


def test_smooth_ramps_raise_no_alert() -> None:
    detector = RobustZScoreDetector()
    linear = 50.0 * np.arange(400)
    daylight = 5000 * np.sin(np.linspace(0, np.pi, 400))  # a PV day, 400 intervals
    assert feed(detector, "linear", linear) == []
    assert feed(detector, "pv", daylight) == []


def test_changes_of_slope_raise_no_alert_thanks_to_the_relative_floor() -> None:
    # Interpolated hourly weather: piecewise-linear power, slopes changing every 60 values.
    knots = np.array([2740, 2740, 2300, 2600, 1500, 1900, 2740, 2000], dtype=float)
    series = np.round(np.interp(np.arange(420), 60 * np.arange(8), knots))
    assert feed(RobustZScoreDetector(), "wind", series) == []
    # without the relative floor, every change of slope scores as a spike
    assert len(feed(RobustZScoreDetector(mad_floor_fraction=0.0), "wind", series)) >= 3


def test_quantised_flat_series_raise_no_alert() -> None:
    detector = RobustZScoreDetector()
    steps = 100 + np.random.default_rng(7).integers(0, 2, 500)  # 0/1-count flicker
    assert feed(detector, "flicker", steps) == []
    assert feed(detector, "flat", np.full(500, 42)) == []


@pytest.mark.parametrize("at", [100, 104, 105])  # mid-upload, last and first of an upload
@pytest.mark.parametrize("jump", [400, -400])
def test_single_spike_raises_exactly_one_alert_at_its_start(at: int, jump: int) -> None:
    values = noisy(300)
    values[at] += jump
    alerts = feed(RobustZScoreDetector(), "m-1", values)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.meter_id, alert.start_s, alert.kind) == ("m-1", T0 + STEP_S * at, ROBUST_Z_SPIKE)
    assert alert.value == values[at]
    assert np.sign(alert.score) == np.sign(jump)
    assert alert.score == pytest.approx(reference_score(values, at))
    assert abs(alert.score) > 8.0


def test_a_level_shift_alerts_once() -> None:
    values = noisy(300)
    values[150:] += 500  # e.g. an inverter coming back
    alerts = feed(RobustZScoreDetector(), "m-1", values)
    assert [a.start_s for a in alerts] == [T0 + STEP_S * 150]


def test_no_alert_before_half_a_window_of_history() -> None:
    values = noisy(200)
    values[20] += 400  # only 19 differences of history at window 60
    values[120] += 400
    alerts = feed(RobustZScoreDetector(window=60), "m-1", values)
    assert [a.start_s for a in alerts] == [T0 + STEP_S * 120]
    short = feed(RobustZScoreDetector(window=20), "m-2", values)
    assert [a.start_s for a in short] == [T0 + STEP_S * 20, T0 + STEP_S * 120]


def test_state_is_per_meter() -> None:
    detector = RobustZScoreDetector()
    history = noisy(200, seed=3)
    assert feed(detector, "a", history) == []
    # meter b's first uploads: the same spike gives no alert, b has no history of its own
    spiky = noisy(20, seed=4)
    spiky[10] += 400
    assert detector.update("b", starts(20, 200), spiky) == []
    # meter a, continuing its own series, alerts on the same spike
    alerts = detector.update("a", starts(20, 200), spiky)
    assert [(a.meter_id, a.start_s) for a in alerts] == [("a", T0 + STEP_S * 210)]


def test_redelivered_and_out_of_order_readings_do_not_disturb() -> None:
    values = noisy(300)
    values[200] += 400
    detector = RobustZScoreDetector()
    alerts = feed(detector, "m-1", values[:195])
    # an old upload delivered again, then the next one shuffled
    alerts += detector.update("m-1", starts(15, 150), values[150:165])
    order = np.random.default_rng(0).permutation(15)
    alerts += detector.update("m-1", starts(15, 195)[order], values[195:210][order])
    alerts += detector.update("m-1", starts(15, 195), values[195:210])  # and again
    assert [a.start_s for a in alerts] == [T0 + STEP_S * 200]


def test_rejects_bad_parameters_and_shapes() -> None:
    for kwargs in (
        {"window": 1},
        {"threshold": 0.0},
        {"mad_floor": 0.0},
        {"mad_floor_fraction": -0.1},
    ):
        with pytest.raises(ValueError):
            RobustZScoreDetector(**kwargs)
    with pytest.raises(ValueError, match="equal length"):
        RobustZScoreDetector().update("m", starts(3), np.arange(4))


def test_kernel_is_compiled_before_the_first_upload() -> None:
    """Otherwise the first upload's analyze cost would include seconds of JIT compilation."""
    RobustZScoreDetector()
    signatures = list(_robust_z_kernel.signatures)
    assert len(signatures) == 1
    detector = RobustZScoreDetector()
    feed(detector, "m-1", noisy(100))
    assert list(_robust_z_kernel.signatures) == signatures  # no second compilation
