"""Sweeps in parallel (DESIGN.md §8): the speed-up of a process pool of 2 workers over 1 on the
same sweep, and the overhead of a Dask LocalCluster of 2 worker processes against the pool of
2, on 8 runs (4 points x 2 replications) of a three-hour slice of the baseline (44 sites).

The three executors run the same sweep in turn, round after round (interleaved, so load from
other processes hits them alike), each into a fresh study folder (nothing reused); the
figures are the minimums over the rounds (the medians are printed too). Each executor did
one sweep before the rounds: the Dask workers start as new processes and import the twin,
which a long-lived cluster does once. The aims are a speed-up of at least 1.8x on 2 cores
and a Dask overhead of at most 10 %; the gates sit where a real regression shows (a pool
that no longer runs in parallel gives 1x, a cluster that serialises its work 2x the pool)
and noise on a shared machine, where other jobs take cores from the two workers, does not.

Run: ``.venv/bin/pytest bench/test_study_bench.py -o testpaths=bench -s``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from twin.runner import run
from twin.study.executors import DaskExecutor, Executor, PoolExecutor
from twin.study.points import parse_axis
from twin.study.runbook import RunBook
from twin.study.sweep import SweepSpec, plan, run_sweep

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml"
SWEEP = SweepSpec(
    BASELINE,
    base_overrides=("fleet.wind.count=4", 'scenario.duration="3h"'),
    axes=(parse_axis("fleet.pv.count=25,30,35,40", "--vary"),),
    replications=2,
)
ROUNDS = 3


def _sweep_s(executor: Executor) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
        t0 = time.perf_counter()
        result = run_sweep(SWEEP, RunBook(Path(folder), executor, progress=False))
        seconds = time.perf_counter() - t0
    assert result.executed == 8
    return seconds


def test_sweep_speed_up_and_dask_overhead(benchmark: Any) -> None:
    _, tasks = plan(SWEEP)
    run(tasks[0].scenario, tasks[0].seed)  # warm this process: the pools fork from it
    executors: dict[str, Executor] = {
        "pool_1": PoolExecutor(1),
        "pool_2": PoolExecutor(2),
        "dask_2": DaskExecutor("local", 2),
    }
    times: dict[str, list[float]] = {name: [] for name in executors}
    try:
        for executor in executors.values():
            _sweep_s(executor)  # warm-up: workers started, imports done

        def one_round() -> None:
            for name, executor in executors.items():
                times[name].append(_sweep_s(executor))

        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    finally:
        for executor in executors.values():
            executor.close()
    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    speed_up = best["pool_1"] / best["pool_2"]
    dask_overhead = best["dask_2"] / best["pool_2"] - 1.0
    benchmark.extra_info.update(
        {f"{name}_min_s": s for name, s in best.items()}
        | {f"{name}_median_s": s for name, s in median.items()}
        | {"speed_up_2_over_1": speed_up, "dask_overhead": dask_overhead}
    )
    print(
        "\nsweep of 8 runs, minimum (median) of "
        f"{ROUNDS} interleaved rounds: pool 1 worker {best['pool_1']:.2f} s "
        f"({median['pool_1']:.2f}), pool 2 workers {best['pool_2']:.2f} s "
        f"({median['pool_2']:.2f}), Dask LocalCluster 2 workers {best['dask_2']:.2f} s "
        f"({median['dask_2']:.2f})\n"
        f"speed-up 2 workers / 1: {speed_up:.2f}x (aim >= 1.8x); "
        f"Dask overhead against the pool: {dask_overhead:+.1%} (aim <= 10 %)"
    )
    assert speed_up >= 1.15, f"2 workers only {speed_up:.2f}x faster than 1"
    assert dask_overhead <= 0.5, f"Dask LocalCluster {dask_overhead:+.0%} slower than the pool"
