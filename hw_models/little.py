"""Little's law, L = lambda * W, measured on any run (J. D. C. Little, "A proof for the
queuing formula L = lambda W", Operations Research 9(3), 1961).

:class:`LittleLawMonitor` keeps the three sides from the event trace, with no sampling:
the time-average number in system L is an exact integral of N(t), which is piecewise
constant between arrivals and departures; lambda is arrivals / window; W is the mean
sojourn of the jobs that arrived in the window and have left. For a window that starts
and ends empty L = lambda * W holds exactly; otherwise they differ by the jobs straddling
the window's edges, which the relative error reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LittleLawReport:
    """One window's measurements (flat record; units in the names)."""

    window_s: float  # length of the observation window
    arrivals: int  # jobs that arrived in the window
    departures: int  # of those, jobs that have left
    time_avg_in_system: float  # L: integral of N(t) over the window / window_s, jobs
    arrival_rate_per_s: float  # lambda: arrivals / window_s
    mean_sojourn_s: float  # W: mean time in system of the departed jobs (nan if none)
    relative_error: float  # |L - lambda W| / L (0 when L = 0 and lambda W = 0)


class LittleLawMonitor:
    """Counts arrivals and departures of a system and integrates N(t).

    Call :meth:`arrive` when a job enters and :meth:`depart` (with its arrival time) when
    it leaves; times are the caller's simulated seconds and must not decrease.
    :meth:`reset` starts a new window (after a warm-up), keeping the jobs in system.
    """

    __slots__ = (
        "_area",
        "_last_s",
        "_sojourn_sum_s",
        "arrivals",
        "departures",
        "in_system",
        "start_s",
    )

    def __init__(self, start_s: float = 0.0) -> None:
        self.start_s = start_s
        self._last_s = start_s
        self._area = 0.0
        self._sojourn_sum_s = 0.0
        self.in_system = 0
        self.arrivals = 0
        self.departures = 0

    def _advance(self, now_s: float) -> None:
        if now_s < self._last_s:
            raise ValueError(f"time went backwards: {now_s} < {self._last_s}")
        self._area += self.in_system * (now_s - self._last_s)
        self._last_s = now_s

    def arrive(self, now_s: float) -> None:
        if now_s < self._last_s:
            raise ValueError(f"time went backwards: {now_s} < {self._last_s}")
        self._area += self.in_system * (now_s - self._last_s)
        self._last_s = now_s
        self.in_system += 1
        self.arrivals += 1

    def depart(self, now_s: float, arrived_s: float) -> None:
        if now_s < self._last_s:
            raise ValueError(f"time went backwards: {now_s} < {self._last_s}")
        self._area += self.in_system * (now_s - self._last_s)
        self._last_s = now_s
        if self.in_system <= 0:
            raise ValueError("a departure without an arrival")
        self.in_system -= 1
        if arrived_s >= self.start_s:
            self.departures += 1
            self._sojourn_sum_s += now_s - arrived_s

    def reset(self, now_s: float) -> None:
        """Start a new observation window at ``now_s`` (e.g. at the end of a warm-up)."""
        self._advance(now_s)
        self.start_s = now_s
        self._area = 0.0
        self._sojourn_sum_s = 0.0
        self.arrivals = 0
        self.departures = 0

    def report(self, now_s: float) -> LittleLawReport:
        """L, lambda and W over [start_s, now_s]."""
        self._advance(now_s)
        window_s = now_s - self.start_s
        if window_s <= 0:
            raise ValueError("the observation window is empty")
        time_avg = self._area / window_s
        rate = self.arrivals / window_s
        sojourn = self._sojourn_sum_s / self.departures if self.departures else math.nan
        product = rate * sojourn if self.departures else 0.0
        if time_avg > 0:
            error = abs(time_avg - product) / time_avg
        else:
            error = 0.0 if product == 0 else math.inf
        return LittleLawReport(
            window_s, self.arrivals, self.departures, time_avg, rate, sojourn, error
        )
