"""Transport accounting against the RFCs and the MQTT specification."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from network.transport import (
    TLS_VERSIONS,
    TRANSPORTS,
    SessionTable,
    TransportProfile,
    https_request_header_bytes,
    mqtt_publish_bytes,
    mqtt_varint_bytes,
    retransmission_pmf,
    retransmissions,
    rto_s,
    tcp_segments,
    tls_wire_bytes,
)


def test_mqtt_remaining_length_bytes_at_the_spec_boundaries() -> None:
    # MQTT 3.1.1 §2.2.3 table 2.4
    for value, size in [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (2_097_151, 3),
                        (2_097_152, 4), (268_435_455, 4)]:  # fmt: skip
        assert mqtt_varint_bytes(value) == size
    with pytest.raises(ValueError):
        mqtt_varint_bytes(268_435_456)


def test_mqtt_publish_header() -> None:
    topic = "a/b"  # 3 B
    # fixed header 1 + remaining length 1 + topic length 2 + topic 3 + packet id 2 + payload
    assert mqtt_publish_bytes(100, topic) == 1 + 1 + 2 + 3 + 2 + 100
    assert mqtt_publish_bytes(200, topic) == 1 + 2 + 2 + 3 + 2 + 200  # remaining 207 > 127
    assert mqtt_publish_bytes(200, topic, "5") == mqtt_publish_bytes(200, topic) + 1


def test_https_request_header_is_counted_from_its_text() -> None:
    n = https_request_header_bytes(4700, "h.example", "/u")
    text = (
        "POST /u HTTP/1.1\r\nHost: h.example\r\nContent-Type: application/atom+xml\r\n"
        "Content-Length: 4700\r\nAuthorization: HMAC-SHA256 " + "0" * 64 + "\r\n\r\n"
    )
    assert n == len(text)


def test_tls_records_and_tcp_segments() -> None:
    tls13, tls12 = TLS_VERSIONS["1.3"], TLS_VERSIONS["1.2"]
    assert tls13.record_overhead_bytes == 22 and tls12.record_overhead_bytes == 29
    assert tls_wire_bytes(16_384, tls13) == 16_384 + 22  # one full record (RFC 8446 §5.1)
    assert tls_wire_bytes(16_385, tls13) == 16_385 + 44
    t = TransportProfile(mtu_bytes=1500)
    assert t.mss_bytes == 1448  # 1500 - 20 IPv4 - 20 TCP - 12 timestamps
    assert tcp_segments(1448, t.mss_bytes) == 1 and tcp_segments(1449, t.mss_bytes) == 2


def test_upload_bytes_add_up() -> None:
    t = TRANSPORTS["mqtt"]
    ex = t.exchange(4700, "none")
    stream = tls_wire_bytes(mqtt_publish_bytes(4700, t.topic), t.tls)
    segs = tcp_segments(stream, t.mss_bytes)
    assert ex.data_segments == segs
    assert ex.up_bytes == stream + segs * 52
    assert ex.rtts == 0 and ex.down_bytes == 0
    full = t.exchange(4700, "full")
    assert full.down_bytes > 1700  # the certificate chain comes down
    assert t.exchange(4700, "resume").down_bytes < full.down_bytes


def test_rto_follows_rfc6298() -> None:
    assert rto_s(0.1, 0) == 1.0  # initial RTO (§2.1)
    assert rto_s(0.5, 1) == pytest.approx(0.5 + 4 * 0.25)  # SRTT = R, RTTVAR = R/2 (§2.2)
    assert rto_s(0.5, 2) == pytest.approx(0.5 + 4 * 0.25 * 0.75)  # RTTVAR *= 3/4 (§2.3)
    assert rto_s(0.1, 5) == 1.0  # floor of 1 s (§2.4)


def test_retransmissions_are_negative_binomial() -> None:
    n, p = 4, 0.1
    pmf = retransmission_pmf(n, p)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    k = np.arange(pmf.size)
    assert float(pmf @ k) == pytest.approx(n * p / (1 - p), rel=1e-9)  # mean of NB
    rng = np.random.default_rng(2)
    draws = np.array([retransmissions(n, p, rng) for _ in range(40_000)])
    se = math.sqrt(n * p / (1 - p) ** 2 / draws.size)
    assert abs(draws.mean() - n * p / (1 - p)) < 4 * se
    assert retransmissions(n, 0.0, rng) == 0


def test_session_table_rules() -> None:
    mqtt = replace(TRANSPORTS["mqtt"], idle_timeout_s=100.0)
    s = SessionTable(3, mqtt)
    assert s.handshake(0, server=1, t_s=0.0) == "full"  # never connected
    s.established(0, 1, 0.0, "full")
    assert s.handshake(0, 1, 50.0) == "none"  # persistent connection alive
    assert s.handshake(0, 1, 150.0) == "resume"  # idle timeout: reconnect, resume
    assert s.handshake(0, 2, 50.0) == "full"  # another MDC has no session keys
    s.broken(0)
    assert s.handshake(0, 1, 50.0) == "full"  # full handshake after a failure
    s.established(0, 1, 60.0, "full")
    s.invalidate_server(1)
    assert s.handshake(0, 1, 61.0) == "full"
    s.established(0, 1, 70.0, "full")
    assert s.handshake(0, 1, 70.0 + 7 * 86_400.0) == "full"  # ticket lifetime over
    https = SessionTable(1, TRANSPORTS["https"], full_after_failure=False)
    https.established(0, 0, 0.0, "full")
    assert https.handshake(0, 0, 1.0) == "resume"  # one connection per upload
    https.broken(np.array([0]))
    assert https.handshake(0, 0, 2.0) == "resume"
    assert (https.full_handshakes, https.resumptions) == (1, 0)
