"""The store's SQLite schema, every table in one place, and how a database file is opened.

Schema version `SCHEMA_VERSION`, kept in ``PRAGMA user_version``:

- ``meters``: one row per meter id (an integer ``meter_key`` keeps the readings compact);
- ``reading_types``: one row per distinct `pipeline.espi.reading_type.ReadingType` (the
  identity of a series besides its meter: uom, multiplier, interval length, flow
  direction, kind, ...);
- ``interval_readings``: one row per reading, primary key ``(meter_key, reading_type_key,
  start_s)`` (DESIGN §3: a reading is identified by its meter and interval start, and here
  by its series, so a meter's energy, voltage and current channels are separate series).
  Each row keeps the raw value and raw ESPI quality code as received (``raw_value``,
  ``raw_quality``; NULL when the upload gave none), and the result of validation,
  estimation and editing (``validated_value``, ``validated_quality``; NULL until VEE has
  run). A trigger refuses any UPDATE of the raw columns: later validation or estimation
  never overwrites what the meter sent;
- ``reading_revisions``: every other version received of a stored reading (DESIGN §9:
  raw values are never overwritten; a conflicting or corrected reading is recorded, never
  dropped): the same series and interval start as a row of ``interval_readings`` with
  another raw value, duration or quality, as it came (``raw_quality`` NULL when none),
  with the upload's sequence number and the file it came from when known (``sequence_no``,
  ``source``) and when the store received it (``received_s``, epoch s). Each distinct
  version is recorded once (a unique index), and never updated (a trigger);
- ``alerts``: the batch analysis' detections (`pipeline.store.alerts.Detection`), one row
  per fault, key ``(meter_id, start_s, kind)`` (`ALERTS_COLUMNS`); ``reading_type_key``
  names the series the detection was found on;
- ``sites``: the asset registry, one row per `pipeline.store.sites.SiteMeta`
  (``site_id`` is the meter id; `SITE_COLUMNS`); it survives restarts;
- ``local_time_parameters``: the local time (ESPI LocalTimeParameters) of each meter
  (usage point), the last one ingested;
- the weather feed (`WEATHER_SCHEMA_SQL`, `pipeline.store.weather`): ``weather_stations``
  (one row per met station: id, place, anemometer height), ``weather_observations`` (one
  row per station and interval start: GHI W/m2, air temperature degC, wind speed m/s,
  NULL where the station recorded none) and ``weather_forecasts`` (one row per station,
  issue time and step start, same quantities);
- view ``readings``: the readings with their meter id and ReadingType fields, ``value``
  being the raw value (for ad-hoc queries: ``SELECT start_s, value FROM readings WHERE
  meter_id = ? AND uom = 72``); view ``revisions``: the same for ``reading_revisions``,
  beside the stored reading's value (``stored_value``).

Tables added within version 2 (``sites``, ``local_time_parameters``,
``reading_revisions``, the weather tables) are created with ``IF
NOT EXISTS`` when a version-2 file is opened: additive, so the version number stays.

Durability (DESIGN §9): WAL journal, ``synchronous=NORMAL`` (`connect`). A crash of the
process leaves every committed transaction intact and nothing of the open one; WAL
recovery on the next open discards uncommitted frames. (With NORMAL, a power loss can roll
back the last few commits, but never corrupts the file; ``synchronous=FULL`` would fsync
every commit at a large cost.)

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from pipeline.process.batch import QUALITY_NONE

__all__ = [
    "ALERTS_COLUMNS",
    "BUSY_TIMEOUT_S",
    "READING_TYPE_COLUMNS",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "SITE_COLUMNS",
    "WEATHER_SCHEMA_SQL",
    "connect",
    "connect_read_only",
    "unusable_reason",
]

#: Busy timeout when another connection holds the write lock, seconds.
BUSY_TIMEOUT_S = 5.0

#: ``PRAGMA user_version`` of the schema below. Version 1 (table ``readings`` keyed by
#: meter, flow direction and start) is not migrated: re-ingest into a new file.
SCHEMA_VERSION = 2

#: Column names of `ReadingType` in table ``reading_types``, in declaration order.
READING_TYPE_COLUMNS = (
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
_RT_COLUMNS_SQL = ", ".join(READING_TYPE_COLUMNS)

#: A reading's identity and raw columns, as received: the start of table
#: ``interval_readings`` and of ``reading_revisions`` (its other versions).
_RAW_READING_COLUMNS_SQL = """\
    meter_key INTEGER NOT NULL,
    reading_type_key INTEGER NOT NULL,
    start_s INTEGER NOT NULL CHECK (start_s >= 0),
    duration_s INTEGER NOT NULL CHECK (duration_s > 0),
    raw_value INTEGER NOT NULL,
    raw_quality INTEGER,"""

#: Table ``alerts``: (column, SQL type and constraint) in table order. Key: one row per
#: ``(meter_id, start_s, kind)``. ``score`` and ``value`` hold a detection's confidence
#: and magnitude; ``end_s``, ``detected_s`` and ``message`` its evidence's end, when it
#: sufficed, and the sentence for a person.
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

_ALERTS_COLUMNS_SQL = "\n".join(f"    {name} {sql_type}," for name, sql_type in ALERTS_COLUMNS)

#: Columns of table ``sites``: the fields of `pipeline.store.sites.SiteMeta`, in order.
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

#: The weather feed's tables (module docstring); values NULL where unknown.
WEATHER_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS weather_stations (
    station_id TEXT PRIMARY KEY,
    latitude_deg REAL NOT NULL,
    longitude_deg REAL NOT NULL,
    altitude_m REAL NOT NULL,
    wind_height_m REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS weather_observations (
    station_id TEXT NOT NULL,
    start_s INTEGER NOT NULL,
    duration_s INTEGER NOT NULL CHECK (duration_s > 0),
    ghi REAL,
    temp_air REAL,
    wind_speed REAL,
    PRIMARY KEY (station_id, start_s)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS weather_forecasts (
    station_id TEXT NOT NULL,
    issued_s INTEGER NOT NULL,
    start_s INTEGER NOT NULL,
    duration_s INTEGER NOT NULL CHECK (duration_s > 0),
    ghi REAL,
    temp_air REAL,
    wind_speed REAL,
    PRIMARY KEY (station_id, issued_s, start_s)
) WITHOUT ROWID;
"""

SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS meters (
    meter_key INTEGER PRIMARY KEY,
    meter_id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS reading_types (
    reading_type_key INTEGER PRIMARY KEY,
    {" INTEGER NOT NULL, ".join(READING_TYPE_COLUMNS)} INTEGER NOT NULL,
    UNIQUE ({_RT_COLUMNS_SQL})
);
CREATE TABLE IF NOT EXISTS interval_readings (
{_RAW_READING_COLUMNS_SQL}
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
CREATE TABLE IF NOT EXISTS reading_revisions (
{_RAW_READING_COLUMNS_SQL}
    sequence_no INTEGER,
    source TEXT,
    received_s REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS reading_revisions_once ON reading_revisions (
    meter_key, reading_type_key, start_s, duration_s, raw_value,
    IFNULL(raw_quality, {QUALITY_NONE})
);
CREATE TRIGGER IF NOT EXISTS reading_revisions_are_immutable
BEFORE UPDATE ON reading_revisions
BEGIN
    SELECT RAISE(ABORT, 'reading revisions are immutable');
END;
CREATE TABLE IF NOT EXISTS alerts (
{_ALERTS_COLUMNS_SQL}
    UNIQUE (meter_id, start_s, kind)
);
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
CREATE TABLE IF NOT EXISTS local_time_parameters (
    meter_id TEXT PRIMARY KEY,
    tz_offset_s INTEGER NOT NULL,
    dst_offset_s INTEGER NOT NULL,
    dst_start_rule INTEGER NOT NULL,
    dst_end_rule INTEGER NOT NULL
);
CREATE VIEW IF NOT EXISTS readings AS
SELECT m.meter_id, {", ".join(f"t.{c}" for c in READING_TYPE_COLUMNS)},
       r.start_s, r.duration_s, r.raw_value AS value, r.raw_quality,
       r.validated_value, r.validated_quality
FROM interval_readings AS r
JOIN meters AS m USING (meter_key)
JOIN reading_types AS t USING (reading_type_key);
CREATE VIEW IF NOT EXISTS revisions AS
SELECT m.meter_id, {", ".join(f"t.{c}" for c in READING_TYPE_COLUMNS)},
       v.start_s, v.duration_s, v.raw_value AS value, v.raw_quality,
       r.raw_value AS stored_value, v.sequence_no, v.source, v.received_s
FROM reading_revisions AS v
JOIN meters AS m USING (meter_key)
JOIN reading_types AS t USING (reading_type_key)
LEFT JOIN interval_readings AS r USING (meter_key, reading_type_key, start_s);
{WEATHER_SCHEMA_SQL}
PRAGMA user_version = {SCHEMA_VERSION};
"""


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if missing) the database file at `path` with this schema: WAL journal,
    ``synchronous=NORMAL``, autocommit (transactions are explicit), usable from any one
    thread at a time.

    Raises:
        ValueError: the file holds a database of another schema version (or another
            application's tables without one).
    """
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION) or (
        version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    ):
        conn.close()
        raise ValueError(
            f"{path}: database schema version {version}, this pipeline writes "
            f"version {SCHEMA_VERSION}; ingest into a new database file"
        )
    conn.executescript(SCHEMA_SQL)
    return conn


def connect_read_only(path: str | Path) -> sqlite3.Connection:
    """Open an existing store file read-only (an SQLite ``mode=ro`` URI, and
    ``query_only``): for readers beside the one writer, such as the MDC service's dashboard.
    Under WAL a reader sees the last committed state and never blocks the writer. Usable
    from any one thread at a time.

    Raises:
        ValueError: the file is missing, unreadable, or not a store of this schema version.
    """
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise ValueError(f"{path}: cannot open the store read-only ({exc})") from None
    if version != SCHEMA_VERSION:
        conn.close()
        raise ValueError(
            f"{path}: database schema version {version}, this pipeline reads version "
            f"{SCHEMA_VERSION}"
        )
    return conn


def unusable_reason(path: str | Path, exc: sqlite3.Error) -> str:
    """Why the database file at `path` cannot be used, in a few words for a person, from
    the error SQLite raised opening or writing it (`connect`, or a write later): not a
    database, locked beyond the busy timeout, read-only, a directory, a folder that is
    missing or read-only; else SQLite's own message."""
    message = str(exc)
    if "not a database" in message:
        return "not a SQLite database"
    if "locked" in message:
        return f"locked by another writer for more than {BUSY_TIMEOUT_S:g} s (the busy timeout)"
    if "readonly" in message:
        return "read-only (the file, or its folder for the journal, cannot be written)"
    if "unable to open" in message:
        where = Path(path)
        folder = where.parent
        if where.is_dir():
            return "is a directory, not a SQLite database file"
        if not folder.is_dir():
            return f"cannot create it: folder {folder} does not exist"
        if not os.access(folder, os.W_OK):
            return f"cannot open it for writing: folder {folder} is read-only"
    return message
