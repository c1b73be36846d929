"""Confidence intervals of KPIs over replications (DESIGN.md §8: Student-t intervals).

The difference of two means uses Welch's interval (B. L. Welch, "The generalization of
'Student's' problem when several different population variances are involved",
Biometrika 34, 1947), with the Welch-Satterthwaite degrees of freedom; it does not assume
equal variances. A side with a single run counts as a known value (no variance of its
own), so with one run against several the interval is the one-sample t interval of the
other side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit

#: Confidence level of the intervals twin reports.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class DifferenceInterval:
    """``mean(b) - mean(a)`` (``difference``) and its two-sided confidence interval
    [``low``, ``high``] at ``confidence`` with ``df`` degrees of freedom (inf when both
    sides have no spread); ``significant`` when the interval excludes zero."""

    difference: float
    low: float
    high: float
    df: float
    confidence: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def welch_interval(
    a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE
) -> DifferenceInterval | None:
    """Welch's interval for ``mean(b) - mean(a)`` (module docstring); None unless one side
    has at least two values."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0 or (len(a) < 2 and len(b) < 2):
        return None
    terms = [x.var(ddof=1) / len(x) for x in (a, b) if len(x) > 1]
    dofs = [len(x) - 1 for x in (a, b) if len(x) > 1]
    difference = float(b.mean() - a.mean())
    se2 = float(sum(terms))
    if se2 == 0.0:
        return DifferenceInterval(difference, difference, difference, math.inf, confidence)
    df = se2**2 / sum(t**2 / d for t, d in zip(terms, dofs, strict=True))
    half = float(stdtrit(df, 0.5 + confidence / 2)) * math.sqrt(se2)
    return DifferenceInterval(difference, difference - half, difference + half, df, confidence)
