"""MDC server pool: shortest-queue dispatch, busy-time accounting, utilisation vs theory,
service demand (speed, disk, accelerator) and the RAM budget's push-back."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
import simpy

from hw_models.accelerator import GpuBatcher
from hw_models.catalog import AcceleratorSku
from hw_models.server import Server, ServerPool, ServiceDemand


def test_busy_fraction_counts_finished_and_ongoing_work() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", count=1, cores=2, speed_factor=2.0)

    def job(work_s: float) -> Generator[simpy.Event, Any, None]:
        yield from pool.serve(lambda server: work_s)

    for work_s in (10.0, 10.0, 40.0):  # at speed 2: 5 s, 5 s, then 20 s from t = 5
        env.process(job(work_s))
    env.run(until=15.0)
    server = pool.servers[0]
    # core-seconds busy by t = 15: 5 + 5 (done) + 10 of the third (ongoing)
    assert server.busy_fraction(15.0) == (5 + 5 + 10) / (2 * 15)
    assert server.jobs == 2
    assert pool.queue_peak == 1


def test_uploads_go_to_the_least_loaded_server() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", count=3, cores=1, speed_factor=1.0)
    chosen: list[str] = []

    def job() -> Generator[simpy.Event, Any, None]:
        def work(server: Server) -> float:
            chosen.append(server.name)
            return 100.0

        yield from pool.serve(work)

    for _ in range(3):
        env.process(job())
    env.run(until=1.0)
    assert sorted(chosen) == ["m/server-0", "m/server-1", "m/server-2"]


def test_cores_are_handed_over_first_come_first_served() -> None:
    # one core: a, b, c, d arrive at t = 0 for 10 s each; c gives up in the middle of the
    # line at t = 5, b is called off in service at t = 12: d gets the core at 12 at once
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", count=1, cores=1, speed_factor=1.0)
    started: dict[str, float] = {}
    ended: dict[str, float] = {}

    def job(name: str) -> Generator[simpy.Event, Any, None]:
        def work(server: Server) -> float:
            started[name] = env.now
            return 10.0

        try:
            yield from pool.serve(work)
            ended[name] = env.now
        except simpy.Interrupt:
            ended[name] = -env.now

    jobs = {name: env.process(job(name)) for name in "abcd"}
    cores = pool.servers[0].core_queue
    env.run(until=1.0)
    assert (cores.in_use, len(cores.waiting), pool.servers[0].load()) == (1, 3, 4)

    def call_off(name: str, at_s: float) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at_s - env.now)
        jobs[name].interrupt("called off")

    env.process(call_off("c", 5.0))
    env.process(call_off("b", 12.0))
    env.run()
    assert started == {"a": 0.0, "b": 10.0, "d": 12.0}
    assert ended == {"a": 10.0, "c": -5.0, "b": -12.0, "d": 22.0}
    assert (cores.in_use, len(cores.waiting), pool.queued(), pool.queue_peak) == (0, 0, 0, 3)
    assert pool.servers[0].busy_s == 10.0 + 2.0 + 10.0  # b's 2 s in service count
    assert pool.servers[0].busy_cores == 0 and pool.servers[0].jobs == 2


def test_utilisation_of_an_mmc_pool_matches_offered_load() -> None:
    # M/M/4 with rho = lambda / (c mu) = 0.6: the busy fraction estimates rho; over
    # 200,000 s (about 48,000 jobs) its standard error is well under 0.01.
    env = simpy.Environment()
    rng = np.random.default_rng(42)
    pool = ServerPool.build(env, "m", count=1, cores=4, speed_factor=1.0)
    rate_per_s, mean_service_s = 0.24, 10.0

    def job(service_s: float) -> Generator[simpy.Event, Any, None]:
        yield from pool.serve(lambda server: service_s)

    def arrivals() -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(rng.exponential(1 / rate_per_s))
            env.process(job(rng.exponential(mean_service_s)))

    env.process(arrivals())
    env.run(until=200_000.0)
    rho = rate_per_s * mean_service_s / 4
    assert abs(pool.servers[0].busy_fraction(200_000.0) - rho) < 0.02


# ---------------------------------------------------------------------------------------
# Service demand: per-stage times scaled by speed, disk writes, accelerator offload
# ---------------------------------------------------------------------------------------


def test_stage_times_scale_with_speed_and_disk_writes_add_time() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 1, 1, 2.0, disk_write_bps=1e6)
    demand = ServiceDemand({"fetch": 1.0, "process": 2.0, "store": 0.5, "analyze": 0.5}, 250_000)
    done: list[float] = []

    def job() -> Generator[simpy.Event, Any, None]:
        done.append((yield from pool.serve(lambda server: demand)))

    env.process(job())
    env.run()
    # 4 s of CPU at speed 2 = 2 s, plus 250 kB at 1 MB/s = 0.25 s
    assert done == [pytest.approx(2.25)]
    assert env.now == pytest.approx(2.25)
    server = pool.servers[0]
    assert server.stage_busy_s == {"fetch": 0.5, "process": 1.0, "store": 0.25, "analyze": 0.25}
    assert server.disk_busy_s == pytest.approx(0.25)
    assert server.busy_s == pytest.approx(2.25)


def test_offloaded_stage_runs_on_the_accelerator_after_the_core_is_freed() -> None:
    env = simpy.Environment()
    gpu_sku = AcceleratorSku("g", "test gpu", 10.0, 70.0, 0.1, 1e-3, 1000, 0.0)
    gpu = GpuBatcher(env, gpu_sku, max_wait_s=0.0)
    pool = ServerPool.build(env, "m", 1, 1, 1.0, accelerator=gpu)
    demand = ServiceDemand({"process": 1.0, "analyze": 5.0}, offload_items=100)
    finished: list[float] = []
    committed: list[float] = []

    def job() -> Generator[simpy.Event, Any, None]:
        yield from pool.serve(lambda server: demand, on_commit=lambda s: committed.append(env.now))
        finished.append(env.now)

    env.process(job())
    env.run()
    # the core is held for "process" only (1 s); analyze is a GPU batch of 100 readings
    assert committed == [1.0]
    assert finished == [pytest.approx(1.0 + 0.1 + 100 * 1e-3)]
    assert pool.servers[0].busy_s == 1.0
    assert gpu.batches == 1 and gpu.items == 100


# ---------------------------------------------------------------------------------------
# RAM budget: push-back, never a drop
# ---------------------------------------------------------------------------------------


def test_ram_budget_pushes_back_never_drops_and_bounds_memory() -> None:
    env = simpy.Environment()
    budget = 10_000
    pool = ServerPool.build(env, "m", 2, 1, 1.0, ram_budget_bytes=budget)
    started: list[int] = []
    finished: list[int] = []
    memory: list[int] = []

    def job(i: int, size: int) -> Generator[simpy.Event, Any, None]:
        def work(server: Server) -> float:
            started.append(i)
            memory.append(pool.memory_used_bytes)
            return 1.0

        yield from pool.serve(work, size_bytes=size)
        finished.append(i)

    sizes = [1_000 + 37 * (i % 11) for i in range(200)]  # all arrive at t = 0
    for i, size in enumerate(sizes):
        env.process(job(i, size))
    env.run()
    assert sorted(finished) == list(range(200))  # every upload served: nothing dropped
    assert started == list(range(200))  # FIFO: nothing overtook an earlier upload
    assert max(memory) <= budget and pool.memory_peak_bytes <= budget
    assert pool.memory_peak_bytes > budget - max(sizes)  # the budget is actually used
    assert pool.admission_waits > 150 and pool.admission_wait_s > 0
    assert pool.memory_used_bytes == 0 and pool.in_memory() == 0
    assert pool.lost == []


def test_an_upload_larger_than_the_budget_is_admitted_alone() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 1, 4, 1.0, ram_budget_bytes=1_000)
    order: list[str] = []

    def job(name: str, size: int) -> Generator[simpy.Event, Any, None]:
        def work(server: Server) -> float:
            order.append(name)
            return 1.0

        yield from pool.serve(work, size_bytes=size)

    env.process(job("small", 600))
    env.process(job("huge", 5_000))
    env.process(job("after", 100))  # may not overtake "huge"
    env.run()
    assert order == ["small", "huge", "after"]
    assert pool.memory_peak_bytes == 5_000


def test_admit_event_then_serve_with_admitted_bytes() -> None:
    env = simpy.Environment()
    pool = ServerPool.build(env, "m", 1, 1, 1.0, ram_budget_bytes=1_500)
    acknowledged: list[float] = []

    def gateway(size: int) -> Generator[simpy.Event, Any, None]:
        yield pool.admit(size)  # the gateway acknowledges only what it could take in
        acknowledged.append(env.now)
        env.process(worker(size))

    def worker(size: int) -> Generator[simpy.Event, Any, None]:
        yield from pool.serve(lambda server: 2.0, size_bytes=size, admitted=True)

    for _ in range(3):
        env.process(gateway(1_000))
    env.run()
    assert acknowledged == [0.0, 2.0, 4.0]
    assert pool.memory_used_bytes == 0
