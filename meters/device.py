"""The meter device's store-and-forward buffer and upload schedule, vectorised over meters.

A meter keeps every reading in its buffer until an upload carrying it is acknowledged
(store-and-forward). When the buffer holds more than ``capacity`` readings, the oldest are
evicted. One upload session at a time per meter: a window that comes while the previous
upload is still retrying is skipped, and its readings wait in the buffer for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class MeterBuffers:
    """Buffer state of ``n`` meters. Reading indices count from the start of the run."""

    capacity: np.ndarray  # readings, int64 [n]
    start: np.ndarray = field(init=False)  # index of the oldest reading still held
    busy: np.ndarray = field(init=False)  # an upload session is in progress
    next_sequence_no: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.capacity)
        self.capacity = np.asarray(self.capacity, dtype=np.int64)
        self.start = np.zeros(n, dtype=np.int64)
        self.busy = np.zeros(n, dtype=bool)
        self.next_sequence_no = np.zeros(n, dtype=np.int64)

    def evict_overflow(self, meter: int, produced: int) -> tuple[int, int]:
        """Evict the oldest readings beyond capacity; returns the evicted range [lo, hi)."""
        lo = int(self.start[meter])
        hi = produced - int(self.capacity[meter])
        if hi <= lo:
            return lo, lo
        self.start[meter] = hi
        return lo, hi

    def pending(self, meter: int, produced: int) -> tuple[int, int]:
        """Readings held and not yet acknowledged: [start, produced)."""
        return int(self.start[meter]), produced

    def acknowledge(self, meter: int, lo: int, hi: int) -> tuple[int, int]:
        """The upload of [lo, hi) was acknowledged: the meter deletes what it still holds of
        it. Returns the deleted range (readings evicted meanwhile are not held any more)."""
        held_lo = max(lo, int(self.start[meter]))
        self.start[meter] = max(int(self.start[meter]), hi)
        return held_lo, max(held_lo, hi)

    def take_sequence_no(self, meter: int) -> int:
        seq = int(self.next_sequence_no[meter])
        self.next_sequence_no[meter] = seq + 1
        return seq


def upload_schedule(
    offset_s: np.ndarray, period_s: np.ndarray, horizon_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """All upload windows ``offset + k * period`` (k >= 0) before ``horizon_s``.

    Returns (time_s, meter_index) sorted by time then meter, for one scheduler process to
    walk (no long-lived SimPy process per idle meter, DESIGN.md §7)."""
    counts = np.ceil((horizon_s - offset_s) / period_s - 1e-9).astype(np.int64)
    counts = np.maximum(counts, 0)
    meter = np.repeat(np.arange(len(offset_s)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    time_s = offset_s[meter] + k * period_s[meter]
    order = np.lexsort((meter, time_s))
    return time_s[order], meter[order]
