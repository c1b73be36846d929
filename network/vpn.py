"""VPN from the cellular core to an MDC gateway (AnyConnect-style): encapsulation,
MTU and fragmentation, tunnel bandwidth, rekeying, dead-peer detection, reconnection with
backoff, DTLS-to-TLS fallback, and the gateway's bounded buffer for a tunnel that is down.

Encapsulation per packet (``VPN_ENCAPSULATIONS``):
- ``dtls``: outer IPv4 20 B (RFC 791) + UDP 8 B (RFC 768) + DTLS 1.2 record header 13 B
  (RFC 6347 §4.1) + AES-GCM explicit nonce 8 B and tag 16 B (RFC 5288 §3) + the AnyConnect
  DTLS payload type byte 1 B (the OpenConnect protocol description,
  draft-mavrogiannopoulos-openconnect-04 §2.2) = 66 B.
- ``tls`` (fallback when UDP is blocked: the CSTP channel over TLS over TCP): outer IPv4
  20 B + TCP 20 B (RFC 9293) + TLS record header 5 B + nonce 8 B + tag 16 B (RFC 5246
  §6.2.3.3, RFC 5288) + CSTP header 8 B (same draft §2.1) = 77 B; TCP in TCP also means
  the outer layer retransmits (reliable).
``VpnTunnel`` keeps its original defaults (65 B: DTLS without the AnyConnect byte).

Fragmentation: an inner packet of ``tunnel_mtu_bytes`` plus the overhead that exceeds the
path MTU is split into IPv4 fragments, each with its own 20 B header and a payload that is
a multiple of 8 B (RFC 791). AnyConnect's default tunnel MTU of 1406 B (Cisco ASA
``anyconnect mtu`` default) fits a 1500 B path with either encapsulation.

Tunnel dynamics (``TunnelDynamics``, defaults from the Cisco ASA configuration guide:
``anyconnect dpd-interval gateway 30`` and ``client 30`` seconds; ``anyconnect ssl rekey``
has no default interval, the scenario's ``rekey = "8h"`` is used): rekeying every
``rekey_interval_s`` pauses the tunnel for ``rekey_pause_s`` (new-tunnel rekey: TLS and
DTLS handshakes again; assumed 2 s). After a drop, the gateway notices when dead-peer
detection fires: the next DPD probe (uniform phase within the interval) plus
``dpd_retries`` unanswered retransmissions ``dpd_retry_s`` apart (RFC 3706 §5.5); the
client then reconnects, retrying with capped exponential backoff and jitter while the
cause lasts; each (re)connect falls back to TLS with probability
``dtls_blocked_probability``.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from network.backoff import backoff_s
from network.contention import SharedUplink
from network.faults import OutageSchedule

IPV4_HEADER_BYTES = 20


@dataclass(frozen=True)
class Encapsulation:
    """Bytes a tunnel adds to every inner packet (module docstring for sources)."""

    name: str
    outer_ip_bytes: int
    transport_bytes: int
    record_header_bytes: int
    explicit_nonce_bytes: int
    aead_tag_bytes: int
    tunnel_header_bytes: int
    reliable: bool

    @property
    def overhead_bytes(self) -> int:
        return (
            self.outer_ip_bytes
            + self.transport_bytes
            + self.record_header_bytes
            + self.explicit_nonce_bytes
            + self.aead_tag_bytes
            + self.tunnel_header_bytes
        )


VPN_ENCAPSULATIONS: dict[str, Encapsulation] = {
    "dtls": Encapsulation("dtls", 20, 8, 13, 8, 16, 1, reliable=False),
    "tls": Encapsulation("tls", 20, 20, 5, 8, 16, 8, reliable=True),
}


def ip_fragments(packet_bytes: int, path_mtu_bytes: int) -> int:
    """IPv4 fragments of an outer packet of ``packet_bytes`` over ``path_mtu_bytes``: each
    fragment carries at most floor((MTU - 20) / 8) * 8 B of the original payload."""
    if packet_bytes <= path_mtu_bytes:
        return 1
    per_fragment = (path_mtu_bytes - IPV4_HEADER_BYTES) // 8 * 8
    return math.ceil((packet_bytes - IPV4_HEADER_BYTES) / per_fragment)


@dataclass(frozen=True)
class VpnTunnel:
    """A DTLS tunnel (AnyConnect-style) carrying TCP payload to the MDC gateway.

    Per-packet overhead defaults: outer IPv4 20 B + UDP 8 B + DTLS 1.2 record header 13 B
    (RFC 6347) + AES-128-GCM explicit nonce 8 B and tag 16 B (RFC 5288) = 65 B. The inner
    packet carries IPv4 + TCP headers of 40 B (RFC 791, RFC 9293). Outer MTU 1500 B
    (Ethernet). Latency is the one-way delay across the operator's network and the tunnel.

    ``tunnel_mtu_bytes`` (inner MTU) None means the largest that fits ``mtu_bytes``
    unfragmented; a larger one makes full packets fragment (``ip_fragments``).
    """

    latency_s: float = 0.008
    overhead_bytes_per_packet: int = 65
    inner_header_bytes: int = 40
    mtu_bytes: int = 1500
    bandwidth_bps: float = 100e6
    tunnel_mtu_bytes: int | None = None

    @classmethod
    def for_encapsulation(cls, name: str, **fields: Any) -> VpnTunnel:
        """A tunnel with the overhead of ``VPN_ENCAPSULATIONS[name]`` (and ``fields``)."""
        overhead = VPN_ENCAPSULATIONS[name].overhead_bytes
        return cls(**{"overhead_bytes_per_packet": overhead, **fields})

    def with_encapsulation(self, name: str) -> VpnTunnel:
        """This tunnel carried by another encapsulation (e.g. after a TLS fallback)."""
        return replace(self, overhead_bytes_per_packet=VPN_ENCAPSULATIONS[name].overhead_bytes)

    @property
    def inner_mtu_bytes(self) -> int:
        if self.tunnel_mtu_bytes is not None:
            return self.tunnel_mtu_bytes
        return self.mtu_bytes - self.overhead_bytes_per_packet

    @property
    def payload_bytes_per_packet(self) -> int:
        return self.inner_mtu_bytes - self.inner_header_bytes

    def packets(self, size_bytes: int) -> int:
        return max(1, math.ceil(size_bytes / self.payload_bytes_per_packet))

    def fragments_per_packet(self, payload_bytes: int) -> int:
        outer = payload_bytes + self.inner_header_bytes + self.overhead_bytes_per_packet
        return ip_fragments(outer, self.mtu_bytes)

    def wire_size_bytes(self, size_bytes: int) -> int:
        """Bytes on the wire for a payload, with inner and outer headers per packet and an
        extra IPv4 header per additional fragment."""
        per_packet = self.overhead_bytes_per_packet + self.inner_header_bytes
        n = self.packets(size_bytes)
        wire = size_bytes + n * per_packet
        full = self.payload_bytes_per_packet
        last = size_bytes - (n - 1) * full
        extra = (n - 1) * (self.fragments_per_packet(full) - 1)
        extra += self.fragments_per_packet(last) - 1
        return wire + extra * IPV4_HEADER_BYTES

    def transit_s(self, size_bytes: int) -> float:
        """One-way time for a payload: latency plus serialisation of the wire bytes."""
        return self.latency_s + 8.0 * self.wire_size_bytes(size_bytes) / self.bandwidth_bps


@dataclass(frozen=True)
class TunnelDynamics:
    """How a tunnel goes down and comes back (module docstring for sources).

    Random drops: a Poisson process with mean time between drops ``drop_mtbf_s`` (None:
    none), each with a cause lasting an exponential time of mean ``drop_mttr_s``.
    """

    rekey_interval_s: float = 8 * 3600.0
    rekey_pause_s: float = 2.0
    dpd_interval_s: float = 30.0
    dpd_retries: int = 3
    dpd_retry_s: float = 5.0
    reconnect_base_s: float = 1.0
    reconnect_cap_s: float = 60.0
    reconnect_jitter: str = "full"
    reconnect_handshake_s: float = 1.0
    drop_mtbf_s: float | None = None
    drop_mttr_s: float = 120.0
    dtls_blocked_probability: float = 0.0


@dataclass(frozen=True)
class TunnelEvent:
    """One down period of a tunnel: [start_s, end_s) and why (``rekey`` or ``drop``);
    for a drop, when DPD declared the peer dead and how many reconnects it took."""

    cause: str
    start_s: float
    end_s: float
    detected_s: float
    reconnect_attempts: int
    mode_after: str


class TunnelTimeline:
    """The up/down state and encapsulation of one tunnel over a run, precomputed.

    ``build`` draws the drops, DPD phases, reconnect backoffs and fallbacks from the
    tunnel's generator; queries are binary searches: ``is_up(t)``, ``next_up_s(t)``,
    ``mode(t)``.
    """

    def __init__(self, events: Sequence[TunnelEvent], initial_mode: str = "dtls") -> None:
        self.events = list(events)
        self.schedule = OutageSchedule((e.start_s, e.end_s) for e in self.events)
        self._mode_times = [0.0] + [e.end_s for e in self.events]
        self._modes = [initial_mode] + [e.mode_after for e in self.events]

    @classmethod
    def build(
        cls,
        dynamics: TunnelDynamics,
        horizon_s: float,
        rng: np.random.Generator,
        drops: Sequence[tuple[float, float]] = (),
    ) -> TunnelTimeline:
        """Timeline over [0, horizon_s) with random drops and the scheduled ``drops``
        ((at_s, cause_duration_s) pairs, e.g. a scenario's ``vpn_drop`` faults)."""
        d = dynamics

        def draw_mode() -> str:
            return "tls" if rng.random() < d.dtls_blocked_probability else "dtls"

        pending = sorted((float(a), float(b)) for a, b in drops)
        if d.drop_mtbf_s is not None:
            n = int(rng.poisson(horizon_s / d.drop_mtbf_s))
            at = np.sort(rng.uniform(0.0, horizon_s, n))
            causes = rng.exponential(d.drop_mttr_s, n)
            pending = sorted(pending + list(zip(at.tolist(), causes.tolist(), strict=True)))
        events: list[TunnelEvent] = []
        mode = draw_mode()
        initial_mode = mode
        up_since = 0.0
        i = 0
        while True:
            next_rekey = up_since + d.rekey_interval_s
            next_drop = pending[i][0] if i < len(pending) else math.inf
            if min(next_rekey, next_drop) >= horizon_s:
                break
            if next_rekey <= next_drop:
                end = next_rekey + d.rekey_pause_s
                events.append(TunnelEvent("rekey", next_rekey, end, next_rekey, 0, mode))
                up_since = end
                continue
            start, cause_end = pending[i][0], pending[i][0] + pending[i][1]
            i += 1
            phase = d.dpd_interval_s * float(rng.random())
            detected = start + phase + d.dpd_retries * d.dpd_retry_s
            attempt_at, tries, previous = detected, 1, 0.0
            while True:
                while i < len(pending) and pending[i][0] <= attempt_at:  # drops while down
                    cause_end = max(cause_end, pending[i][0] + pending[i][1])
                    i += 1
                if attempt_at >= cause_end:
                    break
                previous = backoff_s(
                    tries, d.reconnect_base_s, d.reconnect_cap_s, d.reconnect_jitter, rng,
                    previous,
                )  # fmt: skip
                attempt_at += previous
                tries += 1
            mode = draw_mode()
            end = attempt_at + d.reconnect_handshake_s
            events.append(TunnelEvent("drop", start, end, detected, tries, mode))
            up_since = end
        return cls(events, initial_mode)

    def is_up(self, t_s: float) -> bool:
        return self.schedule.is_up(t_s)

    def is_up_many(self, t_s: np.ndarray) -> np.ndarray:
        return self.schedule.is_up_many(t_s)

    def next_up_s(self, t_s: float) -> float:
        """``t_s`` if the tunnel is up then, else when it comes back, s."""
        return self.schedule.next_up_s(t_s)

    def mode(self, t_s: float) -> str:
        """Encapsulation in use at ``t_s`` (the one of the last (re)connect before it)."""
        return self._modes[bisect.bisect_right(self._mode_times, t_s) - 1]

    def down_s(self, cause: str | None = None) -> float:
        """Total down time, of one cause or all, s."""
        return sum(e.end_s - e.start_s for e in self.events if cause in (None, e.cause))


@dataclass
class GatewayBuffer:
    """Bounded store at the gateway for uploads whose tunnel is down, or that the MDC
    pushes back while its ingest memory is full, in bytes.

    ``offer`` accepts an upload if it fits and holds it until ``release_s``; ``hold`` until
    ``free``; otherwise it overflows (the twin's ledger causes ``vpn_down_buffer_overflow``
    and ``gateway_buffer_overflow``). Accounting invariant:
    offered = accepted + overflowed (bytes and uploads), held <= capacity at all times.
    """

    capacity_bytes: int
    held_bytes: int = 0
    peak_bytes: int = 0
    accepted_bytes: int = 0
    accepted_uploads: int = 0
    overflowed_bytes: int = 0
    overflowed_uploads: int = 0
    released_bytes: int = 0
    released_uploads: int = 0

    def __post_init__(self) -> None:
        self._releases: list[tuple[float, int, int]] = []
        self._seq = 0

    def settle(self, t_s: float) -> None:
        """Release everything due by ``t_s``."""
        while self._releases and self._releases[0][0] <= t_s:
            self.free(heapq.heappop(self._releases)[2])

    def hold(self, t_s: float, size_bytes: int) -> bool:
        """Hold an upload until :meth:`free` (the MDC pushes back: it waits for memory
        there); False, counted as an overflow, if it does not fit."""
        self.settle(t_s)
        if self.held_bytes + size_bytes > self.capacity_bytes:
            self.overflowed_bytes += size_bytes
            self.overflowed_uploads += 1
            return False
        self.held_bytes += size_bytes
        self.peak_bytes = max(self.peak_bytes, self.held_bytes)
        self.accepted_bytes += size_bytes
        self.accepted_uploads += 1
        return True

    def free(self, size_bytes: int) -> None:
        """Release an upload taken by :meth:`hold`."""
        self.held_bytes -= size_bytes
        self.released_bytes += size_bytes
        self.released_uploads += 1

    def offer(self, t_s: float, size_bytes: int, release_s: float) -> bool:
        """Hold an upload until ``release_s`` (its tunnel is down until then); False,
        counted as an overflow, if it does not fit."""
        if not self.hold(t_s, size_bytes):
            return False
        heapq.heappush(self._releases, (release_s, self._seq, size_bytes))
        self._seq += 1
        return True


@dataclass(slots=True)
class VpnDelivery:
    """What the gateway did with one upload: ``accepted`` (False: buffer overflow, the
    upload is lost at the gateway), ``buffered`` (held while the tunnel was down) and
    ``arrival_s``, when it reaches the MDC (inf if never). A plain slotted record, made once
    per upload on the hot path; nothing changes it after."""

    accepted: bool
    buffered: bool
    arrival_s: float


class VpnGateway:
    """One MDC's tunnel end: its timeline, the tunnel link (FIFO at ``bandwidth_bps``, in
    closed form) and the buffer for a tunnel that is down. ``send(t, size)`` costs no
    event: the caller waits until ``arrival_s``."""

    def __init__(
        self,
        tunnel: VpnTunnel,
        timeline: TunnelTimeline | None = None,
        buffer_bytes: int = 50_000_000,
        name: str = "",
    ) -> None:
        self.name = name
        self.tunnel = tunnel
        self.timeline = timeline if timeline is not None else TunnelTimeline(())
        self.buffer = GatewayBuffer(buffer_bytes)
        self.link = SharedUplink(1)
        self._tunnels = {m: tunnel.with_encapsulation(m) for m in VPN_ENCAPSULATIONS}
        self._tunnels["dtls"] = tunnel  # the configured overhead for the normal mode
        self.sent_uploads = 0
        self.sent_wire_bytes = 0

    def is_up(self, t_s: float) -> bool:
        return self.timeline.is_up(t_s)

    def next_up_s(self, t_s: float) -> float:
        return self.timeline.next_up_s(t_s)

    def tunnel_at(self, t_s: float) -> VpnTunnel:
        return self._tunnels[self.timeline.mode(t_s)]

    def transit_s(self, size_bytes: int, t_s: float) -> float:
        """Unloaded one-way time at ``t_s`` (encapsulation of the moment), s."""
        return self.tunnel_at(t_s).transit_s(size_bytes)

    def send(self, t_s: float, size_bytes: int) -> VpnDelivery:
        """Hand an upload to the tunnel at ``t_s``: forwarded now, buffered until the
        tunnel is back, or overflowed."""
        self.buffer.settle(t_s)
        buffered = not self.timeline.is_up(t_s)
        depart = t_s
        if buffered:
            depart = self.timeline.next_up_s(t_s)
            if not self.buffer.offer(t_s, size_bytes, depart):
                return VpnDelivery(False, True, math.inf)
            if math.isinf(depart):
                return VpnDelivery(True, True, math.inf)
        tunnel = self.tunnel_at(depart)
        wire = tunnel.wire_size_bytes(size_bytes)
        _, finish = self.link.reserve(depart, 8.0 * wire / tunnel.bandwidth_bps)
        self.sent_uploads += 1
        self.sent_wire_bytes += wire
        return VpnDelivery(True, buffered, finish + tunnel.latency_s)
