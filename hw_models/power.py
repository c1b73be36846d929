"""Server power, cooling overhead (PUE) and exact energy integrals.

Power of a server is a function of its utilisation, chosen from :data:`POWER_MODELS`
(``"linear"``: idle + (max - idle) * u). The facility around the IT load costs a factor
PUE on top (The Green Grid). Energy is integrated exactly, event by event: power is
piecewise constant between the events that change it (a core starts or ends a job, a server
goes down or comes up), so :class:`PowerMeter` adds ``power * elapsed`` at each change and
never samples.

Sources:
- [FWB] X. Fan, W.-D. Weber, L. A. Barroso, "Power provisioning for a warehouse-sized
  computer", ISCA 2007: server power is close to linear in CPU utilisation between the
  idle and the full-load power.
- [SPEC] SPECpower_ssj2008 run rules: "active idle" and "100 % target load" power, the two
  points ``idle_w`` and ``max_w`` of the catalog.
- [TGG] The Green Grid, White Paper #49, "PUE: A Comprehensive Examination of the Metric"
  (2012): PUE = total facility energy / IT equipment energy.
- [UI] Uptime Institute, Global Data Center Survey 2022: average annual PUE reported 1.55
  (1.57 in 2021, 1.58 in 2023).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

#: Default PUE of an MDC: the 2022 industry average [UI]. Micro data centers are often
#: worse (small, air-cooled, no economiser); scenarios should set their own.
DEFAULT_PUE = 1.55

J_PER_WH = 3600.0

FloatArray = npt.NDArray[np.float64]


def linear_power_w(
    idle_w: float | FloatArray, max_w: float | FloatArray, utilisation: float | FloatArray
) -> FloatArray:
    """Wall power of a server at ``utilisation`` in [0, 1], W: ``idle_w + (max_w - idle_w)
    * utilisation`` [FWB], with ``idle_w`` and ``max_w`` the SPECpower active-idle and
    100 % load powers [SPEC]. Vectorised over any broadcastable inputs."""
    u = np.asarray(utilisation, dtype=np.float64)
    if np.any((u < 0) | (u > 1)):
        raise ValueError("utilisation must be within [0, 1]")
    idle = np.asarray(idle_w, dtype=np.float64)
    return idle + (np.asarray(max_w, dtype=np.float64) - idle) * u


#: Registry of server power models: name -> f(idle_w, max_w, utilisation) -> W.
POWER_MODELS: dict[str, Callable[..., FloatArray]] = {"linear": linear_power_w}


def facility_power_w(it_power_w: float | FloatArray, pue: float = DEFAULT_PUE) -> FloatArray:
    """Facility power (IT plus cooling and power distribution), W: ``it_power_w * pue``
    [TGG]."""
    check_pue(pue)
    return np.asarray(it_power_w, dtype=np.float64) * pue


def utilisation_energy_j(
    duration_s: float, idle_w: float, max_w: float, utilisation: float, pue: float = 1.0
) -> float:
    """Facility energy of a server that is up for ``duration_s`` at mean utilisation
    ``utilisation`` under the linear model, J: ``T * (P_idle + (P_max - P_idle) * u) *
    PUE``. Exact for the linear model whatever the utilisation did over time, because the
    model is linear (the mean of the power is the power of the mean utilisation)."""
    check_pue(pue)
    return duration_s * (idle_w + (max_w - idle_w) * utilisation) * pue


def check_pue(pue: float) -> None:
    if not (np.isfinite(pue) and pue >= 1.0):
        raise ValueError(f"PUE must be a finite number >= 1 (The Green Grid), got {pue!r}")


class PowerMeter:
    """Exact integral of a piecewise-constant power, J.

    Call :meth:`set` whenever the power changes; :meth:`energy_j` adds the open interval
    up to ``now``. Only the changes cost anything, so metering a server costs two float
    operations per job start and end.
    """

    __slots__ = ("_energy_j", "_power_w", "_since_s")

    def __init__(self, now_s: float = 0.0, power_w: float = 0.0) -> None:
        self._energy_j = 0.0
        self._power_w = power_w
        self._since_s = now_s

    @property
    def power_w(self) -> float:
        return self._power_w

    def set(self, now_s: float, power_w: float) -> None:
        """The power becomes ``power_w`` at ``now_s`` (not before the last change)."""
        if now_s < self._since_s:
            raise ValueError(f"time went backwards: {now_s} < {self._since_s}")
        self._energy_j += self._power_w * (now_s - self._since_s)
        self._power_w = power_w
        self._since_s = now_s

    def energy_j(self, now_s: float) -> float:
        """Energy from the start up to ``now_s`` (>= the last change), J."""
        return self._energy_j + self._power_w * (now_s - self._since_s)
