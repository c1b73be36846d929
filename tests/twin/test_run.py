"""End-to-end runs: the ledger balances, runs are deterministic, readings survive intact."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from twin.cli import main
from twin.runner import run
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import Scenario, load_scenario
from twin.world.fleet import build_fleets

BASELINE = Path(__file__).resolve().parents[2] / "scenarios" / "baseline.toml"
SMALL = ["fleet.pv.count=20", "fleet.wind.count=4", 'scenario.duration="6h"']
LedgerCheck = Callable[..., None]  # the ledger_check fixture (conftest.py)


def small(*extra: str) -> Scenario:
    return load_scenario(BASELINE, [*SMALL, *extra])


def test_nominal_run_loses_nothing(tmp_path: Path, ledger_check: LedgerCheck) -> None:
    results = run(small(), store_dir=tmp_path, audit_every_s=600.0)
    k = results.kpis
    ledger_check(results, tmp_path)
    assert k.readings_generated == 24 * 6 * 60
    assert k.readings_lost_total == 0
    # only the readings since each meter's last window are still on their way
    assert k.readings_in_flight <= 24 * 16
    assert k.latency_s.p50 is not None and 0 < k.latency_s.p50 < 900 + 60
    assert 0 < k.utilization["north/server-0"] < 1
    # checked inside every run and reported per MDC
    assert results.mdcs[0].little.little_ok and results.mdcs[0].energy.energy_check_ok
    assert k.energy_mdc_kwh["north"] > 0


def test_long_outage_with_tiny_buffers_loses_to_overflow_only(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    scenario = small(
        "fleet.pv.meter.buffer_readings=20",
        "fleet.wind.meter.buffer_readings=20",
    )
    outage = FaultSpec(kind="cell_outage", at_s=3600.0, duration_s=7200.0, region="north")
    results = run(replace(scenario, faults=(outage,)), store_dir=tmp_path, audit_every_s=300.0)
    k = results.kpis
    ledger_check(results, tmp_path)
    lost = k.readings_lost["meter_buffer_overflow"]
    # a 2 h outage against a 20-reading buffer: each meter keeps 20 of ~120 readings
    assert 24 * 80 <= lost <= 24 * 120
    assert k.readings_lost["rejected_invalid"] == 0


def test_high_loss_rate_and_lost_acks_balance_and_deduplicate(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    results = run(
        small(
            "network.cellular.loss_probability=0.6",
            "network.cellular.max_attempts=2",
            "network.cellular.ack_loss_probability=0.3",
            "fleet.pv.meter.buffer_readings=25",
            "fleet.wind.meter.buffer_readings=25",
        ),
        store_dir=tmp_path,
        audit_every_s=300.0,
    )
    k = results.kpis
    ledger_check(results, tmp_path)
    assert k.readings_lost["meter_buffer_overflow"] > 0
    assert k.uploads_failed > 0
    assert k.duplicates_discarded > 0  # lost acks made meters resend delivered data


def test_same_seed_same_kpis_and_another_seed_differs() -> None:
    a = run(small("network.cellular.loss_probability=0.1"))
    b = run(small("network.cellular.loss_probability=0.1"))
    c = run(small("network.cellular.loss_probability=0.1"), seed=8)
    assert json.dumps(asdict(a.kpis), sort_keys=True) == json.dumps(asdict(b.kpis), sort_keys=True)
    assert asdict(a.kpis) != asdict(c.kpis)


def test_reading_survives_meter_xml_pipeline_sqlite(tmp_path: Path) -> None:
    scenario = small()
    results = run(scenario, store_dir=tmp_path)
    fleets = build_fleets(scenario)
    pv = fleets[0]
    epoch_s = int(scenario.start.timestamp())
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        rows = db.execute(
            "SELECT start_s, duration_s, value FROM readings WHERE meter_id = ? ORDER BY start_s",
            (pv.meter_ids[3],),
        ).fetchall()
    offsets_s = [start_s - epoch_s for start_s, _, _ in rows]
    assert all(offset % 60 == 0 for offset in offsets_s)
    index = [offset // 60 for offset in offsets_s]
    # every reading of the meter up to its last acknowledged upload, each exactly once
    assert index == list(range(len(rows))) and len(rows) > 300
    for (_, duration_s, value), i in zip(rows, index, strict=True):
        assert duration_s == 60
        assert value == int(pv.values[3][i])
    assert results.kpis.readings_stored > 0


def test_hostile_upload_is_rejected_counted_and_the_run_goes_on(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    fault = tmp_path / "hostile.toml"
    fault.write_text(
        BASELINE.read_text()
        + '\n[[fault]]\nkind = "malformed_upload"\nat = "1h"\nmeter = "pv-00002"\n'
        'payload = "billion_laughs"\n'
        '\n[[fault]]\nkind = "malformed_upload"\nat = "2h"\nmeter = "wind-00001"\n'
        'payload = "external_entity"\n'
        '\n[[fault]]\nkind = "malformed_upload"\nat = "3h"\nmeter = "pv-00005"\n'
        'payload = "truncated"\n'
    )
    store = tmp_path / "run"
    results = run(load_scenario(fault, SMALL), store_dir=store, audit_every_s=900.0)
    ledger_check(results, store)
    rejected = {r.meter_id: r for r in results.rejections}
    assert set(rejected) == {"pv-00002", "wind-00001", "pv-00005"}
    assert rejected["pv-00002"].reason.startswith("dtd_forbidden")
    assert rejected["wind-00001"].reason.startswith("dtd_forbidden")
    assert rejected["pv-00005"].reason.startswith("malformed")
    assert all(r.stage == "fetch" for r in rejected.values())
    assert [f.hostile and f.hostile.delivered for f in results.faults] == [True, True, True]
    assert results.kpis.readings_lost["rejected_invalid"] == sum(
        r.readings for r in rejected.values()
    )
    assert results.kpis.readings_stored > 0.9 * results.kpis.readings_generated


def test_cli_run_writes_results_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            str(BASELINE),
            "--out",
            str(tmp_path),
            "--no-progress",
            *[a for s in SMALL for a in ("--set", s)],
            "--seed",
            "11",
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    kpis = data["kpis"]
    for key in (
        "readings_generated",
        "readings_stored",
        "readings_lost",
        "readings_in_flight",
        "duplicates_discarded",
        "uploads_delivered",
        "throughput_readings_per_s",
        "latency_s",
        "utilization",
    ):
        assert key in kpis
    assert set(kpis["latency_s"]) >= {"p50", "p95", "p99", "max"}
    assert data["seed"] == 11 and data["scenario"]["fleets"][0]["count"] == 20
    assert data["wall_time_s"] > 0
    assert (tmp_path / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["extra"]["plots"] == [str(tmp_path / "overview.png")]
    assert "readings generated" in capsys.readouterr().out


def _with_faults(scenario: Scenario, *faults: FaultSpec) -> Scenario:
    return replace(scenario, faults=faults)


def test_retry_across_the_next_window_keeps_evicted_readings_in_flight(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    # A 40 min outage against a 15-reading buffer: the session that started before the
    # outage keeps retrying (5 min ack timeout) while the next windows evict its readings
    # from the buffer; when it finally gets through they must be stored, not lost.
    scenario = load_scenario(
        BASELINE,
        [
            "fleet.pv.count=1",
            "fleet.wind.count=0",
            'scenario.duration="2h"',
            "fleet.pv.meter.buffer_readings=15",
            'network.cellular.ack_timeout="5min"',
            "network.cellular.max_attempts=10",
            "network.cellular.loss_probability=0",
        ],
    )
    outage = FaultSpec(kind="cell_outage", at_s=0.0, duration_s=2400.0, region="north")
    results = run(_with_faults(scenario, outage), store_dir=tmp_path, audit_every_s=60.0)
    ledger_check(results, tmp_path)
    assert results.kpis.readings_stored > 0
    assert results.kpis.readings_lost["meter_buffer_overflow"] > 0


def test_several_malformed_uploads_on_one_meter_all_fire_even_after_an_outage(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    scenario = small()
    faults = (
        # a field fault first: the world's fault records are not indexed by their place
        FaultSpec(kind="inverter_trip", at_s=600.0, duration_s=600.0, meter="pv-00003"),
        FaultSpec(kind="cell_outage", at_s=3000.0, duration_s=3600.0, region="north"),
        FaultSpec(kind="malformed_upload", at_s=3600.0, meter="pv-00001", payload="truncated"),
        FaultSpec(kind="malformed_upload", at_s=3700.0, meter="pv-00001", payload="billion_laughs"),
        FaultSpec(
            kind="malformed_upload", at_s=9000.0, meter="pv-00001", payload="external_entity"
        ),
    )
    results = run(_with_faults(scenario, *faults), store_dir=tmp_path, audit_every_s=300.0)
    ledger_check(results, tmp_path)
    mine = [r for r in results.rejections if r.meter_id == "pv-00001"]
    assert len(mine) == 3
    # the first two were due during the outage: they went out after it, in order
    assert all(r.t_s >= 6600.0 for r in mine[:2])
    hostile = [f for f in results.faults if f.hostile is not None]
    assert [(f.index, f.hostile.delivered) for f in hostile] == [(2, True), (3, True), (4, True)]
    assert all(f.hostile.sent_at_s is not None for f in hostile)


def test_readings_still_in_service_at_the_end_count_as_in_flight(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    # no batch analytics: on a core this slow one analysis would hold it for the whole run
    scenario = small('pipeline.analytics_every="100d"')
    slow = replace(scenario.mdcs[0], sku=None, cores_per_server=1, speed_factor=1e-6)
    results = run(replace(scenario, mdcs=(slow,)), store_dir=tmp_path, audit_every_s=300.0)
    k = results.kpis
    ledger_check(results, tmp_path)
    assert results.ledger.committing_at_end > 0  # the overloaded core still works
    assert k.mdc_queue_peak > 0
    assert k.latency_s.max is not None and k.latency_s.max <= 6 * 3600
    assert k.utilization["north/server-0"] > 0.99


def test_byte_identical_kpis_across_processes(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name
        subprocess.run(
            [
                sys.executable,
                "-m",
                "twin.cli",
                "run",
                str(BASELINE),
                "--out",
                str(out),
                "--no-progress",
                "--no-plots",
                *[a for s in SMALL for a in ("--set", s)],
                "--set",
                "network.cellular.loss_probability=0.2",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": {"a": "1", "b": "2"}[name]},
        )
        data = json.loads((out / "results.json").read_text())
        outputs.append(
            json.dumps({k: data[k] for k in ("kpis", "ledger", "scenario")}, sort_keys=True)
        )
    assert outputs[0] == outputs[1]


def test_backlog_after_an_outage_drains_in_chunks_without_loss(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    outage = FaultSpec(kind="cell_outage", at_s=3600.0, duration_s=7200.0, region="north")
    chunked, whole = (
        run(
            _with_faults(
                small(
                    f"fleet.pv.meter.max_upload_readings={n}",
                    f"fleet.wind.meter.max_upload_readings={n}",
                ),
                outage,
            ),
            store_dir=tmp_path / str(n),
            audit_every_s=300.0,
        )
        for n in (40, 1440)
    )
    for results, n in ((chunked, 40), (whole, 1440)):
        ledger_check(results, tmp_path / str(n))
        assert results.kpis.readings_lost_total == 0
    # about 130 readings of backlog a meter: 4 chunks of <= 40 instead of one upload, sent
    # back to back in the same session, so the same readings are stored by the end
    extra = chunked.kpis.uploads_acknowledged - whole.kpis.uploads_acknowledged
    assert 24 * 2 <= extra <= 24 * 4
    assert abs(chunked.kpis.readings_stored - whole.kpis.readings_stored) <= 24 * 15
