"""Network cost per upload at fleet scale (DESIGN.md §7: an upload costs a handful of
SimPy events; gates are ratios against a bare reference measured in the same run).

Harness: ``n_meters`` meters (10,000 and 50,000), 250 per LTE-M ``SharedCell``, coverage
classes drawn with the profile's shares, each uploading one 4.7 KB ESPI document at a
random moment of a 15-minute window, as the twin's scheduler does (one scheduler process,
one short-lived process per upload). An upload: the cell attempt (PRACH, RRC set-up and
handshake, shared uplink; the handshake from a ``SessionTable``), the MDC chosen by the
``Router`` (the north MDC is down for part of the window, so some uploads fail over across
the backbone), the VPN gateway (closed form: tunnel up, or buffered), and the
acknowledgement back through the cell. Per-hop latencies go into ``HopLatencies``.

Reference: a bare SimPy loop, one process yielding one timeout per upload, same number of
uploads. Measured: SimPy events per upload (counted by an ``Environment`` whose
``schedule`` counts, so exact and machine independent) and wall time per upload.
Gates: at most ``MAX_EVENTS_PER_UPLOAD`` events per upload, and the network harness at
most ``MAX_RATIO_VS_BARE`` times the bare loop's wall time per upload.
Run: ``.venv/bin/pytest bench/test_network_bench.py -o testpaths=bench``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import simpy
from simpy.events import NORMAL, EventPriority

from bench.conftest import RATIOS
from network.backbone import Backbone, BackboneLink, Router, health_from
from network.cellular import CELLULAR_PROFILES, SharedCell
from network.faults import OutageSchedule
from network.hops import HopLatencies
from network.radio import assign_coverage
from network.transport import SessionTable
from network.vpn import TunnelDynamics, TunnelTimeline, VpnGateway, VpnTunnel

for _n in (10_000, 50_000):
    RATIOS.append(
        (f"network upload ({_n:,} meters) / bare SimPy timeout", f"net_{_n}", f"bare_{_n}")
    )

MAX_EVENTS_PER_UPLOAD = 10.0
MAX_RATIO_VS_BARE = 80.0  # measured 34-38x on the 2-core dev machine
METERS_PER_CELL = 250
WINDOW_S = 900.0
SIZE_BYTES = 4700
MDCS = ("north", "central", "south")

_MEDIAN_S: dict[str, float] = {}


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts every event it schedules."""

    def __init__(self) -> None:
        super().__init__()
        self.events_scheduled = 0

    def schedule(
        self, event: simpy.Event, priority: EventPriority = NORMAL, delay: float = 0
    ) -> None:
        self.events_scheduled += 1
        super().schedule(event, priority, delay)


@dataclass
class Harness:
    env: CountingEnvironment
    n_uploads: int
    hops: HopLatencies
    delivered: list[int]


def build_network(n_meters: int, seed: int = 2026) -> Harness:
    env = CountingEnvironment()
    rng = np.random.default_rng(seed)
    profile = CELLULAR_PROFILES["lte-m"]
    n_cells = max(1, n_meters // METERS_PER_CELL)
    cells = [SharedCell(env, profile) for _ in range(n_cells)]
    cell_of = np.arange(n_meters) % n_cells
    ce = assign_coverage(n_meters, profile.coverage, rng)
    home = np.arange(n_meters) % len(MDCS)
    backbone = Backbone(
        list(MDCS),
        [BackboneLink("north", "central", 0.004), BackboneLink("central", "south", 0.006)],
    )
    gateways = {
        m: VpnGateway(
            VpnTunnel(),
            TunnelTimeline.build(TunnelDynamics(rekey_interval_s=600.0), 2 * WINDOW_S, rng),
            name=m,
        )
        for m in MDCS
    }
    router = Router(
        backbone,
        health_from({"north": OutageSchedule([(300.0, 600.0)])}, gateways),
    )
    sessions = SessionTable(n_meters, profile.transport)
    meter_rngs = [np.random.default_rng([seed, m]) for m in range(n_meters)]
    times = np.sort(rng.uniform(0.0, WINDOW_S, n_meters))
    order = rng.permutation(n_meters)
    hops = HopLatencies()
    delivered: list[int] = []
    server = {m: i for i, m in enumerate(MDCS)}

    def upload(m: int) -> Generator[simpy.Event, Any, None]:
        t0 = env.now
        mdc, backbone_s = router.route(MDCS[home[m]], t0)
        if mdc is None:
            return
        handshake = sessions.handshake(m, server[mdc], t0)
        cell, g = cells[cell_of[m]], meter_rngs[m]
        r = yield from cell.attempt(SIZE_BYTES, g, int(ce[m]), handshake)
        if not r.delivered:
            sessions.broken(m)
            return
        hops.add("cellular", r.duration_s)
        sent = env.now
        d = gateways[mdc].send(sent, SIZE_BYTES)
        if not d.accepted:
            return
        yield env.timeout(d.arrival_s - sent + backbone_s)
        hops.add("vpn", d.arrival_s - sent)
        hops.add("backbone", backbone_s)
        sessions.established(m, server[mdc], env.now, handshake)
        delivered.append(m)
        yield env.timeout(cell.ack_latency_s(g, int(ce[m])))

    def scheduler() -> Generator[simpy.Event, Any, None]:
        for t, m in zip(times.tolist(), order.tolist(), strict=True):
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(upload(m))

    env.process(scheduler())
    return Harness(env, n_meters, hops, delivered)


def build_bare(n_uploads: int) -> Harness:
    env = CountingEnvironment()

    def loop() -> Generator[simpy.Event, Any, None]:
        for _ in range(n_uploads):
            yield env.timeout(WINDOW_S / n_uploads)

    env.process(loop())
    return Harness(env, n_uploads, HopLatencies(), [])


def _bench(benchmark: Any, name: str, build: Any, n: int, rounds: int) -> Harness:
    built: list[Harness] = []

    def setup() -> tuple[tuple[Harness], dict[str, Any]]:
        built.append(build(n))
        return (built[-1],), {}

    benchmark.pedantic(lambda h: h.env.run(), setup=setup, rounds=rounds, iterations=1)
    h = built[-1]
    per_upload = h.env.events_scheduled / h.n_uploads
    benchmark.extra_info["events_per_upload"] = per_upload
    if benchmark.stats is not None:  # None under --benchmark-disable
        median_s = benchmark.stats.stats.median
        _MEDIAN_S[name] = median_s
        benchmark.extra_info["us_per_upload"] = 1e6 * median_s / h.n_uploads
    return h


@pytest.mark.parametrize("n_meters", [10_000, 50_000])
def test_bare_timeout_loop(benchmark: Any, record_median: Any, n_meters: int) -> None:
    record_median(f"bare_{n_meters}")
    h = _bench(benchmark, f"bare_{n_meters}", build_bare, n_meters, rounds=5)
    assert h.env.events_scheduled == n_meters + 2  # init + one timeout each + process end


@pytest.mark.parametrize("n_meters", [10_000, 50_000])
def test_network_upload_cost(benchmark: Any, record_median: Any, n_meters: int) -> None:
    record_median(f"net_{n_meters}")
    h = _bench(benchmark, f"net_{n_meters}", build_network, n_meters, rounds=3)
    per_upload = h.env.events_scheduled / h.n_uploads
    assert per_upload <= MAX_EVENTS_PER_UPLOAD, f"{per_upload:.2f} events per upload"
    assert len(h.delivered) > 0.95 * n_meters
    stats = h.hops.percentiles()
    benchmark.extra_info["cellular_p99_s"] = stats["cellular"]["p99"]
    benchmark.extra_info["backbone_max_s"] = stats["backbone"]["max"]
    assert stats["backbone"]["max"] > 0  # some uploads failed over from the north MDC
    bare, net = f"bare_{n_meters}", f"net_{n_meters}"
    if bare in _MEDIAN_S and net in _MEDIAN_S:
        ratio = _MEDIAN_S[net] / _MEDIAN_S[bare]
        benchmark.extra_info["ratio_vs_bare"] = ratio
        assert ratio <= MAX_RATIO_VS_BARE, f"network harness {ratio:.1f}x the bare loop"
