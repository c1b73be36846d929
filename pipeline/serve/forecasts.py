"""`ForecastBook`: the forecasts the service's batch analyses issued, kept in memory for the
dashboard (the store has no table of forecasts: after a restart the book fills again with
the next analyses).

Only the standard library and the pipeline's own modules are imported here (DESIGN §2).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from pipeline.analyze.forecast import ForecastRecord

__all__ = ["ForecastBook"]

#: Forecasts kept per series: two days of hourly analyses (this project's choice: enough to
#: set each issued forecast against the readings that came in since).
DEFAULT_KEEP_PER_SERIES = 48


class ForecastBook:
    """The last `keep` forecasts issued per series (meter id and flow direction), oldest
    first. Written by the writer thread, read by the API's threads (a lock guards it)."""

    def __init__(self, keep: int = DEFAULT_KEEP_PER_SERIES) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._by_series: dict[tuple[str, int], deque[ForecastRecord]] = {}

    def add(self, forecasts: Iterable[ForecastRecord]) -> None:
        with self._lock:
            for f in forecasts:
                key = (f.series_id, f.flow_direction)
                kept = self._by_series.get(key)
                if kept is None:
                    kept = self._by_series[key] = deque(maxlen=self.keep)
                kept.append(f)

    def of_site(self, site_id: str) -> list[ForecastRecord]:
        """The kept forecasts of one site, all its series, in issue order."""
        with self._lock:
            found = [f for (s, _), kept in self._by_series.items() if s == site_id for f in kept]
        return sorted(found, key=lambda f: (f.issued_s, f.flow_direction))

    def latest(self) -> list[ForecastRecord]:
        """The latest forecast of every series, by site id."""
        with self._lock:
            found = [kept[-1] for kept in self._by_series.values() if kept]
        return sorted(found, key=lambda f: (f.series_id, f.flow_direction))
