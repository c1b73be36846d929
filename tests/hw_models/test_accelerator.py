"""The GPU batcher: batches form by waiting time or size, take a + b n, and are metered."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import simpy

from hw_models.accelerator import GpuBatcher
from hw_models.catalog import AcceleratorSku, load_catalog
from hw_models.server import POWER_LOSS, ServerPool

SKU = AcceleratorSku(
    "g",
    "test gpu",
    idle_w=10.0,
    max_w=70.0,
    batch_latency_a_s=0.5,
    batch_latency_b_s_per_item=0.01,
    max_batch_items=100,
    price_usd=0.0,
)


def submit_at(
    env: simpy.Environment, gpu: GpuBatcher, at_s: float, items: int, done: list[tuple[int, float]]
) -> None:
    def go() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at_s)
        yield gpu.submit(items)
        done.append((items, env.now))

    env.process(go())


def test_submissions_within_the_wait_share_one_batch() -> None:
    env = simpy.Environment()
    gpu = GpuBatcher(env, SKU, max_wait_s=1.0)
    done: list[tuple[int, float]] = []
    submit_at(env, gpu, 0.0, 10, done)
    submit_at(env, gpu, 0.6, 20, done)  # joins the batch that launches at t = 1
    submit_at(env, gpu, 1.2, 5, done)  # arrives while the first batch runs
    env.run()
    first_end = 1.0 + 0.5 + 0.01 * 30
    # the third waits its own max_wait from t = 1.2 (the GPU is free again at 1.8)
    assert done == [(10, first_end), (20, first_end), (5, pytest.approx(2.2 + 0.5 + 0.05))]
    assert gpu.batches == 2 and gpu.items == 35 and gpu.max_batch_seen == 30


def test_a_full_batch_launches_without_waiting() -> None:
    env = simpy.Environment()
    gpu = GpuBatcher(env, SKU, max_wait_s=10.0)
    done: list[tuple[int, float]] = []
    submit_at(env, gpu, 0.0, 60, done)
    submit_at(env, gpu, 0.2, 40, done)  # 100 pending = max_batch_items: go at t = 0.2
    submit_at(env, gpu, 0.3, 150, done)  # larger than a batch: runs alone, unsplit
    env.run()
    assert done[:2] == [(60, pytest.approx(0.2 + 1.5)), (40, pytest.approx(0.2 + 1.5))]
    assert done[2] == (150, pytest.approx(1.7 + 0.5 + 1.5))  # full on arrival: no wait
    assert gpu.max_batch_seen == 150


def test_gpu_energy_is_idle_plus_busy_time_at_full_power() -> None:
    env = simpy.Environment()
    gpu = GpuBatcher(env, SKU, max_wait_s=0.25)
    done: list[tuple[int, float]] = []
    for k in range(50):
        submit_at(env, gpu, 0.37 * k, 1 + k % 7, done)
    env.run(until=100.0)
    assert len(done) == 50
    assert gpu.energy_j() == pytest.approx(10.0 * 100.0 + (70.0 - 10.0) * gpu.busy_s, rel=1e-12)
    assert gpu.busy_s == pytest.approx(gpu.batches * 0.5 + gpu.items * 0.01)


def test_catalog_gpu_latency_grows_linearly_with_the_batch() -> None:
    t4 = load_catalog().accelerator("t4")
    env = simpy.Environment()
    gpu = GpuBatcher(env, t4)
    assert gpu.max_batch_items == t4.max_batch_items
    small, large = t4.batch_latency_s(1_000), t4.batch_latency_s(1_001_000)
    assert large - small == pytest.approx(1_000_000 * t4.batch_latency_b_s_per_item)


def test_the_gpu_draws_nothing_while_no_host_server_is_up() -> None:
    """It sits in a server: dark MDC, or every server crashed or shed, means 0 W.
    Energy: 10 W idle for the powered time only."""
    env = simpy.Environment()
    gpu = GpuBatcher(env, SKU)
    pool = ServerPool.build(env, "m", 2, 1, 1.0, accelerator=gpu)
    env.run(until=3600.0)
    pool.power_off(POWER_LOSS)  # 1 h dark
    assert not gpu.powered and gpu.power_w == 0.0
    env.run(until=7200.0)
    pool.power_on(POWER_LOSS)
    assert gpu.powered and gpu.power_w == SKU.idle_w
    pool.set_down(pool.servers[0], "crash")
    assert gpu.powered  # the other server still hosts it
    pool.set_down(pool.servers[1], "shed")
    env.run(until=9000.0)
    assert gpu.power_w == 0.0
    pool.set_up(pool.servers[1], "shed")
    env.run(until=10800.0)
    # powered 0-1 h (then dark, then both servers down at 2 h) and 2.5-3 h: 1.5 h idle
    assert gpu.energy_j() == pytest.approx(SKU.idle_w * (3600.0 + 1800.0))
