"""What the batch analysis keeps between calls: the latest analysis window of each series
(`WindowCache`) and the clear-sky expected energy of each PV site over it
(`ExpectedEnergyCache`), so that an hourly call reads and computes only the new hour.

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from pipeline.analyze.clearsky import expected_energy_wh
from pipeline.analyze.series import SECONDS_PER_DAY
from pipeline.espi.reading_type import ReadingType
from pipeline.store.readings import ReadingRepository, SeriesRows
from pipeline.store.sites import SiteMeta

__all__ = ["ExpectedEnergyCache", "WindowCache"]

#: How far ahead of the window `ExpectedEnergyCache` computes the clear sky, s.
_AHEAD_S = SECONDS_PER_DAY


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


class ExpectedEnergyCache:
    """Clear-sky expected energy of each PV site over its latest analysis window, and a day
    ahead of it.

    The batch analysis slides each window forward by the time between calls; the part
    already computed is reused, and the clear sky is computed a day ahead (`_AHEAD_S`)
    whenever the window outgrows the cache, so that hourly calls compute it once a day per
    site instead of paying the chain's fixed cost each time
    (`pipeline.analyze.clearsky.expected_energy_wh` is a function of each interval alone).
    Holds one window per site (8 bytes per interval: 250 kB for three weeks of 1-minute
    data).
    """

    def __init__(self) -> None:
        self._by_site: dict[str, tuple[SiteMeta, int, int, np.ndarray]] = {}

    def forget(self, site_id: str) -> None:
        self._by_site.pop(site_id, None)

    def get(self, site: SiteMeta, start_s: np.ndarray, interval_length_s: int) -> np.ndarray:
        """Expected Wh of the intervals `start_s` (a regular grid of `interval_length_s`)."""
        step = int(interval_length_s)
        n = int(start_s.shape[0])
        if n == 0:
            return np.zeros(0)
        first = int(start_s[0])
        entry = self._by_site.get(site.site_id)
        cached_first, cached = first, np.zeros(0)
        if entry is not None and entry[0] == site and entry[1] == step:
            cached_first, cached = entry[2], entry[3]
        off, rem = divmod(first - cached_first, step)
        if rem == 0 and off >= 0 and off + n <= cached.shape[0]:
            if off:  # drop what the window left behind
                self._by_site[site.site_id] = (site, step, first, cached[off:])
            return cached[off : off + n]
        total = n + max(1, _AHEAD_S // step)
        grid = first + step * np.arange(total, dtype=np.int64)
        out = np.empty(total)
        lo, hi = (max(off, 0), min(off + total, cached.shape[0])) if rem == 0 else (0, 0)
        if lo < hi:
            out[lo - off : hi - off] = cached[lo:hi]
            if lo - off > 0:
                out[: lo - off] = expected_energy_wh(site, grid[: lo - off], step)
            if hi - off < total:
                out[hi - off :] = expected_energy_wh(site, grid[hi - off :], step)
        else:
            out = expected_energy_wh(site, grid, step)
        self._by_site[site.site_id] = (site, step, first, out)
        return out[:n]
