"""Student-t intervals of replications: published quantiles, the 1/sqrt(N) shrinkage of the
half-width and the coverage of the interval, checked against theory on normal samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from twin.accounting.intervals import t_critical
from twin.study.stats import estimate


def test_t_quantiles_match_the_published_table() -> None:
    # two-sided 95 %: 12.706 (1 df), 2.776 (4 df), 2.262 (9 df); 99 %: 4.032 (5 df)
    assert t_critical(0.95, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_critical(0.95, 4) == pytest.approx(2.776, abs=1e-3)
    assert t_critical(0.95, 9) == pytest.approx(2.262, abs=1e-3)
    assert t_critical(0.99, 5) == pytest.approx(4.032, abs=1e-3)


def test_estimate_of_five_values_by_hand() -> None:
    e = estimate([2.0, 4.0, 4.0, 5.0, 5.0])
    assert (e.n, e.mean) == (5, 4.0)
    assert e.sd == pytest.approx(math.sqrt(1.5))
    assert e.half_width == pytest.approx(2.7764451 * math.sqrt(1.5) / math.sqrt(5))
    assert e.ci_low < e.mean < e.ci_high


def test_values_a_run_could_not_compute_are_left_out() -> None:
    e = estimate([1.0, math.nan, 3.0])
    assert (e.n, e.mean) == (2, 2.0)
    one = estimate([7.0, math.nan])
    assert one.n == 1 and one.mean == 7.0 and math.isnan(one.half_width)
    assert estimate([]).n == 0 and math.isnan(estimate([]).mean)
    assert estimate([1.0]).to_json()["sd"] is None  # JSON has no NaN


def _expected_half_width(n: int, sigma: float) -> float:
    """E[t s / sqrt(n)] = t c4(n) sigma / sqrt(n), with c4(n) = E[s] / sigma for normal data
    (c4 = sqrt(2 / (n - 1)) Gamma(n / 2) / Gamma((n - 1) / 2))."""
    c4 = math.sqrt(2.0 / (n - 1)) * math.exp(special.gammaln(n / 2) - special.gammaln((n - 1) / 2))
    return t_critical(0.95, n - 1) * c4 * sigma / math.sqrt(n)


@pytest.mark.parametrize("n", [5, 20, 80])
def test_half_width_shrinks_like_one_over_sqrt_n(n: int) -> None:
    rng = np.random.default_rng(1)
    sigma = 3.0
    widths = [estimate(rng.normal(10.0, sigma, n)).half_width for _ in range(4000)]
    mean_width = float(np.mean(widths))
    # the mean of 4000 half-widths is within 2 % of theory (its own standard error < 0.6 %)
    assert mean_width == pytest.approx(_expected_half_width(n, sigma), rel=0.02)


def test_ninety_five_percent_of_intervals_cover_the_mean() -> None:
    rng = np.random.default_rng(2)
    trials = 4000
    covered = sum(
        (e := estimate(rng.normal(2.0, 1.5, 10))).ci_low <= 2.0 <= e.ci_high for _ in range(trials)
    )
    # exact for normal data: 0.95, within 3 binomial standard deviations (0.0034 each)
    assert abs(covered / trials - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / trials)
