"""Confidence intervals of a KPI over independent replications: the sample mean, the sample
standard deviation and the Student-t interval ``mean ± t(1-(1-c)/2, n-1) s / sqrt(n)``
(W. S. Gosset ("Student"), "The probable error of a mean", Biometrika 6(1), 1908; its use
for terminating simulations: A. M. Law, *Simulation Modeling and Analysis*, 5th ed.,
McGraw-Hill 2015, §9.4.1). Values that are not finite (a KPI a run could not compute, such
as a percentile of no readings) are left out and ``n`` counts the rest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from twin.accounting.intervals import CONFIDENCE, t_critical


@dataclass(frozen=True)
class Estimate:
    """A KPI over ``n`` replications: mean, sample standard deviation (``ddof=1``) and the
    Student-t confidence interval [ci_low, ci_high] at ``confidence``. With ``n < 2`` the
    deviation and the interval are NaN; with ``n == 0`` the mean too."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2.0

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: NaN becomes None."""
        data = asdict(self) | {"half_width": self.half_width}
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in data.items()}


def estimate(values: ArrayLike, confidence: float = CONFIDENCE) -> Estimate:
    """The :class:`Estimate` of the finite ``values`` (one per replication)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    nan = math.nan
    if n == 0:
        return Estimate(0, nan, nan, nan, nan, confidence)
    mean = float(x.mean())
    if n < 2:
        return Estimate(1, mean, nan, nan, nan, confidence)
    sd = float(x.std(ddof=1))
    half = t_critical(confidence, n - 1) * sd / math.sqrt(n)
    return Estimate(n, mean, sd, mean - half, mean + half, confidence)
