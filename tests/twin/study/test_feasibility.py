"""The sequential check of a candidate against its SLOs: Kim and Nelson's constants, the
decisions it must take at once, replications judged in order, and its error rates against
the guarantee (simulated normal outputs, within binomial margins)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.study.feasibility import BREAKS, MEETS, UNRESOLVED, SequentialCheck, judge
from twin.study.slo import Slo, parse_slo

P99 = parse_slo("latency_s.p99<=100")
LOSS = parse_slo("readings_lost_total==0")
AVAILABILITY = parse_slo("availability>=0.99")


def _judge(slos: list[Slo], check: SequentialCheck, **values: list[float]) -> object:
    names = {"p99": P99.kpi, "loss": LOSS.kpi, "availability": AVAILABILITY.kpi}
    return judge(slos, {names[k]: np.array(v, dtype=float) for k, v in values.items()}, check)


def test_h2_is_kim_and_nelsons_constant() -> None:
    # n0 = 10, one SLO at 95 %: beta' = 0.025, eta = ((0.05)^(-2/9) - 1) / 2 = 0.47295
    assert SequentialCheck(n0=10).h2(1) == pytest.approx(2 * 0.47295 * 9, rel=1e-4)
    # two SLOs share the error: a smaller beta' widens the region
    assert SequentialCheck(n0=10).h2(2) > SequentialCheck(n0=10).h2(1)


def test_candidates_far_from_the_limit_are_decided_on_the_first_stage() -> None:
    check = SequentialCheck(n0=3)
    far_below = _judge([P99], check, p99=[40.0, 55.0, 47.0])
    far_above = _judge([P99], check, p99=[180.0, 210.0, 195.0])
    assert far_below.verdict == MEETS and far_below.replications == 3  # type: ignore[attr-defined]
    assert far_above.verdict == BREAKS and far_above.replications == 3  # type: ignore[attr-defined]


def test_a_kpi_that_never_varies_is_judged_by_its_value() -> None:
    check = SequentialCheck(n0=3)
    zero = parse_slo("readings_lost_total<=0")
    assert judge([zero], {zero.kpi: np.zeros(3)}, check).verdict == MEETS  # type: ignore[union-attr]
    strict = parse_slo("readings_lost_total<0")
    assert judge([strict], {zero.kpi: np.zeros(3)}, check).verdict == BREAKS  # type: ignore[union-attr]


def test_every_run_slo_breaks_at_the_first_replication_that_differs() -> None:
    check = SequentialCheck(n0=3)
    # p99 is too close to call at 3 replications; the loss in replication 5 decides first
    p99 = [98.0, 80.0, 104.0, 92.0, 90.0, 93.0, 91.0]
    v = _judge([P99, LOSS], check, p99=p99, loss=[0, 0, 0, 0, 12, 0, 0])
    assert v.verdict == BREAKS and v.replications == 5  # type: ignore[attr-defined]
    assert v.broken == [LOSS.text]  # type: ignore[attr-defined]


def test_a_kpi_a_run_could_not_compute_breaks_its_slo() -> None:
    v = _judge([P99], SequentialCheck(n0=3), p99=[50.0, math.nan, 40.0])
    assert v.verdict == BREAKS and v.replications == 2  # type: ignore[attr-defined]


def test_lower_limits_are_mirrored() -> None:
    check = SequentialCheck(n0=3)
    assert _judge([AVAILABILITY], check, availability=[1.0, 0.999, 1.0]).verdict == MEETS  # type: ignore[attr-defined]
    assert _judge([AVAILABILITY], check, availability=[0.9, 0.95, 0.93]).verdict == BREAKS  # type: ignore[attr-defined]


def test_close_calls_take_more_replications_and_the_region_closes() -> None:
    check = SequentialCheck(n0=5, tolerance=0.05, max_replications=10_000)
    rng = np.random.default_rng(5)
    y = rng.normal(99.0, 8.0, 10_000)  # 1 % below the limit: inside the indifference zone
    assert _judge([P99], check, p99=list(y[:5])) is None  # too close to call at n0
    v = _judge([P99], check, p99=list(y))
    assert v.verdict in (MEETS, BREAKS)  # type: ignore[attr-defined]
    d = check.half_zone(P99)
    s2 = float(np.var(y[:5] - (100 - d), ddof=1))
    assert 5 < v.replications <= math.ceil(check.h2(1) * s2 / d**2) + 1  # type: ignore[attr-defined]
    # replications run ahead of the decision (in parallel) do not change it
    again = _judge([P99], check, p99=list(y[: v.replications + 37]))  # type: ignore[attr-defined]
    assert again == v


def test_still_open_at_the_cap_is_unresolved() -> None:
    check = SequentialCheck(n0=3, max_replications=6)
    y = [99.0, 103.0, 96.0, 101.0, 99.5, 100.2]
    assert _judge([P99], check, p99=y[:5]) is None
    assert _judge([P99], check, p99=y).verdict == UNRESOLVED  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mean", "meets_at_most", "meets_at_least"),
    [
        (100.0, 0.05, 0.0),  # at the limit: declared met at most 5 % of the time
        (104.0, 0.05, 0.0),  # beyond it
        (95.0, 1.0, 0.95),  # the good edge of the zone (tolerance 5 %): met at least 95 %
        (80.0, 1.0, 0.95),
    ],
)
def test_error_rates_keep_the_guarantee(
    mean: float, meets_at_most: float, meets_at_least: float
) -> None:
    check = SequentialCheck(n0=5, tolerance=0.05, max_replications=5_000)
    rng = np.random.default_rng(int(mean * 10))
    trials = 1500
    met = 0
    for _ in range(trials):
        v = _judge([P99], check, p99=list(rng.normal(mean, 6.0, 2_000)))
        assert v is not None
        met += v.verdict == MEETS  # type: ignore[attr-defined]
    margin = 3 * math.sqrt(0.05 * 0.95 / trials)
    assert meets_at_least - margin <= met / trials <= meets_at_most + margin
