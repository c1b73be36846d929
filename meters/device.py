"""The meter device's store-and-forward buffer, power loss and upload schedule, over meters.

A meter keeps every reading in its buffer until an upload carrying it is acknowledged
(store-and-forward). When the buffer holds more than ``capacity`` readings, the oldest are
evicted. One upload session at a time per meter: a window that comes while the previous
upload is still retrying is skipped, and its readings wait in the buffer for the next one.

Power loss and reboot (what survives in non-volatile memory). New readings are assembled in
RAM and written to NVM (EEPROM/flash) a page at a time, every ``flush_every`` readings
counted from the last power-up. The default, :data:`DEFAULT_NVM_FLUSH_READINGS` = 15, is one
15-min load-profile capture period of 1-min readings (the usual capture period of an IEC
62056-6-2 "profile generic" load profile), and it keeps NVM wear low: a serial EEPROM
endures about 1e6 erase/write cycles per page (e.g. Microchip 24LC256 datasheet, DS21203):
a page rewritten every minute wears out within two years, every 15 min within 28 years.
A power loss or reboot therefore loses the readings still held that were produced since the
last flush (:meth:`MeterBuffers.power_loss`); while unpowered the meter records nothing;
after power returns (:meth:`MeterBuffers.power_restored`) it records again from the current
interval. What is in NVM survives: the persisted readings not yet acknowledged, and the
per-meter upload sequence numbers (so the MDC never sees a sequence number twice). The
upload session in progress dies with the modem: ``busy`` is cleared, and an acknowledgement
for a session started before the power loss must not be applied (the meter never receives
it; compare ``power_cycles`` at the session's start). The RTC keeps running on its backup
supply; if the outage outlasts it, the clock is behind until the next sync
(:func:`meters.clock.rtc_offset_after_outage_s`).

Buffer state is a held range ``[start, recorded)`` with *holes*: index ranges that are not
held because they were lost at a power loss or never recorded while unpowered. Holes take
no storage, so ``capacity`` counts held readings. ``pending`` returns one contiguous
hole-free range (an upload never spans a hole); an eviction or an acknowledgement returns
every range it deleted, oldest first, as the twin's ledger takes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Readings written from RAM to NVM at a time: one 15-min capture period of 1-min readings
#: (module docstring; the scenario's ``meter.nvm_flush_readings``).
DEFAULT_NVM_FLUSH_READINGS = 15


@dataclass
class MeterBuffers:
    """Buffer state of ``n`` meters. Reading indices count from the start of the run.

    ``produced`` arguments are the number of readings whose interval has ended (the ledger's
    ``produced``); readings the meter did not record (unpowered) are excluded here."""

    capacity: np.ndarray  # readings, int64 [n]
    start: np.ndarray = field(init=False)  # index of the oldest reading still held
    busy: np.ndarray = field(init=False)  # an upload session is in progress
    next_sequence_no: np.ndarray = field(init=False)  # in NVM: survives power loss
    powered: np.ndarray = field(init=False)  # bool [n]
    power_cycles: np.ndarray = field(init=False)  # power losses so far, int64 [n]
    #: First reading recorded since the last power-up: the origin of the NVM flush grid.
    record_from: np.ndarray = field(init=False)
    #: While unpowered: the first reading no longer held (lost or not recorded), and the
    #: first reading not recorded (``produced`` at the power loss).
    off_lo: np.ndarray = field(init=False)
    off_at: np.ndarray = field(init=False)
    #: meter -> sorted disjoint [lo, hi) index ranges above ``start`` that are not held.
    holes: dict[int, list[tuple[int, int]]] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.capacity)
        self.capacity = np.asarray(self.capacity, dtype=np.int64)
        self.start = np.zeros(n, dtype=np.int64)
        self.busy = np.zeros(n, dtype=bool)
        self.next_sequence_no = np.zeros(n, dtype=np.int64)
        self.powered = np.ones(n, dtype=bool)
        self.power_cycles = np.zeros(n, dtype=np.int64)
        self.record_from = np.zeros(n, dtype=np.int64)
        self.off_lo = np.zeros(n, dtype=np.int64)
        self.off_at = np.zeros(n, dtype=np.int64)
        self.holes = {}

    # -- what is held ------------------------------------------------------------------
    def recorded(self, meter: int, produced: int) -> int:
        """End of the readings the meter has (or had) recorded: ``produced`` while powered;
        while unpowered, the first reading it no longer holds."""
        return produced if self.powered[meter] else int(self.off_lo[meter])

    def held(self, meter: int, produced: int) -> int:
        """Number of readings held: ``[start, recorded)`` less the holes."""
        start = int(self.start[meter])
        n = max(self.recorded(meter, produced) - start, 0)
        holes = self.holes.get(meter)
        return n - sum(hi - lo for lo, hi in holes) if holes else n

    def held_runs(self, meter: int, produced: int) -> list[tuple[int, int]]:
        """The held readings as contiguous ranges [lo, hi), oldest first."""
        return self._runs(meter, int(self.start[meter]), self.recorded(meter, produced))

    def _runs(self, meter: int, lo: int, hi: int) -> list[tuple[int, int]]:
        runs = []
        for h_lo, h_hi in self.holes.get(meter, ()):
            if h_lo >= hi:
                break
            if h_lo > lo:
                runs.append((lo, h_lo))
            lo = max(lo, h_hi)
        if hi > lo:
            runs.append((lo, hi))
        return runs

    def _set_start(self, meter: int, start: int) -> None:
        """Move ``start`` forward, past any hole it reaches; drop holes below it."""
        holes = self.holes.get(meter)
        while holes and holes[0][0] <= start:
            start = max(start, holes.pop(0)[1])
        if holes is not None and not holes:
            del self.holes[meter]
        self.start[meter] = start

    # -- readings leaving the buffer ------------------------------------------------------
    def evict_overflow_runs(self, meter: int, produced: int) -> list[tuple[int, int]]:
        """Evict the oldest held readings beyond capacity; returns every evicted range."""
        over = self.held(meter, produced) - int(self.capacity[meter])
        evicted: list[tuple[int, int]] = []
        if over <= 0:
            return evicted
        for lo, hi in self.held_runs(meter, produced):
            if over <= 0:
                break
            take = min(over, hi - lo)
            evicted.append((lo, lo + take))
            self._set_start(meter, lo + take)
            over -= take
        return evicted

    def pending(self, meter: int, produced: int) -> tuple[int, int]:
        """Readings held and not yet acknowledged: [start, recorded), up to the first hole."""
        start = int(self.start[meter])
        end = self.recorded(meter, produced)
        holes = self.holes.get(meter)
        if holes:
            end = min(end, holes[0][0])
        return start, max(start, end)

    def acknowledge_runs(self, meter: int, lo: int, hi: int) -> list[tuple[int, int]]:
        """The upload of [lo, hi) was acknowledged: the meter deletes what it still holds of
        it (readings evicted meanwhile are not held any more). Returns every deleted range
        (holes skipped). Uploads carry the oldest held readings, so what they delete is a
        prefix of the buffer: everything held below ``hi`` that is also >= ``lo``."""
        start = int(self.start[meter])
        runs = self._runs(meter, max(lo, start), hi)
        self._set_start(meter, max(start, hi))
        return runs

    def take_sequence_no(self, meter: int) -> int:
        seq = int(self.next_sequence_no[meter])
        self.next_sequence_no[meter] = seq + 1
        return seq

    # -- power -------------------------------------------------------------------------
    def power_loss(
        self, meter: int, produced: int, flush_every: int = DEFAULT_NVM_FLUSH_READINGS
    ) -> tuple[int, int]:
        """The meter loses power (or reboots) after ``produced`` readings. Returns the range
        [lo, hi) of held readings lost from RAM: those produced since the last NVM flush.

        Flushes happen when ``flush_every`` readings have accumulated since the last
        power-up, so NVM holds every reading below
        ``record_from + flush_every * floor((produced - record_from) / flush_every)``.
        Readings already acknowledged or evicted are not held and so not lost here. The
        upload session ends (``busy`` cleared) and ``power_cycles`` counts up; sequence
        numbers are in NVM and survive. A meter already unpowered loses nothing more."""
        if flush_every < 1:
            raise ValueError(f"flush_every={flush_every}: expected an integer >= 1")
        if not self.powered[meter]:
            at = int(self.off_lo[meter])
            return at, at
        origin = int(self.record_from[meter])
        flushed = origin + flush_every * max((produced - origin) // flush_every, 0)
        start = int(self.start[meter])
        lo = max(start, flushed)
        hi = max(lo, produced)
        self.powered[meter] = False
        self.busy[meter] = False
        self.power_cycles[meter] += 1
        self.off_lo[meter] = lo
        self.off_at[meter] = max(produced, start)
        return lo, hi

    def power_restored(self, meter: int, produced: int) -> tuple[int, int]:
        """Power is back after ``produced`` readings: the meter records again from reading
        ``produced`` on. Returns the range [lo, hi) of readings produced while it was
        unpowered, which it never recorded. A powered meter: an empty range."""
        if self.powered[meter]:
            return produced, produced
        off_lo, off_at = int(self.off_lo[meter]), int(self.off_at[meter])
        resume = max(produced, off_at)
        self.powered[meter] = True
        self.record_from[meter] = resume
        if resume > off_lo:
            holes = self.holes.setdefault(meter, [])
            if holes and holes[-1][1] == off_lo:
                holes[-1] = (holes[-1][0], resume)
            else:
                holes.append((off_lo, resume))
            self._set_start(meter, int(self.start[meter]))
        return off_at, resume


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


def upload_offsets_s(
    rngs: Sequence[np.random.Generator],
    upload_s: float | np.ndarray,
    jitter_s: float | np.ndarray,
    herd: bool = False,
) -> np.ndarray:
    """Each meter's upload offset within its upload period, s, [n_meters].

    Uniform on ``[0, jitter_s)`` from the meter's own generator (one draw each), so that a
    fleet spreads its uploads over the period instead of hitting the MDC at once; the same
    numbers as ``rng.uniform(0.0, jitter_s)`` per meter. ``herd=True`` puts every meter at
    offset 0: a synchronised herd (all meters on the top of the period, as meters with
    factory-default schedules do), only when the scenario asks for one. The draw is made
    either way, so a meter's generator is in the same state after this call."""
    n = len(rngs)
    upload = np.broadcast_to(np.asarray(upload_s, dtype=np.float64), (n,))
    jitter = np.broadcast_to(np.asarray(jitter_s, dtype=np.float64), (n,))
    if np.any(upload <= 0):
        raise ValueError(f"upload_s={upload_s}: expected > 0")
    if np.any(jitter < 0) or np.any(jitter > upload):
        raise ValueError(f"jitter_s={jitter_s}: expected 0 <= jitter_s <= upload_s={upload_s}")
    offsets = np.array(
        [rng.uniform(0.0, j) for rng, j in zip(rngs, jitter.tolist(), strict=True)],
        dtype=np.float64,
    )
    return np.zeros(n) if herd else offsets
