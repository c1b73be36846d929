"""Backbone between MDCs and failover routing.

The backbone is an undirected graph of MDCs with links of given one-way latency and
bandwidth. Paths are shortest by latency (Dijkstra, E. W. Dijkstra, "A note on two problems
in connexion with graphs", Numerische Mathematik 1, 1959), computed once for all pairs.
Moving ``size_bytes`` along a path costs its latency plus store-and-forward serialisation
on every link.

Each meter has a home MDC. ``Router.route(home, t)`` sends an upload to the home MDC when it
is healthy, else to the healthy MDC nearest to home across the backbone, with the path's
latency as the extra latency (a failover). Health is a callback ``healthy(mdc, t)``: e.g.
the MDC is up (hardware model) and its VPN gateway's tunnel is up.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from network.faults import OutageSchedule


@dataclass(frozen=True)
class BackboneLink:
    """An undirected link between MDCs ``a`` and ``b``."""

    a: str
    b: str
    latency_s: float
    bandwidth_bps: float = 10e9


class Backbone:
    """All-pairs shortest paths by latency over the MDC graph."""

    def __init__(self, mdcs: Sequence[str], links: Sequence[BackboneLink]) -> None:
        self.mdcs = list(mdcs)
        names = set(self.mdcs)
        self._adj: dict[str, list[tuple[str, BackboneLink]]] = {m: [] for m in self.mdcs}
        for link in links:
            if link.a not in names or link.b not in names:
                raise ValueError(f"backbone link {link.a}-{link.b} names an unknown MDC")
            if link.latency_s < 0 or link.bandwidth_bps <= 0:
                raise ValueError(f"backbone link {link.a}-{link.b}: bad latency or bandwidth")
            self._adj[link.a].append((link.b, link))
            self._adj[link.b].append((link.a, link))
        self._dist: dict[str, dict[str, float]] = {}
        self._prev: dict[str, dict[str, tuple[str, BackboneLink]]] = {}
        for m in self.mdcs:
            self._dist[m], self._prev[m] = self._dijkstra(m)
        #: per MDC: every reachable MDC (itself first) by increasing latency.
        self.by_distance: dict[str, list[tuple[float, str]]] = {
            m: sorted((d, other) for other, d in self._dist[m].items()) for m in self.mdcs
        }

    def _dijkstra(
        self, source: str
    ) -> tuple[dict[str, float], dict[str, tuple[str, BackboneLink]]]:
        dist = {source: 0.0}
        prev: dict[str, tuple[str, BackboneLink]] = {}
        heap = [(0.0, source)]
        while heap:
            d, node = heapq.heappop(heap)
            if d > dist[node]:
                continue
            for other, link in self._adj[node]:
                nd = d + link.latency_s
                if nd < dist.get(other, math.inf):
                    dist[other] = nd
                    prev[other] = (node, link)
                    heapq.heappush(heap, (nd, other))
        return dist, prev

    def latency_s(self, a: str, b: str) -> float:
        """Shortest-path one-way latency from ``a`` to ``b``, s (inf if unreachable)."""
        return self._dist[a].get(b, math.inf)

    def path(self, a: str, b: str) -> list[str]:
        """MDCs on the shortest path from ``a`` to ``b`` (both included); [] if none."""
        if b not in self._dist[a]:
            return []
        nodes = [b]
        while nodes[-1] != a:
            nodes.append(self._prev[a][nodes[-1]][0])
        return nodes[::-1]

    def transfer_s(self, a: str, b: str, size_bytes: int) -> float:
        """Latency plus store-and-forward serialisation on every link of the path, s."""
        if a == b:
            return 0.0
        if b not in self._dist[a]:
            return math.inf
        total, node = 0.0, b
        while node != a:
            node, link = self._prev[a][node]
            total += link.latency_s + 8.0 * size_bytes / link.bandwidth_bps
        return total


class HasIsUp(Protocol):
    def is_up(self, t_s: float) -> bool: ...


def health_from(
    mdc_outages: Mapping[str, OutageSchedule] | None = None,
    gateways: Mapping[str, HasIsUp] | None = None,
) -> Callable[[str, float], bool]:
    """A health callback: the MDC is outside its outage windows and its gateway's tunnel
    is up (either mapping may omit an MDC: then that part counts as healthy)."""
    outages = dict(mdc_outages or {})
    tunnels = dict(gateways or {})

    def healthy(mdc: str, t_s: float) -> bool:
        sched, gw = outages.get(mdc), tunnels.get(mdc)
        return (sched is None or sched.is_up(t_s)) and (gw is None or gw.is_up(t_s))

    return healthy


class Router:
    """Picks the MDC of each upload: home if healthy, else the nearest healthy one."""

    def __init__(self, backbone: Backbone, healthy: Callable[[str, float], bool]) -> None:
        self.backbone = backbone
        self.healthy = healthy
        self.routed = 0
        self.failovers = 0
        self.unroutable = 0

    def route(self, meter_home: str, t_s: float) -> tuple[str | None, float]:
        """(MDC, extra one-way latency across the backbone, s) for an upload of a meter
        whose home is ``meter_home`` at ``t_s``; (None, inf) when no reachable MDC is
        healthy."""
        self.routed += 1
        for latency, mdc in self.backbone.by_distance[meter_home]:
            if self.healthy(mdc, t_s):
                if mdc != meter_home:
                    self.failovers += 1
                return mdc, latency
        self.unroutable += 1
        return None, math.inf
