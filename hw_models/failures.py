"""Server failures and repairs, whole-MDC power loss and planned maintenance.

Each server fails and is repaired as an alternating renewal process: up for a time drawn
from ``time_to_failure``, down (reason ``"crash"``) for a time drawn from
``time_to_repair``, again and again, with draws from the server's own numpy Generator
(DESIGN.md §3). Its long-run availability is MTBF / (MTBF + MTTR) whatever the two
distributions (renewal-reward theorem; S. M. Ross, *Stochastic Processes*, 2nd ed., Wiley
1996, §3.6). Lifetime distributions are small value objects that know their mean
(:data:`LIFETIMES`): exponential (constant hazard) and Weibull (shape < 1 infant mortality,
> 1 wear-out; the usual reliability model, e.g. B. Schroeder and G. A. Gibson, "A
large-scale study of failures in high-performance computing systems", DSN 2006, who found
Weibull with shape < 1 fits times between failures).

What a server loses when it goes down is handled by :class:`~hw_models.server.ServerPool`:
every upload in its memory. A planned maintenance window is graceful instead: the server
takes no new uploads from the window's start, finishes what it holds, then goes down until
the window ends, so nothing is lost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from hw_models.server import CRASH, MAINTENANCE, POWER_LOSS, Server, ServerPool


@dataclass(frozen=True)
class Exponential:
    """Exponential lifetime with mean ``mean_s`` (constant hazard 1 / mean)."""

    mean_s: float

    def __post_init__(self) -> None:
        _check_positive("mean_s", self.mean_s)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.exponential(self.mean_s))


@dataclass(frozen=True)
class Weibull:
    """Weibull lifetime, P(T > t) = exp(-(t / scale_s) ** shape); mean
    scale * Gamma(1 + 1 / shape)."""

    shape: float
    scale_s: float

    def __post_init__(self) -> None:
        _check_positive("shape", self.shape)
        _check_positive("scale_s", self.scale_s)

    @property
    def mean_s(self) -> float:
        return self.scale_s * math.gamma(1.0 + 1.0 / self.shape)

    @classmethod
    def with_mean(cls, mean_s: float, shape: float) -> Weibull:
        """The Weibull of the given ``shape`` whose mean is ``mean_s``."""
        _check_positive("mean_s", mean_s)
        return cls(shape, mean_s / math.gamma(1.0 + 1.0 / shape))

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.scale_s * rng.weibull(self.shape))


Lifetime = Exponential | Weibull

#: Registry of lifetime distributions: name -> constructor.
LIFETIMES: dict[str, Callable[..., Lifetime]] = {
    "exponential": Exponential,
    "weibull": Weibull.with_mean,
}


def lifetime(kind: str, **params: float) -> Lifetime:
    """A lifetime from the registry, e.g. ``lifetime("weibull", mean_s=3.6e6, shape=0.7)``."""
    try:
        factory = LIFETIMES[kind]
    except KeyError:
        raise ValueError(
            f"lifetime kind {kind!r}: expected one of {', '.join(sorted(LIFETIMES))}"
        ) from None
    return factory(**params)


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def server_failures(
    pool: ServerPool,
    server: Server,
    time_to_failure: Lifetime,
    time_to_repair: Lifetime,
    rng: np.random.Generator,
) -> Generator[simpy.Event, Any, None]:
    """SimPy process: ``server`` crashes after each up time and is repaired after each
    down time, forever. Start it with ``env.process(...)``."""
    env = pool.env
    while True:
        yield env.timeout(time_to_failure.sample(rng))
        pool.set_down(server, CRASH)
        yield env.timeout(time_to_repair.sample(rng))
        pool.set_up(server, CRASH)


def start_failures(
    pool: ServerPool,
    time_to_failure: Lifetime,
    time_to_repair: Lifetime,
    rngs: Sequence[np.random.Generator],
) -> list[simpy.Process]:
    """One failure process per server of ``pool``, server ``i`` drawing from ``rngs[i]``
    (give each server its own stream, keyed by its stable id)."""
    if len(rngs) != len(pool.servers):
        raise ValueError(f"{len(pool.servers)} servers need as many generators, got {len(rngs)}")
    return [
        pool.env.process(server_failures(pool, server, time_to_failure, time_to_repair, rng))
        for server, rng in zip(pool.servers, rngs, strict=True)
    ]


def mdc_power_loss(
    pool: ServerPool, at_s: float, duration_s: float
) -> Generator[simpy.Event, Any, None]:
    """SimPy process: the whole MDC loses power from ``at_s`` for ``duration_s``. Every
    upload in its memory (on the servers and waiting in the gateway) is lost, and so is
    every upload that arrives while it is dark."""
    env = pool.env
    if at_s > env.now:
        yield env.timeout(at_s - env.now)
    pool.power_off(POWER_LOSS)
    yield env.timeout(duration_s)
    pool.power_on(POWER_LOSS)


@dataclass(frozen=True)
class MaintenanceWindow:
    """Planned maintenance of server ``server`` (its index in the pool) over
    [start_s, end_s)."""

    server: int
    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not (0 <= self.start_s < self.end_s):
            raise ValueError(f"maintenance window needs 0 <= start_s < end_s, got {self}")


def maintenance(pool: ServerPool, window: MaintenanceWindow) -> Generator[simpy.Event, Any, None]:
    """SimPy process: from ``window.start_s`` the server takes no new uploads; once it has
    finished the ones it holds it goes down (reason ``"maintenance"``) until
    ``window.end_s``. If it has not drained by then it simply stays in service."""
    env = pool.env
    server = pool.servers[window.server]
    if window.start_s > env.now:
        yield env.timeout(window.start_s - env.now)
    pool.cordon(server)
    drained = pool.drained(server)
    if not drained.triggered:
        yield env.any_of([drained, env.timeout(window.end_s - env.now)])
    if env.now < window.end_s:
        pool.set_down(server, MAINTENANCE)
        yield env.timeout(window.end_s - env.now)
        pool.set_up(server, MAINTENANCE)
    pool.uncordon(server)


def start_maintenance(
    pool: ServerPool, windows: Sequence[MaintenanceWindow]
) -> list[simpy.Process]:
    """Start one process per window."""
    for window in windows:
        if not 0 <= window.server < len(pool.servers):
            raise ValueError(f"maintenance window for server {window.server}: no such server")
    for a in windows:
        for b in windows:
            if a is not b and a.server == b.server and a.start_s < b.end_s and b.start_s < a.end_s:
                raise ValueError(f"maintenance windows {a} and {b} overlap")
    return [pool.env.process(maintenance(pool, window)) for window in windows]
