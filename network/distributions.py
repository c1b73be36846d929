"""Small distribution value objects that know their mean (in the manner of Ciw).

Every distribution samples from a ``numpy.random.Generator`` handed down by its caller and
exposes ``mean`` so that tests can compare simulated behaviour with theory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np


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
