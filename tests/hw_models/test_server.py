"""MDC server pool: shortest-queue dispatch, busy-time accounting, utilisation vs theory."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from hw_models.server import Server, ServerPool


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
