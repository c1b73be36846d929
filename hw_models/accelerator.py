"""A GPU that runs the analytics stage on batches of readings (dynamic batching).

Uploads hand their readings to :meth:`GpuBatcher.submit`; the GPU runs one batch at a
time. When it is free it waits for the oldest pending submission to have waited
``max_wait_s`` (or for ``max_batch_items`` readings to be pending, whichever is first),
then runs every pending submission that fits in one batch. A batch of ``n`` readings takes
``a + b * n`` seconds (the catalog's latency model); the GPU draws ``max_w`` while a batch
runs and ``idle_w`` otherwise, integrated exactly by a :class:`~hw_models.power.PowerMeter`.
Submissions are never split; one larger than ``max_batch_items`` runs alone.

This is the batching policy of inference servers such as NVIDIA Triton's dynamic batcher
(a maximum queue delay and a preferred batch size).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

import simpy

from hw_models.catalog import AcceleratorSku
from hw_models.power import PowerMeter


class GpuBatcher:
    """One accelerator of one MDC. ``submit(items)`` returns an event that fires with the
    batch latency (s) when the batch holding those readings has finished."""

    def __init__(
        self,
        env: simpy.Environment,
        sku: AcceleratorSku,
        max_wait_s: float = 0.0,
        max_batch_items: int | None = None,
        name: str = "gpu",
    ) -> None:
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s!r}")
        self.env = env
        self.sku = sku
        self.name = name
        self.max_wait_s = max_wait_s
        self.max_batch_items = max_batch_items or sku.max_batch_items
        if self.max_batch_items < 1:
            raise ValueError(f"max_batch_items must be >= 1, got {self.max_batch_items!r}")
        self._pending: deque[tuple[float, int, simpy.Event]] = deque()
        self._pending_items = 0
        self._wake: simpy.Event | None = None
        self._full: simpy.Event | None = None
        self._meter = PowerMeter(env.now, sku.idle_w)
        self.powered = True
        self._in_batch = False
        self.batches = 0
        self.items = 0
        self.busy_s = 0.0
        self.max_batch_seen = 0
        self.process = env.process(self._run())

    def submit(self, items: int) -> simpy.Event:
        """Queue ``items`` readings (>= 0); the event fires when their batch is done."""
        if items < 0:
            raise ValueError(f"items must be >= 0, got {items!r}")
        done = self.env.event()
        self._pending.append((self.env.now, items, done))
        self._pending_items += items
        if self._wake is not None:
            self._wake.succeed()
            self._wake = None
        if self._full is not None and self._pending_items >= self.max_batch_items:
            self._full.succeed()
            self._full = None
        return done

    def set_powered(self, powered: bool) -> None:
        """Power the accelerator on or off (its host servers are down, or the MDC is dark):
        off it draws 0 W. A batch already running finishes (milliseconds) and is metered
        at full power until it ends."""
        if powered == self.powered:
            return
        self.powered = powered
        if not self._in_batch:
            self._meter.set(self.env.now, self.sku.idle_w if powered else 0.0)

    def pending_items(self) -> int:
        return self._pending_items

    def energy_j(self, now_s: float | None = None) -> float:
        return self._meter.energy_j(self.env.now if now_s is None else now_s)

    @property
    def power_w(self) -> float:
        return self._meter.power_w

    def busy_fraction(self, horizon_s: float) -> float:
        return self.busy_s / horizon_s if horizon_s > 0 else 0.0

    def _run(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            if not self._pending:
                self._wake = env.event()
                yield self._wake
            wait_s = self._pending[0][0] + self.max_wait_s - env.now
            if wait_s > 0 and self._pending_items < self.max_batch_items:
                self._full = env.event()
                yield env.any_of([env.timeout(wait_s), self._full])
                self._full = None
            batch: list[simpy.Event] = []
            items = 0
            while self._pending and (
                not batch or items + self._pending[0][1] <= self.max_batch_items
            ):
                _, n, done = self._pending.popleft()
                items += n
                batch.append(done)
            self._pending_items -= items
            latency_s = self.sku.batch_latency_s(items)
            self._meter.set(env.now, self.sku.max_w)
            self._in_batch = True
            yield env.timeout(latency_s)
            self._in_batch = False
            self._meter.set(env.now, self.sku.idle_w if self.powered else 0.0)
            self.busy_s += latency_s
            self.batches += 1
            self.items += items
            self.max_batch_seen = max(self.max_batch_seen, items)
            for done in batch:
                done.succeed(latency_s)
