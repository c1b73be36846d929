"""Per-hop latency recorder."""

from __future__ import annotations

import math

import numpy as np

from network.hops import HOPS, HopLatencies


def test_percentiles_match_numpy_and_growth_keeps_values() -> None:
    rng = np.random.default_rng(0)
    hops = HopLatencies()
    cellular = rng.lognormal(0.0, 1.0, 5000)
    for x in cellular:  # past the initial capacity several times
        hops.add("cellular", float(x))
    vpn = rng.random(3000)
    hops.add_many("vpn", vpn[:1000])
    hops.add_many("vpn", vpn[1000:])
    hops.add("extra_hop", 1.0)
    stats = hops.percentiles()
    np.testing.assert_array_equal(hops.values("cellular"), cellular)
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        assert stats["cellular"][name] == np.percentile(cellular, q)
        assert stats["vpn"][name] == np.percentile(vpn, q)
    assert stats["cellular"]["n"] == 5000 and hops.count("vpn") == 3000
    assert math.isnan(stats["pipeline"]["p99"]) and stats["pipeline"]["n"] == 0
    assert hops.hops[: len(HOPS)] == list(HOPS) and "extra_hop" in hops.hops
    records = hops.records()
    assert {r["hop"] for r in records} == set(hops.hops)
