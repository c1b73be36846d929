"""twin sweep: common random numbers, the files it writes, resuming after a kill without
redoing finished runs, one-line errors for bad input before anything runs, and the stores
kept on request."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from scipy import stats

from tests.twin.study.conftest import SWEEP, SWEEP_ARGS, TINY, tables
from tests.waiting import wait_until
from twin.accounting.kpi_names import DERIVED_KPIS, kpi_table
from twin.cli import main
from twin.outputs.files import write_outputs
from twin.runner import run as run_scenario
from twin.study.executors import SerialExecutor
from twin.study.files import write_sweep
from twin.study.points import parse_axis
from twin.study.records import RECORD_FILE
from twin.study.runbook import RunBook
from twin.study.sweep import SweepResult, run_sweep

ROOT = Path(__file__).resolve().parents[3]
ARGS = [*SWEEP_ARGS, "--workers", "1"]


def test_replication_i_has_the_same_seed_at_every_point(serial_sweep: SweepResult) -> None:
    seeds = [[run.seed for run in p.runs] for p in serial_sweep.points]
    assert seeds == [[3, 4, 5], [3, 4, 5]]  # the scenario's seed 3, then 3 + i
    # the SKU changes the servers only: with the same streams the field and the network
    # do exactly the same thing at both points
    for a, b in zip(*tables(serial_sweep), strict=True):
        assert a["uploads_started"] == b["uploads_started"]
        assert a["cellular_failed_attempts"] == b["cellular_failed_attempts"]
        assert a["energy_mdc_kwh_total"] != b["energy_mdc_kwh_total"]  # different servers


def test_files_hold_the_table_and_every_run(serial_sweep: SweepResult, tmp_path: Path) -> None:
    files = write_sweep(serial_sweep, tmp_path)
    assert [f.name for f in files] == ["sweep.csv", "sweep.json", "sweep.html"]
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["replications"] == 3 and data["combine"] == "grid"
    skus = ["edge-1u-4c", "edge-1u-8c"]
    assert data["vary"] == [{"key": "mdc.north.servers.sku", "values": skus}]
    point = data["points"][1]
    assert point["id"] == "p1" and point["settings"] == {"mdc.north.servers.sku": "edge-1u-8c"}
    p99 = point["kpis"]["latency_s.p99"]
    assert set(p99) == {"n", "mean", "sd", "ci_low", "ci_high", "half_width", "confidence"}
    assert p99["n"] == 3 and p99["ci_low"] < p99["mean"] < p99["ci_high"]
    # each run's results.json: what a comparison of two sweep points reads
    for i, ref in enumerate(point["runs"]):
        run_json = json.loads((tmp_path / ref["results"]).read_text())
        assert ref["results"] == f"points/p1/rep-{i}/results.json"
        assert kpi_table(run_json) == serial_sweep.points[1].runs[i].table()
        assert run_json["seed"] == 3 + i and run_json["scenario"]["seed"] == 3 + i
        assert run_json["scenario"]["mdcs"][0]["sku"] == "edge-1u-8c"
    rows = (tmp_path / "sweep.csv").read_text().splitlines()
    assert rows[0] == "point,mdc.north.servers.sku,kpi,n,mean,sd,ci_low,ci_high"
    assert len(rows) == 1 + sum(len(p.estimates) for p in serial_sweep.points)


def test_a_killed_sweep_resumes_without_redoing_finished_runs(
    serial_sweep: SweepResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study"
    records = out / RECORD_FILE
    child = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", *ARGS, "--out", str(out), "--no-progress"],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: records.exists() and records.read_text().count("\n") >= 2,
            child,
            "the sweep never recorded two runs",
        )
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    before = records.read_text().splitlines()
    done = sum(1 for line in before if line.endswith("}"))
    assert 2 <= done < 6  # killed mid-sweep
    assert main([*ARGS, "--out", str(out), "--no-progress"]) == 0
    assert f"{6 - done} runs executed, {done} reused" in capsys.readouterr().out
    assert records.read_text().splitlines()[:done] == before[:done]  # nothing lost
    again = [
        [kpi_table(json.loads((out / f"points/p{p}/rep-{i}/results.json").read_text()))
         for i in range(3)]
        for p in range(2)
    ]  # fmt: skip
    assert again == tables(serial_sweep)
    # a third run of the command runs nothing
    assert main([*ARGS, "--out", str(out), "--no-progress"]) == 0
    assert "0 runs executed, 6 reused" in capsys.readouterr().out
    # twin compare on the two points pairs their replications by seed (common random numbers)
    p0, p1 = out / "points/p0", out / "points/p1"
    args = ["compare", str(p0), str(p1), "--kpi", "latency_s.p99", "--format", "json"]
    assert main([*args, "--html", str(tmp_path / "compare.html")]) == 0
    (row,) = json.loads(capsys.readouterr().out)["kpis"]
    change = row["changes"][1]
    a = [t["latency_s.p99"] for t in again[0]]
    b = [t["latency_s.p99"] for t in again[1]]
    expected = stats.ttest_rel(b, a).confidence_interval(0.95)
    assert change["interval"] == "paired" and change["df"] == 2
    assert change["ci95"] == pytest.approx([expected.low, expected.high], rel=1e-9)


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--vary", "fleet.pv.cuont=4,8"], "fleet.pv.cuont"),
        (["--vary", "fleet.pv.count=8..4"], "--vary"),
        (["--vary", "fleet.pv.count="], "--vary"),
        (["--vary", "mdc.north.servers.sku=edge-9u"], "mdc.north.servers.sku"),
        (["--vary", "fleet.pv.count=4,8", "--vary", "mdc.north.servers.count=1,2,3", "--zip"],
         "equal lengths"),
        (["--vary", "fleet.pv.count=4", "--replications", "0"], "--replications"),
        (["--vary", "fleet.pv.count=4", "--kpi", "latency_s.p999"], "--kpi"),
        (["--vary", "fleet.pv.count=4", "--set", "mdc.north.servers.count=0"],
         "mdc.north.servers.count"),
        ([], "--vary"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2_before_any_run(
    extra: list[str], names: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sweep", str(TINY), *extra, "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and names in err and err.count("\n") == 1
    assert not (tmp_path / RECORD_FILE).exists()


def test_keep_stores_keeps_each_runs_database(tmp_path: Path) -> None:
    spec = replace(SWEEP, axes=(parse_axis("fleet.pv.count=3", "--vary"),), replications=2,
                   keep_stores=tmp_path / "stores")  # fmt: skip
    result = run_sweep(spec, RunBook(tmp_path / "study", SerialExecutor(), progress=False))
    for i, run in enumerate(result.points[0].runs):
        store = tmp_path / "stores" / "p0" / f"rep-{i}" / "store.sqlite"
        with sqlite3.connect(store) as db:
            meters = db.execute("SELECT COUNT(DISTINCT meter_id) FROM readings").fetchone()[0]
            rows = db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        assert meters == 3 and rows >= run.kpis["readings_stored"] > 0


def test_a_results_json_and_the_run_record_give_the_same_table(
    serial_sweep: SweepResult, tmp_path: Path
) -> None:
    first = serial_sweep.points[0]
    results = run_scenario(first.point.scenario, first.runs[0].seed)
    files = write_outputs(results, tmp_path, plots=False)
    from_file = kpi_table(json.loads(files.results.read_text()))
    # a run record keeps kpis and mdcs: every KPI but those derived from other sections
    other_sections = {n for n, d in DERIVED_KPIS.items() if not {*d.needs} <= {"kpis", "mdcs"}}
    assert other_sections >= {"drain_s_max", "analytics_precision"}
    expected = {k: v for k, v in from_file.items() if k not in other_sections}
    table = first.runs[0].table()
    assert table.keys() == expected.keys()
    for name, value in expected.items():  # NaN (a percentile of no latencies) equals NaN
        assert table[name] == value or (math.isnan(table[name]) and math.isnan(value)), name
    k = results.kpis
    assert from_file["latency_s.p99"] == k.latency_s.p99
    assert from_file["readings_lost_total"] == k.readings_lost_total
    assert from_file["readings_lost.meter_buffer_overflow"] == 0
    assert from_file["utilization.north/server-0"] == k.utilization["north/server-0"]
    assert from_file["hop_latency_s.mdc_queue.n"] == k.hop_latency_s["mdc_queue"].n
    assert math.isnan(from_file["hop_latency_s.backbone.mean"])  # no backbone: None in JSON
    assert from_file["energy_mdc_kwh_total"] == pytest.approx(sum(k.energy_mdc_kwh.values()))
    servers = results.mdcs[0].server_availability
    assert from_file["availability"] == pytest.approx(sum(servers.values()) / len(servers))
    assert from_file["loss_fraction"] == k.readings_lost_total / k.readings_generated
    assert set(DERIVED_KPIS) <= set(from_file)
