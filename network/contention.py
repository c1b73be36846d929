"""Contention in a shared cell: random access (slotted ALOHA) and the shared uplink.

Random access: each PRACH opportunity offers ``n_preambles`` orthogonal preambles; a
device picks one uniformly and succeeds only if no other device picked the same one in the
same opportunity (no capture). With Poisson arrivals the number of devices on one
preamble in one opportunity is Poisson(G), G = arrival rate x period / preambles, so a
given attempt succeeds with probability e^{-G} and a preamble carries S = G e^{-G}
successes per opportunity: slotted ALOHA (N. Abramson 1970; L. G. Roberts, "ALOHA packet
system with and without slots and capture", ACM SIGCOMM CCR 5(2), 1975). The LTE RACH
analysis of 3GPP TR 37.868 §6 uses the same model.

Uplink: the cell's data channels are ``channels`` parallel servers taken first come first
served; an upload occupies ``width`` of them for ``service_s``. Each reservation is
computed in closed form when the upload is ready (Lindley's recursion, D. V. Lindley,
Proc. Cambridge Phil. Soc. 48, 1952), so the queue costs no SimPy event of its own. With
Poisson arrivals and equal uploads on one channel this is exactly M/D/1, whose mean wait is
Pollaczek-Khinchine's rho D / (2 (1 - rho)) (L. Kleinrock, Queueing Systems Vol. 1, 1975,
ch. 5).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from network.radio import PrachConfig


def aloha_success_probability(offered_load: float | np.ndarray) -> np.ndarray:
    """P(an attempt succeeds) = e^{-G} at ``offered_load`` G attempts per preamble per
    opportunity (slotted ALOHA, Poisson arrivals)."""
    return np.exp(-np.asarray(offered_load, dtype=np.float64))


def aloha_throughput(offered_load: float | np.ndarray) -> np.ndarray:
    """S = G e^{-G} successes per preamble per opportunity; at most 1/e at G = 1."""
    g = np.asarray(offered_load, dtype=np.float64)
    return g * np.exp(-g)


def prach_offered_load(arrival_rate_per_s: float, config: PrachConfig) -> float:
    """G = attempts per preamble per opportunity for ``arrival_rate_per_s`` attempts/s."""
    return arrival_rate_per_s * config.period_s / config.n_preambles


def prach_load_with_retries(new_load: float, max_tries: int) -> tuple[float, float]:
    """(total load G, probability that access fails after ``max_tries``) when collided
    attempts retry (the retries assumed spread enough to stay Poisson, TR 37.868 §6).

    Fixed point G = G_new * sum_{k<K} (1 - e^{-G})^k, solved by damped iteration; a load
    past the stable branch returns the iteration's last value (a storm)."""
    g = new_load
    for _ in range(500):
        q = 1.0 - math.exp(-g)
        g_next = new_load * sum(q**k for k in range(max_tries))
        if abs(g_next - g) < 1e-12:
            g = g_next
            break
        g = 0.5 * g + 0.5 * g_next
    return g, (1.0 - math.exp(-g)) ** max_tries


def md1_mean_wait_s(arrival_rate_per_s: float, service_s: float) -> float:
    """Mean wait in queue of M/D/1, s: rho D / (2 (1 - rho)) (Pollaczek-Khinchine)."""
    rho = arrival_rate_per_s * service_s
    if not 0 <= rho < 1:
        raise ValueError(f"M/D/1 needs 0 <= rho < 1, got rho = {rho:.6g}")
    return rho * service_s / (2.0 * (1.0 - rho))


class PrachChannel:
    """The PRACH of one coverage class of one cell: who picked which preamble when.

    ``register`` books a preamble in the next opportunity after ``t_s`` and returns the
    key; once the opportunity's outcome time has passed, ``alone(key)`` says whether the
    device had its preamble to itself. All devices of an opportunity register before it
    (strictly earlier times), so the check is exact and costs no event.
    """

    def __init__(self, config: PrachConfig) -> None:
        self.config = config
        self._counts: dict[int, int] = {}
        self._prune_at = 4096
        self.attempts = 0
        self.collisions = 0

    def register(
        self, t_s: float, rng: np.random.Generator, now_s: float = 0.0
    ) -> tuple[int, float]:
        """Book a uniformly chosen preamble in the first opportunity after ``t_s`` (at or
        after the simulation time ``now_s``); returns (key, time at which the outcome is
        known, s)."""
        c = self.config
        slot = math.floor(t_s / c.period_s) + 1
        key = slot * c.n_preambles + int(rng.integers(c.n_preambles))
        self._counts[key] = self._counts.get(key, 0) + 1
        self.attempts += 1
        if len(self._counts) > self._prune_at:
            self._prune(now_s)
        return key, slot * c.period_s + c.outcome_delay_s

    def alone(self, key: int) -> bool:
        ok = self._counts.get(key, 0) == 1
        if not ok:
            self.collisions += 1
        return ok

    def _prune(self, now_s: float) -> None:
        """Forget opportunities whose outcome time is more than a period before ``now_s``
        (every device of them has checked)."""
        c = self.config
        horizon = math.floor((now_s - c.outcome_delay_s) / c.period_s) - 1
        first_live = horizon * c.n_preambles
        self._counts = {k: n for k, n in self._counts.items() if k >= first_live}
        self._prune_at = max(4096, 2 * len(self._counts))


class SharedUplink:
    """``channels`` parallel uplink channels served first come first served, in closed
    form (see module docstring). ``reserve`` is called when an upload is ready to send."""

    def __init__(self, channels: int) -> None:
        if channels < 1:
            raise ValueError(f"an uplink needs at least one channel, got {channels}")
        self.channels = channels
        self._free_at: list[float] = [0.0] * channels  # min-heap of channel free times
        self.reservations = 0
        self.busy_channel_s = 0.0
        self.wait_s_total = 0.0
        self.last_finish_s = 0.0

    def reserve(self, now_s: float, service_s: float, width: int = 1) -> tuple[float, float]:
        """Book ``width`` channels for ``service_s`` from the earliest moment they are all
        free, not before ``now_s``; returns (start_s, finish_s)."""
        width = min(width, self.channels)
        if width == 1:
            start = max(now_s, self._free_at[0])
            finish = start + service_s
            heapq.heapreplace(self._free_at, finish)
        else:
            taken = [heapq.heappop(self._free_at) for _ in range(width)]
            start = max(now_s, taken[-1])
            finish = start + service_s
            for _ in range(width):
                heapq.heappush(self._free_at, finish)
        self.reservations += 1
        self.busy_channel_s += service_s * width
        self.wait_s_total += start - now_s
        self.last_finish_s = max(self.last_finish_s, finish)
        return start, finish

    def backlog_s(self, now_s: float) -> float:
        """Work still booked on the least busy channel at ``now_s``, s (0 when idle)."""
        return max(0.0, self._free_at[0] - now_s)

    def utilisation(self, horizon_s: float) -> float:
        """Fraction of channel time booked over [0, horizon_s]."""
        return self.busy_channel_s / (self.channels * horizon_s) if horizon_s > 0 else 0.0
