"""VPN: encapsulation overhead, fragmentation, rekey / drop / DPD / reconnect timing, TLS
fallback, and the gateway buffer's bounded accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from network.vpn import (
    VPN_ENCAPSULATIONS,
    GatewayBuffer,
    TunnelDynamics,
    TunnelEvent,
    TunnelTimeline,
    VpnGateway,
    VpnTunnel,
    ip_fragments,
)

HOUR = 3600.0


def test_encapsulation_overheads() -> None:
    # DTLS 1.2 over UDP: 20 + 8 + 13 + 8 + 16 + 1 (RFC 791/768/6347/5288, AnyConnect byte)
    assert VPN_ENCAPSULATIONS["dtls"].overhead_bytes == 66
    # TLS over TCP (CSTP): 20 + 20 + 5 + 8 + 16 + 8
    assert VPN_ENCAPSULATIONS["tls"].overhead_bytes == 77
    dtls = VpnTunnel.for_encapsulation("dtls", bandwidth_bps=8e6)
    tls = dtls.with_encapsulation("tls")
    assert dtls.bandwidth_bps == 8e6 and tls.overhead_bytes_per_packet == 77
    assert tls.wire_size_bytes(4700) > dtls.wire_size_bytes(4700)


def test_fragmentation_when_the_tunnel_mtu_exceeds_the_path() -> None:
    assert ip_fragments(1500, 1500) == 1
    assert ip_fragments(1501, 1500) == 2  # 1480 B of payload per fragment (multiple of 8)
    assert ip_fragments(20 + 2 * 1480 + 1, 1500) == 3
    # AnyConnect's default tunnel MTU of 1406 fits a 1500 B path with either encapsulation
    for name in VPN_ENCAPSULATIONS:
        t = VpnTunnel.for_encapsulation(name, tunnel_mtu_bytes=1406)
        assert t.fragments_per_packet(t.payload_bytes_per_packet) == 1
    # over a 1400 B path every full packet splits in two: one extra IPv4 header each
    fits = VpnTunnel.for_encapsulation("dtls", tunnel_mtu_bytes=1406)
    small = VpnTunnel.for_encapsulation("dtls", tunnel_mtu_bytes=1406, mtu_bytes=1400)
    full_packets = 10
    size = full_packets * fits.payload_bytes_per_packet
    assert small.wire_size_bytes(size) - fits.wire_size_bytes(size) == full_packets * 20


def test_default_tunnel_is_unchanged() -> None:
    t = VpnTunnel()
    assert t.payload_bytes_per_packet == 1500 - 65 - 40
    assert t.wire_size_bytes(4700) == 4700 + 4 * 105


def test_rekey_pauses_the_tunnel_every_interval() -> None:
    d = TunnelDynamics(rekey_interval_s=8 * HOUR, rekey_pause_s=2.0)
    tl = TunnelTimeline.build(d, 30 * HOUR, np.random.default_rng(0))
    assert [(e.cause, e.start_s, e.end_s) for e in tl.events] == [
        ("rekey", 8 * HOUR, 8 * HOUR + 2.0),
        ("rekey", 16 * HOUR + 2.0, 16 * HOUR + 4.0),
        ("rekey", 24 * HOUR + 4.0, 24 * HOUR + 6.0),
    ]
    assert tl.is_up(8 * HOUR - 1e-6) and not tl.is_up(8 * HOUR + 1.0)
    assert tl.next_up_s(8 * HOUR + 1.0) == 8 * HOUR + 2.0
    assert tl.down_s("rekey") == pytest.approx(6.0)


def test_drop_is_detected_by_dpd_and_reconnects_with_backoff() -> None:
    d = TunnelDynamics(
        rekey_interval_s=1e9,
        dpd_interval_s=30.0,
        dpd_retries=3,
        dpd_retry_s=5.0,
        reconnect_base_s=2.0,
        reconnect_cap_s=16.0,
        reconnect_jitter="none",
        reconnect_handshake_s=1.0,
    )
    # a cause shorter than detection: one reconnect right after DPD fires
    for seed in range(20):
        tl = TunnelTimeline.build(d, 10 * HOUR, np.random.default_rng(seed), [(1000.0, 5.0)])
        (e,) = tl.events
        assert 1000.0 + 15.0 <= e.detected_s <= 1000.0 + 45.0  # 3 x 5 s + DPD phase < 30 s
        assert e.end_s == e.detected_s + 1.0 and e.reconnect_attempts == 1
    # a cause of 200 s: retries at detected + 2, 4, 8, 16, 16, ... until past 1200 s
    tl = TunnelTimeline.build(d, 10 * HOUR, np.random.default_rng(1), [(1000.0, 200.0)])
    (e,) = tl.events
    t, k, waits = e.detected_s, 1, []
    while t < 1200.0:
        w = min(16.0, 2.0 * 2 ** (k - 1))
        waits.append(w)
        t += w
        k += 1
    assert e.end_s == pytest.approx(t + 1.0) and e.reconnect_attempts == len(waits) + 1
    assert not tl.is_up(1100.0) and tl.next_up_s(1100.0) == pytest.approx(e.end_s)
    # after the drop the rekey clock restarts from the reconnect
    d2 = TunnelDynamics(rekey_interval_s=HOUR, dpd_interval_s=30.0)
    tl2 = TunnelTimeline.build(d2, 3 * HOUR, np.random.default_rng(2), [(1800.0, 10.0)])
    drop, rekey = tl2.events[0], tl2.events[1]
    assert drop.cause == "drop" and rekey.start_s == pytest.approx(drop.end_s + HOUR)


def test_random_drops_and_tls_fallback() -> None:
    d = TunnelDynamics(drop_mtbf_s=2 * HOUR, drop_mttr_s=60.0, dtls_blocked_probability=1.0)
    tl = TunnelTimeline.build(d, 200 * HOUR, np.random.default_rng(4))
    drops = [e for e in tl.events if e.cause == "drop"]
    assert abs(len(drops) - 100) < 4 * 10  # Poisson(100) drops
    assert all(e.mode_after == "tls" for e in tl.events)
    gw = VpnGateway(VpnTunnel(), tl)
    assert gw.tunnel_at(100 * HOUR).overhead_bytes_per_packet == 77
    never = TunnelTimeline.build(TunnelDynamics(), HOUR, np.random.default_rng(0))
    assert VpnGateway(VpnTunnel(), never).tunnel_at(10.0).overhead_bytes_per_packet == 65


def test_gateway_forwards_buffers_and_overflows() -> None:
    tunnel = VpnTunnel(latency_s=0.01, bandwidth_bps=8e6)
    tl = TunnelTimeline([TunnelEvent("drop", 100.0, 200.0, 130.0, 3, "dtls")])
    gw = VpnGateway(tunnel, tl, buffer_bytes=10_000)
    d = gw.send(50.0, 4700)
    assert d.accepted and not d.buffered
    assert d.arrival_s == pytest.approx(50.0 + tunnel.transit_s(4700))
    held = [gw.send(150.0 + i, 4000) for i in range(3)]
    assert [x.accepted for x in held] == [True, True, False]  # 8,000 B fit, 12,000 B not
    wire_s = 8.0 * tunnel.wire_size_bytes(4000) / 8e6
    # flushed back to back when the tunnel returns, in arrival order
    assert held[0].arrival_s == pytest.approx(200.0 + wire_s + 0.01)
    assert held[1].arrival_s == pytest.approx(200.0 + 2 * wire_s + 0.01)
    b = gw.buffer
    assert (b.accepted_uploads, b.overflowed_uploads, b.overflowed_bytes) == (2, 1, 4000)
    gw.send(201.0, 10)
    assert b.held_bytes == 0 and b.released_bytes == 8000 and b.peak_bytes == 8000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1000), st.integers(1, 5000), st.floats(0, 300)),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 20_000),
)
def test_gateway_buffer_accounting_is_bounded_and_conserved(
    offers: list[tuple[float, int, float]], capacity: int
) -> None:
    buf = GatewayBuffer(capacity)
    offered = 0
    for t, size, hold in sorted(offers):
        buf.offer(t, size, t + hold)
        offered += size
        assert 0 <= buf.held_bytes <= capacity
        assert buf.peak_bytes <= capacity
    assert buf.accepted_bytes + buf.overflowed_bytes == offered
    assert buf.accepted_uploads + buf.overflowed_uploads == len(offers)
    buf.settle(math.inf)
    assert buf.held_bytes == 0 and buf.released_bytes == buf.accepted_bytes
