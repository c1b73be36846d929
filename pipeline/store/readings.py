"""The readings repository: interval readings stored idempotently, read back as columns,
and their validated values written beside the raw ones.

Delivery is at-least-once, so `ReadingRepository.upsert_batches` stores each new reading
once; retries and failovers never double-count. The first stored version of a reading is
kept, and raw values are never overwritten (a trigger of `pipeline.store.schema` refuses
it): a reading whose interval is already stored counts as a *duplicate* when its raw
columns (duration, value, quality) are the stored ones, else as a *conflict* (a meter's
relabelled reading, a utility's correction), recorded in ``reading_revisions`` (DESIGN §9:
recorded and reported, never dropped silently). `ReadingRepository.set_validated` writes
only the validated columns.

Reads: `ReadingRepository.read_series` reads a series' rows with one ranged primary-key
query whose integer columns come back as one decimal string each (``group_concat``, parsed
by ``numpy.fromstring``) instead of one Python tuple per row, plus one small query for the
rows that need more (a duration other than the interval length, a validated value other
than the raw value): a few times faster than ``fetchall`` of the six columns on the rows of
three weeks of 1-minute readings.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

import numpy as np

from pipeline.espi.reading_type import ReadingType
from pipeline.fetch.rejection import RejectedUpload
from pipeline.process.batch import QUALITY_NONE, ReadingBatch
from pipeline.store.database import Database
from pipeline.store.schema import READING_TYPE_COLUMNS

__all__ = ["LatestReading", "ReadingRepository", "SeriesRows", "StoredCounts"]

_INT64_MAX = 2**63 - 1
_RT_COLUMNS_SQL = ", ".join(READING_TYPE_COLUMNS)

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
_INSERT_REVISION = (
    "INSERT INTO reading_revisions (meter_key, reading_type_key, start_s, duration_s, "
    f"raw_value, raw_quality, sequence_no, source, received_s) VALUES (?, ?, ?, ?, ?, "
    f"NULLIF(?, {QUALITY_NONE}), ?, ?, ?) ON CONFLICT DO NOTHING"
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
_SELECT_LATEST = (
    "SELECT start_s, duration_s, raw_value FROM interval_readings WHERE meter_key = ? AND "
    "reading_type_key = ? ORDER BY start_s DESC LIMIT 1"
)
_ROWS_PER_METER = (
    "SELECT m.meter_id, r.n FROM (SELECT meter_key, count(*) AS n FROM interval_readings "
    "GROUP BY meter_key) AS r JOIN meters AS m USING (meter_key) ORDER BY m.meter_id"
)
_SELECT_READING_TYPES = f"SELECT reading_type_key, {_RT_COLUMNS_SQL} FROM reading_types"
_READING_TYPES_OF_METER = (
    f"SELECT {_RT_COLUMNS_SQL} FROM reading_types AS t WHERE EXISTS (SELECT 1 FROM "
    "interval_readings AS r WHERE r.meter_key = ? AND r.reading_type_key = t.reading_type_key) "
    "ORDER BY t.reading_type_key"
)


class StoredCounts(NamedTuple):
    """What the store did with the readings of one batch; the three sum to its size.

    Attributes:
        inserted: readings newly stored.
        duplicates: readings whose interval was already stored with the same duration,
            value and quality (a re-delivery, or a repeat within the batch): nothing to do.
        conflicts: readings whose interval was already stored (earlier, or before them in
            the batch) with another duration, value or quality: the stored reading is
            kept, and this version recorded in ``reading_revisions``.
    """

    inserted: int
    duplicates: int
    conflicts: int


@dataclass(frozen=True)
class SeriesRows:
    """The stored readings of one series, as columns in time order.

    Attributes:
        start_s: int64 interval starts, epoch s.
        duration_s: int64 interval lengths, s.
        raw_value: int64 values as received (register counts, see
            `pipeline.process.batch.ReadingBatch.value`).
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


@dataclass(frozen=True)
class LatestReading:
    """The latest stored reading of one series: its meter id, ReadingType, interval start
    (epoch s), length (s) and raw value (register count: the quantity is ``raw_value x
    10^power_of_ten_multiplier`` of the ReadingType's uom)."""

    meter_id: str
    reading_type: ReadingType
    start_s: int
    duration_s: int
    raw_value: int


class ReadingRepository:
    """The interval readings of a store (tables ``interval_readings``, ``meters``,
    ``reading_types``). Every write is one unit of work of `database`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn = database.connection
        self._keys = database.keys

    def upsert_batches(
        self, batches: Sequence[ReadingBatch], source: str | None = None
    ) -> list[StoredCounts]:
        """Store the readings of `batches` (typically the series of one upload) that are not
        stored yet, as one unit of work: all batches or none.

        Args:
            batches: the readings, one batch per series.
            source: where they came from (a file name), recorded with any conflicting
                reading in ``reading_revisions`` beside the batch's sequence number.

        Returns:
            `StoredCounts` per batch: inserted, duplicates, conflicts. The first stored
            version of a reading is kept; every conflicting version is recorded once in
            ``reading_revisions``.

        Raises:
            RejectedUpload: ``invalid_reading`` when a reading breaks a table constraint
                (start_s < 0, duration_s <= 0) or does not fit SQLite's 64-bit integers.
                Nothing of the batches is stored then.
        """
        conn = self._conn
        keys = self._keys
        counts: list[StoredCounts] = []
        try:
            with self._db.unit():
                for batch in batches:
                    n = int(batch.start_s.shape[0])
                    meter_key = keys.meter(batch.meter_id)
                    series_keys = (meter_key, keys.reading_type(batch.reading_type))
                    columns = [
                        repeat(series_keys[0], n),
                        repeat(series_keys[1], n),
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
                    conflicts = 0
                    if inserted < n:  # some intervals were stored already: same or not?
                        conflicts = self._record_conflicts(batch, series_keys, source)
                    counts.append(StoredCounts(inserted, n - inserted - conflicts, conflicts))
        except (sqlite3.IntegrityError, OverflowError) as exc:
            first = batches[0]
            raise RejectedUpload(
                f"invalid_reading: {exc} (start_s must be >= 0, duration_s > 0, values 64-bit)",
                first.meter_id,
                first.sequence_no,
            ) from None
        return counts

    def upsert_batch(self, batch: ReadingBatch, source: str | None = None) -> StoredCounts:
        """`upsert_batches` of one batch."""
        return self.upsert_batches((batch,), source)[0]

    def _record_conflicts(
        self, batch: ReadingBatch, series_keys: tuple[int, int], source: str | None
    ) -> int:
        """Compare every reading of `batch` (all of whose intervals are stored now) with the
        stored row of its interval; record those that differ in ``reading_revisions``
        (each distinct version once) and return how many differ. One ranged read of the
        series over the batch's span, vectorised comparison."""
        stored = self.read_series(
            batch.meter_id, batch.reading_type, int(batch.start_s.min()), int(batch.start_s.max())
        )
        at = np.searchsorted(stored.start_s, batch.start_s)
        quality = (
            np.full(batch.start_s.shape, QUALITY_NONE, dtype=np.int64)
            if batch.quality is None
            else batch.quality
        )
        differs = (
            (stored.raw_value[at] != batch.value)
            | (stored.duration_s[at] != batch.duration_s)
            | (stored.raw_quality[at] != quality)
        )
        n_conflicts = int(np.count_nonzero(differs))
        if n_conflicts:
            rows = zip(
                repeat(series_keys[0], n_conflicts),
                repeat(series_keys[1], n_conflicts),
                batch.start_s[differs].tolist(),
                batch.duration_s[differs].tolist(),
                batch.value[differs].tolist(),
                quality[differs].tolist(),
                repeat(batch.sequence_no, n_conflicts),
                repeat(source, n_conflicts),
                repeat(time.time(), n_conflicts),
                strict=False,
            )
            self._conn.executemany(_INSERT_REVISION, rows)
        return n_conflicts

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
        keys = self._keys.find(meter_id, reading_type)
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
        with self._db.unit():
            before = conn.total_changes
            conn.executemany(_SET_VALIDATED, rows)
            updated = conn.total_changes - before
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
        keys = self._keys.find(meter_id, reading_type)
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
        return [(meter_id, rt) for meter_id, rt, _ in self._series_keys()]

    def _series_keys(self) -> list[tuple[str, ReadingType, tuple[int, int]]]:
        """`series` with each series' (meter_key, reading_type_key)."""
        conn = self._conn
        meters = dict(conn.execute(_SELECT_METERS).fetchall())
        types = {int(row[0]): ReadingType(*row[1:]) for row in conn.execute(_SELECT_READING_TYPES)}
        keys: list[tuple[int, int]] = []
        row = conn.execute(_NEXT_SERIES_KEY, (-1, -1)).fetchone()
        while row is not None:  # one seek per series, not per reading
            keys.append((int(row[0]), int(row[1])))
            row = conn.execute(_NEXT_SERIES_KEY, row).fetchone()
        keys.sort(key=lambda k: (meters[k[0]], k[1]))
        return [(str(meters[m]), types[r], (m, r)) for m, r in keys]

    def latest(self) -> list[LatestReading]:
        """The latest stored reading of every series, in `series` order: one index seek per
        series (a skip scan of the primary key), whatever the number of readings."""
        conn = self._conn
        out: list[LatestReading] = []
        for meter_id, rt, keys in self._series_keys():
            start_s, duration_s, raw_value = conn.execute(_SELECT_LATEST, keys).fetchone()
            out.append(LatestReading(meter_id, rt, int(start_s), int(duration_s), int(raw_value)))
        return out

    def rows_per_meter(self) -> dict[str, int]:
        """Rows stored per meter id, all series of the meter together (one scan of the
        readings' primary key: linear in the rows, for reconciliations, not for polling)."""
        return {str(m): int(n) for m, n in self._conn.execute(_ROWS_PER_METER)}

    def reading_types_of(self, meter_id: str) -> list[ReadingType]:
        """The ReadingTypes of a meter's stored series (one index seek per reading type)."""
        meter_key = self._keys.meter_of(meter_id)
        if meter_key is None:
            return []
        return [ReadingType(*r) for r in self._conn.execute(_READING_TYPES_OF_METER, (meter_key,))]

    def count(self) -> int:
        """Number of interval-reading rows stored (all meters and series), including those
        of a transaction opened by `pipeline.store.database.Database.begin` and not yet
        committed."""
        row = self._conn.execute("SELECT count(*) FROM interval_readings").fetchone()
        return int(row[0])


def _empty_rows() -> SeriesRows:
    i64 = np.zeros(0, dtype=np.int64)
    return SeriesRows(i64, i64.copy(), i64.copy(), i64.copy(), np.zeros(0), i64.copy())
