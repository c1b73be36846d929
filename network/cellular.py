"""A cellular cell carrying meter uploads: access latency, uplink rate, loss, outages, retries.

Thin but real model for the walking skeleton: per-packet detail is folded into a closed-form
transfer time (access latency + payload / uplink rate), so that an upload attempt costs one
SimPy event. Contention between meters of one cell comes in a later issue.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from network.distributions import LogNormal


@dataclass(frozen=True)
class CellularProfile:
    """Parameters of a cellular link as one meter sees it.

    Defaults (``lte-m``): LTE-M (Cat-M1) half-duplex FDD peak uplink is about 375 kbit/s
    (3GPP TS 36.306 Rel-13 UE category M1; GSMA "LTE-M Deployment Guide" 2019); we take a
    sustained application rate of half of that. Access latency (RRC connection set-up from
    idle plus scheduling, TS 36.331) is log-normal with median 0.4 s, in the range that
    the GSMA guide and Nokia's LTE-M white paper report for connected-mode transfers.
    """

    name: str = "lte-m"
    access_latency_median_s: float = 0.4
    access_latency_sigma: float = 0.5
    uplink_rate_bps: float = 187_500.0
    loss_probability: float = 0.01
    ack_loss_probability: float = 0.002
    ack_timeout_s: float = 30.0
    max_attempts: int = 5
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 120.0

    @property
    def access_latency(self) -> LogNormal:
        return LogNormal(self.access_latency_median_s, self.access_latency_sigma)

    def transfer_s(self, size_bytes: int, access_latency_s: float) -> float:
        """Time to move ``size_bytes`` once the radio link is up, plus access latency, s."""
        return access_latency_s + 8.0 * size_bytes / self.uplink_rate_bps

    def backoff_s(self, failed_attempts: int) -> float:
        """Capped exponential backoff before the next attempt: min(cap, base * 2**(k-1)).

        The exponent is bounded before it is taken, so any attempt count is safe."""
        exponent = min(failed_attempts - 1, 1023 - 64)
        return min(self.backoff_cap_s, self.backoff_base_s * 2.0**exponent)


#: Registry of named profiles; scenario keys override individual fields.
CELLULAR_PROFILES: dict[str, CellularProfile] = {"lte-m": CellularProfile()}


@dataclass(frozen=True)
class AttemptResult:
    """What one upload attempt achieved."""

    delivered: bool  # the payload reached the core network (and goes on to the VPN)
    ack_lost: bool  # delivered, but the meter will never see the acknowledgement
    duration_s: float  # time the attempt took until delivery or failure detection


@dataclass
class Cell:
    """One cell of a region. Outage windows make every attempt that starts in them fail.

    Random draws come from the generator of the meter making the attempt, so that one
    meter's network outcomes do not depend on how many other meters share the cell."""

    env: simpy.Environment
    profile: CellularProfile
    outages: list[tuple[float, float]] = field(default_factory=list)
    attempts: int = 0
    failed_attempts: int = 0

    def add_outage(self, start_s: float, end_s: float) -> None:
        self.outages.append((start_s, end_s))
        self.outages.sort()

    def is_up(self, t_s: float) -> bool:
        return not any(start <= t_s < end for start, end in self.outages)

    def attempt(
        self, size_bytes: int, rng: np.random.Generator
    ) -> Generator[simpy.Event, Any, AttemptResult]:
        """One attempt: on success returns when the payload has crossed the air interface.

        A failed attempt (cell down, or the transfer lost) is detected only when the
        meter's acknowledgement timer runs out, so it takes ``ack_timeout_s``.
        """
        self.attempts += 1
        p = self.profile
        latency_s = p.access_latency.sample(rng)
        u = rng.random(2)
        if not self.is_up(self.env.now) or u[0] < p.loss_probability:
            self.failed_attempts += 1
            yield self.env.timeout(p.ack_timeout_s)
            return AttemptResult(False, False, p.ack_timeout_s)
        duration_s = p.transfer_s(size_bytes, latency_s)
        yield self.env.timeout(duration_s)
        return AttemptResult(True, bool(u[1] < p.ack_loss_probability), duration_s)
