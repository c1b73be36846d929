"""Closed-form queueing results used to validate the server models against theory.

Pure functions on scalars; times in seconds, rates per second, loads in erlangs. They are
the reference values for the simulation tests in ``tests/hw_models`` (DESIGN.md §10).

Sources:
- [GH] D. Gross, J. F. Shortle, J. M. Thompson, C. M. Harris, *Fundamentals of Queueing
  Theory*, 4th ed., Wiley 2008: ch. 2 (M/M/1, M/M/c), ch. 5 (M/G/1).
- [K] L. Kleinrock, *Queueing Systems, Vol. 1: Theory*, Wiley 1975: ch. 3 (M/M/m and the
  Erlang C formula), ch. 5 (M/G/1, Pollaczek-Khinchine mean-value formula).
- [J] D. L. Jagerman, "Some properties of the Erlang loss function", Bell System Technical
  Journal 53(3), 1974: the recursion B(k) = A B(k-1) / (k + A B(k-1)), B(0) = 1.
"""

from __future__ import annotations

import math


def _check_rate(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_stable(utilisation: float, what: str) -> None:
    if utilisation >= 1:
        raise ValueError(
            f"{what} is unstable: utilisation rho = {utilisation:.6g} >= 1, the queue grows "
            "without bound and has no steady-state waiting time"
        )


def erlang_b_blocking_probability(servers: int, offered_load_erlang: float) -> float:
    """Erlang B: probability that an arrival finds all ``servers`` busy in M/M/c/c.

    Computed with the recursion B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1)) [J], which only
    combines positive numbers and so stays accurate for thousands of servers, where the
    textbook sum of A^k / k! overflows. Any offered load >= 0 is valid (a loss system has
    no stability condition).
    """
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise ValueError(f"servers must be a positive integer, got {servers!r}")
    if not (math.isfinite(offered_load_erlang) and offered_load_erlang >= 0):
        raise ValueError(f"offered load must be finite and >= 0, got {offered_load_erlang!r}")
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load_erlang * blocking / (k + offered_load_erlang * blocking)
    return blocking


def erlang_c_wait_probability(servers: int, offered_load_erlang: float) -> float:
    """Erlang C: probability that an arrival waits for a server in M/M/c ([K] ch. 3).

    ``offered_load_erlang`` is A = lambda / mu = lambda * mean service time; the utilisation
    is rho = A / c and must be below 1. Computed from Erlang B via
    C = c B / (c - A (1 - B)) ([GH] ch. 2), which is stable for large ``servers``.
    For c = 1 this reduces to C = rho.
    """
    blocking = erlang_b_blocking_probability(servers, offered_load_erlang)
    _check_stable(offered_load_erlang / servers, f"M/M/{servers} with A = {offered_load_erlang}")
    return servers * blocking / (servers - offered_load_erlang * (1.0 - blocking))


def mmc_mean_wait_s(arrival_rate_per_s: float, mean_service_s: float, servers: int) -> float:
    """Mean time in queue (before service) of M/M/c, s ([GH] ch. 2, [K] ch. 3).

    W_q = C(c, A) * mean_service_s / (c - A) with A = arrival_rate_per_s * mean_service_s.
    """
    _check_rate("arrival rate", arrival_rate_per_s)
    _check_rate("mean service time", mean_service_s)
    load_erlang = arrival_rate_per_s * mean_service_s
    wait_probability = erlang_c_wait_probability(servers, load_erlang)
    return wait_probability * mean_service_s / (servers - load_erlang)


def mg1_mean_wait_s(arrival_rate_per_s: float, mean_service_s: float, service_scv: float) -> float:
    """Mean time in queue of M/G/1, s: the Pollaczek-Khinchine formula ([K] ch. 5,
    [GH] ch. 5).

    W_q = rho * mean_service_s * (1 + scv) / (2 (1 - rho)), rho = lambda * E[S], where
    ``service_scv`` is the squared coefficient of variation Var[S] / E[S]^2 of the service
    time (0 deterministic, 1 exponential).
    """
    _check_rate("arrival rate", arrival_rate_per_s)
    _check_rate("mean service time", mean_service_s)
    if not (math.isfinite(service_scv) and service_scv >= 0):
        raise ValueError(f"service SCV must be finite and >= 0, got {service_scv!r}")
    rho = arrival_rate_per_s * mean_service_s
    _check_stable(rho, "M/G/1")
    return rho * mean_service_s * (1.0 + service_scv) / (2.0 * (1.0 - rho))


def md1_mean_wait_s(arrival_rate_per_s: float, service_s: float) -> float:
    """Mean time in queue of M/D/1 (constant service ``service_s``), s: Pollaczek-Khinchine
    with zero service variance ([GH] ch. 5), W_q = rho * service_s / (2 (1 - rho)), half
    the M/M/1 value at the same load."""
    return mg1_mean_wait_s(arrival_rate_per_s, service_s, 0.0)
