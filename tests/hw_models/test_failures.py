"""Failures: lifetimes know their means, availability is MTBF / (MTBF + MTTR), a crash
loses the work in the server's memory and says so, maintenance is graceful, a whole-MDC
power loss loses everything in memory."""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
import simpy

from hw_models.failures import (
    LIFETIMES,
    Exponential,
    MaintenanceWindow,
    Weibull,
    lifetime,
    mdc_power_loss,
    start_failures,
    start_maintenance,
)
from hw_models.server import (
    CRASH,
    PHASE_IN_SERVICE,
    PHASE_QUEUED,
    PHASE_WAITING,
    POWER_LOSS,
    JobLost,
    LostJob,
    Server,
    ServerPool,
)


@pytest.mark.parametrize(
    "dist",
    [Exponential(50.0), Weibull.with_mean(50.0, 0.7), Weibull.with_mean(50.0, 3.0)],
)
def test_lifetime_sample_means_match_their_stated_mean(dist: Exponential | Weibull) -> None:
    rng = np.random.default_rng(11)
    samples = np.array([dist.sample(rng) for _ in range(40_000)])
    half_width = 4.5 * samples.std(ddof=1) / math.sqrt(len(samples))  # 4.5 sigma
    assert abs(samples.mean() - dist.mean_s) < half_width
    assert dist.mean_s == pytest.approx(50.0)


def test_weibull_mean_is_scale_times_gamma_and_registry_builds_lifetimes() -> None:
    assert Weibull(2.0, 10.0).mean_s == pytest.approx(10.0 * math.sqrt(math.pi) / 2)  # G(1.5)
    assert Weibull(1.0, 7.0).mean_s == pytest.approx(7.0)  # shape 1 is exponential
    assert set(LIFETIMES) == {"exponential", "weibull"}
    assert lifetime("exponential", mean_s=3.0) == Exponential(3.0)
    assert lifetime("weibull", mean_s=3.0, shape=2.0).mean_s == pytest.approx(3.0)
    with pytest.raises(ValueError, match="expected one of exponential, weibull"):
        lifetime("lognormal", mean_s=3.0)
    with pytest.raises(ValueError, match="mean_s"):
        Exponential(0.0)


@pytest.mark.parametrize("kind", ["exponential", "weibull"])
def test_up_fraction_is_mtbf_over_mtbf_plus_mttr(kind: str) -> None:
    # 20 servers, MTBF 100 h, MTTR 10 h, over 2,750 cycles each: 55,000 cycles. The
    # renewal-reward estimate of availability has a standard error of about 0.0004 here
    # (exponential case); the tolerance is 0.003. A model that repaired at the wrong rate
    # (e.g. MTTR 11 h -> 0.901) fails.
    mtbf_s, mttr_s = 100 * 3600.0, 10 * 3600.0
    params: dict[str, float] = {} if kind == "exponential" else {"shape": 1.5}
    ttf = lifetime(kind, mean_s=mtbf_s, **params)
    ttr = lifetime(kind, mean_s=mttr_s, **params)
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 20, 1, 1.0)
    seeds = np.random.SeedSequence(2024).spawn(20)
    start_failures(pool, ttf, ttr, [np.random.default_rng(s) for s in seeds])
    horizon_s = 2_750 * (mtbf_s + mttr_s)
    env.run(until=horizon_s)
    availability = np.mean([s.availability(horizon_s) for s in pool.servers])
    assert availability == pytest.approx(mtbf_s / (mtbf_s + mttr_s), abs=0.003)


def test_a_crash_loses_queued_and_in_service_work_and_reports_it() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 2, 1, 1.0, idle_w=10.0, max_w=30.0)
    outcomes: dict[str, Any] = {}

    def job(name: str) -> Generator[simpy.Event, Any, None]:
        try:
            outcomes[name] = yield from pool.serve(lambda server: 10.0, size_bytes=100, tag=name)
        except JobLost as lost:
            outcomes[name] = lost.record

    for name in "abcd":  # a, c on server-0 (a in service, c queued); b, d on server-1
        env.process(job(name))

    def crash() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(4.0)
        pool.set_down(pool.servers[0], CRASH)

    env.process(crash())
    env.run()
    a, c = outcomes["a"], outcomes["c"]
    assert isinstance(a, LostJob) and isinstance(c, LostJob)
    assert (a.tag, a.phase, a.cause, a.at_s, a.work_done, a.server) == (
        "a",
        PHASE_IN_SERVICE,
        CRASH,
        4.0,
        True,
        "m/server-0",
    )
    assert (c.tag, c.phase, c.work_done, c.size_bytes) == ("c", PHASE_QUEUED, False, 100)
    assert outcomes["b"] == 10.0 and outcomes["d"] == 10.0  # the other server is unharmed
    assert pool.lost == [a, c]
    assert pool.memory_used_bytes == 0 and pool.in_memory() == 0
    crashed = pool.servers[0]
    assert crashed.busy_s == 4.0 and crashed.jobs == 0  # 4 s of work done, then lost
    assert crashed.energy_j() == pytest.approx(30.0 * 4.0)  # full power, then nothing
    assert pool.little.in_system == 0 and pool.little.departures == 4


def test_no_dispatch_to_a_down_server_and_waiting_when_all_are_down() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 2, 1, 1.0)
    served_on: list[tuple[str, float]] = []

    def job() -> Generator[simpy.Event, Any, None]:
        def work(server: Server) -> float:
            served_on.append((server.name, env.now))
            return 1.0

        yield from pool.serve(work)

    pool.set_down(pool.servers[0], CRASH)
    env.process(job())
    env.run(until=5.0)
    assert pool.any_available()
    pool.set_down(pool.servers[1], CRASH)
    assert not pool.any_available()
    env.process(job())  # no server is up: waits in the gateway
    env.run(until=20.0)
    assert served_on == [("m/server-1", 0.0)]
    assert pool.queued() == 1 and pool.in_memory() == 1
    pool.set_up(pool.servers[0], CRASH)
    assert pool.any_available()
    env.run(until=30.0)
    assert served_on == [("m/server-1", 0.0), ("m/server-0", 20.0)]


def test_whole_mdc_power_loss_loses_everything_in_memory_then_recovers() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 2, 1, 1.0, ram_budget_bytes=10_000)
    lost: list[LostJob] = []
    served: list[float] = []

    def job(at_s: float) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at_s)
        try:
            yield from pool.serve(lambda server: 4.0, size_bytes=1_000)
            served.append(env.now)
        except JobLost as exc:
            lost.append(exc.record)

    pool.set_down(pool.servers[1], CRASH)  # one server down: a backlog queues on the other
    for at_s in (0.0, 0.0, 0.0):
        env.process(job(at_s))
    env.process(mdc_power_loss(pool, at_s=2.0, duration_s=5.0))
    env.process(job(3.0))  # arrives while the MDC is dark: lost at arrival
    env.process(job(6.0))  # lost too: still dark at t = 6
    env.process(job(8.0))  # after power returns: served
    env.run()
    assert sorted(r.phase for r in lost) == [
        PHASE_IN_SERVICE,
        PHASE_QUEUED,
        PHASE_QUEUED,
        PHASE_WAITING,
        PHASE_WAITING,
    ]
    assert {r.cause for r in lost} == {POWER_LOSS}
    assert served == [12.0]
    assert pool.memory_used_bytes == 0
    stats = pool.stats(env.now)
    assert stats.lost == 5 and stats.lost_by_cause == {POWER_LOSS: 5}
    assert [s.availability for s in pool.server_stats(env.now)] == [
        pytest.approx(1 - 5 / env.now),
        0.0,
    ]
    # server-1 stays down: it is still crashed after the power came back
    assert not pool.servers[1].online and pool.servers[0].online


def test_maintenance_drains_the_server_loses_nothing_and_takes_it_out() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 2, 1, 1.0, idle_w=10.0, max_w=10.0)
    served_on: list[tuple[str, float, float]] = []  # (server, arrival, start)

    def job(at_s: float) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at_s)

        def work(server: Server) -> float:
            served_on.append((server.name, at_s, env.now))
            return 3.0

        yield from pool.serve(work)

    for k in range(40):
        env.process(job(k * 1.0))  # one per second onto two servers at 3 s a job: a backlog
    start_maintenance(pool, [MaintenanceWindow(server=0, start_s=10.0, end_s=30.0)])
    env.run()
    assert pool.lost == [] and len(served_on) == 40
    # server-0 took no upload that arrived in the window before the window ended; what it
    # already held it finished (graceful drain), then it was down until t = 30
    on_0 = [(arrival, start) for name, arrival, start in served_on if name == "m/server-0"]
    assert not [a for a, start in on_0 if a > 10.0 and start < 30.0]  # (ties at 10: either)
    held = [start for a, start in on_0 if a <= 10.0]
    drained_at = max(held) + 3.0
    assert 10.0 < drained_at < 30.0
    assert pool.servers[0].downtime_s() == pytest.approx(30.0 - drained_at)
    assert any(start >= 30.0 for _, start in on_0)  # back in service after the window


def test_overlapping_maintenance_windows_of_one_server_are_rejected() -> None:
    pool = ServerPool.build(simpy.Environment(), "m", 2, 1, 1.0)
    start_maintenance(pool, [MaintenanceWindow(0, 0.0, 10.0), MaintenanceWindow(1, 5.0, 8.0)])
    with pytest.raises(ValueError, match="overlap"):
        start_maintenance(pool, [MaintenanceWindow(0, 0.0, 10.0), MaintenanceWindow(0, 5.0, 8.0)])
    with pytest.raises(ValueError, match="no such server"):
        start_maintenance(pool, [MaintenanceWindow(2, 0.0, 10.0)])
