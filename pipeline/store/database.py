"""The store's connection, its transactions and units of work, and the integer keys of
meters and reading types that every table of readings and alerts refers to.

Each write call of a repository is one unit of work, all or nothing (`Database.unit`). By
default a unit is its own transaction (an upload is durable when its write returns).
Between `Database.begin` and `Database.commit` the units share one transaction, each
inside a SAVEPOINT, so a unit rejected halfway leaves the others intact: the commit cost,
most of the cost of storing a small upload, is paid once per group (`pipeline.service`
``commit_every``).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import TracebackType

from pipeline.espi.reading_type import ReadingType
from pipeline.store.schema import READING_TYPE_COLUMNS, connect, connect_read_only

__all__ = ["Database", "SeriesKeys", "UnitOfWork"]

_SAVEPOINT = "SAVEPOINT store_unit"
_RELEASE = "RELEASE store_unit"
_ROLLBACK_TO = "ROLLBACK TO store_unit"

_SELECT_METER = "SELECT meter_key FROM meters WHERE meter_id = ?"
_INSERT_METER = "INSERT INTO meters (meter_id) VALUES (?) RETURNING meter_key"
_RT_WHERE = " AND ".join(f"{c} = ?" for c in READING_TYPE_COLUMNS)
_SELECT_READING_TYPE = f"SELECT reading_type_key FROM reading_types WHERE {_RT_WHERE}"
_INSERT_READING_TYPE = (
    f"INSERT INTO reading_types ({', '.join(READING_TYPE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(READING_TYPE_COLUMNS))}) RETURNING reading_type_key"
)


class Database:
    """One connection to a store file (`pipeline.store.schema.connect`) and its
    transactions; the repositories of `pipeline.store` share it.

    Args:
        path: database file, created with its tables if missing (``":memory:"`` works for
            experiments, without WAL).
        read_only: open an existing file read-only (`pipeline.store.schema.connect_read_only`):
            every write raises ``sqlite3.OperationalError``.

    Raises:
        ValueError: the file holds a database of another schema version (read-only: or is
            missing).

    Use from one thread at a time (the connection may be handed between threads).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        #: the sqlite3 connection, for the repositories of this package only
        self.connection = connect_read_only(self.path) if read_only else connect(self.path)
        self.keys = SeriesKeys(self.connection)

    @property
    def in_transaction(self) -> bool:
        """True between `begin` and `commit` (or `rollback`)."""
        return self.connection.in_transaction

    def begin(self) -> None:
        """Open a transaction that the following units of work share, until `commit`. Takes
        the write lock now (``BEGIN IMMEDIATE``). Nothing happens if one is open."""
        if not self.connection.in_transaction:
            self.connection.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Commit the open transaction, if any: everything written since `begin` is then
        durable against a process crash."""
        if self.connection.in_transaction:
            self.connection.execute("COMMIT")

    def rollback(self) -> None:
        """Drop everything written since `begin`."""
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")
        self.keys.forget()

    def unit(self) -> UnitOfWork:
        """A unit of work: ``with database.unit(): ...`` writes all or nothing."""
        return UnitOfWork(self)

    def close(self) -> None:
        """Commit an open transaction (see `begin`) and close the connection: everything
        written is then on disk (WAL included)."""
        if self.connection.in_transaction:
            self.connection.execute("COMMIT")
        self.connection.close()


class UnitOfWork:
    """A context manager: its own transaction when none is open (committed at the end), else
    a savepoint in the open one (released at the end); on an exception, rolled back to
    where it began (and the cached keys forgotten: keys created in it are gone)."""

    __slots__ = ("_database", "_own")

    def __init__(self, database: Database) -> None:
        self._database = database
        self._own = False

    def __enter__(self) -> UnitOfWork:
        conn = self._database.connection
        if conn.in_transaction:
            conn.execute(_SAVEPOINT)
        else:
            conn.execute("BEGIN IMMEDIATE")
            self._own = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._database.connection
        if exc_type is None:
            conn.execute("COMMIT" if self._own else _RELEASE)
            return
        if self._own:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        elif conn.in_transaction:
            conn.execute(_ROLLBACK_TO)
            conn.execute(_RELEASE)
        self._database.keys.forget()


class SeriesKeys:
    """The integer keys of meters (``meters.meter_key``) and reading types
    (``reading_types.reading_type_key``) this connection has read or written, created on
    first use; forgotten when a unit of work rolls back (keys created in it are gone)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._meter_keys: dict[str, int] = {}
        self._reading_type_keys: dict[ReadingType, int] = {}

    def forget(self) -> None:
        self._meter_keys.clear()
        self._reading_type_keys.clear()

    def meter(self, meter_id: str) -> int:
        """The key of `meter_id`, created if new."""
        key = self._meter_keys.get(meter_id)
        if key is None:
            row = self._conn.execute(_SELECT_METER, (meter_id,)).fetchone()
            if row is None:
                row = self._conn.execute(_INSERT_METER, (meter_id,)).fetchone()
            key = self._meter_keys[meter_id] = int(row[0])
        return key

    def reading_type(self, reading_type: ReadingType) -> int:
        """The key of `reading_type`, created if new."""
        key = self._reading_type_keys.get(reading_type)
        if key is None:
            values = reading_type.values()
            row = self._conn.execute(_SELECT_READING_TYPE, values).fetchone()
            if row is None:
                row = self._conn.execute(_INSERT_READING_TYPE, values).fetchone()
            key = self._reading_type_keys[reading_type] = int(row[0])
        return key

    def find(self, meter_id: str, reading_type: ReadingType) -> tuple[int, int] | None:
        """(meter_key, reading_type_key) of a stored series without creating them; None
        when the meter or the reading type is unknown."""
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

    def meter_of(self, meter_id: str) -> int | None:
        """The key of `meter_id` without creating it; None when unknown."""
        key = self._meter_keys.get(meter_id)
        if key is not None:
            return key
        row = self._conn.execute(_SELECT_METER, (meter_id,)).fetchone()
        return None if row is None else int(row[0])
