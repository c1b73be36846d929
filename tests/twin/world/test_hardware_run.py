"""The MDC hardware scenarios end to end: server crashes against the
acknowledgement policy, planned maintenance, brown-out from the power side, growth against
one server, the model mode, and the checks every run reports (Little's law, energy)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from twin.accounting.results import Results
from twin.runner import run
from twin.scenario.loader import Scenario, load_scenario
from twin.scenario.mdc import FailureSpec, MaintenanceSpec

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
LedgerCheck = Callable[..., None]  # the ledger_check fixture (tests/twin/conftest.py)


def lost_causes(results: Results) -> dict[str, int]:
    return {c: n for c, n in results.kpis.readings_lost.items() if n}


def crashing(ack: str) -> Scenario:
    """server_failure on a slow two-server MDC (4 s an upload: the herd's bursts queue for
    about two minutes, so crashes find uploads in memory) with frequent crashes."""
    scenario = load_scenario(
        SCENARIOS / "server_failure.toml",
        [
            "fleet.pv.count=60",
            "fleet.wind.count=4",
            'scenario.duration="12h"',
            'network.cellular.ack_timeout="5min"',
            "network.cellular.cells_per_region=1",
        ],
    )
    slow = replace(
        scenario.mdcs[0],
        sku=None,
        servers=2,
        cores_per_server=1,
        speed_factor=5e-5,
        ack=ack,
        failures=FailureSpec("exponential", 3600.0, 600.0, None),
        maintenance=(),
    )
    return replace(scenario, mdcs=(slow,))


def test_acknowledging_on_receipt_loses_crashed_uploads_and_after_commit_does_not(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    receipt = run(crashing("receipt"), store_dir=tmp_path / "receipt", audit_every_s=300.0)
    commit = run(crashing("commit"), store_dir=tmp_path / "commit", audit_every_s=300.0)
    for results, ack in ((receipt, "receipt"), (commit, "commit")):
        ledger_check(results, tmp_path / ack)
        assert results.mdcs[0].lost_jobs > 0  # crashes did find uploads in memory
        assert results.mdcs[0].little.little_ok and results.mdcs[0].energy.energy_check_ok
    assert set(lost_causes(receipt)) == {"mdc_crash_unpersisted"}
    assert commit.kpis.readings_lost_total == 0
    # after commit the meter waits for the pipeline: acknowledgements take longer
    commit_ack_s, receipt_ack_s = (r.kpis.hop_latency_s["ack"].p50 for r in (commit, receipt))
    assert commit_ack_s is not None and receipt_ack_s is not None
    assert commit_ack_s > 10 * receipt_ack_s
    availability = receipt.mdcs[0].server_availability
    # MTBF / (MTBF + MTTR) = 6/7 in the long run; 12 h is short, so only roughly
    assert all(0.5 < a < 1.0 for a in availability.values())


def test_planned_maintenance_drains_the_server_and_loses_nothing() -> None:
    scenario = crashing("receipt")
    mdc = replace(
        scenario.mdcs[0], failures=None, maintenance=(MaintenanceSpec(1, 3 * 3600.0, 3600.0),)
    )
    results = run(replace(scenario, mdcs=(mdc,)), audit_every_s=300.0)
    assert results.kpis.readings_lost_total == 0
    assert results.mdcs[0].lost_jobs == 0
    availability = results.mdcs[0].server_availability
    assert availability["north/server-0"] == 1.0
    assert availability["north/server-1"] == pytest.approx(11 / 12, abs=0.01)


def brownout(*extra: str) -> Results:
    scenario = load_scenario(
        SCENARIOS / "brownout.toml", ["fleet.pv.count=40", "fleet.wind.count=4", *extra]
    )
    return run(scenario, audit_every_s=600.0)


def test_brownout_sheds_servers_delays_but_loses_nothing() -> None:
    dark = brownout()
    lit = brownout("mdc.north.power.grid_outages=[]")
    mdc, lit_power = dark.mdcs[0], lit.mdcs[0].brownout
    power = mdc.brownout
    assert power is not None and lit_power is not None
    assert power.power_servers_shed_server_s > 3600.0  # the battery ran out
    assert power.power_battery_min_soc is not None and power.power_battery_min_soc < 0.05
    assert lit_power.power_servers_shed_server_s == 0.0
    assert dark.kpis.readings_lost_total == 0 == lit.kpis.readings_lost_total
    # the meters held their readings while the MDC was dark: latency, not loss
    assert dark.kpis.latency_s.p99 is not None and lit.kpis.latency_s.p99 is not None
    assert dark.kpis.latency_s.p99 > 3 * lit.kpis.latency_s.p99
    assert dark.network.attempts_unroutable > 0
    assert mdc.energy.energy_check_ok and mdc.little.little_ok
    # the energy side: less drawn from the grid while it was out
    assert power.power_grid_import_wh < lit_power.power_grid_import_wh


def growth(factor: int, *extra: str) -> Results:
    scenario = load_scenario(
        SCENARIOS / "growth_3x.toml",
        [
            f"fleet.pv.count={30 * factor}",
            f"fleet.wind.count={3 * factor}",
            'scenario.duration="6h"',
            'pipeline.analytics_every="100d"',
            *extra,
        ],
    )
    return run(scenario, audit_every_s=600.0)


def test_three_times_the_fleet_is_three_times_the_work_and_energy() -> None:
    one, three = growth(1), growth(3)
    for results in (one, three):
        assert results.kpis.readings_lost_total == 0
        assert results.mdcs[0].little.little_ok and results.mdcs[0].energy.energy_check_ok
    busy_1 = one.kpis.utilization["north/server-0"]
    busy_3 = three.kpis.utilization["north/server-0"]
    assert busy_3 / busy_1 == pytest.approx(3.0, rel=0.1)
    # facility energy = PUE x (idle x T + (max - idle) x busy): the dynamic part triples
    sku_idle_wh = 16.0 * 6 * 1.55  # edge-1u-4c idle 16 W for 6 h, PUE 1.55
    dyn_1 = one.kpis.energy_mdc_kwh["north"] * 1000 - sku_idle_wh
    dyn_3 = three.kpis.energy_mdc_kwh["north"] * 1000 - sku_idle_wh
    assert dyn_3 / dyn_1 == pytest.approx(3.0, rel=0.1)
    assert three.kpis.mdc_queue_peak >= one.kpis.mdc_queue_peak


def test_model_mode_runs_the_pipeline_on_a_sample_with_the_same_kpis(
    ledger_check: LedgerCheck,
) -> None:
    calibrated = growth(1)
    model = growth(1, 'pipeline.service_time="model"', "pipeline.pipeline_sample_rate=0.2")
    total = model.service_time.uploads_run + model.service_time.uploads_modelled
    share = model.service_time.uploads_run / total
    assert share == pytest.approx(0.2, abs=4 * (0.2 * 0.8 / total) ** 0.5)
    ledger_check(model)
    # the modelled cost of an accepted upload is its calibrated cost: same simulation
    assert model.kpis.readings_stored == calibrated.kpis.readings_stored
    assert model.kpis.latency_s == calibrated.kpis.latency_s
    assert model.kpis.utilization == calibrated.kpis.utilization
    # only the sample reached the database
    assert 0 < model.ledger.store_rows < calibrated.ledger.store_rows
    # what the database lacks, the model costed without a call
    assert calibrated.ledger.store_rows <= (
        model.ledger.store_rows + model.service_time.rows_modelled
    )


def test_model_mode_sampling_raises_no_false_alarms() -> None:
    """In model mode the database holds a sample of the uploads, so each series is mostly
    gaps; the analytics must not read the gaps' estimates (lines drawn across hours of
    daylight) as flat registers or dead inverters. No fault is injected: no detection."""
    scenario = load_scenario(
        SCENARIOS / "baseline.toml",
        ['pipeline.service_time="model"', "pipeline.pipeline_sample_rate=0.02"],
    )
    results = run(scenario)
    assert 0 < results.service_time.uploads_run < results.service_time.uploads_modelled
    assert results.analytics is not None and results.analytics.detections == 0
    assert results.kpis.alerts == 0


def pushing_back(ack: str, buffer_bytes: int, store_dir: Path | None = None) -> Results:
    """growth_3x's synchronised herd on one slow core (0.4 s an upload) whose ingest memory
    holds two uploads: the rest of each burst is pushed back into the gateway's buffer."""
    scenario = load_scenario(
        SCENARIOS / "growth_3x.toml",
        [
            "fleet.pv.count=30",
            "fleet.wind.count=3",
            'scenario.duration="3h"',
            'pipeline.analytics_every="100d"',
            f"network.vpn.buffer_bytes={buffer_bytes}",
        ],
    )
    slow = replace(
        scenario.mdcs[0],
        sku=None,
        servers=1,
        cores_per_server=1,
        speed_factor=5e-4,
        ram_gb_per_server=10e-6,  # 10 kB
        ingest_ram_fraction=1.0,
        ack=ack,
        failures=None,
        maintenance=(),
    )
    return run(replace(scenario, mdcs=(slow,)), store_dir=store_dir, audit_every_s=300.0)


def test_a_full_mdc_memory_pushes_back_into_the_bounded_gateway_buffer(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    """RAM push-back holds uploads in the gateway, not in an unbounded queue: with room
    there nothing is lost; with a gateway buffer of a few uploads, acknowledging on receipt
    loses what overflows it (gateway_buffer_overflow, only that), and acknowledging after
    commit loses nothing (the meters re-send)."""
    roomy = pushing_back("receipt", 50_000_000, tmp_path / "roomy")
    net, mdc = roomy.network, roomy.mdcs[0]
    assert net.pushed_back_uploads > 100 and net.pushback_overflows == 0
    assert mdc.memory_peak_bytes <= 10_000 < net.vpn[0].buffer_peak_bytes
    assert roomy.kpis.readings_lost_total == 0
    ledger_check(roomy, tmp_path / "roomy")
    assert mdc.little.little_ok
    tight = pushing_back("receipt", 20_000, tmp_path / "tight")
    assert tight.network.pushback_overflows > 0
    assert tight.network.vpn[0].buffer_peak_bytes <= 20_000
    assert set(lost_causes(tight)) == {"gateway_buffer_overflow"}
    ledger_check(tight, tmp_path / "tight")
    safe = pushing_back("commit", 20_000, tmp_path / "safe")
    assert safe.network.pushback_overflows > 0
    assert safe.kpis.readings_lost_total == 0
    ledger_check(safe, tmp_path / "safe")
