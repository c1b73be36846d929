"""twin size: the answer queueing theory gives (Erlang C), the exact answer of a growth
question, the cheapest of several options with its cost, bisection instead of the grid, and
one-line errors for bad requests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hw_models.queueing import mmc_mean_wait_s
from tests.twin.study.conftest import ERLANG, TINY
from twin.cli import main
from twin.study.cost import SECONDS_PER_YEAR
from twin.study.executors import PoolExecutor
from twin.study.feasibility import SequentialCheck
from twin.study.files import write_sizing
from twin.study.points import parse_axis
from twin.study.records import RECORD_FILE
from twin.study.runbook import RunBook
from twin.study.sizing import Sizer, SizingResult, SizingSpec, validate
from twin.study.slo import parse_slo

WAIT_BOUND_S = 20.0


def _erlang_c_cores(arrival_rate_per_s: float, service_s: float, bound_s: float) -> int:
    """Fewest cores whose M/M/c mean wait in queue is at most ``bound_s``."""
    c = math.floor(arrival_rate_per_s * service_s) + 1  # the fewest that are stable
    while mmc_mean_wait_s(arrival_rate_per_s, service_s, c) > bound_s:
        c += 1
    return c


def test_sizing_cores_returns_the_erlang_c_answer(tmp_path: Path) -> None:
    spec = SizingSpec(
        ERLANG,
        slos=(parse_slo(f"hop_latency_s.mdc_queue.mean<={WAIT_BOUND_S}"),),
        choose=(parse_axis("mdc.north.servers.cores=1..8", "--choose"),),
        check=SequentialCheck(n0=3),
    )
    validate(spec)
    pool = PoolExecutor(2)
    try:
        result = Sizer(spec, RunBook(tmp_path, pool, progress=False)).run()
    finally:
        pool.close()
    assert result.answer is not None
    est = result.answer.estimates
    # the load the twin offered: arrivals at the MDC and the service time of its uploads
    rate = est["hop_latency_s.mdc_queue.n"].mean / result.answer.point.scenario.duration_s
    service_s = est["hop_latency_s.pipeline.mean"].mean
    cores = _erlang_c_cores(rate, service_s, WAIT_BOUND_S)
    assert result.answer.point.value("mdc.north.servers.cores") == cores
    # not a coin flip: one core fewer waits far longer than the bound, by theory and in the
    # twin, and the answer's wait is well inside it
    assert mmc_mean_wait_s(rate, service_s, cores - 1) > 2 * WAIT_BOUND_S
    assert mmc_mean_wait_s(rate, service_s, cores) < 0.75 * WAIT_BOUND_S
    judged = {c.point.value("mdc.north.servers.cores"): c for c in result.candidates}
    assert judged[cores - 1].verdict.broken == [f"hop_latency_s.mdc_queue.mean<={WAIT_BOUND_S:g}"]
    assert est["hop_latency_s.mdc_queue.mean"].ci_high < WAIT_BOUND_S
    # bisection: 8, 4, 6, 5 judged, not the eight counts
    assert len(result.candidates) <= 4 and cores - 1 in judged


def test_growing_the_fleet_finds_the_exact_limit(tmp_path: Path) -> None:
    # readings generated = meters x 60 one-minute readings per hour: 10 meters make 600
    spec = SizingSpec(
        TINY,
        slos=(parse_slo("readings_generated<=600"),),
        grow=parse_axis("fleet.pv.count=1..20", "--grow"),
        check=SequentialCheck(n0=2),
    )
    validate(spec)
    book = RunBook(tmp_path, PoolExecutor(2), progress=False)
    try:
        result = Sizer(spec, book).run()
    finally:
        book.executor.close()
    assert result.answer is not None and result.limit is not None
    assert result.answer.point.value("fleet.pv.count") == 10
    assert result.limit.point.value("fleet.pv.count") == 11
    assert result.limit.verdict.broken == ["readings_generated<=600"]
    assert len(result.candidates) <= 6  # bisection over 20 values
    # size.html draws each SLO's KPI against the fleet with its limit
    write_sizing(result, tmp_path / "out")
    assert '"name": "limit readings_generated<=600"' in (tmp_path / "out/size.html").read_text()


def test_the_cheapest_option_wins_and_is_costed_from_the_catalog(
    cheapest_sizing: SizingResult,
) -> None:
    answer = cheapest_sizing.answer
    assert answer is not None
    assert answer.point.label == "mdc.north.servers.sku=edge-1u-4c, mdc.north.servers.count=1"
    # catalog price of one edge-1u-4c, and its facility energy over 5 years at 0.15 USD/kWh
    energy_kwh = answer.estimates["energy_mdc_kwh_total"].mean * 5 * SECONDS_PER_YEAR / 3600
    assert answer.cost.capex_usd == 1500.0
    assert answer.cost.energy_kwh == pytest.approx(energy_kwh)
    assert answer.cost.total_usd == pytest.approx(1500.0 + 0.15 * energy_kwh)
    # every option meets the SLOs; the top count of each SKU is judged first
    assert [c.point.label for c in cheapest_sizing.candidates] == [
        "mdc.north.servers.sku=edge-1u-8c, mdc.north.servers.count=2",
        "mdc.north.servers.sku=edge-1u-4c, mdc.north.servers.count=2",
        "mdc.north.servers.sku=edge-1u-8c, mdc.north.servers.count=1",
        "mdc.north.servers.sku=edge-1u-4c, mdc.north.servers.count=1",
    ]
    assert all(c.verdict.meets for c in cheapest_sizing.candidates)
    costs = {c.point.label: c.cost.total_usd for c in cheapest_sizing.candidates}
    assert min(costs.values()) == answer.cost.total_usd


def test_the_size_command_prints_the_answer_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "size", str(TINY), "--slo", "latency_s.p99<=1800", "--slo", "readings_lost_total==0",
        "--choose", "mdc.north.servers.sku=edge-1u-8c,edge-1u-4c",
        "--choose", "mdc.north.servers.count=1..2", "--replications", "2", "--workers", "1",
        "--set", "fleet.pv.count=6", "--out", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "answer: mdc.north.servers.sku=edge-1u-4c, mdc.north.servers.count=1 (c3)" in out
    assert "latency_s.p99" in out and "candidates judged:" in out
    assert "8 runs executed, 0 reused" in out
    for name in ("size.json", "size.csv", "size.html", RECORD_FILE):
        assert (tmp_path / name).is_file()
    # --set applies to every candidate: 6 meters of 60 one-minute readings an hour
    for run_json in tmp_path.glob("points/c*/rep-*/results.json"):
        run = json.loads(run_json.read_text())
        assert run["scenario"]["fleets"][0]["count"] == 6
        assert run["kpis"]["readings_generated"] == 360
    assert main(args) == 0
    assert "0 runs executed, 8 reused" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--slo", "latency_s.p99<<1800", "--choose", "mdc.north.servers.count=1..2"], "--slo"),
        (["--slo", "latency_s.p999<=1800", "--choose", "mdc.north.servers.count=1..2"],
         "latency_s.p999"),
        (["--slo", "latency_s.p99<=fast", "--choose", "mdc.north.servers.count=1..2"], "--slo"),
        (["--choose", "mdc.north.servers.count=1..2"], "--slo"),
        (["--slo", "latency_s.p99<=1800"], "--choose/--grow"),
        (["--slo", "latency_s.p99<=1800", "--choose", "mdc.north.servers.count=1..2",
          "--grow", "fleet.pv.count=1..9"], "--choose/--grow"),
        (["--slo", "latency_s.p99<=1800", "--choose", "mdc.north.servers.count=1..2",
          "--choose", "fleet.pv.count=1..9"], "one range"),
        (["--slo", "latency_s.p99<=1800", "--grow", "fleet.pv.count=5,9"], "--grow"),
        (["--slo", "latency_s.p99<=1800", "--grow", "fleet.pv.count=9..5"], "--grow"),
        (["--slo", "latency_s.p99<=1800", "--choose", "mdc.north.servers.sku=edge-9u"],
         "mdc.north.servers.sku"),
        (["--slo", "latency_s.p99<=1800", "--choose", "mdc.north.servers.count=1..2",
          "--replications", "1"], "--replications"),
        (["--slo", "latency_s.p99<=1800", "--choose", "mdc.north.servers.count=1..2",
          "--set", "fleet.pv.cuont=5"], "fleet.pv.cuont"),
    ],
)  # fmt: skip
def test_bad_requests_are_one_line_and_exit_2_before_any_run(
    extra: list[str], names: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["size", str(TINY), *extra, "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and names in err and err.count("\n") == 1
    assert not (tmp_path / RECORD_FILE).exists()


def test_a_kpi_of_a_server_the_scenario_lacks_is_one_line_after_the_first_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "size", str(TINY), "--slo", "utilization.south/server-0<=0.5",
        "--choose", "mdc.north.servers.count=1..1", "--replications", "2", "--workers", "1",
        "--out", str(tmp_path), "--no-progress",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "utilization.south/server-0" in err and "did you mean" in err
    assert err.count("\n") == 1
