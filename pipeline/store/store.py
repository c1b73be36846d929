"""`Store`: one MDC's SQLite store, its connection and transactions
(`pipeline.store.database.Database`) with the repositories by concern over them:

- `Store.readings`: interval readings, raw and validated (`pipeline.store.readings`);
- `Store.alerts`: the batch analysis' detections (`pipeline.store.alerts`);
- `Store.sites`: the site registry (`pipeline.store.sites`);
- `Store.local_times`: the meters' local time (`pipeline.store.local_times`);
- `Store.weather`: the regional weather feed (`pipeline.store.weather`).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from pipeline.store.alerts import AlertRepository
from pipeline.store.database import Database
from pipeline.store.local_times import LocalTimeRepository
from pipeline.store.readings import ReadingRepository
from pipeline.store.sites import SiteRepository
from pipeline.store.weather import WeatherRepository

__all__ = ["Store"]


class Store(Database):
    """The SQLite store of one MDC (schema in `pipeline.store.schema`): a `Database` and
    its repositories.

    Args:
        path: database file, created with its tables if missing (``":memory:"`` works for
            experiments, without WAL).
        read_only: open an existing file read-only (readers beside the writer, e.g. the
            MDC service's dashboard; see `pipeline.store.database.Database`).

    Raises:
        ValueError: the file holds a database of another schema version (read-only: or is
            missing).

    Each repository write is one unit of work; between `begin` and `commit` they share one
    transaction. Use from one thread at a time (the connection may be handed between
    threads).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        super().__init__(path, read_only=read_only)
        self.readings = ReadingRepository(self)
        self.alerts = AlertRepository(self)
        self.sites = SiteRepository(self)
        self.local_times = LocalTimeRepository(self)
        self.weather = WeatherRepository(self)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store; leaving on an exception (Ctrl-C included) first rolls back an
        open transaction, so nothing half-done is committed."""
        if exc_type is not None:
            self.rollback()
        self.close()
