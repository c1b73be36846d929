"""Does a configuration meet its SLOs at 95 % confidence? A sequential check that adds
replications only while a candidate is too close to call.

Each inequality SLO (a bound ``L`` on the mean of a KPI ``Y``) is judged in two steps that
share its error probability ``beta`` half and half, as Nelson, Swann, Goldsman and Song
split theirs between a screen and a selection step (B. L. Nelson, J. Swann, D. Goldsman and
W. Song, "Simple procedures for selecting the best simulated system when the number of
alternatives is large", Operations Research 49(6):950-963, 2001):

1. **Screen** on the first ``n0`` replications: a one-sided Student-t bound at
   ``1 - beta/2``. The SLO is broken when the lower bound of the mean is beyond ``L``, met
   when the upper bound is within it (mirrored for a lower limit). A candidate far from the
   limit is decided here, whatever its variance.
2. **Fully sequential check** otherwise: the feasibility check of D. Batur and S.-H. Kim,
   "Finding feasible systems in the presence of constraints on multiple performance
   measures", ACM TOMACS 20(3), article 13, 2010, which applies the triangular
   continuation region of S.-H. Kim and B. L. Nelson, "A fully sequential procedure for
   indifference-zone selection in simulation", ACM TOMACS 11(3):251-273, 2001, to the sums
   of ``Y_j - q`` over replications ``j``. ``S^2`` is the sample variance of the first
   ``n0`` of them (not updated); with ``h^2 = 2 eta (n0 - 1)``,
   ``eta = ((2 beta')^(-2 / (n0 - 1)) - 1) / 2``, ``beta' = beta / 2`` and the half-zone
   ``d``, after ``r >= n0`` replications let ``R(r) = max(0, h^2 S^2 / (2 d) - d r / 2)``:
   the SLO is met when ``sum_{j<=r} (Y_j - q) <= -R(r)``, broken when it is ``>= R(r)``,
   otherwise one more replication is taken. The region closes at ``r = h^2 S^2 / d^2``.

The check is wrong with probability at most ``beta'`` whenever the mean lies outside the
indifference zone ``[q - d, q + d]``. We put that zone just inside the limit: ``q = L - d``
and ``d = tolerance x |L| / 2`` (``tolerance`` itself when ``L = 0``; mirrored for a lower
limit), so that a configuration whose mean breaks the limit is declared to meet it with
probability at most ``beta`` (screen and check together), and one within ``tolerance`` of the
limit on the good side may be declared either way. The SLOs of a candidate share
``1 - confidence`` (Bonferroni): ``beta = (1 - confidence) / (number of inequality SLOs)``; as in
Batur and Kim's procedure, a candidate breaks as soon as one SLO is declared broken and
meets when all are met.

An ``==`` SLO must hold in every replication taken (it breaks at the first that differs).
A KPI a replication could not compute (NaN) breaks its SLO. Replications are judged in
order, so replications run ahead of the decision (in parallel) never change it; a check
still open after ``max_replications`` is ``unresolved`` and does not count as meeting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.accounting.intervals import t_critical
from twin.scenario.slo import Slo

MEETS = "meets"
BREAKS = "breaks"
UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class SequentialCheck:
    """The check's settings: ``n0`` first-stage replications (>= 2), the ``confidence``,
    the relative ``tolerance`` and the most replications of one candidate."""

    n0: int = 5
    confidence: float = 0.95
    tolerance: float = 0.05
    max_replications: int = 100

    def error(self, inequalities: int) -> float:
        """``beta / 2``: the error of each step (screen, sequential check) of one SLO when
        ``inequalities`` SLOs share ``1 - confidence``."""
        return (1.0 - self.confidence) / max(1, inequalities) / 2.0

    def h2(self, inequalities: int) -> float:
        """Kim and Nelson's ``h^2`` of the sequential check."""
        beta = self.error(inequalities)
        eta = 0.5 * ((2.0 * beta) ** (-2.0 / (self.n0 - 1)) - 1.0)
        return 2.0 * eta * (self.n0 - 1)

    def half_zone(self, slo: Slo) -> float:
        """``d``: half the indifference zone of ``slo``, in the KPI's unit."""
        width = self.tolerance * abs(slo.limit) if slo.limit != 0 else self.tolerance
        return width / 2.0


@dataclass(frozen=True)
class SloVerdict:
    """One SLO: ``meets``, ``breaks`` or None (open), decided after ``at`` replications."""

    slo: Slo
    verdict: str | None
    at: int


@dataclass(frozen=True)
class Verdict:
    """A candidate: ``meets``, ``breaks`` or ``unresolved`` after ``replications``, with
    each SLO's verdict; ``broken`` names the SLOs that broke."""

    verdict: str
    replications: int
    slos: tuple[SloVerdict, ...]

    @property
    def meets(self) -> bool:
        return self.verdict == MEETS

    @property
    def broken(self) -> list[str]:
        return [s.slo.text for s in self.slos if s.verdict == BREAKS and s.at <= self.replications]


def judge(slos: list[Slo], values: dict[str, np.ndarray], check: SequentialCheck) -> Verdict | None:
    """The verdict on the replications so far (``values``: each SLO's KPI, one value per
    replication, in order), or None when more replications are needed."""
    n = min(len(v) for v in values.values())
    if n < check.n0:
        return None
    inequalities = sum(1 for s in slos if not s.every_run)
    verdicts = tuple(
        _every_run(s, values[s.kpi][:n], check.n0)
        if s.every_run
        else _inequality(s, values[s.kpi][:n], check, inequalities)
        for s in slos
    )
    broken_at = min((v.at for v in verdicts if v.verdict == BREAKS), default=math.inf)
    met_at = max(v.at for v in verdicts) if all(v.verdict == MEETS for v in verdicts) else math.inf
    if broken_at <= met_at and broken_at < math.inf:
        return Verdict(BREAKS, int(broken_at), verdicts)
    if met_at < math.inf:
        return Verdict(MEETS, int(met_at), verdicts)
    if n >= check.max_replications:
        return Verdict(UNRESOLVED, n, verdicts)
    return None


def _every_run(slo: Slo, y: np.ndarray, n0: int) -> SloVerdict:
    for j, value in enumerate(y.tolist()):
        if math.isnan(value) or not slo.holds(value):
            return SloVerdict(slo, BREAKS, j + 1)
    return SloVerdict(slo, MEETS, n0)


def _inequality(slo: Slo, y: np.ndarray, check: SequentialCheck, inequalities: int) -> SloVerdict:
    nan = np.flatnonzero(np.isnan(y))
    if nan.size:
        return SloVerdict(slo, BREAKS, int(nan[0]) + 1)
    beta = check.error(inequalities)
    first = y[: check.n0]
    sd = float(np.std(first, ddof=1))
    if sd == 0.0:  # the KPI did not vary: its value decides (both steps would at n0)
        return SloVerdict(slo, MEETS if slo.holds(float(first[0])) else BREAKS, check.n0)
    # one-sided 1 - beta bound = two-sided interval at confidence 1 - 2 beta
    half = t_critical(1.0 - 2.0 * beta, check.n0 - 1) * sd / math.sqrt(check.n0)
    low, high = float(first.mean()) - half, float(first.mean()) + half
    beyond, within = (low > slo.limit, high < slo.limit)
    if not slo.upper:
        beyond, within = high < slo.limit, low > slo.limit
    if beyond or within:
        return SloVerdict(slo, BREAKS if beyond else MEETS, check.n0)
    d = check.half_zone(slo)
    q = slo.limit - d if slo.upper else slo.limit + d
    diffs = y - q if slo.upper else q - y
    s2 = float(np.var(diffs[: check.n0], ddof=1))
    h2 = check.h2(inequalities)
    sums = np.cumsum(diffs)
    for r in range(check.n0, len(diffs) + 1):
        region = max(0.0, h2 * s2 / (2.0 * d) - d * r / 2.0)
        if sums[r - 1] <= -region:
            return SloVerdict(slo, MEETS, r)
        if sums[r - 1] >= region:
            return SloVerdict(slo, BREAKS, r)
    return SloVerdict(slo, None, len(diffs))
