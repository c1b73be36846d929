"""The network scenarios end to end: outages against the meters' buffers, the
backlog's drain bound, the reconnect storm with and without jitter, VPN drops against the
gateway buffer, and MDC failover."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from network.radio import POWER_SAVING_MODES
from twin.accounting.results import Results
from twin.runner import run
from twin.scenario.loader import Scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
LedgerCheck = Callable[..., None]  # the ledger_check fixture (tests/twin/conftest.py)
#: A smaller fleet and day, no random attempt or segment loss (the drain bound assumes none).
SMALL = [
    "fleet.pv.count=30",
    "fleet.wind.count=4",
    'scenario.duration="8h"',
    'fault.0.at="2h"',
    "network.cellular.loss_probability=0",
    "network.cellular.ack_loss_probability=0",
    "network.cellular.segment_loss_probability=0",
]


def outage(*extra: str) -> Scenario:
    return load_scenario(SCENARIOS / "cell_outage.toml", [*SMALL, *extra])


def lost_causes(results: Results) -> dict[str, int]:
    return {c: n for c, n in results.kpis.readings_lost.items() if n}


def drain_bound_s(scenario: Scenario, results: Results) -> float:
    """Upper bound on the drain time after an outage (cell back at T):

    every affected meter reconnects by T + W (the reconnect window) plus its access time A
    (wake-up, at most ``max_preamble_tx`` PRACH tries, RRC set-up at its 99.99th percentile,
    the handshake's round trips and downlink bytes), and sends its backlog in at most two
    uploads (the one its session built before the outage, then the rest, caught up in the
    same session) of at most U bytes on the wire each, which hold one of the cell's C
    uplink channels for s_m = 2 x 8 U / rate(class of m). The uplink is a work-conserving
    FIFO over C channels, so the last upload finishes at most sum_m s_m / C + max_m s_m
    after the last arrival.
    Summed over every meter of the run (not only the affected cell's): looser, still a bound.
    """
    p = scenario.cellular
    net = results.network
    exchange = p.transport.exchange(net.upload_bytes_max, "full")
    mode = POWER_SAVING_MODES[p.power_saving]
    z = 3.72  # standard normal 99.99th percentile
    access_s, service_s = [], []
    for cls, prach in zip(p.coverage, p.prach, strict=True):
        rrc_s = p.access_latency_median_s * cls.rrc_factor * math.exp(z * p.access_latency_sigma)
        tries_s = prach.max_preamble_tx * (
            prach.period_s + prach.outcome_delay_s + prach.backoff_indicator_s
        )
        handshake_s = exchange.rtts * cls.rtt_s + 8.0 * exchange.down_bytes / p.downlink_bps(
            cls.ce_level
        )
        access_s.append(mode.wake_s(cls) + tries_s + rrc_s + handshake_s + cls.rtt_s)
        s = 2 * 8.0 * exchange.up_bytes / p.uplink_bps(cls.ce_level)
        service_s += [s] * net.coverage_meters[cls.name]
    return (
        p.reconnect_window_s + max(access_s) + sum(service_s) / p.uplink_channels + max(service_s)
    )


def test_outage_shorter_than_the_buffers_loses_nothing_and_drains_within_the_bound(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    scenario = outage()
    results = run(scenario, store_dir=tmp_path, audit_every_s=300.0)
    drain = results.faults[0].drain
    assert drain is not None
    ledger_check(results, tmp_path)
    assert results.kpis.readings_lost_total == 0
    assert results.faults[0].lost == 0 and drain.pending == 0
    assert 0 < drain.meters_affected < 34  # one of two cells
    bound = drain_bound_s(scenario, results)
    assert drain.drain_s is not None and 0 < drain.drain_s <= bound


def test_outage_longer_than_the_buffers_loses_to_meter_buffer_overflow_only(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    # 2 h of outage against 60 readings of buffer: each affected meter loses about 60-75
    results = run(
        outage("fleet.pv.meter.buffer_readings=60", "fleet.wind.meter.buffer_readings=60"),
        store_dir=tmp_path,
        audit_every_s=300.0,
    )
    drain = results.faults[0].drain
    assert drain is not None
    ledger_check(results, tmp_path)
    assert set(lost_causes(results)) == {"meter_buffer_overflow"}
    lost = results.kpis.readings_lost["meter_buffer_overflow"]
    assert results.faults[0].lost == lost  # every loss is the outage's
    assert 50 * drain.meters_affected <= lost <= 80 * drain.meters_affected


def test_jitter_lowers_the_reconnect_peak_by_an_order_of_magnitude() -> None:
    """Without spread every affected meter (n of them) reconnects in the same second: the
    peak is n attempts/s. Spread uniformly over W = 60 s, the peak is the fullest of 60
    one-second bins, about n/60 + a few (for n ~ 17: 2-4). Stated factor: >= 4."""
    storm = run(outage("network.cellular.reconnect_spread=none")).faults[0].drain
    spread = run(outage()).faults[0].drain
    assert storm is not None and storm.reconnect_peak_per_s is not None
    assert spread is not None and spread.reconnect_peak_per_s is not None
    assert storm.reconnect_peak_per_s >= 0.8 * storm.meters_affected
    assert spread.reconnect_peak_per_s * 4 <= storm.reconnect_peak_per_s


def test_vpn_drop_with_a_small_gateway_buffer_loses_to_its_overflow_only(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    scenario = load_scenario(
        SCENARIOS / "vpn_flap.toml",
        [
            "fleet.pv.count=30",
            "fleet.wind.count=4",
            'scenario.duration="8h"',
            'fault.0.at="3h"',
            "network.vpn.buffer_bytes=200000",
        ],
    )
    results = run(scenario, store_dir=tmp_path, audit_every_s=300.0)
    vpn = results.network.vpn[0]
    ledger_check(results, tmp_path)
    # it overflowed because it was full: the peak is within one upload of the capacity
    assert vpn.overflowed_uploads > 0
    assert 200_000 - results.network.upload_bytes_max < vpn.buffer_peak_bytes
    assert set(lost_causes(results)) == {"vpn_down_buffer_overflow"}
    # with the default 50 MB buffer the same drops lose nothing
    roomy = run(
        load_scenario(
            SCENARIOS / "vpn_flap.toml",
            [
                "fleet.pv.count=30",
                "fleet.wind.count=4",
                'scenario.duration="8h"',
                'fault.0.at="3h"',
            ],
        )
    )
    assert roomy.kpis.readings_lost_total == 0
    assert roomy.network.vpn[0].buffered_uploads > 0
    vpn_max_s = roomy.kpis.hop_latency_s["vpn"].max
    assert vpn_max_s is not None and vpn_max_s > 40 * 60 * 0.9  # held through the cut


@pytest.mark.parametrize("ack", ["receipt", "commit"])
def test_failover_keeps_loss_at_zero_while_one_mdc_is_down(
    ack: str, tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    scenario = load_scenario(
        SCENARIOS / "mdc_failover.toml",
        [
            "fleet.pv.count=20",
            "fleet.pvsouth.count=20",
            "fleet.wind.count=4",
            'scenario.duration="6h"',
            'fault.0.at="2h"',
            'fault.0.duration="2h"',
            f'mdc.north.ack="{ack}"',
            f'mdc.south.ack="{ack}"',
        ],
    )
    assert {m.ack for m in scenario.mdcs} == {ack}
    results = run(scenario, store_dir=tmp_path, audit_every_s=300.0)
    ledger_check(results, tmp_path)
    assert results.kpis.readings_lost_total == 0
    assert results.network.failovers > 0
    backbone = results.kpis.hop_latency_s["backbone"]
    assert backbone.n > 0 and backbone.p50 == pytest.approx(0.012, rel=0.01)
    # the southern MDC carried the northern meters while north was dark
    assert results.kpis.utilization["south/server-0"] > results.kpis.utilization["north/server-0"]
    drain = results.faults[0].drain
    assert drain is not None and drain.pending == 0 and results.faults[0].lost == 0


def test_uploads_the_gateway_holds_wait_for_a_dark_mdc_instead_of_being_lost(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    """A tunnel drop overlapping a power loss of the only MDC: the uploads the gateway
    buffered during the drop come out while the MDC is dark, with no MDC to fail over to.
    The gateway (store and forward) keeps them until the MDC is back: nothing is lost,
    not even when acknowledged on receipt."""
    text = (SCENARIOS / "vpn_flap.toml").read_text() + (
        '\n[[fault]]\nkind = "mdc_power_loss"\nmdc = "north"\nat = "200min"\nduration = "1h"\n'
    )
    path = tmp_path / "dark.toml"
    path.write_text(text)
    scenario = load_scenario(
        path,
        [
            "fleet.pv.count=30",
            "fleet.wind.count=4",
            'scenario.duration="8h"',
            'fault.0.at="3h"',
        ],
    )
    assert [f.kind for f in scenario.faults] == ["vpn_drop", "mdc_power_loss"]
    assert {m.ack for m in scenario.mdcs} == {"receipt"}
    store = tmp_path / "run"
    results = run(scenario, store_dir=store, audit_every_s=300.0)
    ledger_check(results, store)
    assert results.kpis.readings_lost_total == 0
    assert results.network.held_for_mdc_uploads > 0
    assert results.mdcs[0].power_losses == 1
