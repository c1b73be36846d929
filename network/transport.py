"""Transport of one upload: TCP, TLS (full handshake or resumption), MQTT or HTTPS.

Per-packet detail is folded into three numbers per upload (``Exchange``): round trips before
the payload can go, bytes uplink and downlink, and the number of uplink data segments
(over which loss and retransmission are folded, see ``rto_s`` and the cell's attempt).

Sources of the round trips and header sizes:

- TCP: three-way handshake, one round trip before data (RFC 9293 §3.5); 20 B header plus
  12 B timestamp option on every segment (RFC 7323 §3); the SYN carries MSS, SACK-permitted,
  window-scale and timestamps options (40 B header). IPv4 header 20 B (RFC 791).
  Retransmission timeout per RFC 6298 §2 (initial 1 s, minimum 1 s, SRTT + 4 RTTVAR).
- TLS 1.3 (RFC 8446): full handshake 1 round trip (§2), resumption with a PSK from a
  NewSessionTicket also 1 round trip (§2.2; 0-RTT early data is not used: not replay safe
  for uploads). Record overhead 5 B header + 1 B inner content type + 16 B AEAD tag (§5.2,
  AES-128-GCM tag per RFC 5116), plaintext at most 2^14 B per record (§5.1). Ticket lifetime
  at most 7 days (§4.6.1).
- TLS 1.2 (RFC 5246): full handshake 2 round trips (§7.3, figure 1); abbreviated handshake
  with a session ticket 1 round trip (RFC 5077 §3.1; RFC 5246 figure 2). Record overhead
  with AES-128-GCM: 5 B header + 8 B explicit nonce + 16 B tag (RFC 5288 §3).
- Handshake message sizes are typical values built from the message structures (RFC 8446
  §4, RFC 5246 §7.4) with one X25519 key share or ECDHE P-256, SNI, a few cipher suites and
  a server chain of two ECDSA P-256 certificates of about 800 B each; tickets about 200 B.
- MQTT (OASIS MQTT 3.1.1, 2014; MQTT 5.0, 2019): CONNECT/CONNACK one round trip after a
  new TCP connection (3.1.1 §3.1, §3.2); PUBLISH QoS 1 = 1 B fixed header + remaining
  length as a 1-4 B variable byte integer (§2.2.3) + 2 B topic length + topic + 2 B packet
  id (§3.3.2), MQTT 5 adds the property length (1 B for no properties, 5.0 §3.3.2.3);
  PUBACK 4 B (3.1.1 §3.4). The connection is kept open (persistent): carrier NATs must
  keep an idle TCP binding for at least 2 h 4 min (RFC 5382 REQ-5).
- HTTPS: HTTP/1.1 message syntax (RFC 9112 §2-3): request line and header fields are
  counted from the actual text of a minimal request (``https_request_header_bytes``);
  one connection per upload (closed after the response) unless persistent is set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

IPV4_HEADER_BYTES = 20
TCP_HEADER_BYTES = 20
TCP_TIMESTAMP_OPTION_BYTES = 12
TCP_SYN_HEADER_BYTES = 40  # 20 B + MSS 4 + SACK-permitted 2 + timestamps 10 + wscale 3 + pad
TLS_MAX_RECORD_PLAINTEXT_BYTES = 2**14
RTO_INITIAL_S = 1.0  # RFC 6298 §2.1
RTO_MIN_S = 1.0  # RFC 6298 §2.4

#: Handshake kinds, from cheapest: a live persistent connection, TLS resumption, full TLS.
HANDSHAKE_KINDS = ("none", "resume", "full")


@dataclass(frozen=True)
class TlsVersion:
    """Round trips and bytes of one TLS version (see module docstring for sources)."""

    name: str
    full_rtts: int
    resume_rtts: int
    record_overhead_bytes: int
    full_up_bytes: int  # ClientHello + client Finished (and CCS/ClientKeyExchange in 1.2)
    full_down_bytes: int  # server flight with certificates + NewSessionTicket
    resume_up_bytes: int  # ClientHello with ticket / PSK identity + Finished
    resume_down_bytes: int
    ticket_lifetime_s: float = 7 * 86_400.0  # RFC 8446 §4.6.1 upper bound


#: TLS versions (name -> parameters).
TLS_VERSIONS: dict[str, TlsVersion] = {
    "1.3": TlsVersion(
        "1.3",
        full_rtts=1,
        resume_rtts=1,
        record_overhead_bytes=5 + 1 + 16,
        full_up_bytes=260 + 58,  # ClientHello (X25519, SNI) + Finished in a record
        full_down_bytes=95 + 30 + 1700 + 100 + 58 + 230,  # SH, EE, Cert, CV, Fin, ticket
        resume_up_bytes=260 + 230 + 58,  # ClientHello with pre_shared_key + Finished
        resume_down_bytes=130 + 30 + 58 + 230,  # SH (psk_dhe), EE, Fin, new ticket
    ),
    "1.2": TlsVersion(
        "1.2",
        full_rtts=2,
        resume_rtts=1,
        record_overhead_bytes=5 + 8 + 16,
        full_up_bytes=200 + 75 + 6 + 45,  # ClientHello, ClientKeyExchange, CCS, Finished
        full_down_bytes=90 + 1700 + 150 + 9 + 230 + 6 + 45,  # SH..SHD, ticket, CCS, Fin
        resume_up_bytes=200 + 230 + 6 + 45,  # ClientHello with ticket, CCS, Finished
        resume_down_bytes=90 + 230 + 6 + 45,  # ServerHello, new ticket, CCS, Finished
    ),
}


def mqtt_varint_bytes(value: int) -> int:
    """Bytes of an MQTT variable byte integer (MQTT 3.1.1 §2.2.3): 1 up to 127, 2 up to
    16,383, 3 up to 2,097,151, 4 up to 268,435,455."""
    if value < 0 or value > 268_435_455:
        raise ValueError(f"MQTT remaining length out of range: {value}")
    return 1 if value < 128 else 2 if value < 16_384 else 3 if value < 2_097_152 else 4


def mqtt_publish_bytes(payload_bytes: int, topic: str, version: str = "3.1.1") -> int:
    """Whole PUBLISH packet at QoS 1 carrying ``payload_bytes``, B (see module docstring)."""
    variable = 2 + len(topic.encode("utf-8")) + 2 + (1 if version == "5" else 0)
    remaining = variable + payload_bytes
    return 1 + mqtt_varint_bytes(remaining) + remaining


def mqtt_connect_bytes(client_id: str, version: str = "3.1.1") -> int:
    """CONNECT without will, user name or password, B: fixed header + 10 B variable header
    (protocol name "MQTT", level, flags, keep alive; MQTT 3.1.1 §3.1.2) + client id."""
    remaining = 10 + (1 if version == "5" else 0) + 2 + len(client_id.encode("utf-8"))
    return 1 + mqtt_varint_bytes(remaining) + remaining


MQTT_CONNACK_BYTES = 4  # MQTT 3.1.1 §3.2
MQTT_PUBACK_BYTES = 4  # MQTT 3.1.1 §3.4


def https_request_header_bytes(payload_bytes: int, host: str, path: str) -> int:
    """Request line and header fields of a minimal upload POST (RFC 9112 §3), B, counted
    from its text: Host, Content-Type, Content-Length and an HMAC Authorization header
    (64 hex digits, DESIGN.md §9)."""
    text = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/atom+xml\r\n"
        f"Content-Length: {payload_bytes}\r\n"
        f"Authorization: HMAC-SHA256 {'0' * 64}\r\n\r\n"
    )
    return len(text.encode("ascii"))


#: Response to an accepted upload: status line, Date, Content-Length: 0 (RFC 9112 §4).
HTTPS_RESPONSE_BYTES = len(
    b"HTTP/1.1 204 No Content\r\nDate: Sun, 21 Jun 2026 10:00:00 GMT\r\nContent-Length: 0\r\n\r\n"
)


@dataclass(frozen=True)
class TransportProfile:
    """How a meter carries an upload: application protocol over TLS over TCP over IPv4.

    ``mtu_bytes`` is the IP MTU of the PDN connection (1500 B: many operators; TS 24.301
    lets the network signal a smaller one). ``idle_timeout_s`` bounds how long an idle
    persistent connection survives (RFC 5382 REQ-5 lower bound, 7440 s).
    """

    app: str = "mqtt"
    tls_version: str = "1.3"
    mqtt_version: str = "3.1.1"
    persistent: bool = True
    idle_timeout_s: float = 7_440.0
    mtu_bytes: int = 1500
    topic: str = "imdc/espi/upload/pv-000000"
    client_id: str = "pv-000000"
    host: str = "ingest.mdc.example"
    path: str = "/espi/1_1/upload"

    @property
    def tls(self) -> TlsVersion:
        return TLS_VERSIONS[self.tls_version]

    @property
    def mss_bytes(self) -> int:
        """TCP payload per segment: MTU less IPv4, TCP and timestamp option, B."""
        return self.mtu_bytes - IPV4_HEADER_BYTES - TCP_HEADER_BYTES - TCP_TIMESTAMP_OPTION_BYTES

    @property
    def segment_header_bytes(self) -> int:
        return IPV4_HEADER_BYTES + TCP_HEADER_BYTES + TCP_TIMESTAMP_OPTION_BYTES

    def exchange(self, payload_bytes: int, handshake: str) -> Exchange:
        """Round trips and bytes of one upload under ``handshake`` (``HANDSHAKE_KINDS``)."""
        return APP_PROTOCOLS[self.app](self, payload_bytes, handshake)


@dataclass(frozen=True)
class Exchange:
    """One upload's transport cost, folded.

    rtts: round trips before the payload can be sent (TCP, TLS and MQTT CONNECT);
    up_bytes: every uplink byte on the IP layer (handshakes, request, headers, ACKs);
    down_bytes: downlink bytes before the payload (handshake flights);
    response_bytes: downlink bytes of the acknowledgement (PUBACK / HTTP response, with
    TLS, TCP and IP headers); data_segments: uplink segments carrying the request (the
    ones whose loss is folded into the transfer time); rtt_samples: round trips the TCP
    RTT estimator has seen before the data (for ``rto_s``).
    """

    rtts: int
    up_bytes: int
    down_bytes: int
    response_bytes: int
    data_segments: int
    rtt_samples: int


def tls_wire_bytes(plaintext_bytes: int, version: TlsVersion) -> int:
    """Plaintext plus record overhead, in records of at most 2^14 B (RFC 8446 §5.1), B."""
    records = max(1, math.ceil(plaintext_bytes / TLS_MAX_RECORD_PLAINTEXT_BYTES))
    return plaintext_bytes + records * version.record_overhead_bytes


def tcp_segments(stream_bytes: int, mss_bytes: int) -> int:
    return max(1, math.ceil(stream_bytes / mss_bytes))


def _handshake(profile: TransportProfile, handshake: str) -> tuple[int, int, int, int]:
    """(rtts, up_bytes, down_bytes, rtt_samples) of TCP + TLS for ``handshake``."""
    if handshake not in HANDSHAKE_KINDS:
        raise ValueError(f"handshake must be one of {HANDSHAKE_KINDS}, got {handshake!r}")
    if handshake == "none":
        return 0, 0, 0, 8  # live connection: a converged estimator
    tls = profile.tls
    full = handshake == "full"
    tls_rtts = tls.full_rtts if full else tls.resume_rtts
    up = (tls.full_up_bytes if full else tls.resume_up_bytes) + 2 * IPV4_HEADER_BYTES
    up += IPV4_HEADER_BYTES + TCP_SYN_HEADER_BYTES  # SYN
    down = (tls.full_down_bytes if full else tls.resume_down_bytes) + IPV4_HEADER_BYTES
    down += IPV4_HEADER_BYTES + TCP_SYN_HEADER_BYTES  # SYN-ACK
    seg = profile.segment_header_bytes
    up += tcp_segments(up, profile.mss_bytes) * (seg - IPV4_HEADER_BYTES)
    down += tcp_segments(down, profile.mss_bytes) * (seg - IPV4_HEADER_BYTES)
    return 1 + tls_rtts, up, down, 1 + tls_rtts


def _stream(profile: TransportProfile, app_bytes: int) -> tuple[int, int]:
    """(wire bytes, segments) of an application message over TLS over TCP/IPv4."""
    stream = tls_wire_bytes(app_bytes, profile.tls)
    segments = tcp_segments(stream, profile.mss_bytes)
    return stream + segments * profile.segment_header_bytes, segments


def _mqtt(profile: TransportProfile, payload_bytes: int, handshake: str) -> Exchange:
    rtts, up, down, samples = _handshake(profile, handshake)
    if handshake != "none":  # a new TCP connection needs an MQTT session: CONNECT/CONNACK
        connect, _ = _stream(profile, mqtt_connect_bytes(profile.client_id, profile.mqtt_version))
        connack, _ = _stream(profile, MQTT_CONNACK_BYTES)
        rtts, up, down, samples = rtts + 1, up + connect, down + connack, samples + 1
    publish = mqtt_publish_bytes(payload_bytes, profile.topic, profile.mqtt_version)
    data, segments = _stream(profile, publish)
    response, _ = _stream(profile, MQTT_PUBACK_BYTES)
    return Exchange(rtts, up + data, down, response, segments, samples)


def _https(profile: TransportProfile, payload_bytes: int, handshake: str) -> Exchange:
    rtts, up, down, samples = _handshake(profile, handshake)
    request = https_request_header_bytes(payload_bytes, profile.host, profile.path)
    data, segments = _stream(profile, request + payload_bytes)
    response, _ = _stream(profile, HTTPS_RESPONSE_BYTES)
    return Exchange(rtts, up + data, down, response, segments, samples)


#: Application protocols (name -> exchange builder).
APP_PROTOCOLS: dict[str, Callable[[TransportProfile, int, str], Exchange]] = {
    "mqtt": _mqtt,
    "https": _https,
}

#: Named transports; a meter profile picks one.
TRANSPORTS: dict[str, TransportProfile] = {
    "mqtt": TransportProfile(app="mqtt", tls_version="1.3", persistent=True),
    "mqtt-tls12": TransportProfile(app="mqtt", tls_version="1.2", persistent=True),
    "https": TransportProfile(app="https", tls_version="1.3", persistent=False),
    "https-tls12": TransportProfile(app="https", tls_version="1.2", persistent=False),
}


def rto_s(rtt_s: float, rtt_samples: int) -> float:
    """TCP retransmission timeout after ``rtt_samples`` measurements of a constant RTT, s.

    RFC 6298 §2: before any sample RTO = 1 s; the first sample sets SRTT = R, RTTVAR = R/2;
    each further sample of the same R leaves SRTT = R and multiplies RTTVAR by 3/4; RTO =
    SRTT + 4 RTTVAR, at least 1 s (§2.4).
    """
    if rtt_samples <= 0:
        return RTO_INITIAL_S
    rttvar = 0.5 * rtt_s * 0.75 ** (rtt_samples - 1)
    return max(RTO_MIN_S, rtt_s + 4.0 * rttvar)


def retransmissions(segments: int, loss_probability: float, rng: np.random.Generator) -> int:
    """Extra transmissions needed to get ``segments`` through with independent segment loss
    ``loss_probability``: each segment takes a geometric number of tries, so the extra
    tries are negative binomial NB(segments, 1 - p). One draw for the whole upload."""
    if loss_probability <= 0:
        return 0
    return int(rng.negative_binomial(segments, 1.0 - loss_probability))


def retransmission_pmf(segments: int, loss_probability: float, tail: float = 1e-12) -> np.ndarray:
    """P(K = k) for k = 0.. of ``retransmissions``, truncated where the tail is < ``tail``."""
    if loss_probability <= 0:
        return np.ones(1)
    n, p = segments, loss_probability
    probs: list[float] = []
    k, total = 0, 0.0
    while total < 1.0 - tail and k < 10_000:
        log_pmf = (
            math.lgamma(n + k)
            - math.lgamma(k + 1)
            - math.lgamma(n)
            + n * math.log1p(-p)
            + k * math.log(p)
        )
        probs.append(math.exp(log_pmf))
        total += probs[-1]
        k += 1
    return np.array(probs)


class SessionTable:
    """Per-meter TCP/TLS session state, to pick the handshake of each upload.

    Rules: a persistent connection to the same MDC that has been idle less than
    ``idle_timeout_s`` needs no handshake (``none``); otherwise a valid ticket issued by the
    same MDC (TLS session keys are not shared between MDCs) allows resumption (``resume``);
    otherwise ``full``. After a failure (the connection broke: outage, VPN drop, lost
    attempt) the meter reconnects with a full handshake when ``full_after_failure`` (the
    embedded TLS context is torn down with its cached session), else it resumes.
    Vectorised state: one entry per meter index.
    """

    def __init__(
        self, n_meters: int, transport: TransportProfile, full_after_failure: bool = True
    ) -> None:
        self.transport = transport
        self.full_after_failure = full_after_failure
        self.server = np.full(n_meters, -1, dtype=np.int64)
        self.ticket_expiry_s = np.full(n_meters, -np.inf)
        self.connected_until_s = np.full(n_meters, -np.inf)
        self.full_handshakes = 0
        self.resumptions = 0

    def handshake(self, meter: int, server: int, t_s: float) -> str:
        """The handshake meter ``meter`` needs for an upload to MDC ``server`` at ``t_s``."""
        if self.server[meter] == server:
            if self.transport.persistent and t_s < self.connected_until_s[meter]:
                return "none"
            if t_s < self.ticket_expiry_s[meter]:
                return "resume"
        return "full"

    def established(self, meter: int, server: int, t_s: float, handshake: str) -> None:
        """Record a successful upload at ``t_s`` that used ``handshake``."""
        if handshake == "full":
            self.full_handshakes += 1
        elif handshake == "resume":
            self.resumptions += 1
        if handshake != "none" or self.server[meter] != server:
            self.ticket_expiry_s[meter] = t_s + self.transport.tls.ticket_lifetime_s
        self.server[meter] = server
        self.connected_until_s[meter] = (
            t_s + self.transport.idle_timeout_s if self.transport.persistent else -np.inf
        )

    def broken(self, meters: int | np.ndarray) -> None:
        """The connection of ``meters`` broke (one index or an array of indices)."""
        self.connected_until_s[meters] = -np.inf
        if self.full_after_failure:
            self.ticket_expiry_s[meters] = -np.inf

    def invalidate_server(self, server: int) -> None:
        """MDC ``server`` lost its session keys (crash, restart): its tickets are void."""
        hit = self.server == server
        self.ticket_expiry_s[hit] = -np.inf
        self.connected_until_s[hit] = -np.inf
