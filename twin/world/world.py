"""Wiring of the simulated world: meters -> cellular cell -> VPN -> MDC servers -> pipeline.

One scheduler process walks the precomputed upload windows of all meters; each upload is
one short-lived SimPy process (a handful of events: the cell attempt, the VPN transit, the
MDC queue and service, the acknowledgement). The real pipeline runs on the real XML bytes
when a simulated core takes the upload.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from hw_models.power_supply import SupplySeries
from hw_models.server import JobLost, Server, ServiceDemand
from meters.device import MeterBuffers, upload_schedule
from meters.espi import Channel, LocalTimeSpec, ReadingTypeSpec, encode_meter_upload
from network.faults import OutageSchedule
from network.vpn import VpnDelivery
from pipeline.service import ForecastRecord, Pipeline
from twin.accounting.ledger import Ledger, LedgerError
from twin.rng import component_rng
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import Scenario
from twin.sil.service_time import ServiceTime
from twin.world.faults import WORLD_FAULTS, MdcEffect, Target
from twin.world.fleet import FleetData
from twin.world.hostile import sealed
from twin.world.mdc import Mdc, renewable_supply
from twin.world.network import WorldNetwork


@dataclass
class Counters:
    """Upload-level counts over the run."""

    uploads_started: int = 0
    uploads_delivered: int = 0  # copies that reached the MDC (retries and duplicates included)
    uploads_acknowledged: int = 0
    uploads_failed: int = 0  # retry budget exhausted; the readings stay in the meter
    windows_skipped_busy: int = 0
    uploads_rejected: int = 0
    uploads_lost_at_mdc: int = 0  # in an MDC's memory when its server or power went
    attempts_unroutable: int = 0  # no MDC could take the upload
    upload_bytes_max: int = 0  # largest upload body sent
    analyses: int = 0  # batch analytics runs
    points_analysed: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)


#: Interval of the run's time series (queue depth, busy cores, open sessions, cell state), s.
SAMPLE_EVERY_S = 300.0

#: Bytes the store writes to disk per reading row. Measured: the baseline run's
#: store.sqlite holds 315,019 rows in 7.44 MB (23.6 B a row with indexes); SQLite in WAL
#: mode writes each page twice (WAL, then the checkpoint), so 48 B.
STORE_WRITE_BYTES_PER_ROW = 48


def region_renewables(fleets: list[FleetData], region: str) -> SupplySeries | None:
    """The summed AC output of a region's fleets (W) as a supply series at the finest
    common sample step (each fleet's steps repeated onto it); None without fleets."""
    mine = [f for f in fleets if f.spec.region == region and f.power_w.size]
    if not mine:
        return None
    step_s = math.gcd(*(int(f.spec.meter.sample_s) for f in mine))
    parts = [np.repeat(f.power_w.sum(axis=0), int(f.spec.meter.sample_s) // step_s) for f in mine]
    n = min(len(p) for p in parts)
    return renewable_supply(np.sum([p[:n] for p in parts], axis=0), float(step_s))


class World:
    """Everything one run simulates. ``run()`` advances it to the end of the scenario."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        fleets: list[FleetData],
        pipeline: Pipeline,
        service_time: ServiceTime,
        progress: Callable[[float], None] | None = None,
        audit_every_s: float | None = None,
        keys: dict[str, bytes] | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.env = simpy.Environment()
        self.pipeline = pipeline
        self.service_time = service_time
        self.progress = progress
        self.audit_every_s = audit_every_s
        self.counters = Counters()
        self.detections: list[dict[str, Any]] = []  # from the MDC's batch analytics
        self.forecasts: list[ForecastRecord] = []  # issued by the batch analytics
        self.keys = keys  # per-meter HMAC keys: uploads are sealed when given
        self.samples: list[tuple[float, ...]] = []
        self.epoch_s = int(scenario.start.timestamp())

        self.meter_ids = [m for f in fleets for m in f.meter_ids]
        # per meter: (ReadingType, register values [n_steps]) of each channel it records
        self.channels: list[list[tuple[ReadingTypeSpec, np.ndarray]]] = [
            [(c.reading_type, c.values[i]) for c in f.channels]
            for f in fleets
            for i in range(len(f.meter_ids))
        ]
        self.n_channels = np.array([len(c) for c in self.channels], dtype=np.int64)
        # meters whose clock jumps relabel readings: label shift per reading (s), and which
        # reading holds each label in the store (label index -> reading index)
        self.label_shift: dict[int, np.ndarray] = {}
        first = 0
        for f in fleets:
            for row, shift in f.label_shift_s.items():
                self.label_shift[first + row] = shift
            first += len(f.meter_ids)
        self.labels_held: dict[int, dict[int, int]] = {m: {} for m in self.label_shift}
        self.local_time = LocalTimeSpec.for_zone(scenario.timezone)
        self.flush_every = np.array(
            [f.spec.meter.nvm_flush_readings for f in fleets for _ in f.meter_ids], dtype=np.int64
        )
        self.index = {m: i for i, m in enumerate(self.meter_ids)}
        sample_s = np.array([f.spec.meter.sample_s for f in fleets for _ in f.meter_ids])
        n_readings = np.array([len(c[0][1]) for c in self.channels], dtype=np.int64)
        self.sample_s = sample_s
        self.ledger = Ledger(n_readings, sample_s)
        self.buffers = MeterBuffers(
            np.array([f.spec.meter.buffer_readings for f in fleets for _ in f.meter_ids])
        )
        self.max_upload = np.array(
            [f.spec.meter.max_upload_readings for f in fleets for _ in f.meter_ids], dtype=np.int64
        )
        # readings of one upload interval: a session that finds this many pending catches up
        self.catch_up = np.array(
            [f.spec.meter.upload_s // f.spec.meter.sample_s for f in fleets for _ in f.meter_ids],
            dtype=np.int64,
        )
        self.window_time_s, self.window_meter = upload_schedule(
            np.concatenate([f.upload_offset_s for f in fleets]) if fleets else np.zeros(0),
            np.array([f.spec.meter.upload_s for f in fleets for _ in f.meter_ids]),
            scenario.duration_s,
        )
        self.rng = {m: component_rng(seed, f"meter/{m}/network") for m in self.meter_ids}
        power_losses: dict[str, list[tuple[float, float]]] = {m.name: [] for m in scenario.mdcs}
        for fault in scenario.faults:
            kind = WORLD_FAULTS.get(fault.kind)
            if kind is not None and kind.on_mdc is MdcEffect.DARK:
                power_losses[fault.mdc].append((fault.at_s, fault.at_s + fault.duration_s))
        dark = {
            name: [(a, b - a) for a, b in OutageSchedule(windows).windows]  # overlaps merged
            for name, windows in power_losses.items()
        }
        self.mdcs = [
            Mdc(
                self.env,
                spec,
                rng_for=lambda key: component_rng(seed, key),
                horizon_s=scenario.duration_s,
                renewables=region_renewables(fleets, spec.region)
                if spec.power is not None and spec.power.renewables_share > 0
                else None,
                power_losses=dark[spec.name],
            )
            for spec in scenario.mdcs
        ]
        self.modelled_rows = 0  # rows counted as stored for uploads the model mode costed
        self.net = WorldNetwork(self.env, scenario, seed, fleets, self.mdcs)
        # What happened to each injected fault, in scenario order (ground truth for results).
        self.fault_log: list[dict[str, Any]] = []
        # Pending malformed uploads per meter, earliest first: (at_s, fault index).
        self.hostile: dict[str, list[tuple[float, int]]] = {}
        for index, fault in enumerate(scenario.faults):
            kind = WORLD_FAULTS.get(fault.kind)
            if kind is None:
                continue  # field faults: their ground truth comes with the fleet's data
            entry: dict[str, Any] = {"index": index, "kind": fault.kind, "at_s": fault.at_s}
            target = kind.target
            if target is Target.CELL or target is Target.REGION:
                entry["region"] = fault.region
            if target is Target.CELL:
                entry["cell"] = fault.cell
            if target is Target.MDC:
                entry["mdc"] = fault.mdc
            if target is Target.METER:
                entry["meter_id"] = fault.meter
            if kind.timed:
                entry["duration_s"] = fault.duration_s
            entry |= self.net.apply_fault(fault, seed) or {}
            if kind.on_upload is not None:
                self.hostile.setdefault(fault.meter, []).append((fault.at_s, index))
                entry |= {"payload": fault.payload, "sent_at_s": None, "delivered": False}
            self.fault_log.append(entry)
        for pending in self.hostile.values():
            pending.sort()

    # -- processes ---------------------------------------------------------------------
    def run(self) -> None:
        for fault in self.scenario.faults:
            kind = WORLD_FAULTS.get(fault.kind)
            if kind is not None and kind.on_meter_power:
                self.env.process(self._power_loss(self.index[fault.meter], fault))
        self.env.process(self._scheduler())
        self.env.process(self._analytics())
        if self.progress is not None or self.audit_every_s:
            self.env.process(self._monitor())
        self.env.process(self._sampler())
        self.env.run(until=self.scenario.duration_s)
        self.finish()
        self.drain_report()

    def _scheduler(self) -> Generator[simpy.Event, Any, None]:
        times, meters = self.window_time_s, self.window_meter
        i, n = 0, len(times)
        while i < n:
            t = float(times[i])
            if t > self.env.now:
                yield self.env.timeout(t - self.env.now)
            j = int(np.searchsorted(times, t, side="right"))
            for m in meters[i:j].tolist():
                self._window(m)
            i = j

    def _analytics(self) -> Generator[simpy.Event, Any, None]:
        """The MDC's batch analytics (VEE, fault detectors) every ``analytics_every_s``, as
        a job on a server core like any upload; detections are kept with their times in s
        after the scenario's start, the base of the ground truth they are scored against."""
        every_s = self.scenario.pipeline.analytics_every_s
        while True:
            yield self.env.timeout(every_s)

            def work(server: Server) -> ServiceDemand:
                outcome, service_s = self.service_time.analysis(
                    self.pipeline, self.epoch_s + int(self.env.now)
                )
                self.counters.analyses += 1
                self.counters.points_analysed += outcome.points_analysed
                self.forecasts.extend(outcome.forecasts)
                for d in outcome.detections:
                    self.detections.append(
                        {
                            "kind": d.kind,
                            "series_id": d.series_id,
                            "start_s": float(d.start_s - self.epoch_s),
                            "end_s": float(d.end_s - self.epoch_s),
                            "detected_s": float(d.detected_s - self.epoch_s),
                            "reported_s": self.env.now + service_s / server.speed_factor,
                            "confidence": float(d.confidence),
                            "message": d.message,
                        }
                    )
                # the detectors run on the MDC's accelerator when it has one
                return ServiceDemand({"analyze": service_s}, offload_items=outcome.points_analysed)

            mdc = next((m for m in self.mdcs if m.is_up(self.env.now)), None)
            if mdc is None:
                continue  # every MDC is down: this analysis is skipped
            with contextlib.suppress(JobLost):  # a server went down under it: next run
                yield from mdc.serve(work, 0)

    def _sampler(self) -> Generator[simpy.Event, Any, None]:
        """Record the state that only exists during the run, every ``SAMPLE_EVERY_S``."""
        net = self.net
        regions = sorted(net.cells)
        while True:
            now = self.env.now
            pools = [m.pool for m in self.mdcs]
            self.samples.append(
                (
                    now,
                    float(sum(p.queued() for p in pools)),
                    float(sum(p.busy_cores() for p in pools)),
                    float(np.count_nonzero(self.buffers.busy)),
                    *(float(np.mean([c.is_up(now) for c in net.cells[r]])) for r in regions),
                    *(float(g.is_up(now)) for g in net.gateways),
                    *(float(m.is_up(now)) for m in self.mdcs),
                    *(x for m in self.mdcs for x in m.sample()),
                )
            )
            yield self.env.timeout(SAMPLE_EVERY_S)

    def sample_columns(self) -> list[str]:
        """Names of the columns of ``samples``: cell_up_R is the fraction of region R's
        cells that are up; vpn_up_M and mdc_up_M are 0/1."""
        return (
            ["t_s", "uploads_waiting", "cores_busy", "sessions_open"]
            + [f"cell_up_{r}" for r in sorted(self.net.cells)]
            + [f"vpn_up_{m.name}" for m in self.mdcs]
            + [f"mdc_up_{m.name}" for m in self.mdcs]
            + [c for m in self.mdcs for c in m.sample_columns()]
        )

    def _monitor(self) -> Generator[simpy.Event, Any, None]:
        step_s = min(self.audit_every_s or 900.0, 900.0)
        while True:
            yield self.env.timeout(step_s)
            if self.audit_every_s:
                self.ledger.audit(self.env.now)
            if self.progress is not None:
                self.progress(self.env.now)

    def _sync_buffer(self, m: int) -> int:
        """Bring meter ``m``'s buffer up to now: new readings in, overflow out."""
        produced = self.ledger.produced(m, self.env.now)
        self.ledger.touch(m, produced)
        for lo, hi in self.buffers.evict_overflow_runs(m, produced):
            self.ledger.drop_copy(m, lo, hi, "meter_buffer_overflow")
        return produced

    def _power_loss(self, m: int, fault: FaultSpec) -> Generator[simpy.Event, Any, None]:
        """Meter ``m`` loses power at ``fault.at_s`` for ``fault.duration_s``: what its RAM
        held since the last NVM flush is lost, nothing is recorded until power returns."""
        yield self.env.timeout(fault.at_s)
        produced = self._sync_buffer(m)
        lo, hi = self.buffers.power_loss(m, produced, int(self.flush_every[m]))
        self.ledger.drop_copy(m, lo, hi, "meter_power_loss")
        end_s = fault.at_s + fault.duration_s
        if end_s >= self.scenario.duration_s:
            return  # still unpowered at the end: finish() settles the unrecorded readings
        yield self.env.timeout(fault.duration_s)
        self._power_restored(m)

    def _power_restored(self, m: int) -> None:
        produced = self._sync_buffer(m)
        lo, hi = self.buffers.power_restored(m, produced)
        self.ledger.drop_copy(m, lo, hi, "meter_unpowered")

    def _window(self, m: int) -> None:
        produced = self._sync_buffer(m)
        if not self.buffers.powered[m]:
            self.counters.windows_skipped_busy += 1
            return
        if self.buffers.busy[m]:
            self.counters.windows_skipped_busy += 1
            return
        lo, hi = self.buffers.pending(m, produced)
        if hi <= lo:
            return
        self.buffers.busy[m] = True
        self.env.process(self._session(m, lo, min(hi, lo + int(self.max_upload[m]))))

    def _session(self, m: int, lo: int, hi: int) -> Generator[simpy.Event, Any, None]:
        """One connection of meter ``m``: uploads in chunks of at most ``max_upload_readings``
        while a backlog remains, each acknowledged before the next. Backlog: the last chunk
        was full, or a whole upload interval's readings piled up while the session waited
        (an outage): the meter catches up in the same session instead of waiting for its
        next window."""
        chunk = int(self.max_upload[m])
        catch_up = int(self.catch_up[m])
        cycle = int(self.buffers.power_cycles[m])
        while True:
            acknowledged = yield from self._upload(m, lo, hi, cycle)
            if not acknowledged:
                break
            full = hi - lo >= chunk
            lo, hi = self.buffers.pending(m, self._sync_buffer(m))
            if hi <= lo or not (full or hi - lo >= catch_up):
                break
            hi = min(hi, lo + chunk)
        if int(self.buffers.power_cycles[m]) == cycle:  # else power_loss ended the session
            self.buffers.busy[m] = False

    def _body(self, m: int, lo: int, hi: int, seq: int) -> tuple[bytes, int | None]:
        """The upload's XML, or a malformed one when a fault is due; and that fault's index."""
        body = encode_meter_upload(
            self.meter_ids[m],
            seq,
            self.epoch_s + self._labels_s(m, lo, hi),
            [Channel(rt, values[lo:hi]) for rt, values in self.channels[m]],
            self.epoch_s + int(self.env.now),
            self.local_time,
        )
        meter_id = self.meter_ids[m]
        key = self.keys[meter_id] if self.keys is not None else b""
        pending = self.hostile.get(meter_id)
        if pending and self.env.now >= pending[0][0]:
            index = pending.pop(0)[1]
            self.fault_log[index]["sent_at_s"] = self.env.now
            fault = self.scenario.faults[index]
            hostile = WORLD_FAULTS[fault.kind].on_upload
            assert hostile is not None  # only upload faults are pending
            return hostile.rewrite(fault.payload, body, meter_id, seq, key), index
        return sealed(body, meter_id, seq, key), None

    def _labels_s(self, m: int, lo: int, hi: int) -> np.ndarray:
        """Interval starts (s after the run's start) meter ``m`` writes for readings
        [lo, hi): nominal, plus the shift of a clock jump."""
        starts = int(self.sample_s[m]) * np.arange(lo, hi, dtype=np.int64)
        shift = self.label_shift.get(m)
        return starts if shift is None else starts + shift[lo:hi]

    def _discarded(self, m: int, lo: int, hi: int) -> np.ndarray | None:
        """Readings of [lo, hi) whose label another reading already holds in the store (the
        store keeps the first and drops the rest); None for a meter without clock jumps."""
        held = self.labels_held.get(m)
        if held is None:
            return None
        labels = self._labels_s(m, lo, hi).tolist()
        return np.array(
            [held.setdefault(label, lo + j) != lo + j for j, label in enumerate(labels)],
            dtype=bool,
        )

    def _upload(self, m: int, lo: int, hi: int, cycle: int) -> Generator[simpy.Event, Any, bool]:
        """Send readings [lo, hi) with retries; True when the meter got its acknowledgement.
        ``cycle`` is the meter's power cycle count at the session's start: a power loss
        ends the session (the modem is off) and voids any acknowledgement after it.

        Retries wait the profile's capped exponential backoff with jitter; a retry that
        would start while the cell is down waits for it to come back plus the profile's
        reconnect spread (the reconnect storm after an outage, ``network.faults``)."""
        env, net, counters = self.env, self.net, self.counters
        counters.uploads_started += 1
        seq = self.buffers.take_sequence_no(m)
        body, fault = self._body(m, lo, hi, seq)
        counters.upload_bytes_max = max(counters.upload_bytes_max, len(body))
        # The session holds the upload in memory until it ends: a copy of its readings, so
        # that the meter evicting them from a full buffer meanwhile does not lose them.
        self.ledger.add_copy(m, lo, hi)
        cell = net.cell_of[m]
        profile = cell.profile
        rng = self.rng[self.meter_ids[m]]
        ce_level = int(net.ce_level[m])
        started_s = env.now
        previous_s = 0.0
        acknowledged = False
        for attempt in range(1, profile.max_attempts + 1):
            if int(self.buffers.power_cycles[m]) != cycle:
                break
            target = net.route(m)
            if target is None:  # no MDC can take it: nothing answers the meter
                counters.attempts_unroutable += 1
                yield env.timeout(profile.ack_timeout_s)
            else:
                k, backbone_s = target
                handshake = net.sessions.handshake(m, k, env.now)
                attempt_s = env.now
                result = yield from cell.attempt(len(body), rng, ce_level, handshake)
                if result.delivered:
                    net.sessions.established(m, k, env.now, handshake)
                    # the radio hop is the delivering attempt; what came before it (failed
                    # attempts, backoff, waiting for a dead cell) is the meter's wait
                    net.hops.add("cellular", env.now - attempt_s)
                    net.hops.add("meter_wait", attempt_s - started_s)
                    acknowledged = yield from self._deliver(
                        m, lo, hi, seq, body, fault, k, backbone_s, result.ack_lost, cycle
                    )
                    if acknowledged:
                        break
                else:
                    net.sessions.broken(m)
            if attempt < profile.max_attempts:
                previous_s = profile.backoff_s(attempt, rng, previous_s)
                wait_s = previous_s
                if not cell.is_up(env.now + wait_s):
                    wait_s = (
                        cell.next_up_s(env.now + wait_s) - env.now + profile.reconnect_delay_s(rng)
                    )
                yield env.timeout(wait_s)
        if not acknowledged:
            counters.uploads_failed += 1
            if fault is not None and not self.fault_log[fault]["delivered"]:
                # never reached an MDC: the malformed upload is still due next session
                at_s = self.scenario.faults[fault].at_s
                self.hostile[self.meter_ids[m]].insert(0, (at_s, fault))
                self.fault_log[fault]["sent_at_s"] = None
        # the upload's in-memory copy is gone; the data's fate is with the meter's buffer
        # (acknowledged: handed on to the copy delivered to the MDC)
        self.ledger.drop_copy(m, lo, hi, None)
        return acknowledged

    def _deliver(
        self,
        m: int,
        lo: int,
        hi: int,
        seq: int,
        body: bytes,
        fault: int | None,
        k: int,
        backbone_s: float,
        ack_lost: bool,
        cycle: int,
    ) -> Generator[simpy.Event, Any, bool]:
        """The upload crossed the cell to MDC ``k``'s gateway: hand it to the tunnel and
        wait for the acknowledgement. An MDC that acknowledges on receipt answers from the
        gateway at once (a store-and-forward broker: what its buffer later drops is lost);
        one that acknowledges after commit answers when the pipeline has stored it, back
        across backbone, tunnel and cell, or never (then the meter's timer runs out)."""
        env, net = self.env, self.net
        mdc, gateway = self.mdcs[k], net.gateways[k]
        rng = self.rng[self.meter_ids[m]]
        cell, ce_level = net.cell_of[m], int(net.ce_level[m])
        delivered_s = env.now
        delivery = gateway.send(env.now, len(body))
        self.ledger.add_copy(m, lo, hi)  # the copy on its way to the MDC
        self.counters.uploads_delivered += 1
        committed = env.event() if mdc.ack_after_commit else None
        env.process(self._at_mdc(m, lo, hi, seq, body, fault, k, delivery, backbone_s, committed))
        timeout_s = cell.profile.ack_timeout_s
        if ack_lost:  # the meter will never see this acknowledgement
            yield env.timeout(timeout_s)
            return False
        if committed is None:
            yield env.timeout(cell.ack_latency_s(rng, ce_level))
        else:
            timer = env.timeout(timeout_s)
            yield committed | timer
            if not (committed.triggered and committed.value):
                if not timer.processed:
                    yield timer
                return False
            back_s = backbone_s + gateway.tunnel_at(env.now).latency_s
            yield env.timeout(back_s + cell.ack_latency_s(rng, ce_level))
        if int(self.buffers.power_cycles[m]) != cycle:
            return False  # the modem went off before the acknowledgement arrived
        for a, b in self.buffers.acknowledge_runs(m, lo, hi):
            self.ledger.drop_copy(m, a, b, None)
        self.counters.uploads_acknowledged += 1
        net.hops.add("ack", env.now - delivered_s)  # gateway receipt to the meter's ack
        return True

    def _at_mdc(
        self,
        m: int,
        lo: int,
        hi: int,
        seq: int,
        body: bytes,
        fault: int | None,
        k: int,
        delivery: VpnDelivery,
        backbone_s: float,
        committed: simpy.Event | None,
    ) -> Generator[simpy.Event, Any, None]:
        """The upload's way from the gateway to MDC ``k``'s pipeline: tunnel (and the
        gateway buffer while the tunnel is down), backbone, RAM admission and a core."""
        env, net, mdc = self.env, self.net, self.mdcs[k]
        sent_s = env.now
        if not delivery.accepted:  # the gateway's buffer was full
            net.gateway_overflows += 1
            self._gone_past_gateway(m, lo, hi, committed, "vpn_down_buffer_overflow")
            return
        if delivery.arrival_s == float("inf"):
            return  # the tunnel stays down past the horizon: in flight at the end
        yield env.timeout(delivery.arrival_s - sent_s)
        net.hops.add("vpn", env.now - sent_s)
        if backbone_s > 0.0:
            transfer_s = net.backbone.transfer_s(net.home[m], mdc.name, len(body))
            yield env.timeout(transfer_s)
            net.hops.add("backbone", transfer_s)
        if not mdc.is_up(env.now):  # it went down meanwhile: the gateway fails over
            target = net.route(m)
            if target is not None and target[0] != k:
                other = self.mdcs[target[0]]
                transfer_s = net.backbone.transfer_s(mdc.name, other.name, len(body))
                yield env.timeout(transfer_s)
                net.hops.add("backbone", transfer_s)
                mdc = other
        if fault is not None:
            self.fault_log[fault]["delivered"] = True
        arrived_s = env.now

        def work(server: Server) -> ServiceDemand:
            net.hops.add("mdc_queue", env.now - arrived_s)
            channels = int(self.n_channels[m])
            outcome, service_s = self.service_time.upload(
                self.pipeline,
                body,
                n_readings=channels * (hi - lo),
                force=fault is not None,
                key=f"{self.meter_ids[m]}/{seq}",
            )
            rows = 0
            if outcome is None:  # model mode, not sampled: costed, counted as stored
                fresh = self.ledger.store(
                    m, lo, hi, env.now + service_s / server.speed_factor, self._discarded(m, lo, hi)
                )
                rows = channels * fresh
                self.modelled_rows += rows
            elif outcome.accepted:
                if outcome.n_readings != channels * (hi - lo):
                    raise LedgerError(
                        f"{self.meter_ids[m]} seq {seq}: pipeline read {outcome.n_readings} "
                        f"readings, the meter sent {hi - lo} x {channels} channels"
                    )
                fresh = self.ledger.store(
                    m, lo, hi, env.now + service_s / server.speed_factor, self._discarded(m, lo, hi)
                )
                rows = outcome.inserted
                # once model mode has counted readings as stored that the database lacks, a
                # real copy of them inserts rows the ledger calls duplicates: then the rows
                # inserted lie between the new readings' and the upload's (the end-of-run
                # row check covers the totals)
                low = channels * fresh
                high = channels * (hi - lo) if self.modelled_rows else low
                if not low <= outcome.inserted <= high:
                    raise LedgerError(
                        f"{self.meter_ids[m]} seq {seq}: store inserted {outcome.inserted}, "
                        f"ledger expected {fresh} new readings x {channels} channels"
                        + (f" (at most {high} rows in model mode)" if high != low else "")
                    )
            else:
                auth = (outcome.reason or "").startswith("auth_")
                self.ledger.drop_copy(m, lo, hi, "rejected_auth" if auth else "rejected_invalid")
                self.counters.uploads_rejected += 1
                self.counters.rejections.append(
                    {
                        "meter_id": self.meter_ids[m],
                        "sequence_no": seq,
                        "t_s": env.now,
                        "readings": hi - lo,
                        "reason": outcome.reason,
                        "stage": outcome.rejected_stage,
                    }
                )
            write_bytes = rows * STORE_WRITE_BYTES_PER_ROW
            net.hops.add(
                "pipeline",
                service_s / server.speed_factor + write_bytes / server.disk_write_bps,
            )
            return ServiceDemand({"pipeline": service_s}, write_bytes=write_bytes)

        def on_commit(server: Server) -> None:
            if committed is not None:
                committed.succeed(True)

        size = len(body)
        admitted = False
        dark = not mdc.is_up(env.now)
        if dark or not mdc.pool.would_admit(size):
            # The MDC cannot take it now: it is down with no MDC to fail over to (the
            # gateway stores and forwards), or its ingest memory is full (it pushes back).
            # The upload waits in the gateway's bounded buffer, beside uploads for a tunnel
            # that is down.
            buffer = net.gateways[self.mdcs.index(mdc)].buffer
            if dark:
                net.held_for_mdc += 1
            else:
                net.pushed_back += 1
            if not buffer.hold(env.now, size):
                net.pushback_overflows += 1
                self._gone_past_gateway(m, lo, hi, committed, "gateway_buffer_overflow")
                return
            try:
                while not mdc.is_up(env.now):
                    yield mdc.pool.until_available()
                yield mdc.pool.admit(size)
            finally:
                buffer.free(size)
            admitted = True
        try:
            yield from mdc.serve(work, size, (m, seq), on_commit=on_commit, admitted=admitted)
        except JobLost as lost:
            if lost.record.work_done:
                # The real pipeline call had run, and the call is the commit: the rows are
                # in the store and the ledger counted them. The simulated service time
                # that follows is the CPU the call took; a crash in it finds nothing
                # uncommitted (with ack "commit", the acknowledgement is lost: the meter's
                # timer runs out and it re-sends, a duplicate).
                return
            self.counters.uploads_lost_at_mdc += 1
            cause = mdc.loss_cause_on_crash()  # None after commit: the meter still has it
            self._gone_past_gateway(m, lo, hi, committed, cause)

    def _gone_past_gateway(
        self, m: int, lo: int, hi: int, committed: simpy.Event | None, cause: str | None
    ) -> None:
        """The copy of readings [lo, hi) the gateway took is gone. Acknowledged on receipt
        (``committed`` None), its readings are lost as ``cause``; acknowledged after commit,
        the meter still holds them and re-sends (no loss; the commit event fails)."""
        self.ledger.drop_copy(m, lo, hi, cause if committed is None else None)
        if committed is not None and not committed.triggered:
            committed.succeed(False)

    def fault_meters(self, fault: FaultSpec) -> np.ndarray | None:
        """Meter indices a fault cuts off the MDCs (None for faults that cut off none)."""
        kind = WORLD_FAULTS.get(fault.kind)
        if kind is None or not kind.cuts_off_meters:
            return None
        net = self.net
        if kind.target is Target.MDC:
            return np.array([m for m, h in enumerate(net.home) if h == fault.mdc], dtype=np.int64)
        hit = {id(c) for c in kind.target.cells_hit(net.cells[fault.region], fault.cell)}
        return np.array([m for m, c in enumerate(net.cell_of) if id(c) in hit], dtype=np.int64)

    def drain_report(self) -> None:
        """Add to the entry of each fault that cut meters off how the backlog it caused
        drained."""
        for entry in self.fault_log:
            fault = self.scenario.faults[entry["index"]]
            meters = self.fault_meters(fault)
            if meters is None:
                continue
            end_s = fault.at_s + fault.duration_s
            entry["meters_affected"] = len(meters)
            entry |= self.ledger.drain_s(meters, end_s, self.scenario.duration_s)
            if WORLD_FAULTS[fault.kind].reconnect_storm:
                cells = list(
                    {id(self.net.cell_of[m]): self.net.cell_of[m] for m in meters}.values()
                )
                window_s = self.scenario.cellular.reconnect_window_s
                entry["reconnect_peak_per_s"] = self.net.reconnect_peak_per_s(
                    cells, end_s, end_s + window_s + 60.0
                )

    def finish(self) -> None:
        """Bring every meter's buffer to the end of the run (late overflow counts too)."""
        for m in range(len(self.meter_ids)):
            if self.buffers.powered[m]:
                self._sync_buffer(m)
            else:
                self._power_restored(m)
