"""Small distribution value objects that know their mean (in the manner of Ciw).

Every distribution samples from a ``numpy.random.Generator`` handed down by its caller and
exposes ``mean`` (and ``cdf``) so that tests can compare simulated behaviour with theory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

_ERF = np.frompyfunc(math.erf, 1, 1)


def normal_cdf(z: np.ndarray | float) -> np.ndarray:
    """Standard normal CDF, Phi(z) = (1 + erf(z / sqrt 2)) / 2, elementwise (float64)."""
    z_arr = np.asarray(z, dtype=np.float64)
    return 0.5 * (1.0 + np.asarray(_ERF(z_arr / math.sqrt(2.0)), dtype=np.float64))


class Distribution(Protocol):
    """A non-negative random quantity (seconds, bytes, ...)."""

    @property
    def mean(self) -> float: ...

    def sample(self, rng: np.random.Generator) -> float: ...


@dataclass(frozen=True)
class LogNormal:
    """Log-normal given by its median and the standard deviation ``sigma`` of ``ln X``.

    Mean = median * exp(sigma**2 / 2). Cellular access latencies are right-skewed and
    commonly fitted log-normal (e.g. measured LTE RTTs in Huang et al., "A close examination
    of performance and power characteristics of 4G LTE networks", MobiSys 2012).
    """

    median: float
    sigma: float

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2.0)

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.median * math.exp(self.sigma * rng.standard_normal()))

    def scaled(self, factor: float) -> LogNormal:
        """The same shape with every value multiplied by ``factor`` (> 0)."""
        return LogNormal(self.median * factor, self.sigma)

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """P(X <= x), elementwise; 0 for x <= 0 (a point mass at the median if sigma == 0)."""
        x_arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
        out = np.zeros_like(x_arr)
        pos = x_arr > 0
        if self.sigma == 0:
            out[x_arr >= self.median] = 1.0
            return out
        out[pos] = normal_cdf((np.log(x_arr[pos]) - math.log(self.median)) / self.sigma)
        return out

    def partial_integral_cdf(self, a: np.ndarray) -> np.ndarray:
        """H(a) = integral_0^a F(z) dz = a F(a) - E[X; X <= a] (0 for a <= 0).

        Closed form from the partial expectation of the log-normal,
        E[X; X <= a] = mean * Phi(d - sigma) with d = (ln a - ln median) / sigma. Used for
        the CDF of a log-normal plus an independent uniform (see ``LogNormalPlusUniform``).
        """
        a_arr = np.atleast_1d(np.asarray(a, dtype=np.float64))
        out = np.zeros_like(a_arr)
        pos = a_arr > 0
        if self.sigma == 0:
            out[pos] = np.maximum(a_arr[pos] - self.median, 0.0)
            return out
        d = (np.log(a_arr[pos]) - math.log(self.median)) / self.sigma
        out[pos] = a_arr[pos] * normal_cdf(d) - self.mean * normal_cdf(d - self.sigma)
        return out


@dataclass(frozen=True)
class Uniform:
    """Uniform on [low, high] (high >= low)."""

    low: float
    high: float

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.low + (self.high - self.low) * rng.random())

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        x_arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
        if self.high == self.low:
            return (x_arr >= self.low).astype(np.float64)
        return np.clip((x_arr - self.low) / (self.high - self.low), 0.0, 1.0)


@dataclass(frozen=True)
class LogNormalPlusUniform:
    """X + U with X ~ ``lognormal`` and U ~ Uniform[0, ``width``] independent, shifted by
    ``shift`` (s). The idle-cell access latency of a meter is of this form: the wait for the
    next PRACH opportunity is uniform over the PRACH period, RRC set-up log-normal.

    CDF: F(y) = (H(y) - H(y - width)) / width with H the integrated log-normal CDF
    (``LogNormal.partial_integral_cdf``), exact.
    """

    shift: float
    lognormal: LogNormal
    width: float

    @property
    def mean(self) -> float:
        return self.shift + self.lognormal.mean + 0.5 * self.width

    def sample(self, rng: np.random.Generator) -> float:
        return self.shift + self.lognormal.sample(rng) + self.width * float(rng.random())

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        y = np.atleast_1d(np.asarray(x, dtype=np.float64)) - self.shift
        if self.width <= 0:
            return self.lognormal.cdf(y)
        h = self.lognormal.partial_integral_cdf
        return np.clip((h(y) - h(y - self.width)) / self.width, 0.0, 1.0)
