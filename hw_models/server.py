"""MDC servers: cores as SimPy resources behind one ingest queue, with busy-time accounting."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy


@dataclass
class Server:
    """One server with ``cores`` identical cores; ``speed_factor`` scales service times."""

    env: simpy.Environment
    name: str
    cores: int
    speed_factor: float = 1.0
    busy_s: float = 0.0
    jobs: int = 0
    _started: dict[int, float] = field(default_factory=dict)
    resource: simpy.Resource = field(init=False)

    def __post_init__(self) -> None:
        self.resource = simpy.Resource(self.env, capacity=self.cores)

    def load(self) -> int:
        return self.resource.count + len(self.resource.queue)

    def busy_fraction(self, horizon_s: float) -> float:
        """Busy core-seconds over available core-seconds up to ``horizon_s``."""
        if horizon_s <= 0:
            return 0.0
        ongoing = sum(min(self.env.now, horizon_s) - t0 for t0 in self._started.values())
        return (self.busy_s + ongoing) / (self.cores * horizon_s)


@dataclass
class ServerPool:
    """The servers of one MDC. Uploads go to the least-loaded server (join the shortest
    queue, ties to the lowest index), where they wait FIFO for a core."""

    env: simpy.Environment
    name: str
    servers: list[Server]
    queue_peak: int = 0

    @classmethod
    def build(
        cls, env: simpy.Environment, name: str, count: int, cores: int, speed_factor: float
    ) -> ServerPool:
        servers = [Server(env, f"{name}/server-{i}", cores, speed_factor) for i in range(count)]
        return cls(env, name, servers)

    def queued(self) -> int:
        return sum(len(s.resource.queue) for s in self.servers)

    def serve(self, work: Callable[[Server], float]) -> Generator[simpy.Event, Any, float]:
        """Wait for a core, run ``work`` (returns its service time at speed 1, s), hold the
        core for that time divided by the server's speed factor. Returns the service time."""
        server = min(self.servers, key=Server.load)
        with server.resource.request() as request:
            self.queue_peak = max(self.queue_peak, self.queued())
            yield request
            start = self.env.now
            key = id(request)
            server._started[key] = start
            service_s = work(server) / server.speed_factor
            yield self.env.timeout(service_s)
            del server._started[key]
            server.busy_s += service_s
            server.jobs += 1
            return service_s
