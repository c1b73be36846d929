"""The local time of each meter (usage point): the last ESPI LocalTimeParameters ingested
for it (`pipeline.espi.localtime.LocalTime`), in table ``local_time_parameters`` of
`pipeline.store.schema`.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from pipeline.espi.localtime import LocalTime
from pipeline.store.database import Database

__all__ = ["LocalTimeRepository"]

_UPSERT = (
    "INSERT INTO local_time_parameters (meter_id, tz_offset_s, dst_offset_s, dst_start_rule, "
    "dst_end_rule) VALUES (?, ?, ?, ?, ?) ON CONFLICT (meter_id) DO UPDATE SET "
    "tz_offset_s = excluded.tz_offset_s, dst_offset_s = excluded.dst_offset_s, "
    "dst_start_rule = excluded.dst_start_rule, dst_end_rule = excluded.dst_end_rule"
)


class LocalTimeRepository:
    """The meters' local times. Every write is one unit of work of `database`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn = database.connection

    def put(self, meter_id: str, local_time: LocalTime) -> None:
        """Record `local_time` as the local time of `meter_id`, replacing an older one."""
        with self._db.unit():
            self._conn.execute(
                _UPSERT,
                (
                    meter_id,
                    local_time.tz_offset_s,
                    local_time.dst_offset_s,
                    local_time.dst_start_rule,
                    local_time.dst_end_rule,
                ),
            )
