"""Confidence intervals of KPIs over replications (DESIGN.md §8: Student-t intervals).

The difference of two means uses Welch's interval (B. L. Welch, "The generalization of
'Student's' problem when several different population variances are involved",
Biometrika 34, 1947), with the Welch-Satterthwaite degrees of freedom; it does not assume
equal variances. A side with a single run counts as a known value (no variance of its
own), so with one run against several the interval is the one-sample t interval of the
other side.

Two sides whose replications pair up one to one by seed (common random numbers: a sweep's
replication ``i`` uses seed ``S + i`` at every point) use the paired-difference Student-t
interval instead (:func:`paired_interval`; A. M. Law, *Simulation Modeling and Analysis*,
5th ed., McGraw-Hill 2015, §10.2.1): the shared noise cancels in each pair's difference, so
the interval is narrower than Welch's for the same runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit

#: Confidence level of the intervals twin reports (compare, sweeps, sizing).
CONFIDENCE = 0.95


def t_critical(confidence: float, df: float) -> float:
    """Two-sided Student-t critical value with ``df`` degrees of freedom: the
    ``1 - (1 - confidence) / 2`` quantile (Gosset, Biometrika 6(1), 1908)."""
    return float(stdtrit(df, 0.5 + confidence / 2))


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
    #: ``"paired"`` (:func:`paired_interval`) or ``"Welch"`` (:func:`welch_interval`).
    method: str = "Welch"

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
    half = t_critical(confidence, df) * math.sqrt(se2)
    return DifferenceInterval(difference, difference - half, difference + half, df, confidence)


def paired_interval(
    a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE
) -> DifferenceInterval | None:
    """The paired-difference Student-t interval for ``mean(b - a)``, ``a[i]`` and ``b[i]``
    being one pair (the same seed): ``mean(d) ± t(n-1) sd(d) / sqrt(n)`` with ``d = b - a``;
    None for fewer than two pairs."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if len(d) < 2:
        return None
    difference = float(d.mean())
    half = t_critical(confidence, len(d) - 1) * float(d.std(ddof=1))
    half /= math.sqrt(len(d))
    return DifferenceInterval(
        difference, difference - half, difference + half, len(d) - 1.0, confidence, "paired"
    )
