"""VPN tunnel from the cellular core to an MDC gateway: encapsulation overhead and latency."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class VpnTunnel:
    """A DTLS tunnel (AnyConnect-style) carrying TCP payload to the MDC gateway.

    Per-packet overhead defaults: outer IPv4 20 B + UDP 8 B + DTLS 1.2 record header 13 B
    (RFC 6347) + AES-128-GCM explicit nonce 8 B and tag 16 B (RFC 5288) = 65 B. The inner
    packet carries IPv4 + TCP headers of 40 B (RFC 791, RFC 9293). Outer MTU 1500 B
    (Ethernet). Latency is the one-way delay across the operator's network and the tunnel.
    """

    latency_s: float = 0.008
    overhead_bytes_per_packet: int = 65
    inner_header_bytes: int = 40
    mtu_bytes: int = 1500
    bandwidth_bps: float = 100e6

    @property
    def payload_bytes_per_packet(self) -> int:
        return self.mtu_bytes - self.overhead_bytes_per_packet - self.inner_header_bytes

    def packets(self, size_bytes: int) -> int:
        return max(1, math.ceil(size_bytes / self.payload_bytes_per_packet))

    def wire_size_bytes(self, size_bytes: int) -> int:
        """Bytes on the wire for a payload, with inner and outer headers per packet."""
        per_packet = self.overhead_bytes_per_packet + self.inner_header_bytes
        return size_bytes + self.packets(size_bytes) * per_packet

    def transit_s(self, size_bytes: int) -> float:
        """One-way time for a payload: latency plus serialisation of the wire bytes."""
        return self.latency_s + 8.0 * self.wire_size_bytes(size_bytes) / self.bandwidth_bps
