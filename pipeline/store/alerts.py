"""The alerts repository: the batch analysis' detections (`Detection`), one alert row per
fault (table ``alerts`` of `pipeline.store.schema`).

A detection that overlaps a stored one of the same meter and kind extends it (``end_s``)
instead of adding a row, so re-running the analysis every hour never raises the same fault
twice.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.espi.reading_type import ReadingType
from pipeline.store.database import Database

__all__ = ["AlertRepository", "Detection"]

_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Detection:
    """One fault or anomaly found by a detector.

    Attributes:
        kind: ``soiling``, ``inverter_trip``, ``stuck_meter``, ``curtailment``, ``anomaly``.
        series_id: the site or meter.
        start_s: epoch seconds, estimated start of the fault.
        end_s: epoch seconds, end of the evidence (the fault may go on after it).
        detected_s: epoch seconds at which the evidence first sufficed (the end of the
            interval or day that completed it): ``detected_s - start_s`` is the detection
            delay the twin scores.
        confidence: 0..1, how sure the detector is (each detector documents its formula).
        magnitude: a kind-specific size: soiling: fractional loss of performance ratio;
            inverter_trip: energy lost, Wh; stuck_meter: the repeated value, Wh;
            curtailment: the ceiling as a fraction of rated power; anomaly: the largest
            |z|.
        message: what was found, for a person.
    """

    kind: str
    series_id: str
    start_s: int
    end_s: int
    detected_s: int
    confidence: float
    magnitude: float
    message: str


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


class AlertRepository:
    """The alerts of a store. Every write is one unit of work of `database`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn = database.connection
        self._keys = database.keys

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
            detections: `Detection` records (times epoch s).
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
        with self._db.unit():
            rt_key = None if reading_type is None else self._keys.reading_type(reading_type)
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


def _finite_or_zero(x: float) -> float:
    """A NOT NULL REAL column's value: x, or 0.0 when not finite."""
    v = float(x)
    return v if math.isfinite(v) else 0.0
