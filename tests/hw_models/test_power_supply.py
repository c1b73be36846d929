"""Power coupling: supply series integrals, the battery's bounds and energy balance, and
the brown-out controller shedding and restoring servers around a grid outage."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_models.power_supply import (
    LI_ION_ROUND_TRIP_EFFICIENCY,
    Battery,
    GridOutages,
    PowerController,
    SupplySeries,
)
from hw_models.server import SHED, JobLost, ServerPool


def test_supply_series_integrates_exactly_and_is_zero_outside() -> None:
    series = SupplySeries([100.0, 300.0, 0.0, 50.0], step_s=10.0, start_s=5.0)
    assert series.energy_j(5.0, 45.0) == pytest.approx(10 * (100 + 300 + 0 + 50))
    assert series.energy_j(10.0, 20.0) == pytest.approx(5 * 100 + 5 * 300)
    assert series.energy_j(0.0, 5.0) == 0.0 and series.energy_j(45.0, 99.0) == 0.0
    np.testing.assert_allclose(
        series.energy_j(np.array([5.0, 15.0]), np.array([15.0, 35.0])),
        [1000.0, 3000.0],  # [15, 25) at 300 W, [25, 35) at 0 W
    )
    assert series.power_at_w(16.0) == 300.0 and series.power_at_w(1e6) == 0.0
    with pytest.raises(ValueError, match=">= 0"):
        SupplySeries([-1.0], 1.0)


def test_grid_outages_validate_and_answer() -> None:
    grid = GridOutages([(50.0, 60.0), (10.0, 20.0)])
    assert [grid.is_up(t) for t in (0.0, 10.0, 19.9, 20.0, 55.0)] == [
        True,
        False,
        False,
        True,
        False,
    ]
    assert grid.edges_s() == [10.0, 20.0, 50.0, 60.0]
    with pytest.raises(ValueError, match="overlap"):
        GridOutages([(0.0, 10.0), (5.0, 20.0)])


def test_battery_round_trip_efficiency_and_power_limits() -> None:
    assert LI_ION_ROUND_TRIP_EFFICIENCY == 0.85  # NREL ATB 2023
    battery = Battery(1_000.0, max_charge_w=500.0, max_discharge_w=250.0, soc_wh=0.0)
    # 1 h at most 500 W: 600 Wh offered, 500 Wh accepted
    assert battery.charge(600.0, 3600.0) == pytest.approx(500.0)
    assert battery.soc == pytest.approx(500.0 * np.sqrt(0.85))
    # discharging at most 250 W: 4 h to empty it; what comes out is 85 % of what went in
    out = sum(battery.discharge(1e9, 3600.0) for _ in range(4))
    assert battery.soc == pytest.approx(0.0, abs=1e-9)
    assert out == pytest.approx(500.0 * 0.85)


def test_battery_never_leaves_its_bounds_and_balances_energy() -> None:
    rng = np.random.default_rng(3)
    battery = Battery(750.0, max_charge_w=400.0, max_discharge_w=300.0, soc_wh=300.0)
    for _ in range(5_000):
        energy_wh, duration_s = rng.uniform(0, 200), rng.uniform(1, 1800)
        if rng.random() < 0.5:
            battery.charge(energy_wh, duration_s)
        else:
            battery.discharge(energy_wh, duration_s)
        assert 0.0 <= battery.soc <= battery.capacity_wh
    delta = battery.soc - battery.initial_soc_wh
    balance = battery.charged_wh - battery.discharged_wh - battery.losses_wh
    assert balance == pytest.approx(delta, rel=1e-9, abs=1e-9)
    assert battery.losses_wh > 0 and battery.charged_wh > 1_000


HOUR = 3600.0


def run_brownout() -> tuple[ServerPool, PowerController, list[JobLost]]:
    """4 servers x 2 cores (20 W idle, 60 W full, PUE 1) carrying 2 busy cores on
    average (120 W with all four up), 50 W of renewables, a 200 Wh battery, the grid out
    from 1 h to 6 h."""
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 4, 2, 1.0, idle_w=20.0, max_w=60.0, pue=1.0)
    lost: list[JobLost] = []

    def job() -> Generator[simpy.Event, Any, None]:
        try:
            yield from pool.serve(lambda server: 1.0)
        except JobLost as exc:
            lost.append(exc)

    def load() -> Generator[simpy.Event, Any, None]:
        while True:
            env.process(job())
            yield env.timeout(0.5)

    env.process(load())
    supply = SupplySeries(np.full(10, 50.0), step_s=HOUR)
    battery = Battery(200.0, max_charge_w=100.0, max_discharge_w=500.0)
    controller = PowerController(
        env, pool, supply, battery, GridOutages([(1 * HOUR, 6 * HOUR)]), step_s=60.0
    )
    env.run(until=10 * HOUR + 1e-9)  # the settlement at 10 h included
    return pool, controller, lost


def test_brownout_sheds_when_the_battery_runs_out_and_restores_after_the_outage() -> None:
    pool, controller, lost = run_brownout()
    records = controller.records
    shed_times = [t for t, _, action in controller.shed_log if action == "shed"]
    assert shed_times, "the battery ran out during the outage: servers must be shed"
    # nothing is shed while the grid is up, and shedding starts only once the battery is low
    assert all(1 * HOUR <= t < 6 * HOUR for t in shed_times)
    first_shed = min(shed_times)
    soc_then = next(r.soc_wh for r in records if r.t_s == first_shed)
    assert soc_then < 0.1 * controller.battery.capacity_wh
    # first shed first: the highest index goes first
    assert controller.shed_log[0][1] == "m/server-3"
    # restored after the outage, the battery recharged from the grid
    after = [r for r in records if r.t_s > 6 * HOUR + 60.0]
    assert all(r.servers_shed == 0 for r in after)
    assert all(s.online for s in pool.servers)
    assert records[-1].soc_wh == pytest.approx(controller.battery.capacity_wh)
    # state of charge within [0, capacity] at every step
    assert all(0.0 <= r.soc_wh <= controller.battery.capacity_wh for r in records)
    # hard shedding loses the uploads on the shed servers, and only then
    assert lost and {e.record.cause for e in lost} == {SHED}
    assert {e.record.at_s for e in lost} <= set(shed_times)


def test_brownout_energy_is_conserved_and_nothing_goes_unserved() -> None:
    pool, controller, _ = run_brownout()
    battery = controller.battery
    # every Wh the load drew came from renewables, the grid or the battery (or was
    # unserved); every renewable Wh was used, stored or surplus
    supplied = (
        controller.renewable_wh
        + controller.grid_import_wh
        + battery.discharged_wh
        + controller.unserved_wh
    )
    used = controller.load_wh + battery.charged_wh + controller.surplus_wh
    assert supplied == pytest.approx(used, rel=1e-9)
    assert controller.load_wh * 3600.0 == pytest.approx(pool.facility_energy_j(), rel=1e-9)
    # the battery's own balance: in - out - losses == change of state of charge
    assert battery.charged_wh - battery.discharged_wh - battery.losses_wh == pytest.approx(
        battery.soc - battery.initial_soc_wh, abs=1e-6
    )
    # the controller sheds before the battery is empty: no energy goes unserved
    assert controller.unserved_wh == pytest.approx(0.0, abs=1e-6)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    capacity_wh=st.floats(10.0, 500.0),
    outage=st.tuples(st.floats(0.0, 3.0), st.floats(0.1, 3.0)),
    step_s=st.sampled_from([30.0, 60.0, 300.0]),
)
def test_random_supply_and_outages_keep_the_battery_in_bounds_and_balanced(
    seed: int, capacity_wh: float, outage: tuple[float, float], step_s: float
) -> None:
    # Poisson load, a random renewable profile, a random outage: whatever happens the state
    # of charge stays in [0, capacity], the battery balances and energy is conserved.
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 3, 2, 1.0, idle_w=30.0, max_w=90.0, pue=1.3)

    def job(work_s: float) -> Generator[simpy.Event, Any, None]:
        with contextlib.suppress(JobLost):  # shed servers lose their uploads
            yield from pool.serve(lambda server: work_s)

    def load() -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(rng.exponential(2.0))  # about 2 busy cores of 6
            env.process(job(rng.exponential(4.0)))

    env.process(load())
    supply = SupplySeries(rng.uniform(0.0, 300.0, size=24), step_s=900.0)
    battery = Battery(capacity_wh, 200.0, 400.0, soc_wh=capacity_wh * rng.random())
    start = outage[0] * HOUR
    controller = PowerController(
        env, pool, supply, battery, GridOutages([(start, start + outage[1] * HOUR)]), step_s
    )
    env.run(until=6 * HOUR + 1e-9)
    assert all(0.0 <= r.soc_wh <= capacity_wh for r in controller.records)
    assert battery.charged_wh - battery.discharged_wh - battery.losses_wh == pytest.approx(
        battery.soc - battery.initial_soc_wh, abs=1e-6
    )
    supplied = (
        controller.renewable_wh
        + controller.grid_import_wh
        + battery.discharged_wh
        + controller.unserved_wh
    )
    used = controller.load_wh + battery.charged_wh + controller.surplus_wh
    assert supplied == pytest.approx(used, rel=1e-9)
    # shedding only while the grid is out; all servers back once it returns
    assert all(not controller.grid.is_up(t) for t, _, a in controller.shed_log if a == "shed")
    restored_s = start + outage[1] * HOUR + step_s
    assert all(r.servers_shed == 0 for r in controller.records if r.t_s > restored_s)
