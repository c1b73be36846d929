"""The MDC runtime layer: building the pool and its processes from [[mdc]] tables, and the
checks and figures of its report (energy, Little's law, availability, power loss,
brown-out, acknowledgement mode)."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
import simpy
from scipy import stats

from hw_models.catalog import load_catalog
from hw_models.little import LittleLawMonitor
from hw_models.power import DEFAULT_PUE
from hw_models.server import CRASH, POWER_LOSS, SHED, JobLost, LostJob
from twin.rng import component_rng
from twin.scenario.mdc import MdcSpec, parse_mdc
from twin.scenario.schema import Table
from twin.world.mdc import LITTLE_CHECK_TOLERANCE, Mdc, renewable_supply

HOUR = 3600.0


def spec_of(toml: str, duration_s: float = 24 * HOUR) -> MdcSpec:
    """Parse the first [[mdc]] table of a TOML snippet."""
    raw = tomllib.loads(toml)["mdc"][0]
    return parse_mdc(Table(raw, f"mdc.{raw.get('name', 0)}"), duration_s)


def build(
    spec: MdcSpec, horizon_s: float, seed: int = 1, **kwargs: Any
) -> tuple[simpy.Environment, Mdc]:
    env = simpy.Environment()
    mdc = Mdc(
        env, spec, rng_for=lambda cid: component_rng(seed, cid), horizon_s=horizon_s, **kwargs
    )
    return env, mdc


def poisson_stream(
    env: simpy.Environment,
    mdc: Mdc,
    rate_per_s: float,
    mean_service_s: float,
    rng: np.random.Generator,
    outcomes: list[Any],
    size_bytes: int = 5_000,
) -> None:
    """Poisson uploads of exponential service demand (s at speed 1); each outcome is
    ("ok", arrival time) or the LostJob record."""

    def job() -> Generator[simpy.Event, Any, None]:
        arrived = env.now
        try:
            yield from mdc.serve(
                lambda server: float(rng.exponential(mean_service_s)), size_bytes, tag=arrived
            )
            outcomes.append(("ok", arrived))
        except JobLost as lost:
            outcomes.append(lost.record)

    def source() -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(float(rng.exponential(1.0 / rate_per_s)))
            env.process(job())

    env.process(source())


# -- building --------------------------------------------------------------------------------


def test_build_from_toml_makes_the_pool_of_the_spec() -> None:
    spec = spec_of('[[mdc]]\nname = "n"\nservers = { sku = "edge-1u-28c", count = 3 }\n')
    _, mdc = build(spec, HOUR)
    assert [s.name for s in mdc.pool.servers] == ["n/server-0", "n/server-1", "n/server-2"]
    assert all(s.cores == 28 and s.sku == "edge-1u-28c" for s in mdc.pool.servers)
    assert mdc.pool.ram_budget_bytes == spec.ingest_ram_budget_bytes
    assert mdc.is_up() and mdc.controller is None and mdc.pool.accelerator is None
    assert len(mdc.sample()) == len(mdc.sample_columns()) == 5
    _, generic = build(spec_of('[[mdc]]\nname = "l"\nservers = { count = 1, cores = 2 }\n'), HOUR)
    assert generic.pool.ram_budget_bytes is None and generic.pool.it_power_w() == 0.0
    assert [s.cores for s in generic.pool.servers] == [2] and generic.pool.servers[0].sku is None


def test_accelerator_is_built_and_metered_idle() -> None:
    spec = spec_of(
        '[[mdc]]\nname = "g"\naccelerator = "t4"\nservers = { sku = "edge-1u-4c", count = 1 }\n'
    )
    env, mdc = build(spec, HOUR)
    env.run(until=HOUR)
    report = mdc.report(HOUR)
    catalog = load_catalog()
    gpu_w, server_w = catalog.accelerator("t4").idle_w, catalog.server("edge-1u-4c").idle_w
    assert mdc.pool.accelerator is not None
    assert report.gpu_energy_wh == pytest.approx(gpu_w)  # one hour idle
    assert report.it_energy_wh == pytest.approx(gpu_w + server_w)
    assert report.energy.energy_check_ok


# -- checks of the report --------------------------------------------------------------------


Run = tuple[simpy.Environment, Mdc, list[Any]]


def _loaded_run(seed: int = 3, hours: float = 6.0) -> Run:
    """Two 8-core SKU servers, Poisson load at ~60 % with one crash-prone server, a
    maintenance window and a power loss: enough going on for the checks to mean something."""
    spec = spec_of(
        """
        [[mdc]]
        name = "n"
        servers = { sku = "edge-1u-8c", count = 2 }
        failures = { mtbf = "3h", mttr = "20min" }
        maintenance = [ { server = 1, at = "2h", duration = "30min" } ]
        """
    )
    horizon_s = hours * HOUR
    env, mdc = build(spec, horizon_s, seed=seed, power_losses=[(4 * HOUR, 600.0)])
    outcomes: list[Any] = []
    # 16 cores at speed 1.04: capacity 16.6 jobs/s of 1 s; offer 10 jobs/s
    poisson_stream(env, mdc, 10.0, 1.0, np.random.default_rng(seed), outcomes)
    env.run(until=horizon_s)
    return env, mdc, outcomes


@pytest.fixture(scope="module")
def loaded() -> Run:
    """One loaded run shared by the read-only checks (tests that tamper restore it)."""
    return _loaded_run()


def test_energy_check_passes_and_catches_a_wrong_power_model(loaded: Run) -> None:
    env, mdc, outcomes = loaded
    report = mdc.report(env.now)
    assert len(outcomes) > 100_000
    assert report.energy.energy_check_ok, report.energy.energy_check_relative_error
    assert report.facility_energy_wh == pytest.approx(DEFAULT_PUE * report.it_energy_wh)
    assert report.energy.energy_check_simulated_wh == pytest.approx(report.facility_energy_wh)
    # between all-idle and all-busy, up time only (the power loss and crashes draw 0 W)
    sku = load_catalog().server("edge-1u-8c")
    assert 2 * sku.idle_w * 6 * 0.9 < report.it_energy_wh < 2 * sku.max_w * 6
    # a formula that disagrees with the metered model is caught
    mdc.pool.servers[0].idle_w += 1.0
    try:
        assert not mdc.report(env.now).energy.energy_check_ok
    finally:
        mdc.pool.servers[0].idle_w -= 1.0


def test_littles_law_holds_on_the_run_and_a_wrong_l_is_detected(loaded: Run) -> None:
    env, mdc, _ = loaded
    report = mdc.report(env.now)
    assert report.little.little_ok, report.little.little_check_relative_error
    little = report.little
    assert little.little_arrivals == little.little_departures + little.little_in_system_end
    # the usual form agrees too on a long run (edge effects only)
    assert report.little.little_relative_error < 0.01
    # the time-average number in system from N(t), tampered with, no longer matches
    area = mdc.pool.little._area
    mdc.pool.little._area *= 1.01  # a wrong N(t) integral
    try:
        assert not mdc.report(env.now).little.little_ok
    finally:
        mdc.pool.little._area = area


def test_littles_law_catches_an_upload_the_pool_forgot_to_count_out() -> None:
    """The check's two sides are independent: N(t) from the pool's arrive/depart calls,
    W from a stopwatch around each serve call. A departure the pool does not record (the
    bookkeeping bug the check exists for) leaves N(t) one too high from then on."""
    env, mdc, _ = _loaded_run(seed=5, hours=0.5)
    skipped: list[float] = []

    class Forgetful(LittleLawMonitor):
        __slots__ = ()

        def depart(self, now_s: float, arrived_s: float) -> None:
            if not skipped:  # the first departure goes unrecorded: N(t) keeps counting it
                skipped.append(now_s)
                return
            super().depart(now_s, arrived_s)

    mdc.pool.little.__class__ = Forgetful
    env.run(until=env.now + HOUR)
    assert skipped
    report = mdc.report(env.now)
    assert not report.little.little_ok
    assert report.little.little_check_relative_error > LITTLE_CHECK_TOLERANCE


def test_littles_law_also_holds_after_a_reset_with_uploads_inside() -> None:
    env, mdc, _ = _loaded_run(seed=4, hours=1.0)
    assert mdc.pool.little.in_system > 0
    mdc.pool.little.reset(env.now)
    env.run(until=env.now + HOUR)
    assert mdc.report(env.now).little.little_ok


def test_report_is_flat_json_with_the_promised_keys(loaded: Run) -> None:
    env, mdc, outcomes = loaded
    report = mdc.report(env.now)
    flat = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert flat["name"] == "n" and flat["little_ok"] == report.little.little_ok
    assert all(not isinstance(v, list) for v in flat.values())  # one flat record
    lost = [o for o in outcomes if isinstance(o, LostJob)]
    assert report.lost_jobs == len(lost) > 0
    assert set(report.lost_jobs_by_cause) <= {CRASH, POWER_LOSS}
    assert report.lost_jobs_by_cause[POWER_LOSS] > 0
    served = sum(1 for o in outcomes if isinstance(o, tuple))
    assert sum(report.server_jobs.values()) == served
    avail = report.server_availability
    assert all(0.5 < a < 1.0 for a in avail.values())


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("failures", ['mtbf = "10h", mttr = "2h"',
                                      'distribution = "weibull", shape = 0.7, mtbf = "10h", '
                                      'mttr = "2h"'])  # fmt: skip
def test_availability_matches_mtbf_over_mtbf_plus_mttr(failures: str) -> None:
    """Renewal-reward: long-run availability = MTBF / (MTBF + MTTR) = 10 / 12, whatever the
    distributions; 24 independent servers give a 99 % confidence interval."""
    spec = spec_of(
        f'[[mdc]]\nname = "f"\nservers = {{ count = 24, cores = 1 }}\nfailures = {{ {failures} }}'
    )
    horizon_s = 3000 * 12 * HOUR  # ~3000 failure/repair cycles per server
    env, mdc = build(spec, horizon_s, seed=11)
    env.run(until=horizon_s)
    availability = np.array(list(mdc.report(horizon_s).server_availability.values()))
    mean = availability.mean()
    half = stats.t.ppf(0.995, len(availability) - 1) * availability.std(ddof=1)
    half /= math.sqrt(len(availability))
    assert abs(mean - 10.0 / 12.0) <= half, (mean, half)
    assert half < 0.01  # and the interval is tight enough to mean something


def test_each_server_draws_failures_from_its_own_stream() -> None:
    toml = '[[mdc]]\nname = "s"\nservers = {{ count = {n}, cores = 1 }}\n' + (
        'failures = {{ mtbf = "1h", mttr = "10min" }}'
    )
    downtimes = []
    for n in (2, 3):
        env, mdc = build(spec_of(toml.format(n=n)), 100 * HOUR, seed=5)
        env.run(until=100 * HOUR)
        downtimes.append([s.downtime_s() for s in mdc.pool.servers])
    assert downtimes[0] == downtimes[1][:2]  # adding a server changes no other stream


# -- power loss ------------------------------------------------------------------------------


def test_power_loss_loses_every_upload_in_memory_and_those_arriving_dark() -> None:
    spec = spec_of('[[mdc]]\nname = "p"\nservers = { count = 1, cores = 2 }\n')
    env, mdc = build(spec, 3 * HOUR, power_losses=[(HOUR, 600.0)])
    outcomes: list[Any] = []
    poisson_stream(env, mdc, 3.0, 1.0, np.random.default_rng(7), outcomes)  # overloaded
    env.run(until=HOUR - 1e-6)
    in_memory = mdc.pool.in_memory()
    assert in_memory > 10 and mdc.is_up()
    env.run(until=HOUR + 300.0)
    assert not mdc.is_up()
    at_loss = [o for o in outcomes if isinstance(o, LostJob) and o.at_s == HOUR]
    assert len(at_loss) == in_memory and all(r.cause == POWER_LOSS for r in at_loss)
    assert mdc.pool.in_memory() == 0
    dark = [o for o in outcomes if isinstance(o, LostJob) and o.at_s > HOUR]
    assert dark and all(r.arrived_s == r.at_s for r in dark)
    # acknowledged on receipt (the default): the world books all of them as lost
    assert mdc.loss_cause_on_crash() == "mdc_crash_unpersisted"
    env.run(until=3 * HOUR)
    assert mdc.is_up() and outcomes[-1][0] == "ok"


# -- brown-out -------------------------------------------------------------------------------


def _brownout_run(renewable_w: float) -> tuple[Mdc, list[float], list[Any]]:
    """4 x edge-1u-8c (idle facility draw 4 x 16.8 W x 1.55 = 104 W) behind a 50 Wh battery;
    the grid is out over [2 h, 6 h); the region's renewables give ``renewable_w`` to it."""
    spec = spec_of(
        """
        [[mdc]]
        name = "b"
        servers = { sku = "edge-1u-8c", count = 4 }
        [mdc.power]
        battery_kwh = 0.05
        renewables_share = 0.5
        grid_outages = [ { at = "2h", duration = "4h" } ]
        """
    )
    horizon_s = 8 * HOUR
    step_s = 900.0
    # two sites, each giving renewable_w over the whole run
    region_w = np.full((2, int(horizon_s / step_s)), renewable_w)
    env, mdc = build(spec, horizon_s, renewables=renewable_supply(region_w, step_s))
    outcomes: list[Any] = []
    poisson_stream(env, mdc, 2.0, 1.0, np.random.default_rng(2), outcomes)
    online: list[float] = []

    def watch() -> Generator[simpy.Event, Any, None]:
        while True:
            online.append(float(len(mdc.pool.online_servers())))
            yield env.timeout(600.0)

    env.process(watch())
    env.run(until=horizon_s)
    return mdc, online, outcomes


def test_brownout_sheds_servers_while_grid_is_out_and_renewables_low_then_restores() -> None:
    mdc, online, outcomes = _brownout_run(renewable_w=40.0)  # 40 W to the MDC
    report = mdc.report(8 * HOUR)
    before, during, after = online[:12], online[13:36], online[37:]
    assert set(before) == {4.0} and set(after) == {4.0}
    assert max(during) < 4.0 and min(during) < 2.0  # the battery drains, more are shed
    assert report.brownout.power_servers_shed_events >= 2
    assert 0 < report.brownout.power_servers_shed_server_s < 4 * 4 * HOUR
    assert report.brownout.power_battery_min_soc < 0.2
    # settled to the horizon: the energy it balanced is the energy the MDC drew
    assert report.brownout.power_settled_to_s == 8 * HOUR
    assert report.brownout.power_load_wh == pytest.approx(report.facility_energy_wh, rel=1e-12)
    assert report.brownout.power_renewable_wh == pytest.approx(40.0 * 8)
    assert 0 < report.brownout.power_renewable_used_wh <= report.brownout.power_renewable_wh
    assert report.brownout.power_grid_import_wh > 0
    assert report.energy.energy_check_ok
    # the only losses are uploads on a shed server; the MDC kept serving
    lost = [o for o in outcomes if isinstance(o, LostJob)]
    assert {r.cause for r in lost} <= {SHED} and report.lost_jobs == len(lost)
    assert sum(1 for o in outcomes if isinstance(o, tuple)) > 0.9 * len(outcomes)
    assert len(mdc.sample()) == len(mdc.sample_columns()) == 6


def test_no_brownout_when_renewables_carry_the_mdc() -> None:
    mdc, online, _ = _brownout_run(renewable_w=400.0)
    report = mdc.report(8 * HOUR)
    assert set(online) == {4.0}
    power = report.brownout
    assert power is not None
    assert power.power_servers_shed_events == 0 and power.power_unserved_wh == 0.0


def test_renewable_supply_sums_sites_and_takes_the_share() -> None:
    power_w = np.array([[100.0, np.nan, -5.0], [50.0, 20.0, 10.0]])
    supply = renewable_supply(power_w, 60.0, 0.5)
    np.testing.assert_allclose(supply.power_w, [75.0, 10.0, 2.5])
    assert supply.energy_j(0.0, 180.0) == pytest.approx(60.0 * 87.5)
    with pytest.raises(ValueError, match="share"):
        renewable_supply(power_w, 60.0, 1.5)


def test_renewables_share_without_renewables_is_refused() -> None:
    spec = spec_of('[[mdc]]\nname = "r"\npower = { renewables_share = 0.5 }\n')
    with pytest.raises(ValueError, match="renewable output"):
        build(spec, HOUR)


# -- acknowledgement mode --------------------------------------------------------------------


@pytest.mark.parametrize(("ack", "cause"), [("receipt", "mdc_crash_unpersisted"), ("commit", None)])
def test_ack_mode_decides_whether_a_crash_loses_readings(ack: str, cause: str | None) -> None:
    spec = spec_of(
        f'[[mdc]]\nname = "a"\nack = "{ack}"\nservers = {{ count = 2, cores = 2 }}\n'
        'failures = { mtbf = "20min", mttr = "5min" }'
    )
    env, mdc = build(spec, 4 * HOUR)
    assert mdc.ack_after_commit == (ack == "commit")
    assert mdc.loss_cause_on_crash() == cause
    outcomes: list[Any] = []
    poisson_stream(env, mdc, 3.0, 1.0, np.random.default_rng(4), outcomes)
    env.run(until=4 * HOUR)
    crashed = [o for o in outcomes if isinstance(o, LostJob) and o.cause == CRASH]
    assert crashed
