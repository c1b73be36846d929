"""An upload's journey from the meter's modem to the pipeline and back: the cell (attempts
and retries, :func:`network.cellular.upload_with_retries`), the MDC gateway and its VPN
tunnel, the backbone, the MDC's ingest memory and a server core, where the real pipeline
takes the bytes; then the acknowledgement back to the meter.

An :class:`Upload` carries the upload's identity and readings through all of it; every copy
handed to a gateway (a retry after a lost acknowledgement is another copy) is a
:class:`Handoff`. Each upload is one short-lived SimPy process of a handful of events.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from hw_models.server import JobLost, Server, ServiceDemand
from meters.device import MeterBuffers
from network.cellular import AttemptResult, upload_with_retries
from network.vpn import VpnDelivery
from twin.accounting.counters import Counters, Rejection
from twin.accounting.ledger import Ledger, LedgerError
from twin.accounting.records import FaultRecord
from twin.sil.pipeline_worker import Expected, PipelineWorker
from twin.sil.service_time import PipelineCalls, ServiceTime, upload_key
from twin.world.mdc import Mdc
from twin.world.network import WorldNetwork

if TYPE_CHECKING:
    from pipeline import UploadOutcome
    from twin.sil.live import LiveDelivery

#: Bytes the store writes to disk per reading row: about 24 B a row with its indexes (the
#: baseline scenario's store.sqlite), written twice by SQLite in WAL mode (the WAL, then
#: the checkpoint).
STORE_WRITE_BYTES_PER_ROW = 48


@dataclass(slots=True)
class Upload:
    """One upload of a meter: ``meter`` (its index in the run) and ``meter_id``,
    ``sequence_no`` (with the meter id, the upload's identity, DESIGN.md §3), the readings
    ``[lo, hi)`` it carries, the ``body`` sent (sealed; None when nothing reads the bytes: a
    genuine upload ``model`` mode costs from its size) and its ``size_bytes``, the record of
    the hostile-upload fault it carries (``fault``, None for a genuine upload) and the
    meter's power ``cycle`` when its session started (an acknowledgement after a power loss
    is void)."""

    meter: int
    meter_id: str
    sequence_no: int
    lo: int
    hi: int
    body: bytes | None
    size_bytes: int
    fault: FaultRecord | None
    cycle: int


@dataclass(slots=True)
class Handoff:
    """One copy of ``upload`` that crossed the cell to MDC ``mdc``'s gateway (index in the
    run): the one-way ``backbone_s`` from the meter's home MDC, what the gateway did with it
    (``delivery``) and, for an MDC that acknowledges after commit, the ``committed`` event
    (succeeds True when stored, False when the copy is gone)."""

    upload: Upload
    mdc: int
    backbone_s: float
    delivery: VpnDelivery
    committed: simpy.Event | None


class UploadPath:
    """The way uploads take in one run, from the cell to the pipeline (module docstring).

    ``discarded(meter, lo, hi)`` says which readings of [lo, hi) the store will drop because
    another reading already holds their label (None: none can). With ``live`` the uploads
    go to a real service over HTTP instead of ``pipeline`` (:mod:`twin.sil.live`): past
    the gateway and any wait for a dark MDC, the live delivery takes them, and the meter's
    acknowledgement is the service's answer."""

    def __init__(
        self,
        env: simpy.Environment,
        net: WorldNetwork,
        mdcs: list[Mdc],
        ledger: Ledger,
        buffers: MeterBuffers,
        counters: Counters,
        service_time: ServiceTime,
        pipeline: PipelineCalls | None,
        n_channels: np.ndarray,
        discarded: Callable[[int, int, int], np.ndarray | None],
        live: LiveDelivery | None = None,
    ) -> None:
        self.env = env
        self.net = net
        self.mdcs = mdcs
        self.ledger = ledger
        self.buffers = buffers
        self.counters = counters
        self.service_time = service_time
        self.pipeline = pipeline
        self.n_channels = n_channels
        self.discarded = discarded
        self.live = live
        #: The pipeline when it runs in a worker whose meter uploads need not be waited for
        #: (:mod:`twin.sil.pipeline_worker`), and each meter's newest sequence number handed
        #: to it.
        self.worker = pipeline if isinstance(pipeline, PipelineWorker) else None
        self.newest_sequence_no = np.full(len(n_channels), -1, dtype=np.int64)

    def send(
        self, upload: Upload, rng: np.random.Generator
    ) -> Generator[simpy.Event, Any, bool]:
        """Send ``upload`` with the cell's retries; True when the meter got its
        acknowledgement. Draws from the meter's ``rng``."""
        m = upload.meter
        cell = self.net.cell_of[m]
        journey = _Journey(self, upload, rng)
        result = yield from upload_with_retries(
            cell, upload.size_bytes, rng, int(self.net.ce_level[m]), journey
        )
        return result.acknowledged

    def deliver(
        self, upload: Upload, k: int, backbone_s: float, ack_lost: bool, rng: np.random.Generator
    ) -> Generator[simpy.Event, Any, bool]:
        """The upload crossed the cell to MDC ``k``'s gateway: hand it to the tunnel and
        wait for the acknowledgement. An MDC that acknowledges on receipt answers from the
        gateway at once (a store-and-forward broker: what its buffer later drops is lost);
        one that acknowledges after commit answers when the pipeline has stored it, back
        across backbone, tunnel and cell, or never (then the meter's timer runs out)."""
        env, net = self.env, self.net
        m = upload.meter
        mdc, gateway = self.mdcs[k], net.gateways[k]
        cell, ce_level = net.cell_of[m], int(net.ce_level[m])
        delivered_s = env.now
        delivery = gateway.send(env.now, upload.size_bytes)
        self.ledger.add_copy(m, upload.lo, upload.hi)  # the copy on its way to the MDC
        self.counters.uploads_delivered += 1
        committed = env.event() if mdc.ack_after_commit or self.live is not None else None
        env.process(self.at_mdc(Handoff(upload, k, backbone_s, delivery, committed)))
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
        if int(self.buffers.power_cycles[m]) != upload.cycle:
            return False  # the modem went off before the acknowledgement arrived
        for a, b in self.buffers.acknowledge_runs(m, upload.lo, upload.hi):
            self.ledger.drop_copy(m, a, b, None)
        self.counters.uploads_acknowledged += 1
        net.hops.add("ack", env.now - delivered_s)  # gateway receipt to the meter's ack
        return True

    def at_mdc(self, handoff: Handoff) -> Generator[simpy.Event, Any, None]:
        """The copy's way from the gateway to its MDC's pipeline: tunnel (and the gateway
        buffer while the tunnel is down), backbone, RAM admission and a core."""
        env, net = self.env, self.net
        upload, delivery = handoff.upload, handoff.delivery
        m = upload.meter
        mdc = self.mdcs[handoff.mdc]
        size = upload.size_bytes
        sent_s = env.now
        if not delivery.accepted:  # the gateway's buffer was full
            net.gateway_overflows += 1
            self.gone_past_gateway(handoff, "vpn_down_buffer_overflow")
            return
        if delivery.arrival_s == float("inf"):
            return  # the tunnel stays down past the horizon: in flight at the end
        yield env.timeout(delivery.arrival_s - sent_s)
        net.hops.add("vpn", env.now - sent_s)
        if handoff.backbone_s > 0.0:
            transfer_s = net.backbone.transfer_s(net.home[m], mdc.name, size)
            yield env.timeout(transfer_s)
            net.hops.add("backbone", transfer_s)
        if not mdc.is_up(env.now):  # it went down meanwhile: the gateway fails over
            target = net.route(m)
            if target is not None and target[0] != handoff.mdc:
                other = self.mdcs[target[0]]
                transfer_s = net.backbone.transfer_s(mdc.name, other.name, size)
                yield env.timeout(transfer_s)
                net.hops.add("backbone", transfer_s)
                mdc = other
        if upload.fault is not None and upload.fault.hostile is not None:
            upload.fault.hostile.delivered = True
        arrived_s = env.now

        def work(server: Server) -> ServiceDemand:
            net.hops.add("mdc_queue", env.now - arrived_s)
            service_s, rows = self._process(upload, server)
            write_bytes = rows * STORE_WRITE_BYTES_PER_ROW
            net.hops.add(
                "pipeline",
                service_s / server.speed_factor + write_bytes / server.disk_write_bps,
            )
            return ServiceDemand({"pipeline": service_s}, write_bytes=write_bytes)

        committed = handoff.committed

        def on_commit(server: Server) -> None:
            if committed is not None:
                committed.succeed(True)

        admitted = False
        dark = not mdc.is_up(env.now)
        if dark or (self.live is None and not mdc.pool.would_admit(size)):
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
                self.gone_past_gateway(handoff, "gateway_buffer_overflow")
                return
            try:
                while not mdc.is_up(env.now):
                    yield mdc.pool.until_available()
                if self.live is None:
                    yield mdc.pool.admit(size)
            finally:
                buffer.free(size)
            admitted = True
        if self.live is not None:  # the real service stands in for the MDC's servers
            yield from self.live.serve(handoff, self.mdcs.index(mdc))
            return
        try:
            yield from mdc.serve(
                work, size, (m, upload.sequence_no), on_commit=on_commit, admitted=admitted
            )
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
            self.gone_past_gateway(handoff, cause)

    def _process(self, upload: Upload, server: Server) -> tuple[float, int]:
        """The pipeline's call on a core of ``server`` (or the model's cost of it): its
        service time at speed 1, s, and the rows it wrote; the ledger learns the outcome."""
        env, ledger = self.env, self.ledger
        m, lo, hi = upload.meter, upload.lo, upload.hi
        channels = int(self.n_channels[m])
        assert self.pipeline is not None  # in-process runs only (live ones serve over HTTP)
        n_readings = channels * (hi - lo)
        body = upload.body
        if body is None:  # model mode, not sampled: only its size was made
            outcome, service_s = None, self.service_time.modelled_upload(
                upload.size_bytes, n_readings
            )
        elif self.worker is not None and self._outcome_known(upload):
            # genuine, in order and of a size always admitted: its outcome is known, the
            # worker checks it later (twin.sil.pipeline_worker)
            service_s = self.service_time.known_upload(upload.size_bytes, n_readings)
            committed_s = env.now + service_s / server.speed_factor
            fresh = ledger.store(m, lo, hi, committed_s, self.discarded(m, lo, hi))
            inserted = channels * fresh
            self.worker.submit(
                body, Expected(upload.meter_id, upload.sequence_no, n_readings, inserted)
            )
            return service_s, inserted
        else:
            outcome, service_s = self.service_time.upload(
                self.pipeline,
                body,
                n_readings=n_readings,
                force=upload.fault is not None,
                key=upload_key(upload.meter_id, upload.sequence_no),
            )
        committed_s = env.now + service_s / server.speed_factor
        if outcome is None:  # model mode, not sampled: costed, counted as stored
            rows = channels * ledger.store(m, lo, hi, committed_s, self.discarded(m, lo, hi))
            self.counters.rows_modelled += rows
            return service_s, rows
        return service_s, self.record_outcome(upload, outcome, committed_s)

    def _outcome_known(self, upload: Upload) -> bool:
        """Whether the worker's outcome of ``upload`` is known before it runs: a genuine
        upload, in order (not below its meter's newest sequence number handed over) and of a
        size always admitted. Notes its sequence number as handed over."""
        assert self.worker is not None
        m = upload.meter
        newest = int(self.newest_sequence_no[m])
        self.newest_sequence_no[m] = max(newest, upload.sequence_no)
        return (
            upload.fault is None
            and upload.sequence_no >= newest
            and self.worker.limits.size_always_admitted(upload.size_bytes)
        )

    def record_outcome(
        self, upload: Upload, outcome: UploadOutcome, committed_s: float, check: bool = True
    ) -> int:
        """The ledger learns what the pipeline did with a copy of ``upload``: its readings
        are stored (committed at ``committed_s``) or dropped as rejected. Returns the rows
        inserted. ``check``: the rows inserted must be the readings new to the ledger (a
        :class:`~twin.accounting.ledger.LedgerError` if not)."""
        env, ledger = self.env, self.ledger
        m, lo, hi = upload.meter, upload.lo, upload.hi
        channels = int(self.n_channels[m])
        if not outcome.accepted:
            auth = (outcome.reason or "").startswith("auth_")
            ledger.drop_copy(m, lo, hi, "rejected_auth" if auth else "rejected_invalid")
            self.counters.uploads_rejected += 1
            self.counters.rejections.append(
                Rejection(
                    upload.meter_id,
                    upload.sequence_no,
                    env.now,
                    hi - lo,
                    outcome.reason,
                    outcome.rejected_stage,
                )
            )
            return 0
        if outcome.n_readings != channels * (hi - lo):
            raise LedgerError(
                f"{upload.meter_id} seq {upload.sequence_no}: pipeline read "
                f"{outcome.n_readings} readings, the meter sent {hi - lo} x {channels} channels"
            )
        fresh = ledger.store(m, lo, hi, committed_s, self.discarded(m, lo, hi))
        # once model mode has counted readings as stored that the database lacks, a real
        # copy of them inserts rows the ledger calls duplicates: then the rows inserted lie
        # between the new readings' and the upload's (the end-of-run row check covers the
        # totals)
        low = channels * fresh
        high = channels * (hi - lo) if self.counters.rows_modelled else low
        if check and not low <= outcome.inserted <= high:
            raise LedgerError(
                f"{upload.meter_id} seq {upload.sequence_no}: store inserted "
                f"{outcome.inserted}, ledger expected {fresh} new readings x {channels} "
                "channels" + (f" (at most {high} rows in model mode)" if high != low else "")
            )
        return outcome.inserted

    def gone_past_gateway(self, handoff: Handoff, cause: str | None) -> None:
        """The copy the gateway took is gone. Acknowledged on receipt (no ``committed``
        event), its readings are lost as ``cause``; acknowledged after commit, the meter
        still holds them and re-sends (no loss; the commit event fails)."""
        upload, committed = handoff.upload, handoff.committed
        self.ledger.drop_copy(
            upload.meter, upload.lo, upload.hi, cause if committed is None else None
        )
        if committed is not None and not committed.triggered:
            committed.succeed(False)


class _Journey:
    """The retry hooks of one upload (:class:`network.cellular.RetryHooks`): the modem is on
    while the meter's power cycle is the session's; before each attempt the network routes
    the upload and the session table says which handshake it needs; a delivered attempt
    goes on to the gateway (:meth:`UploadPath.deliver`).

    The radio hop is the delivering attempt; what came before it (failed attempts, backoff,
    waiting for a dead cell) is the meter's wait."""

    __slots__ = ("attempt_s", "backbone_s", "handshake_kind", "mdc", "path", "rng", "started_s",
                 "upload")  # fmt: skip

    def __init__(self, path: UploadPath, upload: Upload, rng: np.random.Generator) -> None:
        self.path = path
        self.upload = upload
        self.rng = rng
        self.started_s = path.env.now
        self.attempt_s = self.started_s
        self.mdc = -1
        self.backbone_s = 0.0
        self.handshake_kind = "none"

    def powered(self) -> bool:
        return int(self.path.buffers.power_cycles[self.upload.meter]) == self.upload.cycle

    def handshake(self) -> str | None:
        net, m = self.path.net, self.upload.meter
        target = net.route(m)
        if target is None:  # no MDC can take it: nothing answers the meter
            self.path.counters.attempts_unroutable += 1
            return None
        self.mdc, self.backbone_s = target
        self.attempt_s = self.path.env.now
        self.handshake_kind = net.sessions.handshake(m, self.mdc, self.attempt_s)
        return self.handshake_kind

    def failed(self, result: AttemptResult) -> None:
        self.path.net.sessions.broken(self.upload.meter)

    def delivered(self, result: AttemptResult) -> Generator[simpy.Event, Any, bool]:
        path = self.path
        net, now = path.net, path.env.now
        net.sessions.established(self.upload.meter, self.mdc, now, self.handshake_kind)
        net.hops.add("cellular", now - self.attempt_s)
        net.hops.add("meter_wait", self.attempt_s - self.started_s)
        return (
            yield from path.deliver(
                self.upload, self.mdc, self.backbone_s, result.ack_lost, self.rng
            )
        )
