"""`Store`: one MDC's SQLite store, its repositories by concern over one connection and
its transactions (`pipeline.store.database`).

- `Store.readings`: interval readings, raw and validated (`pipeline.store.readings`);
- `Store.alerts`: the batch analysis' detections (`pipeline.store.alerts`);
- `Store.sites`: the site registry (`pipeline.store.sites`);
- `Store.local_times`: the meters' local time (`pipeline.store.local_times`).

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

__all__ = ["Store"]


class Store:
    """The SQLite store of one MDC (schema in `pipeline.store.schema`).

    Args:
        path: database file, created with its tables if missing (``":memory:"`` works for
            experiments, without WAL).

    Raises:
        ValueError: the file holds a database of another schema version.

    Each repository write is one unit of work; between `begin` and `commit` they share one
    transaction (see `pipeline.store.database`). Use from one thread at a time (the
    connection may be handed between threads).
    """

    def __init__(self, path: str | Path) -> None:
        self._db = Database(path)
        self.path = self._db.path
        self.readings = ReadingRepository(self._db)
        self.alerts = AlertRepository(self._db)
        self.sites = SiteRepository(self._db)
        self.local_times = LocalTimeRepository(self._db)

    @property
    def in_transaction(self) -> bool:
        """True between `begin` and `commit` (or `rollback`)."""
        return self._db.in_transaction

    def begin(self) -> None:
        """Open a transaction that the following writes share, until `commit` (nothing
        happens if one is open)."""
        self._db.begin()

    def commit(self) -> None:
        """Commit the open transaction, if any."""
        self._db.commit()

    def rollback(self) -> None:
        """Drop everything written since `begin`."""
        self._db.rollback()

    def close(self) -> None:
        """Commit an open transaction and close the connection: everything written is then
        on disk (WAL included)."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
