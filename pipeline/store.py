"""Store stage: idempotent SQLite persistence of readings and alerts.

One `Store` owns one sqlite3 connection to one database file. Readings are keyed by
``(meter_id, flow_direction, start_s)`` (DESIGN §3: a reading is identified by its meter and
interval start; the flow direction keeps a net meter's delivered and received series
apart). Delivery is at-least-once, so `Store.upsert_readings` stores each new reading once
and counts the rest as duplicates; retries and failovers never double-count.

Durability (DESIGN §9): WAL journal, ``synchronous=NORMAL`` and one transaction per batch.
A crash of the process mid-batch leaves the batch entirely absent; every committed batch
survives a process crash. (With NORMAL, a power loss can roll back the last few commits, but
never corrupts the file; ``synchronous=FULL`` would fsync every commit at a large cost.)

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from itertools import repeat
from pathlib import Path
from types import TracebackType

from pipeline.analyze import Alert
from pipeline.fetch import RejectedUpload
from pipeline.process import ReadingBatch

__all__ = ["SCHEMA_SQL", "Store"]

#: Busy timeout when another connection holds the write lock, seconds.
BUSY_TIMEOUT_S = 5.0

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meters (
    meter_id TEXT PRIMARY KEY,
    uom INTEGER NOT NULL,
    power_of_ten_multiplier INTEGER NOT NULL,
    interval_length_s INTEGER NOT NULL,
    flow_direction INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS readings (
    meter_id TEXT NOT NULL,
    flow_direction INTEGER NOT NULL,
    start_s INTEGER NOT NULL CHECK (start_s >= 0),
    duration_s INTEGER NOT NULL CHECK (duration_s > 0),
    value INTEGER NOT NULL,
    PRIMARY KEY (meter_id, flow_direction, start_s)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    meter_id TEXT NOT NULL,
    start_s INTEGER NOT NULL,
    kind TEXT NOT NULL,
    score REAL NOT NULL,
    value REAL NOT NULL,
    created REAL NOT NULL,
    UNIQUE (meter_id, start_s, kind)
);
"""

# ON CONFLICT ... DO NOTHING, not INSERT OR IGNORE: OR IGNORE also silently skips rows that
# break a CHECK or NOT NULL constraint, which would count a bad reading as a duplicate.
_INSERT_READING = (
    "INSERT INTO readings (meter_id, flow_direction, start_s, duration_s, value) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (meter_id, flow_direction, start_s) DO NOTHING"
)
_SELECT_METER = (
    "SELECT uom, power_of_ten_multiplier, interval_length_s, flow_direction "
    "FROM meters WHERE meter_id = ?"
)
_UPSERT_METER = (
    "INSERT INTO meters (meter_id, uom, power_of_ten_multiplier, interval_length_s, "
    "flow_direction) VALUES (?, ?, ?, ?, ?) ON CONFLICT (meter_id) DO UPDATE SET "
    "interval_length_s = excluded.interval_length_s, flow_direction = excluded.flow_direction"
)
_INSERT_ALERT = (
    "INSERT INTO alerts (meter_id, start_s, kind, score, value, created) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (meter_id, start_s, kind) DO NOTHING"
)

_MeterRow = tuple[int, int, int, int]


class Store:
    """SQLite store of one MDC: tables ``meters``, ``readings`` and ``alerts``.

    Args:
        path: database file, created with its tables if missing (``":memory:"`` works for
            experiments, without WAL).

    Use from one thread at a time (the connection may be handed between threads).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA_SQL)
        #: meter rows this connection has read or committed, to skip the meters write when
        #: nothing changed (the usual case: every upload of a meter has the same ReadingType)
        self._meters: dict[str, _MeterRow] = {}

    def upsert_readings(self, batch: ReadingBatch) -> tuple[int, int]:
        """Store the readings of `batch` that are not stored yet, in one transaction.

        Returns:
            (inserted, duplicates): readings newly stored, and readings already present
            (from an earlier delivery, or repeated within the batch); they sum to the batch
            size. The first stored version of a reading is kept.

        Raises:
            RejectedUpload: ``reading_type_conflict`` when the meter's stored uom or
                powerOfTenMultiplier differ from the batch's (the raw values would be
                misread), ``invalid_reading`` when a reading breaks a table constraint
                (start_s < 0, duration_s <= 0). Nothing of the batch is stored then.

        The meter's row is created on its first batch; intervalLength and flowDirection are
        updated to the latest batch's.
        """
        n = int(batch.start_s.shape[0])
        meter_row: _MeterRow = (
            batch.uom,
            batch.power_of_ten_multiplier,
            batch.interval_length_s,
            batch.flow_direction,
        )
        rows = zip(
            repeat(batch.meter_id, n),
            repeat(batch.flow_direction, n),
            batch.start_s.tolist(),
            batch.duration_s.tolist(),
            batch.value.tolist(),
            strict=False,
        )
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            write_meter = self._meters.get(batch.meter_id) != meter_row
            if write_meter:
                self._check_meter(batch, meter_row)
                conn.execute(_UPSERT_METER, (batch.meter_id, *meter_row))
            before = conn.total_changes
            conn.executemany(_INSERT_READING, rows)
            inserted = conn.total_changes - before
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            self._rollback()
            raise RejectedUpload(
                f"invalid_reading: {exc} (start_s must be >= 0 and duration_s > 0)",
                batch.meter_id,
                batch.sequence_no,
            ) from None
        except BaseException:
            self._rollback()
            raise
        if write_meter:
            self._meters[batch.meter_id] = meter_row
        return inserted, n - inserted

    def _check_meter(self, batch: ReadingBatch, meter_row: _MeterRow) -> None:
        stored = self._conn.execute(_SELECT_METER, (batch.meter_id,)).fetchone()
        if stored is not None and tuple(stored[:2]) != meter_row[:2]:
            raise RejectedUpload(
                f"reading_type_conflict: meter {batch.meter_id!r} is stored as uom "
                f"{stored[0]} x 10^{stored[1]}, the upload says uom {meter_row[0]} x "
                f"10^{meter_row[1]}",
                batch.meter_id,
                batch.sequence_no,
            )

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def add_alerts(self, alerts: Sequence[Alert], created_s: float | None = None) -> None:
        """Store `alerts` in one transaction; an alert already stored (same meter_id,
        start_s and kind) is kept as it was.

        Args:
            alerts: the alerts; nothing is done for an empty sequence.
            created_s: the ``created`` column, epoch seconds; default the wall clock
                (`time.time`). The twin passes simulated time for reproducible databases.
        """
        if not alerts:
            return
        created = time.time() if created_s is None else float(created_s)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                _INSERT_ALERT,
                [(a.meter_id, a.start_s, a.kind, a.score, a.value, created) for a in alerts],
            )
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def count_readings(self) -> int:
        """Number of readings stored (all meters and flow directions)."""
        row = self._conn.execute("SELECT count(*) FROM readings").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the connection; committed data is on disk (WAL included)."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
