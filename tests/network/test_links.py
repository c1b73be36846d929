"""Cellular and VPN link models against their closed forms."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from network.cellular import Cell, CellularProfile
from network.distributions import LogNormal
from network.vpn import VpnTunnel


def test_backoff_is_capped_exponential() -> None:
    p = CellularProfile(backoff_base_s=2.0, backoff_cap_s=20.0)
    assert [p.backoff_s(k) for k in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 20.0]
    assert p.backoff_s(5000) == 20.0  # no float overflow however many attempts


def test_bigger_uploads_take_longer_by_their_serialisation_time() -> None:
    p = CellularProfile(uplink_rate_bps=100_000.0)
    assert p.transfer_s(12_500, 0.3) - p.transfer_s(0, 0.3) == 1.0


def test_lognormal_sample_mean_matches_its_mean() -> None:
    d = LogNormal(0.4, 0.5)
    rng = np.random.default_rng(1)
    samples = np.array([d.sample(rng) for _ in range(40_000)])
    # standard error of the mean is about 0.22 / 200 = 0.0011 s
    assert abs(samples.mean() - d.mean) < 0.006
    assert abs(np.median(samples) - 0.4) < 0.01


def _run_attempts(cell: Cell, n: int, size_bytes: int) -> list[bool]:
    results: list[bool] = []
    rng = np.random.default_rng(3)

    def go() -> Generator[simpy.Event, Any, None]:
        for _ in range(n):
            r = yield from cell.attempt(size_bytes, rng)
            results.append(r.delivered)

    cell.env.process(go())
    cell.env.run()
    return results


def test_loss_probability_and_outage() -> None:
    env = simpy.Environment()
    cell = Cell(env, CellularProfile(loss_probability=0.2))
    delivered = _run_attempts(cell, 5000, 1000)
    assert abs(1 - np.mean(delivered) - 0.2) < 0.02  # 4.5 sigma
    env2 = simpy.Environment()
    down = Cell(env2, CellularProfile(loss_probability=0.0))
    down.add_outage(0.0, 1e9)
    assert not any(_run_attempts(down, 10, 1000))
    assert env2.now == 10 * down.profile.ack_timeout_s


def test_vpn_adds_headers_per_packet() -> None:
    vpn = VpnTunnel(
        latency_s=0.01,
        overhead_bytes_per_packet=65,
        inner_header_bytes=40,
        mtu_bytes=1500,
        bandwidth_bps=8e6,
    )
    assert vpn.payload_bytes_per_packet == 1395
    assert vpn.packets(1395) == 1 and vpn.packets(1396) == 2
    assert vpn.wire_size_bytes(4700) == 4700 + 4 * 105
    assert abs(vpn.transit_s(4700) - (0.01 + (4700 + 420) * 8 / 8e6)) < 1e-12
