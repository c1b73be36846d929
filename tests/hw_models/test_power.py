"""Server power and energy: the event-driven integral of simulated power equals the
utilisation-weighted formula E = T (P_idle + (P_max - P_idle) u) PUE."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
import simpy

from hw_models.catalog import load_catalog
from hw_models.power import (
    DEFAULT_PUE,
    POWER_MODELS,
    PowerMeter,
    facility_power_w,
    linear_power_w,
    utilisation_energy_j,
)
from hw_models.server import CRASH, ServerPool


def test_linear_power_model_endpoints_and_vectorisation() -> None:
    assert POWER_MODELS["linear"] is linear_power_w
    np.testing.assert_allclose(
        linear_power_w(16.8, 57.4, np.array([0.0, 0.5, 1.0])), [16.8, 37.1, 57.4]
    )
    with pytest.raises(ValueError, match="utilisation"):
        linear_power_w(10.0, 20.0, 1.5)
    assert facility_power_w(100.0, 1.55) == pytest.approx(155.0)
    with pytest.raises(ValueError, match="Green Grid"):
        facility_power_w(100.0, 0.9)
    assert DEFAULT_PUE == 1.55  # Uptime Institute 2022 survey average


def test_power_meter_integrates_piecewise_constant_power() -> None:
    meter = PowerMeter(0.0, 10.0)
    meter.set(2.0, 30.0)  # 10 W for 2 s
    meter.set(2.0, 5.0)  # a zero-length step adds nothing
    meter.set(5.0, 0.0)  # 5 W for 3 s
    assert meter.energy_j(9.0) == 10 * 2 + 5 * 3
    with pytest.raises(ValueError, match="backwards"):
        meter.set(4.0, 1.0)


@pytest.mark.parametrize("sku_name", ["edge-1u-4c", "edge-1u-8c", "edge-2u-32c"])
def test_energy_integral_equals_the_utilisation_formula(sku_name: str) -> None:
    # Poisson arrivals, exponential work, three servers of a catalog SKU: the exact
    # event-driven integral of each server's power equals T (P_idle + (P_max - P_idle) u)
    # PUE with u its busy fraction (two independent code paths: the power meter and the
    # busy-time accounting).
    sku = load_catalog().server(sku_name)
    env = simpy.Environment()
    pool = ServerPool.from_sku(env, "m", sku, 3, pue=1.4)
    rng = np.random.default_rng(5)
    rate_per_s = 0.6 * 3 * sku.cores * sku.speed_factor / 2.0  # load 0.6, E[S] = 2 s

    def job(work_s: float) -> Generator[simpy.Event, Any, None]:
        yield from pool.serve(lambda server: work_s, size_bytes=1_000)

    def arrivals() -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(rng.exponential(1 / rate_per_s))
            env.process(job(rng.exponential(2.0)))

    env.process(arrivals())
    horizon_s = 3_000.0
    env.run(until=horizon_s)
    total_formula_j = 0.0
    for server in pool.servers:
        u = server.busy_fraction(horizon_s)
        assert 0.3 < u < 0.9
        formula_j = utilisation_energy_j(horizon_s, sku.idle_w, sku.max_w, u, pool.pue)
        assert pool.pue * server.energy_j(horizon_s) == pytest.approx(formula_j, rel=1e-9)
        total_formula_j += formula_j
    assert pool.facility_energy_j() == pytest.approx(total_formula_j, rel=1e-9)
    # and the check can fail: a formula with the power at the wrong utilisation misses
    wrong_j = sum(
        utilisation_energy_j(
            horizon_s, sku.idle_w, sku.max_w, 1.01 * s.busy_fraction(horizon_s), pool.pue
        )
        for s in pool.servers
    )
    assert pool.facility_energy_j() != pytest.approx(wrong_j, rel=1e-4)


def test_a_down_server_draws_no_power() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 2, 2, 1.0, idle_w=20.0, max_w=60.0, pue=1.0)

    def outage() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(10.0)
        pool.set_down(pool.servers[1], CRASH)
        yield env.timeout(30.0)
        pool.set_up(pool.servers[1], CRASH)

    env.process(outage())
    env.run(until=100.0)
    assert pool.servers[0].energy_j() == pytest.approx(20.0 * 100)
    assert pool.servers[1].energy_j() == pytest.approx(20.0 * 70)
    assert pool.servers[1].availability(100.0) == pytest.approx(0.7)
    assert pool.it_power_w() == 40.0 and pool.facility_power_w() == 40.0
