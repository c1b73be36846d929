"""Store stage: idempotent SQLite persistence of interval readings, validation and alerts.

Schema (version `SCHEMA_VERSION`, kept in ``PRAGMA user_version``; see `SCHEMA_SQL`):

- ``meters``: one row per meter id (an integer ``meter_key`` keeps the readings compact);
- ``reading_types``: one row per distinct `pipeline.process.ReadingType` (the identity of a
  series besides its meter: uom, multiplier, interval length, flow direction, kind, ...);
- ``interval_readings``: one row per reading, primary key ``(meter_key, reading_type_key,
  start_s)`` (DESIGN §3: a reading is identified by its meter and interval start, and here
  by its series, so a meter's energy, voltage and current channels are separate series).
  Each row keeps the raw value and raw ESPI quality code as received (``raw_value``,
  ``raw_quality``; NULL when the upload gave none), and the result of validation,
  estimation and editing (``validated_value``, ``validated_quality``; NULL until VEE has
  run). A trigger refuses any UPDATE of the raw columns: later validation or estimation
  never overwrites what the meter sent (`Store.set_validated` writes only the validated
  columns);
- ``alerts``: analytics alerts, one per (meter, interval start, kind), the key
  `pipeline.sinks` relies on; ``reading_type_key`` names the series a streaming alert is
  about (NULL for alerts about a site, such as `pipeline.sinks`' detections, which also
  fill ``end_s``, ``detected_s`` and ``message``). Two series of one meter alerting with
  the same kind at the same start keep the first alert, as before for the two flow
  directions of a net meter;
  Batch detections (`pipeline.analytics.Detection`, written by `Store.record_detections`)
  are kept one row per fault: a detection that overlaps a stored one of the same meter and
  kind extends it (``end_s``) instead of adding a row, so re-running the analytics every hour
  never raises the same fault twice;
- ``sites``: the asset registry, one row per `pipeline.analytics.SiteMeta` (``site_id`` is
  the meter id), written by `Store.put_site`; it survives restarts;
- view ``readings``: the readings with their meter id and ReadingType fields, ``value``
  being the raw value (for ad-hoc queries: ``SELECT start_s, value FROM readings WHERE
  meter_id = ? AND uom = 72``).

Delivery is at-least-once, so `Store.upsert_batches` stores each new reading once and counts
the rest as duplicates (the first stored version of a reading is kept); retries and
failovers never double-count.

Durability (DESIGN §9): WAL journal, ``synchronous=NORMAL``. Each write call is one unit of
work, all or nothing. By default a unit is its own transaction (an upload is durable when
`upsert_batches` returns). Between `begin` and `commit` the units share one transaction
(each inside a SAVEPOINT, so a unit rejected halfway leaves the others intact): the commit
cost, most of the cost of storing a small upload, is paid once per group
(`pipeline.service.Pipeline` ``commit_every``). A crash of the process leaves every
committed transaction intact and nothing of the open one; WAL recovery on the next open
discards uncommitted frames. (With NORMAL, a power loss can roll back the last few commits,
but never corrupts the file; ``synchronous=FULL`` would fsync every commit at a large cost.)

Tables added since version 2 (``sites``) are created with ``IF NOT EXISTS`` when a
version-2 file is opened: additive, so the version number stays.

Reads: `Store.read_series` reads a series' rows with one ranged primary-key query whose
integer columns come back as one decimal string each (``group_concat``, parsed by
``numpy.fromstring``) instead of one Python tuple per row, plus one small query for the
rows that need more (a duration other than the interval length, a validated value other
than the raw value): 13 ms instead of 58 ms (``fetchall`` of the six columns) on the
30,240 rows of three weeks of 1-minute readings.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from types import TracebackType

import numpy as np

from pipeline.analyze import Alert
from pipeline.fetch import RejectedUpload
from pipeline.readings import QUALITY_NONE, ReadingBatch, ReadingType
from pipeline.sites import Detection, SiteMeta

__all__ = [
    "ALERTS_ADDED_COLUMNS",
    "ALERTS_COLUMNS",
    "ALERTS_SCHEMA_SQL",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "SITE_COLUMNS",
    "SeriesRows",
    "Store",
]

#: Busy timeout when another connection holds the write lock, seconds.
BUSY_TIMEOUT_S = 5.0

#: ``PRAGMA user_version`` of the schema below. Version 1 (table ``readings`` keyed by
#: meter, flow direction and start) is not migrated: re-ingest into a new file.
SCHEMA_VERSION = 2

#: Column names of `ReadingType` in table ``reading_types``, in declaration order.
_RT_COLUMNS = (
    "uom",
    "power_of_ten_multiplier",
    "interval_length_s",
    "flow_direction",
    "kind",
    "accumulation_behaviour",
    "commodity",
    "phase",
    "data_qualifier",
)
_RT_COLUMNS_SQL = ", ".join(_RT_COLUMNS)

#: The ``alerts`` table, the one definition of it (`pipeline.sinks` writes into it too, on
#: any sqlite3 connection): (column, SQL type and constraint) in table order. Key: one row
#: per ``(meter_id, start_s, kind)``.
ALERTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("meter_id", "TEXT NOT NULL"),
    ("start_s", "INTEGER NOT NULL"),
    ("kind", "TEXT NOT NULL"),
    ("score", "REAL NOT NULL"),
    ("value", "REAL NOT NULL"),
    ("created", "REAL NOT NULL"),
    ("end_s", "INTEGER"),
    ("detected_s", "INTEGER"),
    ("message", "TEXT"),
    ("reading_type_key", "INTEGER"),
)
#: The nullable columns added after the first six: ``ALTER TABLE alerts ADD COLUMN`` can
#: add them to a table of an older store (`pipeline.sinks.ensure_alerts_table` does).
ALERTS_ADDED_COLUMNS: tuple[tuple[str, str], ...] = ALERTS_COLUMNS[6:]
#: ``CREATE TABLE IF NOT EXISTS alerts`` of `ALERTS_COLUMNS` (part of `SCHEMA_SQL`).
ALERTS_SCHEMA_SQL = (
    "CREATE TABLE IF NOT EXISTS alerts (\n"
    + "".join(f"    {name} {sql_type},\n" for name, sql_type in ALERTS_COLUMNS)
    + "    UNIQUE (meter_id, start_s, kind)\n);"
)

#: Columns of table ``sites``: the fields of `pipeline.analytics.SiteMeta`, in order.
SITE_COLUMNS = (
    "site_id",
    "kind",
    "capacity_w",
    "latitude_deg",
    "longitude_deg",
    "altitude_m",
    "tilt_deg",
    "azimuth_deg",
    "ac_nameplate_w",
    "linke_turbidity",
    "albedo",
    "derate",
)

SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS meters (
    meter_key INTEGER PRIMARY KEY,
    meter_id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS reading_types (
    reading_type_key INTEGER PRIMARY KEY,
    {" INTEGER NOT NULL, ".join(_RT_COLUMNS)} INTEGER NOT NULL,
    UNIQUE ({_RT_COLUMNS_SQL})
);
CREATE TABLE IF NOT EXISTS interval_readings (
    meter_key INTEGER NOT NULL,
    reading_type_key INTEGER NOT NULL,
    start_s INTEGER NOT NULL CHECK (start_s >= 0),
    duration_s INTEGER NOT NULL CHECK (duration_s > 0),
    raw_value INTEGER NOT NULL,
    raw_quality INTEGER,
    validated_value REAL,
    validated_quality INTEGER,
    PRIMARY KEY (meter_key, reading_type_key, start_s)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS interval_readings_raw_is_immutable
BEFORE UPDATE OF meter_key, reading_type_key, start_s, duration_s, raw_value, raw_quality
ON interval_readings
BEGIN
    SELECT RAISE(ABORT, 'raw readings are immutable: only validated columns may change');
END;
{ALERTS_SCHEMA_SQL}
CREATE TABLE IF NOT EXISTS sites (
    site_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    capacity_w REAL NOT NULL,
    latitude_deg REAL NOT NULL,
    longitude_deg REAL NOT NULL,
    altitude_m REAL NOT NULL,
    tilt_deg REAL NOT NULL,
    azimuth_deg REAL NOT NULL,
    ac_nameplate_w REAL,
    linke_turbidity REAL NOT NULL,
    albedo REAL NOT NULL,
    derate REAL NOT NULL
);
CREATE VIEW IF NOT EXISTS readings AS
SELECT m.meter_id, {", ".join(f"t.{c}" for c in _RT_COLUMNS)},
       r.start_s, r.duration_s, r.raw_value AS value, r.raw_quality,
       r.validated_value, r.validated_quality
FROM interval_readings AS r
JOIN meters AS m USING (meter_key)
JOIN reading_types AS t USING (reading_type_key);
PRAGMA user_version = {SCHEMA_VERSION};
"""

# ON CONFLICT ... DO NOTHING, not INSERT OR IGNORE: OR IGNORE also silently skips rows that
# break a CHECK or NOT NULL constraint, which would count a bad reading as a duplicate.
_INSERT_READING = (
    "INSERT INTO interval_readings (meter_key, reading_type_key, start_s, duration_s, "
    "raw_value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (meter_key, reading_type_key, start_s) DO NOTHING"
)
_INSERT_READING_QUALITY = (
    "INSERT INTO interval_readings (meter_key, reading_type_key, start_s, duration_s, "
    f"raw_value, raw_quality) VALUES (?, ?, ?, ?, ?, NULLIF(?, {QUALITY_NONE})) "
    "ON CONFLICT (meter_key, reading_type_key, start_s) DO NOTHING"
)
_SELECT_METER = "SELECT meter_key FROM meters WHERE meter_id = ?"
_INSERT_METER = "INSERT INTO meters (meter_id) VALUES (?) RETURNING meter_key"
_RT_WHERE = " AND ".join(f"{c} = ?" for c in _RT_COLUMNS)
_SELECT_READING_TYPE = f"SELECT reading_type_key FROM reading_types WHERE {_RT_WHERE}"
_INSERT_READING_TYPE = (
    f"INSERT INTO reading_types ({_RT_COLUMNS_SQL}) VALUES ({', '.join('?' * len(_RT_COLUMNS))}) "
    "RETURNING reading_type_key"
)
_INSERT_ALERT = (
    "INSERT INTO alerts (meter_id, reading_type_key, start_s, kind, score, value, created) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (meter_id, start_s, kind) DO NOTHING"
)
_SET_VALIDATED = (
    "UPDATE interval_readings SET validated_value = ?, validated_quality = NULLIF(?, "
    f"{QUALITY_NONE}) WHERE meter_key = ? AND reading_type_key = ? AND start_s = ?"
)
#: The integer columns of a series' rows, each as one comma-separated decimal string (one
#: aggregate pass, so the columns share the row order): start_s, raw_value, raw_quality,
#: validated_quality.
_SELECT_SERIES_TEXT = (
    "SELECT count(*), group_concat(start_s, ','), group_concat(raw_value, ','), "
    f"group_concat(IFNULL(raw_quality, {QUALITY_NONE}), ','), "
    f"group_concat(IFNULL(validated_quality, {QUALITY_NONE}), ',') "
    "FROM (SELECT * FROM interval_readings WHERE meter_key = ? AND reading_type_key = ? "
    "AND start_s BETWEEN ? AND ? ORDER BY start_s)"
)
#: The same rows one tuple each (the fallback of `_SELECT_SERIES_TEXT`).
_SELECT_SERIES_ROWS = (
    f"SELECT start_s, raw_value, IFNULL(raw_quality, {QUALITY_NONE}), "
    f"IFNULL(validated_quality, {QUALITY_NONE}) FROM interval_readings "
    "WHERE meter_key = ? AND reading_type_key = ? AND start_s BETWEEN ? AND ? ORDER BY start_s"
)
#: The rows `_SELECT_SERIES_TEXT` does not describe fully (usually few): a duration other
#: than the series' interval length, or a validated value other than the raw value.
_SELECT_EXCEPTIONS = (
    "SELECT start_s, duration_s, validated_value FROM interval_readings WHERE meter_key = ? "
    "AND reading_type_key = ? AND start_s BETWEEN ? AND ? AND (duration_s != ? OR "
    "(validated_quality IS NOT NULL AND validated_value IS NOT raw_value))"
)
#: The next series key after (?, ?) in primary-key order: a skip scan, one seek per series.
_NEXT_SERIES_KEY = (
    "SELECT meter_key, reading_type_key FROM interval_readings "
    "WHERE (meter_key, reading_type_key) > (?, ?) ORDER BY meter_key, reading_type_key LIMIT 1"
)
_SELECT_METERS = "SELECT meter_key, meter_id FROM meters"
_SELECT_READING_TYPES = f"SELECT reading_type_key, {_RT_COLUMNS_SQL} FROM reading_types"
_READING_TYPES_OF_METER = (
    f"SELECT {_RT_COLUMNS_SQL} FROM reading_types AS t WHERE EXISTS (SELECT 1 FROM "
    "interval_readings AS r WHERE r.meter_key = ? AND r.reading_type_key = t.reading_type_key) "
    "ORDER BY t.reading_type_key"
)
_UPSERT_SITE = (
    f"INSERT INTO sites ({', '.join(SITE_COLUMNS)}) VALUES ({', '.join('?' * len(SITE_COLUMNS))}) "
    "ON CONFLICT (site_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SITE_COLUMNS[1:])
)
_SELECT_SITES = f"SELECT {', '.join(SITE_COLUMNS)} FROM sites ORDER BY site_id"
#: A stored alert of one meter and kind whose span [start_s, end_s] meets [?, ?].
_SELECT_OVERLAPPING_ALERT = (
    "SELECT rowid, start_s, IFNULL(end_s, start_s), score, value, message FROM alerts "
    "WHERE meter_id = ? AND kind = ? AND start_s <= ? AND IFNULL(end_s, start_s) >= ? "
    "ORDER BY start_s LIMIT 1"
)
_INSERT_DETECTION = (
    "INSERT INTO alerts (meter_id, reading_type_key, start_s, kind, score, value, created, "
    "end_s, detected_s, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (meter_id, start_s, kind) DO NOTHING"
)
_EXTEND_ALERT = "UPDATE alerts SET end_s = ?, score = ?, value = ?, message = ? WHERE rowid = ?"
_SELECT_DETECTIONS = (
    "SELECT kind, meter_id, start_s, end_s, detected_s, score, value, message FROM alerts "
    "WHERE detected_s IS NOT NULL AND end_s >= ? ORDER BY start_s, meter_id, kind"
)

_SAVEPOINT = "SAVEPOINT store_unit"
_RELEASE = "RELEASE store_unit"
_ROLLBACK_TO = "ROLLBACK TO store_unit"
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class SeriesRows:
    """The stored readings of one series, as columns in time order.

    Attributes:
        start_s: int64 interval starts, epoch s.
        duration_s: int64 interval lengths, s.
        raw_value: int64 values as received (register counts, see
            `pipeline.process.ReadingBatch.value`).
        raw_quality: int64 ESPI QualityOfReading as received, `QUALITY_NONE` where none.
        validated_value: float64 validated or estimated value in the raw value's units, NaN
            until validated.
        validated_quality: int64 QualityOfReading of the validated value, `QUALITY_NONE`
            until validated.
    """

    start_s: np.ndarray
    duration_s: np.ndarray
    raw_value: np.ndarray
    raw_quality: np.ndarray
    validated_value: np.ndarray
    validated_quality: np.ndarray


class Store:
    """SQLite store of one MDC (see the module docstring for the schema and durability).

    Args:
        path: database file, created with its tables if missing (``":memory:"`` works for
            experiments, without WAL).

    Raises:
        ValueError: the file holds a database of another schema version.

    Use from one thread at a time (the connection may be handed between threads).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION) or (
            version == 0 and self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        ):
            self._conn.close()
            raise ValueError(
                f"{self.path}: database schema version {version}, this pipeline writes "
                f"version {SCHEMA_VERSION}; ingest into a new database file"
            )
        self._conn.executescript(SCHEMA_SQL)
        #: meter and reading type keys this connection has read or written; emptied when a
        #: unit rolls back (keys created in it are gone)
        self._meter_keys: dict[str, int] = {}
        self._reading_type_keys: dict[ReadingType, int] = {}

    # --- transactions -------------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        """True between `begin` and `commit` (or `rollback`)."""
        return self._conn.in_transaction

    def begin(self) -> None:
        """Open a transaction that the following write calls share, until `commit`. Takes
        the write lock now (``BEGIN IMMEDIATE``). Nothing happens if one is open."""
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Commit the open transaction, if any: everything written since `begin` is then
        durable against a process crash."""
        if self._conn.in_transaction:
            self._conn.execute("COMMIT")

    def rollback(self) -> None:
        """Drop everything written since `begin`."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._forget_keys()

    def _unit_begin(self) -> bool:
        """Start a unit of work: its own transaction (returns True), or a savepoint in the
        transaction opened by `begin`."""
        if self._conn.in_transaction:
            self._conn.execute(_SAVEPOINT)
            return False
        self._conn.execute("BEGIN IMMEDIATE")
        return True

    def _unit_end(self, own: bool) -> None:
        self._conn.execute("COMMIT" if own else _RELEASE)

    def _unit_abort(self, own: bool) -> None:
        conn = self._conn
        if own:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        elif conn.in_transaction:
            conn.execute(_ROLLBACK_TO)
            conn.execute(_RELEASE)
        self._forget_keys()

    def _forget_keys(self) -> None:
        self._meter_keys.clear()
        self._reading_type_keys.clear()

    # --- keys ---------------------------------------------------------------------------------

    def _meter_key(self, meter_id: str) -> int:
        key = self._meter_keys.get(meter_id)
        if key is None:
            row = self._conn.execute(_SELECT_METER, (meter_id,)).fetchone()
            if row is None:
                row = self._conn.execute(_INSERT_METER, (meter_id,)).fetchone()
            key = self._meter_keys[meter_id] = int(row[0])
        return key

    def _reading_type_key(self, reading_type: ReadingType) -> int:
        key = self._reading_type_keys.get(reading_type)
        if key is None:
            values = reading_type.values()
            row = self._conn.execute(_SELECT_READING_TYPE, values).fetchone()
            if row is None:
                row = self._conn.execute(_INSERT_READING_TYPE, values).fetchone()
            key = self._reading_type_keys[reading_type] = int(row[0])
        return key

    def _find_keys(self, meter_id: str, reading_type: ReadingType) -> tuple[int, int] | None:
        """(meter_key, reading_type_key) of a stored series without creating them."""
        meter_key = self._meter_keys.get(meter_id)
        rt_key = self._reading_type_keys.get(reading_type)
        if meter_key is not None and rt_key is not None:
            return meter_key, rt_key
        meter = self._conn.execute(_SELECT_METER, (meter_id,)).fetchone()
        rt = self._conn.execute(_SELECT_READING_TYPE, reading_type.values()).fetchone()
        if meter is None or rt is None:
            return None
        meter_key = self._meter_keys[meter_id] = int(meter[0])
        rt_key = self._reading_type_keys[reading_type] = int(rt[0])
        return meter_key, rt_key

    # --- readings -----------------------------------------------------------------------------

    def upsert_batches(self, batches: Sequence[ReadingBatch]) -> list[tuple[int, int]]:
        """Store the readings of `batches` (typically the series of one upload) that are not
        stored yet, as one unit of work: all batches or none.

        Returns:
            (inserted, duplicates) per batch: readings newly stored, and readings already
            present (from an earlier delivery, or repeated within the batch); each pair sums
            to its batch's size. The first stored version of a reading is kept.

        Raises:
            RejectedUpload: ``invalid_reading`` when a reading breaks a table constraint
                (start_s < 0, duration_s <= 0) or does not fit SQLite's 64-bit integers.
                Nothing of the batches is stored then.
        """
        conn = self._conn
        counts: list[tuple[int, int]] = []
        own = self._unit_begin()
        try:
            for batch in batches:
                n = int(batch.start_s.shape[0])
                meter_key = self._meter_key(batch.meter_id)
                rt_key = self._reading_type_key(batch.reading_type)
                columns = [
                    repeat(meter_key, n),
                    repeat(rt_key, n),
                    batch.start_s.tolist(),
                    batch.duration_s.tolist(),
                    batch.value.tolist(),
                ]
                statement = _INSERT_READING
                if batch.quality is not None:
                    columns.append(batch.quality.tolist())
                    statement = _INSERT_READING_QUALITY
                before = conn.total_changes
                conn.executemany(statement, zip(*columns, strict=False))
                inserted = conn.total_changes - before
                counts.append((inserted, n - inserted))
            self._unit_end(own)
        except (sqlite3.IntegrityError, OverflowError) as exc:
            self._unit_abort(own)
            first = batches[0]
            raise RejectedUpload(
                f"invalid_reading: {exc} (start_s must be >= 0, duration_s > 0, values 64-bit)",
                first.meter_id,
                first.sequence_no,
            ) from None
        except BaseException:
            self._unit_abort(own)
            raise
        return counts

    def upsert_readings(self, batch: ReadingBatch) -> tuple[int, int]:
        """`upsert_batches` of one batch: (inserted, duplicates)."""
        return self.upsert_batches((batch,))[0]

    def set_validated(
        self,
        meter_id: str,
        reading_type: ReadingType,
        start_s: np.ndarray,
        validated_value: np.ndarray,
        validated_quality: np.ndarray | int,
    ) -> int:
        """Record the result of validation, estimation and editing for stored readings of
        one series, as one unit of work; the raw columns are never touched.

        Args:
            meter_id, reading_type: the series.
            start_s: int64 interval starts of the readings to update.
            validated_value: float64 values in the raw value's units (NaN stores NULL).
            validated_quality: ESPI QualityOfReading per reading, or one code for all (for
                example 9 "estimated using linear interpolation", 17 "validated").

        Returns:
            The number of readings updated (starts that are not stored are skipped).
        """
        starts = np.asarray(start_s, dtype=np.int64)
        values = np.asarray(validated_value, dtype=np.float64)
        quality = np.broadcast_to(np.asarray(validated_quality, dtype=np.int64), starts.shape)
        if values.shape != starts.shape:
            raise ValueError(
                f"start_s and validated_value must have one shape, got {starts.shape} and "
                f"{values.shape}"
            )
        keys = self._find_keys(meter_id, reading_type)
        if keys is None or starts.shape[0] == 0:
            return 0
        n = int(starts.shape[0])
        rows = zip(
            values.tolist(),  # SQLite stores a bound NaN as NULL
            quality.tolist(),
            repeat(keys[0], n),
            repeat(keys[1], n),
            starts.tolist(),
            strict=False,
        )
        conn = self._conn
        own = self._unit_begin()
        try:
            before = conn.total_changes
            conn.executemany(_SET_VALIDATED, rows)
            updated = conn.total_changes - before
            self._unit_end(own)
        except BaseException:
            self._unit_abort(own)
            raise
        return updated

    def read_series(
        self,
        meter_id: str,
        reading_type: ReadingType,
        start_s_min: int = 0,
        start_s_max: int = _INT64_MAX,
    ) -> SeriesRows:
        """The stored readings of one series with start_s_min <= start_s <= start_s_max,
        in time order (empty columns for an unknown series).

        Two queries on the primary key, whatever the number of rows (see the module
        docstring: each integer column arrives as one string; durations other than the
        interval length and validated values other than the raw value, usually few, come
        from the second)."""
        keys = self._find_keys(meter_id, reading_type)
        if keys is None:
            return _empty_rows()
        bounds = (*keys, int(start_s_min), int(start_s_max))
        ints = self._series_columns(bounds)
        if ints.shape[0] == 0:
            return _empty_rows()
        start_s = np.ascontiguousarray(ints[:, 0])
        if start_s.size > 1 and not bool(np.all(start_s[1:] > start_s[:-1])):
            # group_concat's order follows the ordered subquery in practice, not by contract
            ints = ints[np.argsort(start_s, kind="stable")]
            start_s = np.ascontiguousarray(ints[:, 0])
        raw_value = np.ascontiguousarray(ints[:, 1])
        validated_quality = np.ascontiguousarray(ints[:, 3])
        validated_value = raw_value.astype(np.float64)
        validated_value[validated_quality == QUALITY_NONE] = np.nan
        duration_s = np.full(start_s.shape, reading_type.interval_length_s, dtype=np.int64)
        odd = self._conn.execute(
            _SELECT_EXCEPTIONS, (*bounds, reading_type.interval_length_s)
        ).fetchall()
        if odd:
            at = np.searchsorted(start_s, np.array([r[0] for r in odd], dtype=np.int64))
            duration_s[at] = np.array([r[1] for r in odd], dtype=np.int64)
            edited = validated_quality[at] != QUALITY_NONE
            validated_value[at[edited]] = np.array(
                [np.nan if r[2] is None else r[2] for r in odd], dtype=np.float64
            )[edited]
        return SeriesRows(
            start_s=start_s,
            duration_s=duration_s,
            raw_value=raw_value,
            raw_quality=np.ascontiguousarray(ints[:, 2]),
            validated_value=validated_value,
            validated_quality=validated_quality,
        )

    def _series_columns(self, bounds: tuple[int, int, int, int]) -> np.ndarray:
        """int64 [n, 4]: start_s, raw_value, raw_quality, validated_quality of the rows in
        `bounds` (meter_key, reading_type_key, start_s_min, start_s_max)."""
        n, *texts = self._conn.execute(_SELECT_SERIES_TEXT, bounds).fetchone()
        if n == 0:
            return np.zeros((0, 4), dtype=np.int64)
        cols = [np.fromstring(t, dtype=np.int64, sep=",") for t in texts]
        if all(c.shape[0] == n for c in cols):
            return np.stack(cols, axis=1)
        # not expected (SQLite writes plain decimal integers), but never guess
        return np.array(self._conn.execute(_SELECT_SERIES_ROWS, bounds).fetchall(), np.int64)

    def series(self) -> list[tuple[str, ReadingType]]:
        """Every stored series: (meter_id, ReadingType), by meter id then reading type key.

        A skip scan of the primary key: one index seek per series, not a scan of the
        readings (cheap enough to call when a pipeline restarts)."""
        conn = self._conn
        meters = dict(conn.execute(_SELECT_METERS).fetchall())
        types = {int(row[0]): ReadingType(*row[1:]) for row in conn.execute(_SELECT_READING_TYPES)}
        keys: list[tuple[int, int]] = []
        row = conn.execute(_NEXT_SERIES_KEY, (-1, -1)).fetchone()
        while row is not None:  # one seek per series, not per reading
            keys.append((int(row[0]), int(row[1])))
            row = conn.execute(_NEXT_SERIES_KEY, row).fetchone()
        keys.sort(key=lambda k: (meters[k[0]], k[1]))
        return [(str(meters[m]), types[r]) for m, r in keys]

    def reading_types_of(self, meter_id: str) -> list[ReadingType]:
        """The ReadingTypes of a meter's stored series (one index seek per reading type)."""
        row = self._conn.execute(_SELECT_METER, (meter_id,)).fetchone()
        if row is None:
            return []
        return [
            ReadingType(*r) for r in self._conn.execute(_READING_TYPES_OF_METER, (int(row[0]),))
        ]

    def count_readings(self) -> int:
        """Number of interval-reading rows stored (all meters and series), including those
        of a transaction opened by `begin` and not yet committed."""
        row = self._conn.execute("SELECT count(*) FROM interval_readings").fetchone()
        return int(row[0])

    # --- alerts -------------------------------------------------------------------------------

    def add_alerts(
        self,
        alerts: Sequence[Alert],
        created_s: float | None = None,
        *,
        reading_type: ReadingType | None = None,
    ) -> None:
        """Store `alerts` as one unit of work; an alert already stored (same meter_id,
        start_s and kind) is kept as it was.

        Args:
            alerts: the alerts; nothing is done for an empty sequence.
            created_s: the ``created`` column, epoch seconds; default the wall clock
                (`time.time`). The twin passes simulated time for reproducible databases.
            reading_type: the series the alerts are about; None stores NULL (not tied to
                one series).
        """
        if not alerts:
            return
        created = time.time() if created_s is None else float(created_s)
        conn = self._conn
        own = self._unit_begin()
        try:
            rt_key = None if reading_type is None else self._reading_type_key(reading_type)
            conn.executemany(
                _INSERT_ALERT,
                [
                    (a.meter_id, rt_key, a.start_s, a.kind, a.score, a.value, created)
                    for a in alerts
                ],
            )
            self._unit_end(own)
        except BaseException:
            self._unit_abort(own)
            raise

    def record_detections(
        self,
        detections: Sequence[Detection],
        created_s: float | None = None,
        *,
        reading_type: ReadingType | None = None,
    ) -> tuple[list[Detection], int]:
        """Store batch detections, one alert row per fault, as one unit of work.

        A detection whose span ``[start_s, end_s]`` meets that of a stored alert of the same
        meter (``series_id``) and kind is the same fault seen again (the analytics re-run
        over a sliding window): the stored row keeps its ``start_s`` and ``detected_s`` (the
        first detection, whose delay the twin scores) and gets the later ``end_s``; its
        score, value and message are replaced only when the new detection covers the stored
        start (otherwise the new evidence was cut by the analysis window and would
        understate the fault). Any other detection is inserted.

        Args:
            detections: `pipeline.analytics.Detection` records (times epoch s).
            created_s: the ``created`` column of inserted rows, epoch s (default now).
            reading_type: the series the detections were found on (None: NULL).

        Returns:
            (the detections inserted, in start order; the number of stored rows extended).
        """
        if not detections:
            return [], 0
        created = time.time() if created_s is None else float(created_s)
        conn = self._conn
        inserted: list[Detection] = []
        extended = 0
        own = self._unit_begin()
        try:
            rt_key = None if reading_type is None else self._reading_type_key(reading_type)
            for d in sorted(detections, key=lambda d: (d.start_s, d.series_id, d.kind)):
                row = conn.execute(
                    _SELECT_OVERLAPPING_ALERT, (d.series_id, d.kind, int(d.end_s), int(d.start_s))
                ).fetchone()
                score, value = _finite_or_zero(d.confidence), _finite_or_zero(d.magnitude)
                if row is None:
                    before = conn.total_changes
                    conn.execute(
                        _INSERT_DETECTION,
                        (
                            d.series_id,
                            rt_key,
                            int(d.start_s),
                            d.kind,
                            score,
                            value,
                            created,
                            int(d.end_s),
                            int(d.detected_s),
                            d.message,
                        ),
                    )
                    if conn.total_changes > before:
                        inserted.append(d)
                    continue
                rowid, start_s, end_s, old_score, old_value, old_message = row
                new_end = max(int(end_s), int(d.end_s))
                if int(d.start_s) > int(start_s):  # evidence cut by the window: extend only
                    score, value, message = old_score, old_value, old_message
                else:
                    message = d.message
                if (new_end, score, value, message) != (end_s, old_score, old_value, old_message):
                    conn.execute(_EXTEND_ALERT, (new_end, score, value, message, rowid))
                    extended += 1
            self._unit_end(own)
        except BaseException:
            self._unit_abort(own)
            raise
        return inserted, extended

    def detections(self, end_s_min: int = -_INT64_MAX) -> list[Detection]:
        """The stored batch detections (alert rows with ``detected_s``) whose evidence ends
        at or after `end_s_min`, epoch s, in start order; score and value come back as
        confidence and magnitude."""
        return [
            Detection(
                kind=str(r[0]),
                series_id=str(r[1]),
                start_s=int(r[2]),
                end_s=int(r[3]),
                detected_s=int(r[4]),
                confidence=float(r[5]),
                magnitude=float(r[6]),
                message="" if r[7] is None else str(r[7]),
            )
            for r in self._conn.execute(_SELECT_DETECTIONS, (int(end_s_min),))
        ]

    # --- sites ----------------------------------------------------------------------------------

    def put_site(self, site: SiteMeta) -> None:
        """Register or replace a site's metadata (table ``sites``), as one unit of work."""
        values = tuple(getattr(site, c) for c in SITE_COLUMNS)
        own = self._unit_begin()
        try:
            self._conn.execute(_UPSERT_SITE, values)
            self._unit_end(own)
        except BaseException:
            self._unit_abort(own)
            raise

    def sites(self) -> dict[str, SiteMeta]:
        """The registered sites, by site id."""
        return {
            str(r[0]): SiteMeta(**dict(zip(SITE_COLUMNS, r, strict=True)))
            for r in self._conn.execute(_SELECT_SITES)
        }

    # --- life cycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Commit an open transaction (see `begin`) and close the connection: everything
        written is then on disk (WAL included)."""
        if self._conn.in_transaction:
            self._conn.execute("COMMIT")
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


def _empty_rows() -> SeriesRows:
    i64 = np.zeros(0, dtype=np.int64)
    return SeriesRows(i64, i64.copy(), i64.copy(), i64.copy(), np.zeros(0), i64.copy())


def _finite_or_zero(x: float) -> float:
    """A NOT NULL REAL column's value: x, or 0.0 when not finite (as `pipeline.sinks`)."""
    v = float(x)
    return v if math.isfinite(v) else 0.0
