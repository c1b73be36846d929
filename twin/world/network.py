"""The network of one run, wired from ``network/``: shared cells per region, each meter's
coverage class and TLS session state, one VPN gateway per MDC, the backbone between MDCs
and the router that fails uploads over to the nearest healthy MDC.

Routing rule (DESIGN.md §1): an upload goes to the meter's home MDC (the first
``[[mdc]]`` of its region, else the first of the file) when that MDC is up and its tunnel
is up; otherwise to the healthy MDC nearest to home across the backbone. When no MDC is
healthy but the home MDC itself is up, the home gateway takes the upload into its bounded
buffer until the tunnel is back (overflow is the ledger cause
``vpn_down_buffer_overflow``); when the home MDC is down too, the attempt finds no server
and fails like a lost one (the meter keeps its data and retries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import simpy

from network.backbone import Backbone, BackboneLink, Router
from network.cellular import SharedCell
from network.faults import peak_rate_per_s
from network.hops import HopLatencies
from network.radio import assign_coverage
from network.transport import SessionTable
from network.vpn import TunnelTimeline, VpnGateway
from twin.accounting.counters import Counters
from twin.accounting.records import NetworkRecord, TunnelRecord
from twin.rng import component_rng
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import Scenario
from twin.world.faults import WORLD_FAULTS, CellFaultContext, MdcEffect
from twin.world.fleet import FleetData


class MdcState(Protocol):
    """What routing needs of an MDC."""

    name: str
    region: str

    def is_up(self, t_s: float | None = None) -> bool: ...


class WorldNetwork:
    """Cells, gateways, backbone and routing of one run (see the module docstring)."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        seed: int,
        fleets: Sequence[FleetData],
        mdcs: Sequence[MdcState],
    ) -> None:
        self.env = env
        self.mdcs = list(mdcs)
        self.horizon_s = scenario.duration_s
        spec = scenario.network
        profile = scenario.cellular
        self.cells: dict[str, list[SharedCell]] = {
            region: [
                SharedCell(env, profile, record_access=True) for _ in range(spec.cells_per_region)
            ]
            for region in scenario.regions
        }
        regions = [f.spec.region for f in fleets for _ in f.meter_ids]
        seen: dict[str, int] = {}
        self.cell_of: list[SharedCell] = []
        for region in regions:  # round-robin over the region's cells, in meter order
            k = seen.get(region, 0)
            seen[region] = k + 1
            self.cell_of.append(self.cells[region][k % spec.cells_per_region])
        # coverage class per meter, drawn per fleet (adding meters keeps earlier draws)
        self.ce_level = (
            np.concatenate(
                [
                    assign_coverage(
                        len(f.meter_ids),
                        profile.coverage,
                        component_rng(seed, f"fleet/{f.spec.name}/coverage"),
                    )
                    for f in fleets
                ]
            ).astype(np.int64)
            if fleets
            else np.zeros(0, dtype=np.int64)
        )
        self.sessions = SessionTable(len(regions), profile.transport)
        names = [m.name for m in self.mdcs]
        drops: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        for fault in scenario.faults:
            kind = WORLD_FAULTS.get(fault.kind)
            if kind is not None and kind.on_mdc is MdcEffect.TUNNEL_DOWN:
                # its cause ends with the run at the latest: the reconnect attempts that
                # follow it are drawn up to there, not for the whole of a longer duration
                cause_s = min(fault.duration_s, scenario.duration_s - fault.at_s)
                drops[fault.mdc].append((fault.at_s, cause_s))
        vpn = spec.vpn
        self.gateways = [
            VpnGateway(
                vpn.tunnel,
                TunnelTimeline.build(
                    vpn.dynamics,
                    scenario.duration_s,
                    component_rng(seed, f"mdc/{name}/vpn"),
                    drops[name],
                ),
                vpn.buffer_bytes,
                name,
            )
            for name in names
        ]
        links = list(spec.backbone) or [
            BackboneLink(a, b, spec.backbone_default_latency_s)
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        ]
        self.backbone = Backbone(names, links)
        self.index = {name: k for k, name in enumerate(names)}
        self.router = Router(self.backbone, self._healthy)
        home_of = {}
        for mdc in reversed(self.mdcs):
            home_of[mdc.region] = mdc.name
        self.home = [home_of.get(region, names[0]) for region in regions]
        self.hops = HopLatencies()
        self.gateway_overflows = 0  # uploads lost in a full gateway buffer
        self.pushed_back = 0  # uploads that waited in a gateway for the MDC's memory
        self.pushback_overflows = 0  # ... or for a dark MDC, and found the buffer full
        self.held_for_mdc = 0  # uploads the gateway kept while its MDC was down

    def _healthy(self, name: str, t_s: float) -> bool:
        k = self.index[name]
        return self.mdcs[k].is_up(t_s) and self.gateways[k].is_up(t_s)

    def route(self, meter: int) -> tuple[int, float] | None:
        """(MDC index, one-way backbone latency from home, s) for an upload of ``meter``
        now, or None when no MDC can take it (module docstring)."""
        now = self.env.now
        home = self.home[meter]
        name, latency_s = self.router.route(home, now)
        if name is not None:
            return self.index[name], latency_s
        k = self.index[home]
        if self.mdcs[k].is_up(now):
            return k, 0.0  # tunnel down: the home gateway buffers it
        return None

    # -- faults ----------------------------------------------------------------------------
    def apply_fault(self, fault: FaultSpec, seed: int) -> dict[str, float] | None:
        """Put a fault that acts on cells into the cells it hits; returns what it reports of
        itself besides its target (None if ``fault`` does not act on cells). A fault draws
        from its own generator, keyed by what it is, not by its place in the list (DESIGN
        §3)."""
        kind = WORLD_FAULTS.get(fault.kind)
        if kind is None or kind.on_cells is None:
            return None
        hit = kind.target.cells_hit(self.cells[fault.region], fault.cell)
        key = f"fault/{fault.kind}/{fault.region}/{fault.cell}/{fault.at_s:g}"
        context = CellFaultContext(
            fault.at_s,
            min(fault.at_s + fault.duration_s, self.horizon_s),  # nothing acts after the run
            fault.param_dict,
            lambda: component_rng(seed, key),
        )
        return kind.on_cells(hit, context)

    def reconnect_peak_per_s(self, cells: Sequence[SharedCell], t0_s: float, t1_s: float) -> float:
        """Peak random-access attempts per second over ``cells`` in [t0_s, t1_s) (1 s bins):
        the height of the reconnect storm after an outage."""
        times = [c.access_log.values for c in cells if c.access_log is not None]
        if not times:
            return 0.0
        t = np.concatenate(times)
        return peak_rate_per_s(t[(t >= t0_s) & (t < t1_s)], 1.0)

    # -- results ---------------------------------------------------------------------------
    def all_cells(self) -> list[SharedCell]:
        return [c for region in sorted(self.cells) for c in self.cells[region]]

    def stats(self, counters: Counters) -> NetworkRecord:
        """Counts of the network over the run, with the upload counts that belong to it."""
        cells = self.all_cells()
        return NetworkRecord(
            cells=len(cells),
            coverage_meters={
                c.name: int(np.count_nonzero(self.ce_level == c.ce_level))
                for c in cells[0].profile.coverage
            }
            if cells
            else {},
            preamble_collisions=int(sum(sum(p.collisions for p in c.prach) for c in cells)),
            ra_failures=int(sum(c.ra_failures for c in cells)),
            full_handshakes=self.sessions.full_handshakes,
            resumed_handshakes=self.sessions.resumptions,
            failovers=self.router.failovers,
            no_healthy_mdc=self.router.unroutable,
            pushed_back_uploads=self.pushed_back,
            pushback_overflows=self.pushback_overflows,
            held_for_mdc_uploads=self.held_for_mdc,
            vpn=[
                TunnelRecord(
                    mdc=g.name,
                    down_s=g.timeline.down_s(),
                    rekeys=sum(e.cause == "rekey" for e in g.timeline.events),
                    drops=sum(e.cause == "drop" for e in g.timeline.events),
                    buffered_uploads=g.buffer.accepted_uploads,
                    buffer_peak_bytes=g.buffer.peak_bytes,
                    overflowed_uploads=g.buffer.overflowed_uploads,
                    wire_bytes=g.sent_wire_bytes,
                )
                for g in self.gateways
            ],
            upload_bytes_max=counters.upload_bytes_max,
            attempts_unroutable=counters.attempts_unroutable,
            uploads_lost_at_mdc=counters.uploads_lost_at_mdc,
        )
