"""Wiring of the simulated world: meters -> cellular cell -> VPN -> MDC servers -> pipeline.

One scheduler process walks the precomputed upload windows of all meters; each upload is
one short-lived SimPy process (a handful of events: the cell attempt, the VPN transit, the
MDC queue and service, the acknowledgement). The real pipeline runs on the real XML bytes
when a simulated core takes the upload.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from hw_models.server import Server, ServerPool
from meters.device import MeterBuffers, upload_schedule
from meters.espi import Channel, LocalTimeSpec, ReadingTypeSpec, encode_meter_upload
from network.cellular import Cell
from pipeline.auth import seal
from pipeline.service import Pipeline
from twin.bridge import ServiceTime
from twin.fleet import FleetData
from twin.hostile import HOSTILE_PAYLOADS, TAMPERED_ENVELOPES
from twin.ledger import Ledger, LedgerError
from twin.rng import component_rng
from twin.scenario import FaultSpec, Scenario


@dataclass
class Counters:
    """Upload-level counts over the run."""

    uploads_started: int = 0
    uploads_delivered: int = 0  # copies that reached the MDC (retries and duplicates included)
    uploads_acknowledged: int = 0
    uploads_failed: int = 0  # retry budget exhausted; the readings stay in the meter
    windows_skipped_busy: int = 0
    uploads_rejected: int = 0
    analyses: int = 0  # batch analytics runs
    points_analysed: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)


#: Interval of the run's time series (queue depth, busy cores, open sessions, cell state), s.
SAMPLE_EVERY_S = 300.0


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
        self.region = [f.spec.region for f in fleets for _ in f.meter_ids]
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
        self.window_time_s, self.window_meter = upload_schedule(
            np.concatenate([f.upload_offset_s for f in fleets]) if fleets else np.zeros(0),
            np.array([f.spec.meter.upload_s for f in fleets for _ in f.meter_ids]),
            scenario.duration_s,
        )
        self.rng = {m: component_rng(seed, f"meter/{m}/network") for m in self.meter_ids}
        self.cells = {region: Cell(self.env, scenario.cellular) for region in scenario.regions}
        mdc = scenario.mdcs[0]
        self.pool = ServerPool.build(
            self.env, mdc.name, mdc.servers, mdc.cores_per_server, mdc.speed_factor
        )
        # What happened to each injected fault, in scenario order (ground truth for results).
        self.fault_log: list[dict[str, Any]] = []
        # Pending malformed uploads per meter, earliest first: (at_s, fault index).
        self.hostile: dict[str, list[tuple[float, int]]] = {}
        for index, fault in enumerate(scenario.faults):
            entry: dict[str, Any] = {"index": index, "kind": fault.kind, "at_s": fault.at_s}
            if fault.kind == "cell_outage":
                self.cells[fault.region].add_outage(fault.at_s, fault.at_s + fault.duration_s)
                entry |= {"region": fault.region, "duration_s": fault.duration_s}
            elif fault.kind in ("malformed_upload", "tampered_upload"):
                self.hostile.setdefault(fault.meter, []).append((fault.at_s, index))
                entry |= {
                    "meter_id": fault.meter,
                    "payload": fault.payload,
                    "sent_at_s": None,
                    "delivered": False,
                }
            elif fault.kind == "meter_power_loss":
                entry |= {"meter_id": fault.meter, "duration_s": fault.duration_s}
            else:
                continue  # field faults: their ground truth comes with the fleet's data
            self.fault_log.append(entry)
        for pending in self.hostile.values():
            pending.sort()

    # -- processes ---------------------------------------------------------------------
    def run(self) -> None:
        for fault in self.scenario.faults:
            if fault.kind == "meter_power_loss":
                self.env.process(self._power_loss(self.index[fault.meter], fault))
        self.env.process(self._scheduler())
        self.env.process(self._analytics())
        if self.progress is not None or self.audit_every_s:
            self.env.process(self._monitor())
        self.env.process(self._sampler())
        self.env.run(until=self.scenario.duration_s)
        self.finish()

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

            def work(server: Server) -> float:
                outcome, service_s = self.service_time.analysis(
                    self.pipeline, self.epoch_s + int(self.env.now)
                )
                self.counters.analyses += 1
                self.counters.points_analysed += outcome.points_analysed
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
                return service_s

            yield from self.pool.serve(work)

    def _sampler(self) -> Generator[simpy.Event, Any, None]:
        """Record the state that only exists during the run, every ``SAMPLE_EVERY_S``."""
        regions = sorted(self.cells)
        while True:
            self.samples.append(
                (
                    self.env.now,
                    float(self.pool.queued()),
                    float(sum(s.resource.count for s in self.pool.servers)),
                    float(np.count_nonzero(self.buffers.busy)),
                    *(float(self.cells[r].is_up(self.env.now)) for r in regions),
                )
            )
            yield self.env.timeout(SAMPLE_EVERY_S)

    def sample_columns(self) -> list[str]:
        """Names of the columns of ``samples``."""
        return ["t_s", "uploads_waiting", "cores_busy", "sessions_open"] + [
            f"cell_up_{r}" for r in sorted(self.cells)
        ]

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
        while a backlog remains (after an outage), each acknowledged before the next."""
        chunk = int(self.max_upload[m])
        cycle = int(self.buffers.power_cycles[m])
        while True:
            acknowledged = yield from self._upload(m, lo, hi, cycle)
            if not acknowledged or hi - lo < chunk:
                break
            lo, hi = self.buffers.pending(m, self._sync_buffer(m))
            hi = min(hi, lo + chunk)
            if hi <= lo:
                break
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
            if fault.kind == "tampered_upload":
                return TAMPERED_ENVELOPES[fault.payload](body, meter_id, seq, key), index
            body = HOSTILE_PAYLOADS[fault.payload](body)
            return (seal(meter_id, seq, body, key) if key else body), index
        return (seal(meter_id, seq, body, key) if key else body), None

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
        """Send readings [lo, hi) with retries; True when the MDC acknowledged them.
        ``cycle`` is the meter's power cycle count at the session's start: a power loss
        ends the session (the modem is off) and voids any acknowledgement after it."""
        counters = self.counters
        counters.uploads_started += 1
        seq = self.buffers.take_sequence_no(m)
        body, fault = self._body(m, lo, hi, seq)
        # The session holds the upload in memory until it ends: a copy of its readings, so
        # that the meter evicting them from a full buffer meanwhile does not lose them.
        self.ledger.add_copy(m, lo, hi)
        cell = self.cells[self.region[m]]
        profile = cell.profile
        rng = self.rng[self.meter_ids[m]]
        vpn = self.scenario.vpn
        for attempt in range(1, profile.max_attempts + 1):
            if int(self.buffers.power_cycles[m]) != cycle:
                break
            result = yield from cell.attempt(len(body), rng)
            if result.delivered:
                yield self.env.timeout(vpn.transit_s(len(body)))
                self.ledger.add_copy(m, lo, hi)
                counters.uploads_delivered += 1
                if fault is not None:
                    self.fault_log[fault]["delivered"] = True
                self.env.process(self._at_mdc(m, lo, hi, seq, body))
                if not result.ack_lost:
                    # Acknowledged on receipt by the MDC gateway: back through VPN and cell.
                    yield self.env.timeout(vpn.latency_s + profile.access_latency.sample(rng))
                    if int(self.buffers.power_cycles[m]) == cycle:
                        for a, b in self.buffers.acknowledge_runs(m, lo, hi):
                            self.ledger.drop_copy(m, a, b, None)
                        counters.uploads_acknowledged += 1
                    self.ledger.drop_copy(m, lo, hi, None)  # the upload's in-memory copy
                    return True
                yield self.env.timeout(profile.ack_timeout_s)
            if attempt < profile.max_attempts:
                yield self.env.timeout(profile.backoff_s(attempt))
        counters.uploads_failed += 1
        if fault is not None and not self.fault_log[fault]["delivered"]:
            # never reached the MDC: the malformed upload is still due at the next session
            self.hostile[self.meter_ids[m]].insert(0, (self.scenario.faults[fault].at_s, fault))
            self.fault_log[fault]["sent_at_s"] = None
        # the upload's in-memory copy is gone; the data's fate is with the meter's buffer
        self.ledger.drop_copy(m, lo, hi, None)
        return False

    def _at_mdc(
        self, m: int, lo: int, hi: int, seq: int, body: bytes
    ) -> Generator[simpy.Event, Any, None]:
        def work(server: Server) -> float:
            outcome, service_s = self.service_time.upload(self.pipeline, body)
            commit_s = self.env.now + service_s / server.speed_factor
            channels = int(self.n_channels[m])
            if outcome.accepted:
                if outcome.n_readings != channels * (hi - lo):
                    raise LedgerError(
                        f"{self.meter_ids[m]} seq {seq}: pipeline read {outcome.n_readings} "
                        f"readings, the meter sent {hi - lo} x {channels} channels"
                    )
                fresh = self.ledger.store(m, lo, hi, commit_s, self._discarded(m, lo, hi))
                if channels * fresh != outcome.inserted:
                    raise LedgerError(
                        f"{self.meter_ids[m]} seq {seq}: store inserted {outcome.inserted}, "
                        f"ledger expected {fresh} new readings x {channels} channels"
                    )
            else:
                auth = (outcome.reason or "").startswith("auth_")
                self.ledger.drop_copy(m, lo, hi, "rejected_auth" if auth else "rejected_invalid")
                self.counters.uploads_rejected += 1
                self.counters.rejections.append(
                    {
                        "meter_id": self.meter_ids[m],
                        "sequence_no": seq,
                        "t_s": self.env.now,
                        "readings": hi - lo,
                        "reason": outcome.reason,
                        "stage": outcome.rejected_stage,
                    }
                )
            return service_s

        yield from self.pool.serve(work)

    def finish(self) -> None:
        """Bring every meter's buffer to the end of the run (late overflow counts too)."""
        for m in range(len(self.meter_ids)):
            if self.buffers.powered[m]:
                self._sync_buffer(m)
            else:
                self._power_restored(m)
