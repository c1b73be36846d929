"""MDC servers: cores in FIFO queues behind one ingest gateway, with busy-time,
memory, disk and power accounting, and work lost when a server goes down.

A :class:`ServerPool` is the servers of one MDC. ``yield from pool.serve(work)`` carries
one upload through the MDC:

1. admission: the upload's bytes must fit in the gateway's RAM budget; while they do not,
   the caller waits (push-back to the gateway, never a silent drop). ``pool.admit(n)``
   exposes the same admission as an event for a gateway that acknowledges on receipt;
2. dispatch: the upload goes to the least-loaded server that is up (join the shortest
   queue, ties to the lowest index) and waits FIFO for one of its cores; while no server
   is up it waits in the gateway (an upload that reaches a dark MDC is lost at once);
3. service: ``work(server)`` runs (the real pipeline, in the twin) and returns its demand
   at speed 1: seconds (a float), or a :class:`ServiceDemand` with per-stage seconds, bytes
   written to disk and readings for an accelerator. The core is held for
   ``cpu_s / speed_factor + write_bytes / disk_write_bps``; then the work is committed
   (``on_commit(server)``), and readings for the accelerator go to the pool's GPU.

When a server goes down (crash, MDC power loss, brown-out shed) every upload in its memory
is lost: queued and in-service ones alike. Their ``serve`` raises :class:`JobLost` with a
:class:`LostJob` record (which server, which phase, whether ``work`` had already run, the
caller's ``tag``), and ``pool.lost`` keeps all records, so the twin can count
``mdc_crash_unpersisted`` under either acknowledgement mode.

Power is metered exactly per server (see :mod:`hw_models.power`): the power model of the
SKU at the fraction of busy cores while the server is up, zero while it is down. Every
pool carries a :class:`~hw_models.little.LittleLawMonitor` (``pool.little``) over the
uploads from entering ``serve`` to leaving it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import simpy

from hw_models.little import LittleLawMonitor
from hw_models.power import DEFAULT_PUE, POWER_MODELS, PowerMeter, check_pue

if TYPE_CHECKING:
    from hw_models.accelerator import GpuBatcher
    from hw_models.catalog import ServerSku

#: Where a lost job was when its server went down.
PHASE_WAITING = "waiting"  # admitted into the gateway's memory, no server up to take it
PHASE_QUEUED = "queued"  # in a server's memory, waiting for a core
PHASE_IN_SERVICE = "in_service"  # on a core
_PHASE_DONE = "done"

#: Reasons a server is down. Each is independent: a server is up when it has none.
CRASH = "crash"
POWER_LOSS = "power_loss"
SHED = "shed"
MAINTENANCE = "maintenance"


@dataclass(slots=True)
class ServiceDemand:
    """What one upload asks of a server, at speed 1 (the machine that ran ``twin
    calibrate``): CPU seconds per pipeline stage, bytes the store stage writes, and
    readings that ``offload_stage`` would run on the pool's accelerator, if it has one
    (that stage's CPU seconds are then not spent on the core). A plain slotted record, made
    once per upload on the hot path; nothing changes it after."""

    stage_s: Mapping[str, float]
    write_bytes: int = 0
    offload_items: int = 0
    offload_stage: str = "analyze"


@dataclass(frozen=True)
class LostJob:
    """One upload lost in an MDC's memory (flat record)."""

    tag: Any  # whatever the caller passed to serve()
    size_bytes: int
    server: str | None  # None: it was waiting in the gateway
    phase: str  # PHASE_WAITING, PHASE_QUEUED or PHASE_IN_SERVICE
    cause: str  # CRASH, POWER_LOSS, SHED, MAINTENANCE
    at_s: float  # when it was lost
    arrived_s: float  # when it entered serve()
    work_done: bool  # work(server) had run (the real pipeline saw the upload)


@dataclass(frozen=True)
class ServerStats:
    """One server over [0, horizon_s] (flat record; units in the names)."""

    name: str
    sku: str | None
    cores: int
    speed_factor: float
    utilisation: float  # busy core-seconds / (cores * horizon_s)
    availability: float  # fraction of the horizon the server was up
    jobs: int  # uploads it finished
    energy_wh: float  # wall (IT) energy, no PUE
    disk_busy_s: float  # seconds of service spent writing to disk


@dataclass(frozen=True)
class PoolStats:
    """One MDC over [0, horizon_s] (flat record; units in the names)."""

    name: str
    servers: int
    it_energy_wh: float  # servers and accelerator
    facility_energy_wh: float  # IT energy times the PUE
    pue: float
    queue_peak: int  # uploads waiting for a core, at most
    memory_peak_bytes: int  # admitted, unfinished upload bytes, at most
    ram_budget_bytes: int | None
    admission_waits: int  # uploads the RAM budget held back
    admission_wait_s: float  # their total wait
    lost: int  # uploads lost in memory
    lost_by_cause: dict[str, int]


class JobLost(Exception):  # noqa: N818 - reads as an outcome ("the job was lost")
    """Raised out of ``ServerPool.serve`` when the upload was lost in a server's memory."""

    def __init__(self, record: LostJob) -> None:
        self.record = record
        super().__init__(
            f"upload lost on {record.server or 'the gateway'} ({record.cause}, "
            f"{record.phase}) at t = {record.at_s:.3f} s"
        )


class CoreQueue:
    """The cores of one server and the jobs waiting for one, first come first served.

    A job takes a free core at once, without an event (:meth:`take` returns None), or gets
    an event that fires when a core is handed to it; a job that leaves (done or lost) hands
    its core straight to the first in line (:meth:`give_back`). The same discipline as a
    ``simpy.Resource`` of ``capacity`` cores, without a request and a release event per
    job."""

    __slots__ = ("capacity", "env", "in_use", "waiting")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.in_use = 0  # cores held (granted, whether or not the job has resumed)
        self.waiting: deque[simpy.Event] = deque()

    def take(self) -> simpy.Event | None:
        """A core now (None), or the event that fires when one is handed over."""
        if self.in_use < self.capacity:
            self.in_use += 1
            return None
        event = self.env.event()
        self.waiting.append(event)
        return event

    def give_back(self) -> None:
        """A core is free: to the first job in line, else idle."""
        if self.waiting:
            self.waiting.popleft().succeed()
        else:
            self.in_use -= 1

    def leave(self, granted: simpy.Event | None) -> None:
        """A job leaves, holding the core of ``granted`` (None: taken at once) or still in
        line for it (its event not yet fired)."""
        if granted is None or granted.triggered:
            self.give_back()
        else:
            self.waiting.remove(granted)

    def load(self) -> int:
        """Jobs holding or waiting for a core."""
        return self.in_use + len(self.waiting)


class _Job:
    __slots__ = ("arrived_s", "phase", "process", "server", "size_bytes", "tag", "work_done")

    def __init__(self, process: simpy.Process | None, size_bytes: int, tag: Any, now: float):
        self.process = process
        self.size_bytes = size_bytes
        self.tag = tag
        self.arrived_s = now
        self.server: Server | None = None
        self.phase = PHASE_WAITING
        self.work_done = False


@dataclass(eq=False)
class Server:
    """One server with ``cores`` identical cores; ``speed_factor`` scales service times.

    ``idle_w``/``max_w`` (W, wall power at active idle and 100 % load) feed the power
    model ``power_model`` (a key of :data:`hw_models.power.POWER_MODELS`) at the fraction
    of busy cores; ``disk_write_bps`` (bytes/s) turns written bytes into service time.
    """

    env: simpy.Environment
    name: str
    cores: int
    speed_factor: float = 1.0
    busy_s: float = 0.0
    jobs: int = 0
    _started: dict[Any, float] = field(default_factory=dict)
    idle_w: float = 0.0
    max_w: float = 0.0
    disk_write_bps: float = math.inf
    power_model: str = "linear"
    sku: str | None = None
    core_queue: CoreQueue = field(init=False)
    down_reasons: set[str] = field(init=False, default_factory=set)
    cordoned: bool = field(init=False, default=False)
    down_s: float = field(init=False, default=0.0)
    disk_busy_s: float = field(init=False, default=0.0)
    stage_busy_s: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.cores < 1:
            raise ValueError(f"{self.name}: cores must be >= 1, got {self.cores!r}")
        if not (self.speed_factor > 0 and math.isfinite(self.speed_factor)):
            raise ValueError(f"{self.name}: speed_factor must be > 0, got {self.speed_factor!r}")
        if not self.disk_write_bps > 0:
            raise ValueError(f"{self.name}: disk_write_bps must be > 0")
        if self.max_w < self.idle_w:
            raise ValueError(f"{self.name}: max_w {self.max_w} < idle_w {self.idle_w}")
        self.core_queue = CoreQueue(self.env, self.cores)
        model = POWER_MODELS[self.power_model]
        # power at k busy cores, k = 0..cores: one table lookup per job start and end
        self._power_by_busy = [
            float(model(self.idle_w, self.max_w, k / self.cores)) for k in range(self.cores + 1)
        ]
        self._busy = 0
        self._down_since: float | None = None
        self._meter = PowerMeter(self.env.now, self._power_by_busy[0])
        self._jobs: dict[_Job, None] = {}
        self._drained: list[simpy.Event] = []

    # -- state ---------------------------------------------------------------------------
    @property
    def online(self) -> bool:
        return not self.down_reasons

    def load(self) -> int:
        return self.core_queue.load()

    @property
    def busy_cores(self) -> int:
        """Cores serving a job now."""
        return self._busy

    def jobs_in_memory(self) -> int:
        """Uploads on this server (queued or in service)."""
        return len(self._jobs)

    @property
    def power_w(self) -> float:
        """Wall power now, W (0 while down)."""
        return self._meter.power_w

    def energy_j(self, now_s: float | None = None) -> float:
        """Wall energy from the start of the run to ``now_s`` (default now), J."""
        return self._meter.energy_j(self.env.now if now_s is None else now_s)

    def busy_core_s(self, now_s: float | None = None) -> float:
        """Busy core-seconds up to ``now_s`` (default now), ongoing jobs included."""
        now = self.env.now if now_s is None else now_s
        return self.busy_s + sum(now - t0 for t0 in self._started.values())

    def busy_fraction(self, horizon_s: float) -> float:
        """Busy core-seconds over available core-seconds up to ``horizon_s``."""
        if horizon_s <= 0:
            return 0.0
        ongoing = sum(min(self.env.now, horizon_s) - t0 for t0 in self._started.values())
        return (self.busy_s + ongoing) / (self.cores * horizon_s)

    def downtime_s(self, now_s: float | None = None) -> float:
        """Seconds spent down (any reason) up to ``now_s`` (default now)."""
        now = self.env.now if now_s is None else now_s
        ongoing = now - self._down_since if self._down_since is not None else 0.0
        return self.down_s + ongoing

    def availability(self, horizon_s: float) -> float:
        """Fraction of [0, horizon_s] the server was up."""
        return 1.0 - self.downtime_s(horizon_s) / horizon_s

    # -- service -------------------------------------------------------------------------
    def service_time_s(
        self, demand: float | ServiceDemand, accelerator: GpuBatcher | None = None
    ) -> tuple[float, int]:
        """Seconds a core is held for ``demand`` on this server, and readings left for the
        accelerator (0 without one)."""
        if not isinstance(demand, ServiceDemand):
            return float(demand) / self.speed_factor, 0
        offload = accelerator is not None and demand.offload_stage in demand.stage_s
        cpu_s = 0.0
        for stage, seconds in demand.stage_s.items():
            if offload and stage == demand.offload_stage:
                continue
            scaled = seconds / self.speed_factor
            cpu_s += scaled
            self.stage_busy_s[stage] = self.stage_busy_s.get(stage, 0.0) + scaled
        disk_s = demand.write_bytes / self.disk_write_bps
        self.disk_busy_s += disk_s
        return cpu_s + disk_s, demand.offload_items if offload else 0

    def _begin(self, job: _Job) -> None:
        now = self.env.now
        self._started[job] = now
        self._busy += 1
        self._meter.set(now, self._power_by_busy[self._busy])

    def _end(self, job: _Job, service_s: float) -> None:
        del self._started[job]
        self.busy_s += service_s
        self.jobs += 1
        self._busy -= 1
        self._meter.set(self.env.now, self._power_by_busy[self._busy])

    def _abort(self, job: _Job) -> None:
        """A job in service is lost: count its busy time so far."""
        now = self.env.now
        self.busy_s += now - self._started.pop(job)
        self._busy -= 1
        self._meter.set(now, self._power_by_busy[self._busy] if self.online else 0.0)

    def _leave(self, job: _Job) -> None:
        self._jobs.pop(job, None)
        if self._drained and not self._jobs:
            for event in self._drained:
                event.succeed()
            self._drained.clear()


class ServerPool:
    """The servers of one MDC behind one ingest gateway (see the module docstring).

    ``ram_budget_bytes`` bounds the bytes of admitted, unfinished uploads (None: no
    bound, but memory is still counted); ``pue`` scales IT energy to facility energy;
    ``accelerator`` runs the offloaded stage (see :class:`ServiceDemand`).
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        servers: list[Server],
        queue_peak: int = 0,
        *,
        ram_budget_bytes: int | None = None,
        pue: float = DEFAULT_PUE,
        accelerator: GpuBatcher | None = None,
    ) -> None:
        check_pue(pue)
        if ram_budget_bytes is not None and ram_budget_bytes <= 0:
            raise ValueError(f"{name}: ram_budget_bytes must be > 0, got {ram_budget_bytes!r}")
        self.env = env
        self.name = name
        self.servers = servers
        self.queue_peak = queue_peak
        self.ram_budget_bytes = ram_budget_bytes
        self.pue = pue
        self.accelerator = accelerator
        self.memory_used_bytes = 0
        self.memory_peak_bytes = 0
        self.admission_waits = 0  # uploads that had to wait for memory
        self.admission_wait_s = 0.0  # their total wait
        self.lost: list[LostJob] = []
        self.little = LittleLawMonitor(env.now)
        self._admission: deque[tuple[simpy.Event, int, float]] = deque()
        self._jobs: dict[_Job, None] = {}
        self._available: list[Server] = list(servers)
        self._available_event: simpy.Event | None = None
        self.powered = True  # False while the whole MDC is dark (power_off)
        self._gateway_waiting = 0

    @classmethod
    def build(
        cls,
        env: simpy.Environment,
        name: str,
        count: int,
        cores: int,
        speed_factor: float,
        *,
        idle_w: float = 0.0,
        max_w: float = 0.0,
        disk_write_bps: float = math.inf,
        ram_budget_bytes: int | None = None,
        pue: float = DEFAULT_PUE,
        accelerator: GpuBatcher | None = None,
        sku: str | None = None,
    ) -> ServerPool:
        servers = [
            Server(
                env,
                f"{name}/server-{i}",
                cores,
                speed_factor,
                idle_w=idle_w,
                max_w=max_w,
                disk_write_bps=disk_write_bps,
                sku=sku,
            )
            for i in range(count)
        ]
        return cls(
            env, name, servers, ram_budget_bytes=ram_budget_bytes, pue=pue, accelerator=accelerator
        )

    @classmethod
    def from_sku(
        cls,
        env: simpy.Environment,
        name: str,
        sku: ServerSku,
        count: int,
        *,
        ingest_ram_fraction: float | None = 0.25,
        pue: float = DEFAULT_PUE,
        accelerator: GpuBatcher | None = None,
    ) -> ServerPool:
        """``count`` servers of catalog SKU ``sku``. The ingest queue may use
        ``ingest_ram_fraction`` of the pool's RAM (None: unbounded). The default 0.25 is an
        engineering assumption (the OS, the pipeline's working set and SQLite's page cache
        need the rest), not a measured figure; scenarios should set it."""
        budget = None
        if ingest_ram_fraction is not None:
            if not 0 < ingest_ram_fraction <= 1:
                raise ValueError(
                    f"ingest_ram_fraction must be in (0, 1], got {ingest_ram_fraction!r}"
                )
            budget = int(sku.ram_bytes * count * ingest_ram_fraction)
        return cls.build(
            env,
            name,
            count,
            sku.cores,
            sku.speed_factor,
            idle_w=sku.idle_w,
            max_w=sku.max_w,
            disk_write_bps=sku.disk_write_bps,
            ram_budget_bytes=budget,
            pue=pue,
            accelerator=accelerator,
            sku=sku.name,
        )

    # -- observation ---------------------------------------------------------------------
    def queued(self) -> int:
        """Uploads in memory waiting for a core (on a server, or in the gateway while no
        server is up)."""
        waiting = self._gateway_waiting
        for server in self.servers:
            waiting += len(server.core_queue.waiting)
        return waiting

    def admission_pending(self) -> int:
        """Uploads held back by the RAM budget (push-back: not yet in memory)."""
        return len(self._admission)

    def in_memory(self) -> int:
        """Uploads admitted and not finished (waiting, queued or in service)."""
        return len(self._jobs)

    def online_servers(self) -> list[Server]:
        return [s for s in self.servers if s.online]

    def it_power_w(self) -> float:
        gpu = self.accelerator.power_w if self.accelerator is not None else 0.0
        return sum(s.power_w for s in self.servers) + gpu

    def facility_power_w(self) -> float:
        return self.pue * self.it_power_w()

    def it_energy_j(self, now_s: float | None = None) -> float:
        """Energy of the servers (and accelerator) from the start of the run, J."""
        now = self.env.now if now_s is None else now_s
        gpu = self.accelerator.energy_j(now) if self.accelerator is not None else 0.0
        return sum(s.energy_j(now) for s in self.servers) + gpu

    def facility_energy_j(self, now_s: float | None = None) -> float:
        """IT energy times the PUE (cooling and power distribution included), J."""
        return self.pue * self.it_energy_j(now_s)

    def busy_core_s(self, now_s: float | None = None) -> float:
        return sum(s.busy_core_s(now_s) for s in self.servers)

    def busy_cores(self) -> int:
        return sum(s.busy_cores for s in self.servers)

    def server_stats(self, horizon_s: float) -> list[ServerStats]:
        """Flat per-server records over [0, horizon_s] (call at ``env.now == horizon_s``)."""
        return [
            ServerStats(
                name=s.name,
                sku=s.sku,
                cores=s.cores,
                speed_factor=s.speed_factor,
                utilisation=s.busy_fraction(horizon_s),
                availability=s.availability(horizon_s),
                jobs=s.jobs,
                energy_wh=s.energy_j(horizon_s) / 3600.0,
                disk_busy_s=s.disk_busy_s,
            )
            for s in self.servers
        ]

    def stats(self, horizon_s: float) -> PoolStats:
        """A flat record of the MDC over [0, horizon_s] (call at ``env.now == horizon_s``)."""
        by_cause: dict[str, int] = {}
        for record in self.lost:
            by_cause[record.cause] = by_cause.get(record.cause, 0) + 1
        it_j = self.it_energy_j(horizon_s)
        return PoolStats(
            name=self.name,
            servers=len(self.servers),
            it_energy_wh=it_j / 3600.0,
            facility_energy_wh=self.pue * it_j / 3600.0,
            pue=self.pue,
            queue_peak=self.queue_peak,
            memory_peak_bytes=self.memory_peak_bytes,
            ram_budget_bytes=self.ram_budget_bytes,
            admission_waits=self.admission_waits,
            admission_wait_s=self.admission_wait_s,
            lost=len(self.lost),
            lost_by_cause=by_cause,
        )

    # -- memory admission ----------------------------------------------------------------
    def _fits(self, size_bytes: int) -> bool:
        budget = self.ram_budget_bytes
        # an upload larger than the whole budget gets in alone, so it is never starved
        return (
            budget is None
            or self.memory_used_bytes + size_bytes <= budget
            or (self.memory_used_bytes == 0)
        )

    def _take(self, size_bytes: int) -> None:
        self.memory_used_bytes += size_bytes
        if self.memory_used_bytes > self.memory_peak_bytes:
            self.memory_peak_bytes = self.memory_used_bytes

    def _try_admit(self, size_bytes: int) -> bool:
        if not self._admission and self._fits(size_bytes):
            self._take(size_bytes)
            return True
        return False

    def would_admit(self, size_bytes: int) -> bool:
        """Whether ``size_bytes`` would be admitted into memory at once (nobody waiting
        before it, and it fits)."""
        return not self._admission and self._fits(size_bytes)

    def admit(self, size_bytes: int) -> simpy.Event:
        """An event that fires once ``size_bytes`` are admitted into the gateway's memory
        (FIFO: no upload overtakes an earlier one). Pass ``admitted=True`` to the
        :meth:`serve` that carries these bytes; it frees them when it ends."""
        if size_bytes < 0:
            raise ValueError(f"size_bytes must be >= 0, got {size_bytes!r}")
        event = self.env.event()
        if self._try_admit(size_bytes):
            event.succeed()
        else:
            self.admission_waits += 1
            self._admission.append((event, size_bytes, self.env.now))
        return event

    def release(self, size_bytes: int) -> None:
        """Free admitted bytes (serve does this itself) and admit waiting uploads."""
        self.memory_used_bytes -= size_bytes
        while self._admission and self._fits(self._admission[0][1]):
            event, size, since = self._admission.popleft()
            self._take(size)
            self.admission_wait_s += self.env.now - since
            event.succeed()

    # -- dispatch and service ------------------------------------------------------------
    def any_available(self) -> bool:
        """Whether a server is up and not cordoned now."""
        return bool(self._available)

    def until_available(self) -> simpy.Event:
        """An event that fires when a server is up and not cordoned (at once if one is)."""
        if self._available:
            event = self.env.event()
            event.succeed()
            return event
        return self._availability()

    def _availability(self) -> simpy.Event:
        if self._available_event is None:
            self._available_event = self.env.event()
        return self._available_event

    def _refresh_available(self) -> None:
        self._available = [s for s in self.servers if s.online and not s.cordoned]
        if self._available and self._available_event is not None:
            self._available_event.succeed()
            self._available_event = None

    def serve(
        self,
        work: Callable[[Server], float | ServiceDemand],
        size_bytes: int = 0,
        tag: Any = None,
        *,
        admitted: bool = False,
        on_commit: Callable[[Server], None] | None = None,
    ) -> Generator[simpy.Event, Any, float]:
        """Carry one upload of ``size_bytes`` through the MDC (see the module docstring).

        Returns the seconds a core was held. Raises :class:`JobLost` if the upload was lost
        in memory when its server (or the whole MDC) went down. ``tag`` is handed back in
        the :class:`LostJob` record; ``admitted=True`` says the caller already got
        ``size_bytes`` through :meth:`admit`; ``on_commit(server)`` is called when the
        upload is durably stored (before any accelerator stage), the moment for an
        acknowledge-after-commit gateway.
        """
        env = self.env
        arrived_s = env.now
        self.little.arrive(arrived_s)
        job: _Job | None = None
        try:
            if size_bytes and not admitted and not self._try_admit(size_bytes):
                event = self.admit(size_bytes)
                try:
                    yield event
                except BaseException:
                    if not event.triggered:  # never admitted: nothing to free
                        self._admission.remove((event, size_bytes, arrived_s))
                        size_bytes = 0
                    raise
            job = _Job(env.active_process, size_bytes, tag, arrived_s)
            if not self.powered:  # a dark MDC cannot hold the upload
                self._lose(job, POWER_LOSS, interrupt=False)
                raise JobLost(self.lost[-1])
            self._jobs[job] = None
            # dispatch: join the shortest queue among the servers that are up
            available = self._available
            while not available:  # no server up: wait in the gateway
                self._gateway_waiting += 1
                try:
                    yield self._availability()
                finally:
                    self._gateway_waiting -= 1
                available = self._available
            server = available[0] if len(available) == 1 else min(available, key=Server.load)
            job.server = server
            job.phase = PHASE_QUEUED
            server._jobs[job] = None
            cores = server.core_queue
            granted = cores.take()
            try:
                queued = self.queued()
                if queued > self.queue_peak:
                    self.queue_peak = queued
                if granted is not None:
                    yield granted
                job.phase = PHASE_IN_SERVICE
                demand = work(server)
                job.work_done = True
                if isinstance(demand, ServiceDemand):
                    service_s, offload_items = server.service_time_s(demand, self.accelerator)
                else:
                    service_s, offload_items = demand / server.speed_factor, 0
                server._begin(job)
                yield env.timeout(service_s)
                server._end(job, service_s)
                job.phase = _PHASE_DONE
            except BaseException:  # lost or called off, in line or in service
                if job in server._started:  # called off in service: its time so far counts
                    server._abort(job)
                raise
            finally:
                cores.leave(granted)
                server._leave(job)
            # committed: the upload's bytes are freed
            del self._jobs[job]
            if size_bytes:
                self.release(size_bytes)
                size_bytes = 0
            if on_commit is not None:
                on_commit(server)
            if offload_items and self.accelerator is not None:
                yield self.accelerator.submit(offload_items)
        except simpy.Interrupt as interrupt:
            self._abandon(job, arrived_s, size_bytes)
            if isinstance(interrupt.cause, LostJob):
                raise JobLost(interrupt.cause) from None
            raise
        except GeneratorExit:
            raise  # the simulation is being torn down: no bookkeeping
        except BaseException:
            self._abandon(job, arrived_s, size_bytes)
            raise
        self.little.depart(env.now, arrived_s)
        return service_s

    def _abandon(self, job: _Job | None, arrived_s: float, size_bytes: int) -> None:
        if job is not None:
            self._jobs.pop(job, None)
        if size_bytes:
            self.release(size_bytes)
        self.little.depart(self.env.now, arrived_s)

    # -- servers going down and up -------------------------------------------------------
    def _lose(self, job: _Job, cause: str, interrupt: bool = True) -> None:
        server = job.server
        if job.phase == PHASE_IN_SERVICE and server is not None:
            server._abort(job)
        record = LostJob(
            tag=job.tag,
            size_bytes=job.size_bytes,
            server=server.name if server is not None else None,
            phase=job.phase,
            cause=cause,
            at_s=self.env.now,
            arrived_s=job.arrived_s,
            work_done=job.work_done,
        )
        self.lost.append(record)
        job.phase = _PHASE_DONE
        self._jobs.pop(job, None)
        if server is not None:
            server._leave(job)
        if interrupt and job.process is not None:
            job.process.interrupt(record)

    def set_down(self, server: Server, reason: str) -> None:
        """``server`` goes down for ``reason`` (idempotent per reason). If it was up, every
        upload in its memory is lost and it draws no power until it is up again."""
        if reason in server.down_reasons:
            return
        was_online = server.online
        server.down_reasons.add(reason)
        if not was_online:
            return
        for job in list(server._jobs):
            self._lose(job, reason)
        now = self.env.now
        server._meter.set(now, 0.0)
        self._power_accelerator()
        server._down_since = now
        self._refresh_available()

    def set_up(self, server: Server, reason: str) -> None:
        """``reason`` no longer holds ``server`` down; it is up when no reason remains."""
        if reason not in server.down_reasons:
            return
        server.down_reasons.discard(reason)
        if server.down_reasons:
            return
        now = self.env.now
        if server._down_since is not None:
            server.down_s += now - server._down_since
            server._down_since = None
        server._meter.set(now, server._power_by_busy[server._busy])
        self._refresh_available()
        self._power_accelerator()

    def _power_accelerator(self) -> None:
        """The accelerator draws power while a host server is up (it sits in one; with
        every server down, crashed, shed or dark, it is off)."""
        if self.accelerator is not None:
            self.accelerator.set_powered(any(s.online for s in self.servers))

    def power_off(self, cause: str = POWER_LOSS) -> None:
        """The whole MDC goes dark: every server goes down for ``cause``, uploads waiting
        in the gateway are lost, and uploads arriving while dark are lost at once (their
        ``serve`` raises :class:`JobLost` in phase ``waiting``)."""
        self.powered = False
        for server in self.servers:
            self.set_down(server, cause)
        for job in [j for j in self._jobs if j.phase == PHASE_WAITING]:
            self._lose(job, cause)

    def power_on(self, cause: str = POWER_LOSS) -> None:
        self.powered = True
        for server in self.servers:
            self.set_up(server, cause)

    def cordon(self, server: Server) -> None:
        """Dispatch no new uploads to ``server`` (it keeps serving what it has)."""
        server.cordoned = True
        self._refresh_available()

    def uncordon(self, server: Server) -> None:
        server.cordoned = False
        self._refresh_available()

    def drained(self, server: Server) -> simpy.Event:
        """An event that fires when ``server`` holds no upload (at once if it holds none)."""
        event = self.env.event()
        if server._jobs:
            server._drained.append(event)
        else:
            event.succeed()
        return event
