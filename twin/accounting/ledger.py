"""The loss ledger (DESIGN.md §3): every reading ends stored, lost with a cause, or in flight.

Readings are identified by (meter index, reading index); reading ``i`` of meter ``m``
covers ``[i * sample_s, (i + 1) * sample_s)`` and exists from the end of its interval on.
The ledger counts live *copies* of each reading: the meter's buffer holds one until the
upload is acknowledged, and every delivered upload adds one on its way to the pipeline.
A reading is lost only when its last copy is dropped before any copy was stored. Its cause
is the last cause recorded for it: a drop that is itself a loss (a buffer eviction, a
rejection) records its cause; a hand-off (the meter deleting its copy after the MDC
acknowledged receipt) records none and leaves the fate to the copy it handed on.
Extra copies that reach the store are duplicates. Each reading also keeps when it reached
its final state (``final_at_s``: the commit of a stored one, the moment a lost one was
lost, from the ``clock`` the ledger is given), so that losses can be laid at the door of
the fault that caused them (:mod:`twin.accounting.attribution`).

Every update is one compiled pass (numba) over a contiguous range of the per-reading
arrays, so a transition costs well under a microsecond of the ledger's own work whatever
its size (a numpy expression per step costs about that each, and a transition took eight).
``audit`` recomputes every total from the per-reading arrays and checks
``generated == stored + sum(lost) + in_flight``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

STORED = 1  # ``final`` code of a stored reading; loss causes get codes 2, 3, ...

#: Loss causes of DESIGN.md §3 that this build can produce, in ledger order.
LOSS_CAUSES: tuple[str, ...] = (
    "meter_buffer_overflow",
    "meter_power_loss",  # held in the meter's RAM, not yet flushed to NVM, when power went
    "meter_unpowered",  # produced while the meter had no power: never recorded
    "label_collision",  # a clock jump gave it the label of a reading already stored
    "rejected_invalid",
    "rejected_auth",  # unknown meter, bad signature or replay (pipeline.fetch.auth)
    "vpn_down_buffer_overflow",  # acknowledged by the gateway, dropped from its full buffer
    "mdc_crash_unpersisted",  # acknowledged on receipt, in an MDC's memory when it went down
    "gateway_buffer_overflow",  # acknowledged on receipt, pushed back by a full MDC memory
)


class LedgerError(AssertionError):
    """The ledger does not balance: a bug in the twin, never a user error."""


@dataclass(frozen=True)
class LedgerSnapshot:
    """Totals at one instant, each computed independently from the per-reading arrays."""

    t_s: float
    generated: int
    stored: int
    lost: dict[str, int]
    in_flight: int
    duplicates: int

    @property
    def balanced(self) -> bool:
        return self.generated == self.stored + sum(self.lost.values()) + self.in_flight


@dataclass(frozen=True)
class Losses:
    """Every lost reading: its meter index, its cause and when it was lost (s; NaN for a
    ledger without a clock), arrays of equal length."""

    meter: np.ndarray  # int64
    cause: np.ndarray  # str (a LOSS_CAUSES name)
    at_s: np.ndarray  # float64


@numba.njit(cache=True, nogil=True)
def _add_copy(copies: np.ndarray, lo: int, hi: int) -> None:  # pragma: no cover (JIT)
    for i in range(lo, hi):
        copies[i] += 1


@numba.njit(cache=True, nogil=True)
def _drop_copy(
    copies: np.ndarray,
    final: np.ndarray,
    blame: np.ndarray,
    final_at_s: np.ndarray,
    lost_by_code: np.ndarray,
    lo: int,
    hi: int,
    cause_code: int,
    now_s: float,
) -> int:  # pragma: no cover (JIT)
    """`Ledger.drop_copy` on the readings [lo, hi) of the arrays (absolute indices);
    ``cause_code`` 0 for a hand-off. Returns how many were lost, -1 when a reading lost its
    last copy with no cause recorded (the arrays are then part-updated: the run stops)."""
    n_lost = 0
    for i in range(lo, hi):
        left = copies[i] - 1
        copies[i] = left
        if cause_code != 0:
            blame[i] = cause_code
        if left == 0 and final[i] == 0:
            code = blame[i]
            if code == 0:
                return -1
            final[i] = code
            final_at_s[i] = now_s
            lost_by_code[code] += 1
            n_lost += 1
    return n_lost


@numba.njit(cache=True, nogil=True)
def _store(
    copies: np.ndarray, final: np.ndarray, final_at_s: np.ndarray, lo: int, hi: int, t_s: float
) -> int:  # pragma: no cover (JIT)
    """`Ledger.store` of the readings [lo, hi) (absolute indices), none discarded."""
    n_new = 0
    for i in range(lo, hi):
        if final[i] == 0:
            final[i] = STORED
            final_at_s[i] = t_s
            n_new += 1
        copies[i] -= 1
    return n_new


class Ledger:
    """Per-reading bookkeeping for ``n_readings[m]`` readings of ``sample_s[m]`` per meter;
    ``clock`` (simulated s now) dates the losses."""

    def __init__(
        self,
        n_readings: np.ndarray,
        sample_s: np.ndarray,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.n_readings = np.asarray(n_readings, dtype=np.int64)
        self.sample_s = np.asarray(sample_s, dtype=np.float64)
        self.offset = np.concatenate(([0], np.cumsum(self.n_readings))).astype(np.int64)
        total = int(self.offset[-1])
        self.copies = np.zeros(total, dtype=np.int32)
        self.final = np.zeros(total, dtype=np.int8)
        self.blame = np.zeros(total, dtype=np.int8)
        #: when each reading reached its final state (module docstring), NaN before
        self.final_at_s = np.full(total, np.nan)
        self.clock = clock
        self.touched = np.zeros(len(self.n_readings), dtype=np.int64)
        self.stored = 0
        self.duplicates = 0
        self._cause_code = {cause: STORED + 1 + i for i, cause in enumerate(LOSS_CAUSES)}
        #: readings lost per ``final`` code (the running totals of `lost`)
        self._lost_by_code = np.zeros(STORED + 1 + len(LOSS_CAUSES), dtype=np.int64)
        # per meter, as Python numbers: what every transition reads first
        self._base: list[int] = self.offset[:-1].tolist()
        self._sample_s: list[float] = self.sample_s.tolist()
        self._n_readings: list[int] = self.n_readings.tolist()

    @property
    def lost(self) -> dict[str, int]:
        """Readings lost so far per cause (running totals, in `LOSS_CAUSES` order)."""
        counts = self._lost_by_code.tolist()
        return {cause: counts[code] for cause, code in self._cause_code.items()}

    # -- what exists -------------------------------------------------------------------
    def produced(self, meter: int, t_s: float) -> int:
        """Readings of ``meter`` whose interval has ended by ``t_s``."""
        done = math.floor(t_s / self._sample_s[meter] + 1e-9)
        return min(self._n_readings[meter], max(done, 0))

    def generated(self, t_s: float) -> int:
        done = np.floor(t_s / self.sample_s + 1e-9).astype(np.int64)
        return int(np.minimum(self.n_readings, np.maximum(done, 0)).sum())

    # -- transitions -------------------------------------------------------------------
    def touch(self, meter: int, upto: int) -> None:
        """Readings up to ``upto`` enter the meter's buffer (one copy each)."""
        lo = int(self.touched[meter])
        if upto > lo:
            base = self._base[meter]
            _add_copy(self.copies, base + lo, base + upto)
            self.touched[meter] = upto

    def add_copy(self, meter: int, lo: int, hi: int) -> None:
        """An upload carrying readings [lo, hi) left the meter: one more copy in flight."""
        base = self._base[meter]
        _add_copy(self.copies, base + lo, base + hi)

    def drop_copy(self, meter: int, lo: int, hi: int, cause: str | None) -> int:
        """One copy of readings [lo, hi) is gone, for ``cause`` (None for a hand-off).

        Readings left with no copy and not stored are lost to their recorded cause.
        Returns how many readings were lost by this drop."""
        if hi <= lo:
            return 0
        base = self._base[meter]
        n_lost: int = _drop_copy(
            self.copies,
            self.final,
            self.blame,
            self.final_at_s,
            self._lost_by_code,
            base + lo,
            base + hi,
            0 if cause is None else self._cause_code[cause],
            np.nan if self.clock is None else float(self.clock()),
        )
        if n_lost < 0:
            raise LedgerError(f"meter {meter}: last copy of a reading dropped with no cause")
        return n_lost

    def store(
        self, meter: int, lo: int, hi: int, t_s: float, discarded: np.ndarray | None = None
    ) -> int:
        """A copy of readings [lo, hi) is committed to the store at ``t_s``; returns how many
        were new. The copy is consumed; readings already stored count as duplicates.
        ``discarded`` [hi - lo] marks readings the store dropped because another reading
        already holds their key (a clock jump relabelled them): their copy is dropped with
        cause ``label_collision`` instead.

        The twin records this when the real pipeline call is made (at the start of service,
        so that the ledger sees copies in the same order as the database) with ``t_s`` the
        end of service: until ``t_s`` the readings count as in flight."""
        base = self._base[meter]
        if discarded is None:
            n_new: int = _store(
                self.copies, self.final, self.final_at_s, base + lo, base + hi, float(t_s)
            )
            self.stored += n_new
            self.duplicates += (hi - lo) - n_new
            return n_new
        if np.any(discarded):
            runs = np.flatnonzero(discarded) + lo
            for i in runs.tolist():
                self.drop_copy(meter, i, i + 1, "label_collision")
            self.copies[base + runs] += 1  # consumed below with the rest of the copy
        final = self.final[base + lo : base + hi]
        fresh = (final == 0) & ~discarded
        n_new = int(np.count_nonzero(fresh))
        final[fresh] = STORED
        self.final_at_s[base + lo : base + hi][fresh] = t_s
        self.copies[base + lo : base + hi] -= 1
        self.stored += n_new
        self.duplicates += (hi - lo) - n_new - int(discarded.sum())
        return n_new

    def stored_per_meter(self) -> np.ndarray:
        """Readings in the STORED state per meter, int64 [n_meters]."""
        counts = np.add.reduceat((self.final == STORED).astype(np.int64), self.offset[:-1])
        return np.where(self.n_readings > 0, counts, 0) if len(counts) else counts

    # -- checks and results ------------------------------------------------------------
    def audit(self, t_s: float) -> LedgerSnapshot:
        """Recompute all totals from the arrays and raise :class:`LedgerError` on imbalance."""
        if np.any(self.copies < 0):
            raise LedgerError("a reading has a negative copy count")
        live = (self.copies > 0) & (self.final == 0)
        produced = np.minimum(
            self.n_readings, np.floor(t_s / self.sample_s + 1e-9).astype(np.int64)
        )
        untouched = int((produced - self.touched).sum())
        orphans = np.count_nonzero((self.copies == 0) & (self.final == 0) & self._touched_mask())
        if orphans:
            raise LedgerError(f"{orphans} readings have no copy left but no final state")
        is_stored = self.final == STORED
        stored = int(np.count_nonzero(is_stored))
        lost = {
            c: int(np.count_nonzero(self.final == code)) for c, code in self._cause_code.items()
        }
        if stored != self.stored or lost != self.lost:
            raise LedgerError(
                f"running totals {self.stored}, {self.lost} != arrays {stored}, {lost}"
            )
        # stored by the pipeline call but committed only at the end of service: in flight
        committing = int(np.count_nonzero(is_stored & (self.final_at_s > t_s)))
        snapshot = LedgerSnapshot(
            t_s,
            self.generated(t_s),
            stored - committing,
            lost,
            int(live.sum()) + untouched + committing,
            self.duplicates,
        )
        if not snapshot.balanced:
            raise LedgerError(f"ledger does not balance: {snapshot}")
        return snapshot

    def _touched_mask(self) -> np.ndarray:
        index = np.arange(len(self.copies)) - np.repeat(self.offset[:-1], self.n_readings)
        return index < np.repeat(self.touched, self.n_readings)

    def drain_s(self, meters: np.ndarray, end_s: float, until_s: float) -> tuple[float | None, int]:
        """How the backlog of ``meters`` drained after a fault that ended at ``end_s``: of
        their readings whose interval ended by then, (the time from ``end_s`` to the last
        commit, s, None if none was committed after it; the number neither stored by
        ``until_s`` nor lost).

        ``drain_s`` is a bound on the fault's effect, not its exact share: it includes the
        meters' normal upload interval (a reading taken just before ``end_s`` waits for the
        next window even without a fault)."""
        last_commit_s = -np.inf
        pending = 0
        for m in np.asarray(meters, dtype=np.int64).tolist():
            n = self.produced(m, end_s)
            sl = slice(self.offset[m], self.offset[m] + n)
            final, at_s = self.final[sl], self.final_at_s[sl]
            done = (final == STORED) & (at_s <= until_s)
            if np.any(done):
                last_commit_s = max(last_commit_s, float(at_s[done].max()))
            pending += int(n - np.count_nonzero(done) - np.count_nonzero(final > STORED))
        drain = last_commit_s - end_s if last_commit_s > end_s else None
        return drain, pending

    def losses(self) -> Losses:
        """Every reading lost so far (:class:`Losses`)."""
        index = np.flatnonzero(self.final > STORED)
        names = np.array(LOSS_CAUSES)
        return Losses(
            np.searchsorted(self.offset, index, side="right") - 1,
            names[self.final[index].astype(np.int64) - STORED - 1],
            self.final_at_s[index],
        )

    def latencies_s(self, until_s: float = np.inf) -> np.ndarray:
        """End of interval to commit, s, for every reading committed by ``until_s``."""
        index = np.arange(len(self.copies)) - np.repeat(self.offset[:-1], self.n_readings)
        end_s = (index + 1) * np.repeat(self.sample_s, self.n_readings)
        stored = (self.final == STORED) & (self.final_at_s <= until_s)
        return self.final_at_s[stored] - end_s[stored]
