"""Network faults: outage schedules (fixed or two-state Markov), regional outages, degraded
coverage windows, and the reconnect storm after an outage.

Everything is precomputed as time windows, so that querying the state of a cell at time t
is a binary search and a fault process costs no SimPy event.

Sources: the alternating up/down Markov model with exponential times to failure and to
repair, whose long-run availability is MTBF / (MTBF + MTTR) (e.g. M. Rausand, A. Hoyland,
*System Reliability Theory*, 2nd ed., Wiley 2004, §8.2); synchronised access of many
devices after an outage (3GPP TR 37.868 §6.1 traffic model 2: all devices access within
10 s, start times Beta(3, 4) distributed); jitter to break synchronisation (M. Brooker,
"Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class OutageSchedule:
    """Disjoint down windows [start, end), sorted and merged. Up outside them."""

    def __init__(self, windows: Iterable[tuple[float, float]] = ()) -> None:
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._merge(list(windows))

    def _merge(self, windows: list[tuple[float, float]]) -> None:
        merged: list[list[float]] = []
        for start, end in sorted((float(a), float(b)) for a, b in windows if b > a):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [w[0] for w in merged]
        self._ends = [w[1] for w in merged]

    def add(self, start_s: float, end_s: float) -> None:
        """Add a down window (merged with any it overlaps)."""
        self._merge([*self.windows, (start_s, end_s)])

    @property
    def windows(self) -> list[tuple[float, float]]:
        return list(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    def is_up(self, t_s: float) -> bool:
        i = bisect.bisect_right(self._starts, t_s) - 1
        return i < 0 or t_s >= self._ends[i]

    def is_up_many(self, t_s: np.ndarray) -> np.ndarray:
        """``is_up`` elementwise over an array of times (bool array)."""
        t = np.asarray(t_s, dtype=np.float64)
        if not self._starts:
            return np.ones(t.shape, dtype=bool)
        i = np.searchsorted(np.array(self._starts), t, side="right") - 1
        ends = np.array(self._ends)
        return (i < 0) | (t >= ends[np.maximum(i, 0)])

    def next_up_s(self, t_s: float) -> float:
        """``t_s`` when up, else the end of the window containing it."""
        i = bisect.bisect_right(self._starts, t_s) - 1
        return self._ends[i] if i >= 0 and t_s < self._ends[i] else t_s

    def next_down_s(self, t_s: float) -> float:
        """Start of the first down window at or after ``t_s`` (``t_s`` if down now; inf if
        none)."""
        if not self.is_up(t_s):
            return t_s
        i = bisect.bisect_left(self._starts, t_s)
        return self._starts[i] if i < len(self._starts) else float("inf")

    def down_between(self, t0_s: float, t1_s: float) -> bool:
        """True if any moment of [t0_s, t1_s] is down."""
        return self.next_down_s(t0_s) <= t1_s

    def down_time_s(self, t0_s: float, t1_s: float) -> float:
        """Total down time within [t0_s, t1_s], s."""
        starts, ends = np.array(self._starts), np.array(self._ends)
        return float(np.clip(np.minimum(ends, t1_s) - np.maximum(starts, t0_s), 0, None).sum())

    def up_fraction(self, t0_s: float, t1_s: float) -> float:
        return 1.0 - self.down_time_s(t0_s, t1_s) / (t1_s - t0_s)


def markov_outages(
    mtbf_s: float,
    mttr_s: float,
    horizon_s: float,
    rng: np.random.Generator,
    start_s: float = 0.0,
) -> OutageSchedule:
    """Down windows of a two-state continuous-time Markov process over [start, horizon):
    up times exponential with mean ``mtbf_s``, down times exponential with mean ``mttr_s``,
    starting up. Drawn in vectorised chunks from ``rng``."""
    if mtbf_s <= 0 or mttr_s <= 0:
        raise ValueError(f"MTBF and MTTR must be > 0, got {mtbf_s!r}, {mttr_s!r}")
    windows: list[tuple[float, float]] = []
    t = start_s
    chunk = max(16, int(2 * (horizon_s - start_s) / (mtbf_s + mttr_s)) + 16)
    while t < horizon_s:
        ups = rng.exponential(mtbf_s, chunk)
        downs = rng.exponential(mttr_s, chunk)
        ends_of_up = t + np.cumsum(ups + downs) - downs
        ends_of_down = ends_of_up + downs
        keep = ends_of_up < horizon_s
        windows.extend(zip(ends_of_up[keep].tolist(), ends_of_down[keep].tolist(), strict=True))
        if not keep.all():
            break
        t = float(ends_of_down[-1])
    return OutageSchedule(windows)


@dataclass(frozen=True)
class Degradation:
    """Degraded coverage over [start_s, end_s): an extra probability that an attempt is
    lost, extra latency on every round trip, and the data rate multiplied by
    ``rate_factor`` (e.g. interference, a failing antenna, a neighbour cell down)."""

    start_s: float
    end_s: float
    extra_loss_probability: float = 0.0
    extra_latency_s: float = 0.0
    rate_factor: float = 1.0


@dataclass(frozen=True)
class LinkCondition:
    """The combined effect of the degradations active at one moment."""

    extra_loss_probability: float = 0.0
    extra_latency_s: float = 0.0
    rate_factor: float = 1.0


NOMINAL = LinkCondition()


def condition_at(degradations: Sequence[Degradation], t_s: float) -> LinkCondition:
    """The degradations active at ``t_s`` combined: different impairments stack (losses add,
    capped at 1; latencies add; rate factors multiply); the same impairment (equal
    parameters) active twice counts once, so overlapping windows of one impairment act as
    their union."""
    active = dict.fromkeys(
        (d.extra_loss_probability, d.extra_latency_s, d.rate_factor)
        for d in degradations
        if d.start_s <= t_s < d.end_s
    )
    if not active:
        return NOMINAL
    return LinkCondition(
        min(1.0, sum(loss for loss, _, _ in active)),
        sum(latency_s for _, latency_s, _ in active),
        float(np.prod([rate for _, _, rate in active])),
    )


class HasOutages(Protocol):
    def add_outage(self, start_s: float, end_s: float) -> None: ...


def regional_outage(cells: Iterable[HasOutages], start_s: float, end_s: float) -> None:
    """Take every cell of a region down over [start_s, end_s) (e.g. a shared backhaul or
    power failure)."""
    for cell in cells:
        cell.add_outage(start_s, end_s)


def apply_schedule(cells: Iterable[HasOutages], schedule: OutageSchedule) -> None:
    """Apply one schedule to several cells: a correlated (regional) Markov outage."""
    for cell in cells:
        for start, end in schedule.windows:
            cell.add_outage(start, end)


# -- reconnect storm --------------------------------------------------------------------


def _none(n: int, rng: np.random.Generator, window_s: float) -> np.ndarray:
    return np.zeros(n)


def _uniform(n: int, rng: np.random.Generator, window_s: float) -> np.ndarray:
    return window_s * rng.random(n)


def _beta_3gpp(n: int, rng: np.random.Generator, window_s: float) -> np.ndarray:
    return window_s * rng.beta(3.0, 4.0, n)


#: How meters spread their reconnection after a cell comes back (name -> fn(n, rng, window)).
#: ``none``: all at once (no jitter); ``uniform``: full jitter over the window;
#: ``beta_3gpp``: 3GPP TR 37.868 traffic model 2 (Beta(3, 4) over the window, 10 s there).
RECONNECT_SPREAD: dict[str, Callable[[int, np.random.Generator, float], np.ndarray]] = {
    "none": _none,
    "uniform": _uniform,
    "beta_3gpp": _beta_3gpp,
}


def reconnect_delays_s(
    n_meters: int, rng: np.random.Generator, spread: str = "uniform", window_s: float = 60.0
) -> np.ndarray:
    """Delay of each of ``n_meters`` meters between the cell coming back and its first
    reconnection attempt, s."""
    return RECONNECT_SPREAD[spread](n_meters, rng, window_s)


def reconnect_delay_s(rng: np.random.Generator, spread: str, window_s: float) -> float:
    """``reconnect_delays_s`` for one meter (its own generator), s."""
    return float(RECONNECT_SPREAD[spread](1, rng, window_s)[0])


def peak_rate_per_s(times_s: np.ndarray, bin_s: float = 1.0) -> float:
    """Largest number of events in any bin of ``bin_s`` seconds, per second."""
    t = np.asarray(times_s, dtype=np.float64)
    if t.size == 0:
        return 0.0
    counts = np.bincount(np.floor((t - t.min()) / bin_s).astype(np.int64))
    return float(counts.max() / bin_s)
