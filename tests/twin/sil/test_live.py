"""Live runs: the simulated network delivers every upload to a real MDC service over
loopback HTTP; the ledger balances against the service's own store, and a kill -9 of the
service in the middle of the run loses nothing with commit acks and counts what it loses
with receipt acks."""

from __future__ import annotations

import dataclasses
import json
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import Keyring
from pipeline.serve.config import load_sites
from tests.serve_process import running_service
from twin.cli import main
from twin.errors import ScenarioError
from twin.runner import STORE_NAME, site_records, upload_keys
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import Scenario, load_scenario
from twin.sil.live import LiveOptions
from twin.sil.live_run import run_live, write_keyring, write_sites
from twin.world.fleet import build_fleets

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"
SHORT = ["fleet.pv.count=12", "fleet.wind.count=2", 'scenario.duration="3h"']
LedgerCheck = Callable[..., None]  # the ledger_check fixture (tests/twin/conftest.py)


def short(*extra: str) -> Scenario:
    return load_scenario(BASELINE, [*SHORT, *extra])


def with_kill(scenario: Scenario, at_s: float = 1800.0, duration_s: float = 900.0) -> Scenario:
    kill = FaultSpec(kind="mdc_power_loss", at_s=at_s, duration_s=duration_s, mdc="north")
    return dataclasses.replace(scenario, faults=(kill,))


def test_a_live_run_balances_against_the_store_of_a_service_it_did_not_start(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    scenario = short()
    fleets = build_fleets(scenario)
    keyring, sites = tmp_path / "keyring.json", tmp_path / "sites.json"
    write_keyring(keyring, upload_keys(scenario, fleets))
    write_sites(sites, site_records(fleets))
    store = tmp_path / STORE_NAME
    with running_service(store, keyring, "--sites", str(sites)) as service:
        options = LiveOptions(service.url, speed=3600.0 * 3, concurrency=8)
        results, report = run_live(scenario, options)
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(60) == 0
    ledger_check(results, tmp_path)  # rows per meter in the service's own store
    k = results.kpis
    assert results.service_time.mode == "live" and results.scenario.mdcs[0].ack == "commit"
    assert k.readings_lost_total == 0 and k.readings_stored > 0
    # every copy that reached the service got its real answer, and was acknowledged by it
    (feed,) = results.weather_feed  # the met station's uploads went to the service too
    assert feed.uploads_acknowledged > 0 and feed.uploads_rejected == 0
    assert report.answers == {
        "stored": k.uploads_delivered,
        "station_stored": feed.uploads_acknowledged,
    }
    assert k.uploads_acknowledged == k.uploads_delivered
    with sqlite3.connect(store) as db:  # each observation and forecast value stored once
        (observations,) = db.execute("SELECT COUNT(*) FROM weather_observations").fetchone()
        (forecasts,) = db.execute("SELECT COUNT(*) FROM weather_forecasts").fetchone()
    assert observations + forecasts == feed.values_stored > 0
    assert k.hop_latency_s["pipeline"].p50 == pytest.approx(report.latency_p50_s)
    assert report.settled_present == report.settled_absent == report.kills == 0


def test_a_kill_and_restart_with_commit_acks_loses_nothing(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    scenario = with_kill(short('mdc.north.ack="commit"'))
    results, report = run_live(scenario, LiveOptions("spawn", concurrency=8), store_dir=tmp_path)
    ledger_check(results, tmp_path)
    assert report.kills == 1
    assert results.kpis.readings_lost_total == 0
    assert results.network.attempts_unroutable > 0  # meters found no MDC while it was dead
    assert (tmp_path / "service-north.log").exists() and (tmp_path / "keyring.json").exists()


def test_a_kill_with_receipt_acks_loses_what_was_acknowledged_and_not_committed(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    # a commit wait far longer than the simulation takes to reach the kill: every upload
    # acknowledged before it is still uncommitted when the process dies
    scenario = with_kill(short('mdc.north.ack="receipt"', 'pipeline.analytics_every="24h"'))
    options = LiveOptions("spawn", concurrency=8, commit_wait_s=10.0)
    results, report = run_live(scenario, options, store_dir=tmp_path)
    ledger_check(results, tmp_path)
    lost = {cause: n for cause, n in results.kpis.readings_lost.items() if n}
    assert report.kills == 1 and report.settled_absent > 0
    assert set(lost) == {"mdc_crash_unpersisted"}
    # each lost reading is one of an acknowledged upload that the restarted service lacked
    assert lost["mdc_crash_unpersisted"] >= report.settled_absent


def test_what_a_live_run_refuses(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="--live"):
        run_live(short(), LiveOptions("http://127.0.0.1:9", timeout_s=2.0))  # nobody there
    with pytest.raises(ScenarioError, match="--live"):
        LiveOptions("ftp://mdc").check()
    with pytest.raises(ScenarioError, match=r"pipeline\.authenticate"):
        run_live(short("pipeline.authenticate=false"), LiveOptions("spawn"))
    scenario = short()
    keyring = tmp_path / "keyring.json"
    write_keyring(keyring, upload_keys(scenario, build_fleets(scenario)))
    with running_service(tmp_path / "mdc.sqlite", keyring) as service:
        with pytest.raises(ScenarioError, match="spawn: an mdc_power_loss fault kills"):
            run_live(with_kill(scenario), LiveOptions(service.url))
        with pytest.raises(ScenarioError, match="--commit-wait"):
            run_live(scenario, LiveOptions(service.url, commit_wait_s=1.0))


def test_twin_keys_writes_what_the_service_reads(tmp_path: Path) -> None:
    out, sites = tmp_path / "k" / "keyring.json", tmp_path / "sites.json"
    args = ["keys", str(BASELINE), *[a for s in SHORT for a in ("--set", s)]]
    assert main([*args, "--out", str(out), "--sites", str(sites)]) == 0
    scenario = short()
    fleets = build_fleets(scenario)
    assert dict(Keyring.load(out)) == upload_keys(scenario, fleets)
    assert load_sites(sites) == site_records(fleets)
    assert set(json.loads(out.read_text())) == {"keys"}


def test_bad_live_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for extra in (["--live", "spawn", "--speed", "fast"], ["--live", "mdc:8080"]):
        assert main(["run", str(BASELINE), *extra, "--no-progress"]) == 2
        assert capsys.readouterr().err.count("\n") == 1
