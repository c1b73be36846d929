"""Wiring of the simulated world: meters -> cellular cell -> VPN -> MDC servers -> pipeline.

One scheduler process walks the precomputed upload windows of all meters and opens a
session for a meter with readings to send; the session's uploads (the meter's XML in the
format of docs/upload-format.md, sealed) take their journey (:mod:`twin.world.journey`),
each one short-lived SimPy process of a handful of events. The real pipeline runs on the
real bytes when a simulated core takes the upload. The world also runs the meters' power
losses, each region's weather feed (:mod:`twin.world.weather_feed`), the MDC's batch
analytics and a sampler of the state for the time series.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from hw_models.power_supply import SupplySeries
from hw_models.server import JobLost, Server, ServiceDemand
from meters.device import MeterBuffers, upload_schedule
from meters.espi import Channel, LocalTimeSpec, ReadingTypeSpec
from meters.espi_upload import encode_meter_upload, meter_upload_size
from network.faults import OutageSchedule
from pipeline import AnalysisOutcome, Detection, ForecastRecord, Pipeline
from twin.accounting.attribution import LossScope, attribute_losses
from twin.accounting.counters import Counters
from twin.accounting.ledger import Ledger
from twin.accounting.records import (
    DetectionRecord,
    DrainRecord,
    FaultRecord,
    HostileSend,
    IssuedRecommendation,
)
from twin.accounting.series import SAMPLE_EVERY_S
from twin.rng import component_rng
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import Scenario
from twin.sil.pipeline_worker import PipelineWorker
from twin.sil.service_time import ServiceTime, upload_key
from twin.world.faults import WORLD_FAULTS, MdcEffect, Target, WorldFaultKind
from twin.world.fleet import FleetData, weather_location
from twin.world.hostile import sealed, sealed_bytes
from twin.world.journey import Upload, UploadPath
from twin.world.mdc import Mdc, renewable_supply
from twin.world.network import WorldNetwork
from twin.world.weather_feed import StationUplink, station_ids

if TYPE_CHECKING:
    from twin.sil.live import LiveDelivery


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


def fault_windows(
    faults: Sequence[FaultSpec], select: Callable[[WorldFaultKind], bool], target: str
) -> dict[str, list[tuple[float, float]]]:
    """The windows [at, at + duration) of the world faults whose kind ``select`` picks, per
    target (the FaultSpec field named ``target``: ``"mdc"``, ``"meter"``), merged into
    their union: overlapping or touching faults on one target are one window (DESIGN.md
    §9), so the end of one never ends another early."""
    windows: dict[str, list[tuple[float, float]]] = {}
    for fault in faults:
        kind = WORLD_FAULTS.get(fault.kind)
        if kind is not None and select(kind):
            key = getattr(fault, target)
            windows.setdefault(key, []).append((fault.at_s, fault.at_s + fault.duration_s))
    return {key: OutageSchedule(w).windows for key, w in windows.items()}


class World:
    """Everything one run simulates. ``run()`` advances it to the end of the scenario.

    With ``live`` (:mod:`twin.sil.live`) the uploads go to a real MDC service over HTTP and
    the live delivery drives the clock; ``pipeline`` is then None."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        fleets: list[FleetData],
        pipeline: Pipeline | PipelineWorker | None,
        service_time: ServiceTime,
        progress: Callable[[float], None] | None = None,
        audit_every_s: float | None = None,
        keys: dict[str, bytes] | None = None,
        live: LiveDelivery | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.env = simpy.Environment()
        self.pipeline = pipeline
        self.service_time = service_time
        self.progress = progress
        self.audit_every_s = audit_every_s
        self.counters = Counters()
        self.detections: list[DetectionRecord] = []  # from the MDC's batch analytics
        self.forecasts: list[ForecastRecord] = []  # issued by the batch analytics
        self.events: list[DetectionRecord] = []  # normal events the analytics recognised
        self.recommendations: list[IssuedRecommendation] = []  # one per new detection
        self.digests: list[dict[str, Any]] = []  # the analytics' daily fleet digests
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
        self.ledger = Ledger(n_readings, sample_s, clock=lambda: self.env.now)
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
        dark = fault_windows(scenario.faults, lambda k: k.on_mdc is MdcEffect.DARK, "mdc")
        #: meter index -> the merged windows [start, end) in which it has no power, s
        self.unpowered = {
            self.index[meter]: windows
            for meter, windows in fault_windows(
                scenario.faults, lambda k: k.on_meter_power, "meter"
            ).items()
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
                power_losses=[(a, b - a) for a, b in dark.get(spec.name, [])],
            )
            for spec in scenario.mdcs
        ]
        self.net = WorldNetwork(self.env, scenario, seed, fleets, self.mdcs)
        self.path = UploadPath(
            self.env,
            self.net,
            self.mdcs,
            self.ledger,
            self.buffers,
            self.counters,
            service_time,
            pipeline,
            self.n_channels,
            self._discarded,
            live,
        )
        self.live = live
        if live is not None:
            live.attach(self.env, self.path, self._epoch_labels_s)
        # Each region's met station and forecast product (twin.world.weather_feed).
        centre = weather_location(scenario) if scenario.weather.feed.enabled else (0.0, 0.0)
        self.feeds = [
            StationUplink(
                self.env, scenario, sid.removeprefix("met-"), centre, self.net, self.mdcs,
                pipeline, service_time, None if keys is None else keys.get(sid), live,
            )
            for sid in station_ids(scenario)
        ]  # fmt: skip
        # What happened to each world fault, in scenario order (ground truth for results).
        self.fault_log: list[FaultRecord] = []
        # Pending upload faults per meter, earliest first.
        self.hostile: dict[str, list[FaultRecord]] = {}
        for index, fault in enumerate(scenario.faults):
            kind = WORLD_FAULTS.get(fault.kind)
            if kind is None:
                continue  # field faults: their ground truth comes with the fleet's data
            record = FaultRecord(index, fault.kind, fault.at_s)
            target = kind.target
            if target is Target.CELL or target is Target.REGION:
                record.region = fault.region
            if target is Target.CELL:
                record.cell = fault.cell
            if target is Target.MDC:
                record.mdc = fault.mdc
            if target is Target.METER:
                record.meter_id = fault.meter
            if kind.timed:
                record.duration_s = fault.duration_s
            record.effect = self.net.apply_fault(fault, seed) or {}
            if kind.on_upload is not None:
                record.hostile = HostileSend(fault.payload)
                self.hostile.setdefault(fault.meter, []).append(record)
            self.fault_log.append(record)
        for pending in self.hostile.values():
            pending.sort(key=lambda r: (r.at_s, r.index))

    # -- processes ---------------------------------------------------------------------
    def run(self) -> None:
        for m, windows in self.unpowered.items():
            for start_s, end_s in windows:
                self.env.process(self._power_loss(m, start_s, end_s))
        self.env.process(self._scheduler())
        for feed in self.feeds:
            self.env.process(feed.run())
        self.env.process(self._analytics())
        if self.progress is not None or self.audit_every_s:
            self.env.process(self._monitor())
        self.env.process(self._sampler())
        if self.live is not None:
            self.live.run(self.scenario.duration_s)
        else:
            self.env.run(until=self.scenario.duration_s)
        self.finish()
        self.fault_report()

    def _scheduler(self) -> Generator[simpy.Event, Any, None]:
        times, meters = self.window_time_s, self.window_meter
        # where each group of windows at one time ends (the times are sorted)
        ends = np.append(np.flatnonzero(times[1:] != times[:-1]) + 1, len(times))
        i = 0
        for j in ends.tolist() if len(times) else ():
            t = float(times[i])
            if t > self.env.now:
                yield self.env.timeout(t - self.env.now)
            for m in meters[i:j].tolist():
                self._window(m)
            i = j

    def _analytics(self) -> Generator[simpy.Event, Any, None]:
        """The MDC's batch analytics (VEE, fault detectors) every ``analytics_every_s``, as
        a job on a server core like any upload; detections are kept with their times in s
        after the scenario's start, the base of the ground truth they are scored against.
        With the pipeline in a worker, only the points analysed (which set the job's work)
        are waited for; the outcome is recorded when the worker has it."""
        every_s = self.scenario.pipeline.analytics_every_s
        worker = self.pipeline if isinstance(self.pipeline, PipelineWorker) else None
        while True:
            yield self.env.timeout(every_s)

            def work(server: Server) -> ServiceDemand:
                now_epoch_s = self.epoch_s + int(self.env.now)
                if worker is not None:
                    reported: list[float] = []
                    points = worker.analyze_later(
                        now_epoch_s, lambda outcome: self._analysed(outcome, reported[0])
                    )
                    service_s = self.service_time.known_analysis(points)
                    reported.append(self.env.now + service_s / server.speed_factor)
                else:
                    assert not isinstance(self.pipeline, PipelineWorker)
                    outcome, service_s = self.service_time.analysis(self.pipeline, now_epoch_s)
                    points = outcome.points_analysed
                    self._analysed(outcome, self.env.now + service_s / server.speed_factor)
                self.counters.analyses += 1
                self.counters.points_analysed += points
                # the detectors run on the MDC's accelerator when it has one
                return ServiceDemand({"analyze": service_s}, offload_items=points)

            mdc = next((m for m in self.mdcs if m.is_up(self.env.now)), None)
            if mdc is None:
                continue  # every MDC is down: this analysis is skipped
            with contextlib.suppress(JobLost):  # a server went down under it: next run
                yield from mdc.serve(work, 0)

    def _analysed(self, outcome: AnalysisOutcome, reported_s: float) -> None:
        """Record what a batch analysis found, reported at ``reported_s`` (s after the
        start)."""
        self.forecasts.extend(outcome.forecasts)
        self.detections += [self._record(d, reported_s) for d in outcome.detections]
        self.events += [self._record(d, reported_s) for d in outcome.events]
        self.recommendations += [
            IssuedRecommendation(reported_s, r) for r in outcome.recommendations
        ]
        if outcome.digest is not None:
            self.digests.append(outcome.digest.to_json())

    def _record(self, d: Detection, reported_s: float) -> DetectionRecord:
        """A detection or event of the analytics, its times in s after the start."""
        return DetectionRecord(
            kind=d.kind,
            series_id=d.series_id,
            start_s=float(d.start_s - self.epoch_s),
            end_s=float(d.end_s - self.epoch_s),
            detected_s=float(d.detected_s - self.epoch_s),
            reported_s=reported_s,
            confidence=float(d.confidence),
            message=d.message,
        )

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

    def _power_loss(
        self, m: int, start_s: float, end_s: float
    ) -> Generator[simpy.Event, Any, None]:
        """Meter ``m`` has no power over [start_s, end_s) (one merged window of its
        ``meter_power_loss`` faults): what its RAM held since the last NVM flush is lost,
        nothing is recorded until power returns."""
        yield self.env.timeout(start_s)
        produced = self._sync_buffer(m)
        lo, hi = self.buffers.power_loss(m, produced, int(self.flush_every[m]))
        self.ledger.drop_copy(m, lo, hi, "meter_power_loss")
        if end_s >= self.scenario.duration_s:
            return  # still unpowered at the end: finish() settles the unrecorded readings
        yield self.env.timeout(end_s - start_s)
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

    def _body(
        self, m: int, lo: int, hi: int, seq: int
    ) -> tuple[bytes | None, int, FaultRecord | None]:
        """What the meter sends: its upload's XML (docs/upload-format.md), sealed, or what an
        upload fault due now makes of it; its size, bytes; and that fault's record. The bytes
        are None for a genuine upload that ``model`` mode costs from its size: only the size
        is computed (exactly, :func:`meters.espi_upload.meter_upload_size`)."""
        meter_id = self.meter_ids[m]
        key = self.keys[meter_id] if self.keys is not None else b""
        document = (
            meter_id,
            seq,
            self._epoch_labels_s(m, lo, hi),
            [Channel(rt, values[lo:hi]) for rt, values in self.channels[m]],
            self.epoch_s + int(self.env.now),
            self.local_time,
        )
        pending = self.hostile.get(meter_id)
        if pending and self.env.now >= pending[0].at_s:
            record = pending.pop(0)
            assert record.hostile is not None  # only upload faults are pending
            record.hostile.sent_at_s = self.env.now
            fault = self.scenario.faults[record.index]
            rewrite = WORLD_FAULTS[fault.kind].on_upload
            assert rewrite is not None
            body = encode_meter_upload(*document)
            hostile = rewrite.rewrite(fault.payload, body, meter_id, seq, key)
            return hostile, len(hostile), record
        if not self.service_time.needs_bytes(upload_key(meter_id, seq)):
            return None, sealed_bytes(meter_upload_size(*document), meter_id, seq, key), None
        body = sealed(encode_meter_upload(*document), meter_id, seq, key)
        return body, len(body), None

    def _labels_s(self, m: int, lo: int, hi: int, origin_s: int = 0) -> np.ndarray:
        """Interval starts meter ``m`` writes for readings [lo, hi), s after ``origin_s``
        (default: the run's start): nominal, plus the shift of a clock jump."""
        step_s = int(self.sample_s[m])
        starts = np.arange(origin_s + step_s * lo, origin_s + step_s * hi, step_s, dtype=np.int64)
        shift = self.label_shift.get(m)
        return starts if shift is None else starts + shift[lo:hi]

    def _epoch_labels_s(self, m: int, lo: int, hi: int) -> np.ndarray:
        """:meth:`_labels_s` as epoch seconds: the interval starts in the store."""
        return self._labels_s(m, lo, hi, self.epoch_s)

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
        """Send readings [lo, hi) with retries (:class:`~twin.world.journey.UploadPath`);
        True when the meter got its acknowledgement. ``cycle`` is the meter's power cycle
        count at the session's start: a power loss ends the session (the modem is off) and
        voids any acknowledgement after it."""
        counters = self.counters
        counters.uploads_started += 1
        meter_id = self.meter_ids[m]
        seq = self.buffers.take_sequence_no(m)
        body, size_bytes, fault = self._body(m, lo, hi, seq)
        counters.upload_bytes_max = max(counters.upload_bytes_max, size_bytes)
        # The session holds the upload in memory until it ends: a copy of its readings, so
        # that the meter evicting them from a full buffer meanwhile does not lose them.
        self.ledger.add_copy(m, lo, hi)
        upload = Upload(m, meter_id, seq, lo, hi, body, size_bytes, fault, cycle)
        acknowledged = yield from self.path.send(upload, self.rng[meter_id])
        if not acknowledged:
            counters.uploads_failed += 1
            if fault is not None and fault.hostile is not None and not fault.hostile.delivered:
                # never reached an MDC: the upload fault is still due next session
                self.hostile[meter_id].insert(0, fault)
                fault.hostile.sent_at_s = None
        # the upload's in-memory copy is gone; the data's fate is with the meter's buffer
        # (acknowledged: handed on to the copy delivered to the MDC)
        self.ledger.drop_copy(m, lo, hi, None)
        return acknowledged

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

    def fault_report(self) -> None:
        """Add to the entry of each fault the readings it lost (each loss of the run laid at
        the door of at most one fault, :mod:`twin.accounting.attribution`) and, for a fault
        that cut meters off, how the backlog it caused drained."""
        horizon_s = self.scenario.duration_s
        scopes = []
        for record in self.fault_log:
            fault = self.scenario.faults[record.index]
            kind = WORLD_FAULTS[fault.kind]
            start_s, end_s = fault.at_s, fault.at_s + fault.duration_s
            meters = self.fault_meters(fault)
            if meters is None:  # the meter's own fault: its power, its upload
                meters = np.array([self.index[fault.meter]], dtype=np.int64)
                if record.hostile is not None:  # lost when that upload is rejected
                    sent_s = record.hostile.sent_at_s
                    start_s, end_s = (start_s if sent_s is None else sent_s), horizon_s
            else:
                drain_s, pending = self.ledger.drain_s(meters, end_s, horizon_s)
                peak_per_s = None
                if kind.reconnect_storm:
                    cells = list(
                        {id(self.net.cell_of[m]): self.net.cell_of[m] for m in meters}.values()
                    )
                    window_s = self.scenario.cellular.reconnect_window_s
                    peak_per_s = self.net.reconnect_peak_per_s(
                        cells, end_s, end_s + window_s + 60.0
                    )
                record.drain = DrainRecord(len(meters), drain_s, pending, peak_per_s)
                # its consequences last until its backlog drained (or to the end)
                end_s = horizon_s if pending else end_s + (drain_s or 0.0)
            scopes.append(LossScope(meters, kind.loss_causes, start_s, end_s))
        lost = attribute_losses(self.ledger.losses(), scopes)
        for record, n in zip(self.fault_log, lost, strict=True):
            record.lost = n

    def finish(self) -> None:
        """Bring every meter's buffer to the end of the run (late overflow counts too)."""
        for m in range(len(self.meter_ids)):
            if self.buffers.powered[m]:
                self._sync_buffer(m)
            else:
                self._power_restored(m)
