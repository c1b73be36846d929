"""Live mode (DESIGN §11): the simulated network delivers each upload to a real MDC service
(``python -m pipeline serve``) over HTTP, and the service's answer is what the ledger
records and what the meter is acknowledged with.

**What changes against an in-process run.** Past the gateway (and any wait while its MDC
is dark) an upload is POSTed to the service instead of queueing for a simulated core
(:meth:`LiveDelivery.serve`, the hook of :class:`~twin.world.journey.UploadPath`); the
measured request latency is the ``pipeline`` hop; the meter's acknowledgement is the
service's answer, sent back over the simulated backbone, tunnel and cell, whatever the
service's ack mode. The batch analysis is the service's (``POST /v1/analyze`` at the
world's analytics times, :class:`twin.sil.live_run.LiveServiceTime`). At the end the
ledger is checked against the service's own store, rows per meter (``GET /api/meters``),
as an in-process run checks its store's rows.

**Simulated time and the requests in flight.** SimPy is not thread-safe: the requests go
out on the HTTP threads of :class:`~twin.sil.live_http.HttpBridge`, their completions come
back through a queue that the run loop (:meth:`LiveDelivery.run`) polls between
simulation steps. A request sent at simulated time ``t`` whose answer took ``L`` wall
seconds is applied at simulated time ``max(t + L, now)``, ``now`` being where the
simulation is when the run loop sees the answer. The simulation never steps past
``t_oldest + lookahead_s``, ``t_oldest`` the send time of the oldest unanswered request, and
never has more than ``concurrency`` requests unanswered (a SimPy resource: an upload waits
for a slot in simulated time). So an answer is applied at most ``lookahead_s`` late: this
approximates a world in which the service answers after the latency it really had, with
the meters' timers and everything else running on in simulated time meanwhile; with
``lookahead_s = 0`` it is exact and the uploads go one at a time (or only those sent at
the same simulated instant overlap). Paced (``speed``), the loop also waits for the wall
clock: simulated time runs at ``speed`` x real time, falling behind while it waits for
answers and catching up after.

**What a copy's answer means.** An answer naming the outcome (200 or a 4xx rejection)
is final: stored (or duplicates) or rejected with its reason. With receipt acks an
accepted copy stays in flight in the ledger until the service reports its receipt
committed (``committed_through``); 503 means nothing was stored (the meter sends again).
No answer (a timeout, a reset, a killed service) is unknown: the copy stays in flight and
the meter, unacknowledged, sends again; the copy is settled by asking the service what it
stored of the upload's interval starts (``GET /api/readings``) once its fate is decided:
after the service restarted, or at the end. A receipt-acknowledged copy that the
restarted service does not hold is lost as ``mdc_crash_unpersisted``.

**Faults on the real process.** With ``target = "spawn"`` the run starts one service per
MDC on a loopback port (each with its own store in the run's folder, the scenario's ack
mode, the scenario's keys and site registry); an ``mdc_power_loss`` fault kills its MDC's
service (``kill -9``) at the fault's start and restarts it on the same port at its end.

Live runs are not deterministic: latencies, and with them the order of events, change from
run to run.
"""

from __future__ import annotations

import itertools
import queue
import time
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import simpy

from pipeline import Recommendation, UploadOutcome
from pipeline.serve.wire import UploadAnswer
from twin.accounting.ledger import LedgerError
from twin.errors import ScenarioError
from twin.sil.live_http import Completion, HttpBridge, ServiceProcess
from twin.world.journey import Handoff, UploadPath

__all__ = ["LiveDelivery", "LiveOptions", "LiveReport", "Target"]

#: Wall seconds the end of a run waits for the answers still out and for the service to
#: commit what it acknowledged on receipt.
SETTLE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LiveOptions:
    """How a live run reaches its service(s).

    Attributes:
        target: ``"spawn"`` (start a service per MDC) or the base URL of a running service
            that stands in for every MDC of the scenario.
        speed: simulated seconds per wall second; None: as fast as the service answers.
        concurrency: uploads in flight at most.
        lookahead_s: how far simulated time may run past the oldest unanswered request, s
            (module docstring).
        timeout_s: an upload request's timeout, wall s (then it has no answer).
        token: the service's bearer token (for its API; uploads need none).
        commit_wait_s: spawned services with receipt acks: the longest an acknowledged
            upload waits for its commit, wall s (``serve --commit-wait``; None: its
            default), the window a kill loses.
    """

    target: str
    speed: float | None = None
    concurrency: int = 64
    lookahead_s: float = 1.0
    timeout_s: float = 30.0
    token: str | None = None
    commit_wait_s: float | None = None

    def check(self) -> None:
        """Raises ScenarioError naming the bad option."""
        if self.target != "spawn" and not self.target.startswith(("http://", "https://")):
            raise ScenarioError(
                "--live", self.target, "spawn or a URL such as http://127.0.0.1:8080"
            )
        if self.speed is not None and not self.speed > 0:
            raise ScenarioError("--speed", self.speed, "a positive number or max")
        if self.concurrency < 1:
            raise ScenarioError("--concurrency", self.concurrency, "an integer >= 1")
        if self.lookahead_s < 0:
            raise ScenarioError("--lookahead", self.lookahead_s, "a duration >= 0")
        if self.commit_wait_s is not None and self.target != "spawn":
            raise ScenarioError(
                "--commit-wait", self.commit_wait_s, "--live spawn (a running service has its own)"
            )


@dataclass(eq=False)
class Target:
    """One service the run delivers to: its ``url``, its ``ack`` mode, the child process
    (spawned targets), the instance answering now, its receipts known committed, and the
    copies whose fate is still open (``pending``: acknowledged on receipt, receipt number
    -> copy; ``unsure``: no answer, or acknowledged by an instance that died)."""

    name: str
    url: str
    ack: str
    process: ServiceProcess | None = None
    alive: bool = True
    instance: str | None = None
    committed_through: int = 0
    dead_instances: set[str] = field(default_factory=set)
    pending: dict[int, _Copy] = field(default_factory=dict)
    unsure: list[_Copy] = field(default_factory=list)


@dataclass(slots=True)
class _Copy:
    """A copy whose fate is open: its hand-off, the outcome the service answered (None
    without an answer), when it was answered (simulated s) and whether it was acknowledged
    on receipt."""

    handoff: Handoff
    outcome: UploadOutcome | None
    answered_s: float
    on_receipt: bool


@dataclass(slots=True)
class _Request:
    """One upload out to a service: a meter's copy (its ``handoff``) or a met station's
    (``handoff`` None: its answer goes back to the station, never to the ledger)."""

    ticket: int
    handoff: Handoff | None
    target: Target
    send_s: float
    arrived: simpy.Event
    completion: Completion | None = None


@dataclass(frozen=True)
class LiveReport:
    """What a live run saw of its services: ``answers`` by kind (``stored``,
    ``rejected``, ``refused`` for 503, ``unanswered``; a met station's uploads as
    ``station_stored``, ``station_rejected``, ``station_unanswered``), copies settled by
    asking the store (``settled_present``, ``settled_absent``), kills (each followed by a
    restart), the median and p99 request latency (s), the wall time of the simulation
    against the services (s: from its start to every copy settled) and the uploads answered
    per wall second of it."""

    targets: dict[str, str]
    answers: dict[str, int]
    settled_present: int
    settled_absent: int
    kills: int
    latency_p50_s: float | None
    latency_p99_s: float | None
    wall_s: float
    uploads_per_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class LiveDelivery:
    """The uploads of one run delivered to real services (module docstring).

    Args:
        options: the live options.
        targets: the services; ``mdc_target[k]`` is the index of MDC k's service.
        bridge: the HTTP thread.

    An MDC's power losses (``Mdc.power_losses``) kill its service for their windows
    (spawned targets only).
    """

    def __init__(
        self,
        options: LiveOptions,
        targets: list[Target],
        mdc_target: list[int],
        bridge: HttpBridge,
    ) -> None:
        self.options = options
        self.targets = targets
        self.mdc_target = mdc_target
        self.bridge = bridge
        self._requests: dict[int, _Request] = {}
        self._tickets = itertools.count()
        self.answers: Counter[str] = Counter()
        self.latencies_s: list[float] = []
        self.unsure_meters: set[int] = set()
        self.settled = Counter[str]()
        self.kills = 0
        self.run_wall_s = 0.0

    def attach(
        self,
        env: simpy.Environment,
        path: UploadPath,
        labels_s: Callable[[int, int, int], np.ndarray],
    ) -> None:
        """Bind to the world: its environment, its upload path and the interval starts
        (epoch s) meter m writes for readings [lo, hi) (``labels_s(m, lo, hi)``)."""
        self.env = env
        self.path = path
        self.labels_s = labels_s
        self.slots = simpy.Resource(env, capacity=self.options.concurrency)

    # -- the journey's hook ----------------------------------------------------------------
    def serve(self, handoff: Handoff, k: int) -> Generator[simpy.Event, Any, None]:
        """Deliver the copy of ``handoff`` to MDC ``k``'s service and apply its answer at
        the simulated time it came (module docstring)."""
        body = handoff.upload.body
        assert body is not None  # a live run's service time samples every upload
        request = yield from self._post(handoff, body, k)
        self._apply(request, self.env.now)

    def serve_station(
        self, body: bytes, k: int
    ) -> Generator[simpy.Event, Any, UploadOutcome | None]:
        """Deliver a met station's upload to MDC ``k``'s service (as :meth:`serve` a
        meter's); what the service did with it at the simulated time of its answer, None
        without an answer (the station sends it again)."""
        request = yield from self._post(None, body, k)
        completion = request.completion
        assert completion is not None
        self._measured(completion)
        data = completion.body
        if completion.status is None or data is None or "accepted" not in data:
            self.answers["station_unanswered"] += 1
            return None
        answer = UploadAnswer.from_json(data)
        self._observe(request.target, answer)
        self.answers["station_stored" if answer.outcome.accepted else "station_rejected"] += 1
        return answer.outcome

    def _post(
        self, handoff: Handoff | None, body: bytes, k: int
    ) -> Generator[simpy.Event, Any, _Request]:
        """POST ``body`` to MDC ``k``'s service in a free slot; the request once its answer
        is due in simulated time (module docstring)."""
        env = self.env
        target = self.targets[self.mdc_target[k]]
        with self.slots.request() as slot:
            yield slot
            ticket = next(self._tickets)
            request = _Request(ticket, handoff, target, env.now, env.event())
            self._requests[ticket] = request
            self.bridge.post(ticket, f"{target.url}/v1/uploads", body)
            yield request.arrived
            completion = request.completion
            assert completion is not None
            due_s = request.send_s + completion.latency_s
            if due_s > env.now:
                yield env.timeout(due_s - env.now)
        del self._requests[ticket]
        return request

    # -- the run loop ----------------------------------------------------------------------
    def run(self, until_s: float) -> None:
        """Advance the simulation to ``until_s`` (see the module docstring), then settle
        every copy still open."""
        env = self.env
        for k, mdc in enumerate(self.path.mdcs):
            target = self.targets[self.mdc_target[k]]
            for at_s, duration_s in mdc.power_losses:
                env.process(self._outage(target, at_s, duration_s, until_s))
        speed, lookahead_s = self.options.speed, self.options.lookahead_s
        wall0, sim0 = time.perf_counter(), env.now
        while True:
            self._drain(0.0)
            t_next = env.peek()
            if t_next >= until_s:
                break
            oldest = self._oldest_unanswered_s()
            if oldest is not None and t_next > oldest + lookahead_s:
                self._drain(0.05)  # hold simulated time until an answer comes
                continue
            if speed is not None:
                wait_s = wall0 + (t_next - sim0) / speed - time.perf_counter()
                if wait_s > 0:
                    self._drain(min(wait_s, 0.05))
                    continue
            env.step()
        env.run(until=until_s)
        self._settle()
        self.run_wall_s = time.perf_counter() - wall0

    def _oldest_unanswered_s(self) -> float | None:
        for request in self._requests.values():  # in send order
            if request.completion is None:
                return request.send_s
        return None

    def _drain(self, timeout_s: float) -> None:
        """Hand every completion waiting in the queue to its request (waiting up to
        ``timeout_s`` for the first)."""
        completions = self.bridge.completions
        try:
            completion = (
                completions.get(timeout=timeout_s) if timeout_s > 0 else completions.get_nowait()
            )
        except queue.Empty:
            return
        while True:
            request = self._requests[completion.ticket]
            request.completion = completion
            request.arrived.succeed()
            try:
                completion = completions.get_nowait()
            except queue.Empty:
                return

    # -- answers ---------------------------------------------------------------------------
    def _apply(self, request: _Request, t_s: float) -> None:
        """What the answer of ``request`` (its completion) means for the ledger and the
        meter, at simulated time ``t_s``."""
        completion, handoff, target = request.completion, request.handoff, request.target
        assert completion is not None and handoff is not None
        path = self.path
        self._measured(completion)
        upload = handoff.upload
        body = completion.body
        if completion.status is not None and body is not None and "accepted" in body:
            answer = UploadAnswer.from_json(body)
            self._observe(target, answer)
            outcome = answer.outcome
            self.answers["stored" if outcome.accepted else "rejected"] += 1
            if outcome.accepted and not answer.committed:  # acknowledged on receipt
                copy = _Copy(handoff, outcome, t_s, True)
                if answer.instance in target.dead_instances:
                    target.unsure.append(copy)
                else:
                    target.pending[answer.receipt] = copy
                    self._confirm(target)
            else:
                path.record_outcome(
                    upload, outcome, t_s, check=upload.meter not in self.unsure_meters
                )
            self._acknowledge(handoff, True)
        elif completion.status == 503:  # refused: nothing stored, the meter sends again
            self.answers["refused"] += 1
            path.gone_past_gateway(handoff, None)
        else:  # no answer: stored or not, the service will tell later
            self.answers["unanswered"] += 1
            target.unsure.append(_Copy(handoff, None, t_s, False))
            self.unsure_meters.add(upload.meter)
            self._acknowledge(handoff, False)

    def _measured(self, completion: Completion) -> None:
        """The request's latency: the ``pipeline`` hop of the journey."""
        self.path.net.hops.add("pipeline", completion.latency_s)
        self.latencies_s.append(completion.latency_s)

    @staticmethod
    def _acknowledge(handoff: Handoff, acknowledged: bool) -> None:
        committed = handoff.committed
        if committed is not None and not committed.triggered:
            committed.succeed(acknowledged)

    def _observe(self, target: Target, answer: UploadAnswer) -> None:
        """Follow the target's instance (a new one: the copies the old one held are open)
        and its receipts committed."""
        if answer.instance in target.dead_instances:
            return
        if answer.instance != target.instance:
            if target.instance is not None:
                self._instance_gone(target)
            target.instance = answer.instance
            target.committed_through = 0
        target.committed_through = max(target.committed_through, answer.committed_through)

    def _confirm(self, target: Target) -> None:
        """Record the copies acknowledged on receipt that are now known committed, in
        receipt order (the order of the service's writes)."""
        for receipt in sorted(r for r in target.pending if r <= target.committed_through):
            copy = target.pending.pop(receipt)
            assert copy.outcome is not None
            upload = copy.handoff.upload
            self.path.record_outcome(
                upload, copy.outcome, copy.answered_s, check=upload.meter not in self.unsure_meters
            )

    def _instance_gone(self, target: Target) -> None:
        """The instance that answered so far is gone (killed, or replaced): what it
        acknowledged on receipt and did not report committed is open."""
        if target.instance is not None:
            target.dead_instances.add(target.instance)
        target.unsure.extend(target.pending[r] for r in sorted(target.pending))
        target.pending.clear()
        target.instance = None
        target.committed_through = 0

    # -- settling open copies ----------------------------------------------------------------
    def _settle_unsure(self, target: Target) -> None:
        """Ask the (running) service which open copies' readings it holds: held, they are
        stored; not held, the copy is gone (lost as ``mdc_crash_unpersisted`` if it was
        acknowledged on receipt; otherwise the meter still has the readings)."""
        path, ledger = self.path, self.path.ledger
        copies, target.unsure = target.unsure, []
        for copy in copies:
            upload = copy.handoff.upload
            m, lo, hi = upload.meter, upload.lo, upload.hi
            labels = self.labels_s(m, lo, hi)
            status, body, _ = self.bridge.call(
                "GET",
                f"{target.url}/api/readings",
                {"meter": upload.meter_id, "start": int(labels.min()), "end": int(labels.max())},
            )
            if status != 200 or body is None:
                raise LedgerError(f"{target.url}/api/readings answered {status}: {body}")
            held = {int(s) for series in body["series"] for s in series["start_s"]}
            present = np.isin(labels, list(held))
            self.unsure_meters.add(m)
            if present.all():
                self.settled["present"] += 1
                if copy.outcome is not None:
                    path.record_outcome(upload, copy.outcome, copy.answered_s, check=False)
                else:
                    ledger.store(m, lo, hi, copy.answered_s, path.discarded(m, lo, hi))
            elif not present.any():
                self.settled["absent"] += 1
                if copy.on_receipt:
                    path.counters.uploads_lost_at_mdc += 1
                ledger.drop_copy(m, lo, hi, "mdc_crash_unpersisted" if copy.on_receipt else None)
            else:
                raise LedgerError(
                    f"{upload.meter_id} seq {upload.sequence_no}: the service holds "
                    f"{int(present.sum())} of the {hi - lo} interval starts of an upload it "
                    "stores all or nothing of"
                )

    def _outage(
        self, target: Target, at_s: float, duration_s: float, until_s: float
    ) -> Generator[simpy.Event, Any, None]:
        """Kill ``target``'s process at ``at_s`` and restart it ``duration_s`` later."""
        process = target.process
        if process is None:
            return
        yield self.env.timeout(at_s - self.env.now)
        process.kill()
        target.alive = False
        self.kills += 1
        if at_s + duration_s >= until_s:
            return  # dead at the end: `_settle` restarts it to read its store
        yield self.env.timeout(duration_s)
        self._restart(target)

    def _restart(self, target: Target) -> None:
        assert target.process is not None
        target.url = target.process.start(self.bridge)
        self.bridge.reconnect()
        target.alive = True
        self._instance_gone(target)
        self._settle_unsure(target)

    def _settle(self) -> None:
        """The end: wait for the answers still out and apply them, let every service
        commit what it acknowledged, then settle every open copy."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while any(r.completion is None for r in self._requests.values()):
            if time.monotonic() > deadline:
                raise LedgerError(f"{len(self._requests)} requests still unanswered at the end")
            self._drain(0.1)
        for request in list(self._requests.values()):
            assert request.completion is not None
            del self._requests[request.ticket]
            if request.handoff is not None:  # a station's upload past the end: not counted
                self._apply(request, request.send_s + request.completion.latency_s)
        for target in self.distinct_targets():
            if not target.alive:
                self._restart(target)
                continue
            while time.monotonic() < deadline:
                status, health, _ = self.bridge.call("GET", f"{target.url}/healthz")
                if status == 200 and health is not None and health["queue_depth"] == 0:
                    if health["instance"] == target.instance or target.instance is None:
                        target.committed_through = max(
                            target.committed_through, int(health["committed_through"])
                        )
                    if not target.pending or max(target.pending) <= target.committed_through:
                        break
                time.sleep(0.05)
            self._confirm(target)
            if target.pending:  # acknowledged, never reported committed: ask the store
                self._instance_gone(target)
            self._settle_unsure(target)

    def distinct_targets(self) -> list[Target]:
        seen: list[Target] = []
        for target in self.targets:
            if all(target is not t for t in seen):
                seen.append(target)
        return seen

    # -- the service's side of the results ---------------------------------------------------
    def rows_per_meter(self) -> Counter[str]:
        """Rows stored per meter id, summed over the services."""
        rows: Counter[str] = Counter()
        for target in self.distinct_targets():
            status, body, _ = self.bridge.call("GET", f"{target.url}/api/meters")
            if status != 200 or body is None:
                raise LedgerError(f"{target.url}/api/meters answered {status}: {body}")
            rows.update({m: int(n) for m, n in body["rows"].items()})
        return rows

    def recommendations(self) -> list[Recommendation]:
        """The services' recommendations for their open alerts (one per kind, site and
        start), most urgent first, then most costly."""
        found: dict[tuple[str, str, int], Recommendation] = {}
        for target in self.distinct_targets():
            status, body, _ = self.bridge.call(
                "GET", f"{target.url}/api/alerts", {"status": "open"}
            )
            if status == 200 and body is not None:
                for data in body["recommendations"]:
                    r = Recommendation.from_json(data)
                    found.setdefault((r.kind, r.site_id, r.start_s), r)
        return sorted(found.values(), key=lambda r: (r.urgency_rank, -r.cost, r.start_s))

    def report(self) -> LiveReport:
        lat = np.array(self.latencies_s)
        answered = sum(self.answers.values())
        wall_s = self.run_wall_s
        return LiveReport(
            targets={t.name: t.url for t in self.distinct_targets()},
            answers=dict(self.answers),
            settled_present=self.settled["present"],
            settled_absent=self.settled["absent"],
            kills=self.kills,
            latency_p50_s=float(np.median(lat)) if lat.size else None,
            latency_p99_s=float(np.quantile(lat, 0.99)) if lat.size else None,
            wall_s=wall_s,
            uploads_per_s=answered / wall_s if wall_s > 0 else 0.0,
        )
