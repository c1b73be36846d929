"""Backbone shortest paths and failover to the nearest healthy MDC."""

from __future__ import annotations

import math

import pytest

from network.backbone import Backbone, BackboneLink, Router, health_from
from network.faults import OutageSchedule
from network.vpn import TunnelEvent, TunnelTimeline, VpnGateway, VpnTunnel


def _backbone() -> Backbone:
    # north --10ms-- central --10ms-- south, and a slow direct north--south link
    return Backbone(
        ["north", "central", "south", "island"],
        [
            BackboneLink("north", "central", 0.010, 10e9),
            BackboneLink("central", "south", 0.010, 1e9),
            BackboneLink("north", "south", 0.050, 10e9),
        ],
    )


def test_shortest_paths_by_latency() -> None:
    bb = _backbone()
    assert bb.latency_s("north", "south") == pytest.approx(0.020)
    assert bb.path("north", "south") == ["north", "central", "south"]
    assert bb.latency_s("north", "island") == math.inf and bb.path("north", "island") == []
    # store and forward: each link's latency plus serialisation at its bandwidth
    assert bb.transfer_s("north", "south", 125_000) == pytest.approx(
        0.010 + 1e6 / 10e9 + 0.010 + 1e6 / 1e9
    )
    assert bb.transfer_s("south", "south", 10) == 0.0
    with pytest.raises(ValueError):
        Backbone(["a"], [BackboneLink("a", "b", 0.01)])


def test_failover_picks_the_nearest_healthy_mdc() -> None:
    bb = _backbone()
    down: dict[str, OutageSchedule] = {
        "north": OutageSchedule([(100.0, 200.0)]),
        "central": OutageSchedule([(150.0, 300.0)]),
    }
    router = Router(bb, health_from(down))
    assert router.route("north", 50.0) == ("north", 0.0)
    assert router.route("north", 120.0) == ("central", pytest.approx(0.010))
    # central down too: south over north-central-south (20 ms), not the direct 50 ms link
    assert router.route("north", 160.0) == ("south", pytest.approx(0.020))
    assert router.route("island", 160.0) == ("island", 0.0)
    all_down = Router(bb, lambda mdc, t: False)
    assert all_down.route("north", 0.0) == (None, math.inf) and all_down.unroutable == 1
    assert router.failovers == 2 and router.routed == 4


def test_a_tunnel_down_also_fails_over() -> None:
    bb = _backbone()
    tunnel_down = TunnelTimeline([TunnelEvent("drop", 10.0, 20.0, 12.0, 1, "dtls")])
    gateways = {"north": VpnGateway(VpnTunnel(), tunnel_down), "central": VpnGateway(VpnTunnel())}
    router = Router(bb, health_from(None, gateways))
    assert router.route("north", 15.0) == ("central", pytest.approx(0.010))
    assert router.route("north", 20.0) == ("north", 0.0)
