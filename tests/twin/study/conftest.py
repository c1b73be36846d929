"""Scenarios, one serial sweep (the reference table that the pool, Dask and a resumed sweep
must reproduce) and one sizing shared by the study tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.study.executors import SerialExecutor
from twin.study.feasibility import SequentialCheck
from twin.study.points import parse_axis
from twin.study.runbook import RunBook
from twin.study.sizing import Sizer, SizingResult, SizingSpec, validate
from twin.study.slo import parse_slo
from twin.study.sweep import SweepResult, SweepSpec, run_sweep

HERE = Path(__file__).resolve().parent
TINY = HERE / "tiny.toml"
ERLANG = HERE / "erlang.toml"

#: Two points (a server SKU) x three replications of the tiny scenario.
SWEEP = SweepSpec(
    TINY,
    base_overrides=("fleet.pv.count=6",),
    axes=(parse_axis("mdc.north.servers.sku=edge-1u-4c,edge-1u-8c", "--vary"),),
    replications=3,
)

#: The command line of :data:`SWEEP` (no executor, folder or progress options).
SWEEP_ARGS = [
    "sweep", str(TINY), "--set", "fleet.pv.count=6",
    "--vary", "mdc.north.servers.sku=edge-1u-4c,edge-1u-8c", "--replications", "3",
]  # fmt: skip


def tables(result: SweepResult) -> list[list[dict[str, float]]]:
    """Every run's KPI table, point by point, replication by replication."""
    return [[run.table() for run in p.runs] for p in result.points]


@pytest.fixture(scope="session")
def serial_sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    folder = tmp_path_factory.mktemp("serial-sweep")
    return run_sweep(SWEEP, RunBook(folder, SerialExecutor(), progress=False))


#: Buy one or two servers of either of two SKUs for the tiny fleet: every option meets the
#: SLOs, so the answer is the cheapest (one edge-1u-4c).
SIZING = SizingSpec(
    TINY,
    slos=(parse_slo("latency_s.p99<=1800"), parse_slo("readings_lost_total==0")),
    choose=(
        parse_axis("mdc.north.servers.sku=edge-1u-8c,edge-1u-4c", "--choose"),
        parse_axis("mdc.north.servers.count=1..2", "--choose"),
    ),
    check=SequentialCheck(n0=2),
)


@pytest.fixture(scope="session")
def cheapest_sizing(tmp_path_factory: pytest.TempPathFactory) -> SizingResult:
    folder = tmp_path_factory.mktemp("sizing")
    validate(SIZING)
    return Sizer(SIZING, RunBook(folder, SerialExecutor(), progress=False)).run()
