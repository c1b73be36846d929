"""Scenario schema of ``[network]``: the cellular profile and coverage, the VPN tunnels of
the MDC gateways (encapsulation, rekeying, dead-peer detection, drops, gateway buffer) and
the backbone between MDCs.

Every key is optional: the defaults are those of :mod:`network.cellular`,
:mod:`network.radio`, :mod:`network.transport` and :mod:`network.vpn`, each sourced there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from network.backbone import BackboneLink
from network.backoff import BACKOFF_JITTER
from network.cellular import CELLULAR_PROFILES, CellularProfile
from network.faults import RECONNECT_SPREAD
from network.radio import POWER_SAVING_MODES
from network.transport import TRANSPORTS
from network.vpn import VPN_ENCAPSULATIONS, TunnelDynamics, VpnTunnel
from twin.errors import ScenarioError
from twin.scenario.schema import MIN_PERIOD_S, Table

#: Gateway buffer for a tunnel that is down (bytes). Assumed: 50 MB, the order of a
#: store-and-forward MQTT bridge's queue on a small edge appliance (e.g. mosquitto's
#: ``max_queued_bytes`` is set per deployment; there is no standard value).
DEFAULT_GATEWAY_BUFFER_BYTES = 50_000_000


@dataclass(frozen=True)
class VpnSpec:
    """The tunnel of every MDC gateway (``tunnel``), how it goes down and comes back
    (``dynamics``) and the bytes its gateway holds while it is down (``buffer_bytes``)."""

    tunnel: VpnTunnel = field(default_factory=VpnTunnel)
    dynamics: TunnelDynamics = field(default_factory=TunnelDynamics)
    buffer_bytes: int = DEFAULT_GATEWAY_BUFFER_BYTES


@dataclass(frozen=True)
class NetworkSpec:
    """What ``[network]`` adds to the cellular profile and the tunnel: ``cells_per_region``
    (meters are spread over the cells of their region by index), the VPN's dynamics and
    buffer, and the backbone links between MDCs (none: every MDC is reachable from every
    other at ``backbone_default_latency_s``)."""

    cells_per_region: int = 1
    vpn: VpnSpec = field(default_factory=VpnSpec)
    backbone: tuple[BackboneLink, ...] = ()
    #: One-way latency between MDCs without a declared link. Assumed 10 ms: a regional
    #: fibre path of ~1,000 km at 5 us/km (ITU-T G.114 planning figure for fibre).
    backbone_default_latency_s: float = 0.010


def parse_network(table: Table) -> tuple[CellularProfile, VpnTunnel, NetworkSpec]:
    """Validate ``[network]``: (cellular profile, tunnel, the rest)."""
    cellular_table = table.table("cellular")
    cellular = parse_cellular(cellular_table)
    cells_per_region = cellular_table.integer("cells_per_region", 1, 1, 10_000)
    cellular_table.finish()
    vpn = parse_vpn(table.table("vpn"))
    backbone = tuple(_link(t) for t in table.tables("backbone"))
    default_latency_s = table.duration_s("backbone_latency", "10ms")
    table.finish()
    return (
        cellular,
        vpn.tunnel,
        NetworkSpec(cells_per_region, vpn, backbone, default_latency_s),
    )


def parse_cellular(table: Table) -> CellularProfile:
    """The profile named by ``profile`` with any field overridden (the caller finishes
    the table)."""
    name = table.string("profile", "lte-m", choices=tuple(CELLULAR_PROFILES))
    base = CELLULAR_PROFILES[name]
    profile = replace(
        base,
        access_latency_median_s=table.duration_s(
            "access_latency_median", f"{base.access_latency_median_s}s"
        ),
        access_latency_sigma=table.number(
            "access_latency_sigma", base.access_latency_sigma, 0.0, 3.0
        ),
        uplink_rate_bps=table.number(
            "uplink_rate_bps", base.uplink_rate_bps, 0.0, exclusive_minimum=True
        ),
        downlink_rate_bps=table.number(
            "downlink_rate_bps", base.downlink_rate_bps, 0.0, exclusive_minimum=True
        ),
        loss_probability=table.number("loss_probability", base.loss_probability, 0.0, 1.0),
        ack_loss_probability=table.number(
            "ack_loss_probability", base.ack_loss_probability, 0.0, 1.0
        ),
        segment_loss_probability=table.number(
            "segment_loss_probability", base.segment_loss_probability, 0.0, 0.5
        ),
        ack_timeout_s=table.duration_s("ack_timeout", f"{base.ack_timeout_s}s"),
        max_attempts=table.integer("max_attempts", base.max_attempts, 1, 1000),
        backoff_base_s=table.duration_s("backoff_base", f"{base.backoff_base_s}s"),
        backoff_cap_s=table.duration_s("backoff_cap", f"{base.backoff_cap_s}s"),
        backoff_jitter=table.string(
            "backoff_jitter", base.backoff_jitter, choices=tuple(BACKOFF_JITTER)
        ),
        reconnect_spread=table.string(
            "reconnect_spread", base.reconnect_spread, choices=tuple(RECONNECT_SPREAD)
        ),
        reconnect_window_s=table.duration_s(
            "reconnect_window", f"{base.reconnect_window_s}s", positive=False
        ),
        power_saving=table.string(
            "power_saving", base.power_saving, choices=tuple(POWER_SAVING_MODES)
        ),
        uplink_channels=table.integer("uplink_channels", base.uplink_channels, 1, 1000),
    )
    transport = table.string("transport", "", choices=("", *TRANSPORTS))
    if transport:
        profile = replace(profile, transport=TRANSPORTS[transport])
    coverage = table.table("coverage")
    names = [c.name for c in profile.coverage]
    shares = [
        coverage.number(c.name, c.share, 0.0, 1.0) if c.name in coverage.data else c.share
        for c in profile.coverage
    ]
    for name in names:
        coverage.raw(name, None)  # mark as known
    coverage.finish()
    if coverage.data:
        if abs(sum(shares) - 1.0) > 1e-9:
            raise ScenarioError(
                coverage.path, dict(coverage.data), f"shares of {', '.join(names)} summing to 1"
            )
        profile = replace(
            profile,
            coverage=tuple(
                replace(c, share=s) for c, s in zip(profile.coverage, shares, strict=True)
            ),
        )
    return profile


def parse_vpn(table: Table) -> VpnSpec:
    """``[network.vpn]``: encapsulation (``protocol``), link, rekeying, DPD, drops and the
    gateway buffer."""
    protocol = table.string("protocol", "dtls", choices=tuple(VPN_ENCAPSULATIONS))
    base = VpnTunnel.for_encapsulation(protocol)
    tunnel = VpnTunnel(
        latency_s=table.duration_s("latency", f"{base.latency_s * 1000:g}ms", positive=False),
        overhead_bytes_per_packet=table.integer(
            "overhead_bytes_per_packet", base.overhead_bytes_per_packet, 0
        ),
        inner_header_bytes=table.integer("inner_header_bytes", base.inner_header_bytes, 0),
        mtu_bytes=table.integer("mtu_bytes", base.mtu_bytes, 576, 65535),
        bandwidth_bps=table.number(
            "bandwidth_bps", base.bandwidth_bps, 0.0, exclusive_minimum=True
        ),
    )
    if tunnel.payload_bytes_per_packet <= 0:
        raise ScenarioError(
            table.key("mtu_bytes"), tunnel.mtu_bytes, "room for payload after the headers"
        )
    d = TunnelDynamics()
    drop_mtbf = table.raw("drop_mtbf", "none")
    if drop_mtbf == "none" and "drop_mttr" in table.data:
        raise ScenarioError(
            table.key("drop_mttr"),
            table.data["drop_mttr"],
            "no drop_mttr without random drops: set drop_mtbf too (it is 'none')",
        )
    dynamics = TunnelDynamics(
        rekey_interval_s=table.duration_s(
            "rekey", f"{d.rekey_interval_s}s", minimum_s=MIN_PERIOD_S
        ),
        rekey_pause_s=table.duration_s("rekey_pause", f"{d.rekey_pause_s}s", positive=False),
        dpd_interval_s=table.duration_s("dpd_interval", f"{d.dpd_interval_s}s"),
        dpd_retries=table.integer("dpd_retries", d.dpd_retries, 0, 100),
        dpd_retry_s=table.duration_s("dpd_retry", f"{d.dpd_retry_s}s", positive=False),
        reconnect_base_s=table.duration_s("reconnect_base", f"{d.reconnect_base_s}s"),
        reconnect_cap_s=table.duration_s("reconnect_cap", f"{d.reconnect_cap_s}s"),
        reconnect_jitter=table.string(
            "reconnect_jitter", d.reconnect_jitter, choices=tuple(BACKOFF_JITTER)
        ),
        reconnect_handshake_s=table.duration_s(
            "reconnect_handshake", f"{d.reconnect_handshake_s}s", positive=False
        ),
        drop_mtbf_s=None
        if drop_mtbf == "none"
        else table.duration_s("drop_mtbf", minimum_s=MIN_PERIOD_S),
        drop_mttr_s=table.duration_s("drop_mttr", f"{d.drop_mttr_s}s"),
        dtls_blocked_probability=table.number(
            "tls_fallback_probability", d.dtls_blocked_probability, 0.0, 1.0
        ),
    )
    buffer_bytes = table.integer("buffer_bytes", DEFAULT_GATEWAY_BUFFER_BYTES, 0, 10**12)
    table.finish()
    return VpnSpec(tunnel, dynamics, buffer_bytes)


def _link(table: Table) -> BackboneLink:
    link = BackboneLink(
        a=table.string("a"),
        b=table.string("b"),
        latency_s=table.duration_s("latency", positive=False),
        bandwidth_bps=table.number("bandwidth_bps", 10e9, 0.0, exclusive_minimum=True),
    )
    table.finish()
    return link


def check_backbone(network: NetworkSpec, mdc_names: list[str]) -> None:
    """Every backbone link joins two declared MDCs."""
    for index, link in enumerate(network.backbone):
        for end in (link.a, link.b):
            if end not in mdc_names:
                raise ScenarioError(
                    f"network.backbone.{index}",
                    end,
                    "the name of an [[mdc]]: " + ", ".join(mdc_names),
                )
