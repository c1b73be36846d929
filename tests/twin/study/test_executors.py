"""Executors: the same sweep gives the same KPI table serially, on the process pool and on
a Dask cluster; a worker that dies mid-run is replaced and the study completes; bad executor
requests are one error."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster

from tests.twin.study.conftest import SWEEP, SWEEP_ARGS, tables
from twin.cli import main
from twin.errors import ScenarioError
from twin.study.executors import DaskExecutor, PoolExecutor, SerialExecutor, make_executor
from twin.study.files import write_sweep
from twin.study.records import execute_run
from twin.study.runbook import RunBook
from twin.study.sweep import SweepResult, plan, run_sweep


def test_the_pool_gives_the_serial_table(serial_sweep: SweepResult, tmp_path: Path) -> None:
    pool = PoolExecutor(2)
    try:
        result = run_sweep(SWEEP, RunBook(tmp_path, pool, progress=False))
    finally:
        pool.close()
    assert tables(result) == tables(serial_sweep)
    assert result.executed == 6
    # the runs differ between replications (common random numbers across points only)
    p99 = [t["latency_s.p99"] for t in tables(result)[0]]
    assert len(set(p99)) == 3


def test_the_sweep_command_on_a_local_cluster_writes_the_serial_tables(
    serial_sweep: SweepResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``twin sweep --scheduler local``: Dask worker processes, the same files as the serial
    sweep (and so as the pool, which gives the serial table)."""
    out = tmp_path / "dask"
    args = [*SWEEP_ARGS, "--workers", "2", "--scheduler", "local", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    assert "6 runs executed, 0 reused" in capsys.readouterr().out
    write_sweep(serial_sweep, tmp_path / "serial")
    for name in ("sweep.csv", "sweep.json"):
        assert (out / name).read_bytes() == (tmp_path / "serial" / name).read_bytes(), name
    rows = [r.split(",") for r in (out / "sweep.csv").read_text().splitlines()]
    p99 = [(r[0], r[1], r[3]) for r in rows if r[2] == "latency_s.p99"]
    assert p99 == [("p0", "edge-1u-4c", "3"), ("p1", "edge-1u-8c", "3")]


def _die_once(marker: str, fn: Callable[[Any], Any], item: Any) -> Any:
    """Kill this worker process the first time any call gets here (the marker file says so),
    then behave as ``fn``."""
    if not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
    return fn(item)


def test_a_pool_worker_that_dies_mid_run_is_replaced(
    serial_sweep: SweepResult, tmp_path: Path
) -> None:
    _, tasks = plan(SWEEP)
    marker = tmp_path / "killed"
    pool = PoolExecutor(2)
    try:
        die_once = functools.partial(_die_once, str(marker), execute_run)
        got = dict(pool.map_unordered(die_once, tasks))
    finally:
        pool.close()
    assert int(marker.read_text()) != os.getpid()  # a worker died, not this process
    expected = [run for p in serial_sweep.points for run in p.runs]
    assert [got[i].table() for i in range(len(tasks))] == [r.table() for r in expected]


def test_a_dask_worker_that_dies_mid_run_is_replaced(tmp_path: Path) -> None:
    marker = str(tmp_path / "killed")

    def double_or_die_once(x: int) -> int:  # a closure: Dask ships it by value
        if not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            os._exit(1)
        return 2 * x

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        dask = DaskExecutor(cluster.scheduler_address, workers=1)
        try:
            got = dict(dask.map_unordered(double_or_die_once, [1, 2, 3]))
        finally:
            dask.close()
    assert int(Path(marker).read_text()) != os.getpid() and got == {0: 2, 1: 4, 2: 6}


def test_serial_is_one_worker_in_this_process() -> None:
    assert isinstance(make_executor(1, None), SerialExecutor)
    pool = make_executor(2, None)
    assert isinstance(pool, PoolExecutor) and pool.workers == 2


@pytest.mark.parametrize(
    ("workers", "scheduler"), [(0, None), (-1, None), (2, "tcp://127.0.0.1:9"), (2, "nohost")]
)
def test_bad_executor_requests_are_one_error(workers: int, scheduler: str | None) -> None:
    with pytest.raises(ScenarioError, match=r"--workers|--scheduler"):
        make_executor(workers, scheduler)
