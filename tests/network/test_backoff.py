"""Backoff policies: the capped exponential envelope and AWS-style jitter."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from network.backoff import backoff_many_s, backoff_s, envelope_many_s, envelope_s
from network.cellular import CellularProfile


def test_envelope_is_capped_exponential() -> None:
    assert [envelope_s(k, 2.0, 20.0) for k in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 20.0]
    assert envelope_s(10_000, 2.0, 20.0) == 20.0
    np.testing.assert_array_equal(
        envelope_many_s(np.arange(1, 6), 2.0, 20.0), [2.0, 4.0, 8.0, 16.0, 20.0]
    )


def test_full_jitter_is_uniform_under_the_envelope() -> None:
    rng = np.random.default_rng(4)
    waits = np.array([backoff_s(3, 2.0, 120.0, "full", rng) for _ in range(5000)])
    assert scipy.stats.kstest(waits, scipy.stats.uniform(0, 8.0).cdf).pvalue > 1e-3
    many = backoff_many_s(np.full(5000, 3), 2.0, 120.0, "full", rng)
    assert scipy.stats.kstest(many, scipy.stats.uniform(0, 8.0).cdf).pvalue > 1e-3
    # and it is not uniform under a different envelope (the test can fail)
    assert scipy.stats.kstest(waits, scipy.stats.uniform(0, 10.0).cdf).pvalue < 1e-3


def test_equal_and_decorrelated_jitter_bounds() -> None:
    rng = np.random.default_rng(5)
    eq = np.array([backoff_s(4, 1.0, 60.0, "equal", rng) for _ in range(2000)])
    assert eq.min() >= 4.0 and eq.max() <= 8.0
    prev, seen = 0.0, []
    for k in range(1, 200):
        prev = backoff_s(k, 1.0, 60.0, "decorrelated", rng, prev)
        seen.append(prev)
    assert min(seen) >= 1.0 and max(seen) <= 60.0
    with pytest.raises(ValueError):
        backoff_many_s(np.ones(3), 1.0, 2.0, "decorrelated", rng)


def test_profile_backoff_without_generator_is_the_envelope() -> None:
    p = CellularProfile(backoff_base_s=2.0, backoff_cap_s=20.0, backoff_jitter="full")
    assert p.backoff_s(4) == 16.0
    rng = np.random.default_rng(0)
    assert all(0.0 <= p.backoff_s(4, rng) <= 16.0 for _ in range(100))
    with pytest.raises(ValueError, match="backoff_jitter"):
        CellularProfile(backoff_jitter="sometimes")
