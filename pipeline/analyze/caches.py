"""What the batch analysis keeps between calls of each series: its latest analysis window
(`WindowCache`), so that an hourly call reads only the new readings from the database.

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from pipeline.espi.reading_type import ReadingType
from pipeline.store.readings import ReadingRepository, SeriesRows

__all__ = ["WindowCache"]


class WindowCache:
    """The rows of each series' latest analysis window, least recently used first, at most
    `max_points` rows in all (see `pipeline.analyze.batch.BatchAnalysis`
    ``window_cache_points``)."""

    def __init__(self, max_points: int) -> None:
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 0:
            raise ValueError(f"window_cache_points must be an int >= 0, got {max_points!r}")
        self.max_points = max_points
        self._entries: dict[tuple[str, ReadingType], tuple[int, int, SeriesRows]] = {}
        self._points = 0

    def clear(self) -> None:
        self._entries.clear()
        self._points = 0

    def read(
        self,
        readings: ReadingRepository,
        meter_id: str,
        rt: ReadingType,
        lo_s: int,
        hi_s: int,
        since_s: int,
    ) -> SeriesRows:
        """The stored rows with lo_s <= start_s <= hi_s. From the cached window when it
        covers lo_s: then only rows from the earliest new reading (`since_s`) or the end
        of the cached window on are read."""
        key = (meter_id, rt)
        entry = self._entries.pop(key, None)
        if entry is None:
            return readings.read_series(meter_id, rt, lo_s, hi_s)
        cached_lo, cached_hi, cached = entry
        self._points -= cached.start_s.shape[0]
        if cached_lo > lo_s or cached_hi > hi_s:
            return readings.read_series(meter_id, rt, lo_s, hi_s)
        fresh_from = max(lo_s, min(since_s, cached_hi + 1))
        keep = (cached.start_s >= lo_s) & (cached.start_s < fresh_from)
        old = _take_rows(cached, keep)
        if fresh_from > hi_s:
            return old
        return _concat_rows(old, readings.read_series(meter_id, rt, fresh_from, hi_s))

    def put(self, meter_id: str, rt: ReadingType, lo_s: int, hi_s: int, rows: SeriesRows) -> None:
        """Keep `rows`, all the stored rows of [lo_s, hi_s], as the series' window."""
        n = int(rows.start_s.shape[0])
        if n > self.max_points:
            return
        key = (meter_id, rt)
        old = self._entries.pop(key, None)
        if old is not None:
            self._points -= old[2].start_s.shape[0]
        self._entries[key] = (lo_s, hi_s, rows)
        self._points += n
        while self._points > self.max_points:  # evict the least recently used
            victim = next(iter(self._entries))
            self._points -= self._entries.pop(victim)[2].start_s.shape[0]


def _take_rows(rows: SeriesRows, mask: np.ndarray) -> SeriesRows:
    return SeriesRows(*(getattr(rows, f.name)[mask] for f in fields(SeriesRows)))


def _concat_rows(a: SeriesRows, b: SeriesRows) -> SeriesRows:
    return SeriesRows(
        *(np.concatenate((getattr(a, f.name), getattr(b, f.name))) for f in fields(SeriesRows))
    )
