"""LittleLawMonitor: exact on hand-made traces; L = lambda W on any window that starts and
ends empty; the edge effect of a window cut mid-run is reported, not hidden."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hw_models.little import LittleLawMonitor


def test_hand_made_trace() -> None:
    monitor = LittleLawMonitor()
    for t in (0.0, 1.0, 2.0):
        monitor.arrive(t)
    monitor.depart(3.0, 0.0)
    monitor.depart(4.0, 1.0)
    monitor.depart(6.0, 2.0)
    report = monitor.report(6.0)
    # N(t) = 1, 2, 3, 2, 1, 1 on the six unit intervals: area 10
    assert report.time_avg_in_system == pytest.approx(10 / 6)
    assert report.arrival_rate_per_s == pytest.approx(0.5)
    assert report.mean_sojourn_s == pytest.approx(10 / 3)
    assert report.relative_error == pytest.approx(0.0, abs=1e-15)
    assert (report.arrivals, report.departures, report.window_s) == (3, 3, 6.0)


def test_littles_law_is_exact_for_a_window_that_starts_and_ends_empty() -> None:
    rng = np.random.default_rng(8)
    arrivals = np.cumsum(rng.exponential(1.0, 5_000))
    service = rng.exponential(0.8, 5_000)
    departures = np.empty_like(arrivals)  # M/M/1 FIFO by the Lindley recursion
    free_at = 0.0
    for i, (a, s) in enumerate(zip(arrivals, service, strict=True)):
        free_at = max(free_at, a) + s
        departures[i] = free_at
    pairs = zip(arrivals, departures, strict=True)
    events = sorted([(a, 1, a) for a in arrivals] + [(d, 0, a) for a, d in pairs])
    monitor = LittleLawMonitor()
    for t, is_arrival, arrived in events:
        if is_arrival:
            monitor.arrive(t)
        else:
            monitor.depart(t, arrived)
    report = monitor.report(float(departures.max()))
    assert report.relative_error < 1e-12
    assert report.mean_sojourn_s == pytest.approx(float(np.mean(departures - arrivals)))


def test_reset_starts_a_new_window_and_edges_show_in_the_error() -> None:
    monitor = LittleLawMonitor()
    monitor.arrive(0.0)
    monitor.reset(5.0)  # one job in system carried over, not counted as an arrival
    monitor.depart(7.0, 0.0)  # arrived before the window: no sojourn sample
    report = monitor.report(10.0)
    assert report.arrivals == 0 and report.departures == 0
    assert report.time_avg_in_system == pytest.approx(2 / 5)
    assert math.isnan(report.mean_sojourn_s)
    assert report.relative_error == 1.0  # L > 0 but no lambda W: all edge effect


def test_misuse_is_rejected() -> None:
    monitor = LittleLawMonitor()
    with pytest.raises(ValueError, match="without an arrival"):
        monitor.depart(1.0, 0.0)
    monitor.arrive(2.0)
    with pytest.raises(ValueError, match="backwards"):
        monitor.arrive(1.0)
    with pytest.raises(ValueError, match="empty"):
        LittleLawMonitor(3.0).report(3.0)
