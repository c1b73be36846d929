"""The weather repository: the regional weather feed's stations, observations and forecast
issues (tables of `pipeline.store.schema.WEATHER_SCHEMA_SQL`), stored idempotently like
the readings (a re-delivered document counts as duplicates) and read back as columns.

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.process.weather import WeatherStation, WeatherUpload
from pipeline.store.database import Database
from pipeline.store.readings import StoredCounts

__all__ = ["WeatherRepository", "WeatherSeries"]

_UPSERT_STATION = (
    "INSERT INTO weather_stations (station_id, latitude_deg, longitude_deg, altitude_m, "
    "wind_height_m) VALUES (?, ?, ?, ?, ?) ON CONFLICT (station_id) DO UPDATE SET "
    "latitude_deg = excluded.latitude_deg, longitude_deg = excluded.longitude_deg, "
    "altitude_m = excluded.altitude_m, wind_height_m = excluded.wind_height_m"
)
_INSERT_OBSERVATION = (
    "INSERT INTO weather_observations (station_id, start_s, duration_s, ghi, temp_air, "
    "wind_speed) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (station_id, start_s) DO NOTHING"
)
_INSERT_FORECAST = (
    "INSERT INTO weather_forecasts (station_id, issued_s, start_s, duration_s, ghi, temp_air, "
    "wind_speed) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (station_id, issued_s, start_s) DO NOTHING"
)
_SELECT_STATIONS = (
    "SELECT station_id, latitude_deg, longitude_deg, altitude_m, wind_height_m "
    "FROM weather_stations ORDER BY station_id"
)
_SELECT_OBSERVATIONS = (
    "SELECT start_s, duration_s, ghi, temp_air, wind_speed FROM weather_observations "
    "WHERE station_id = ? AND start_s BETWEEN ? AND ? ORDER BY start_s"
)
_SELECT_ISSUES = (
    "SELECT issued_s, start_s, duration_s, ghi, temp_air, wind_speed FROM weather_forecasts "
    "WHERE station_id = ? AND issued_s BETWEEN ? AND ? AND start_s BETWEEN ? AND ? "
    "ORDER BY issued_s, start_s"
)


@dataclass(frozen=True, eq=False)
class WeatherSeries:
    """Stored weather values of one station as columns in time order: interval starts
    (int64 epoch s) and lengths (s); GHI W/m2, air temperature degC, wind speed m/s
    (float64, NaN where unknown); for a forecast its issue time (epoch s)."""

    start_s: np.ndarray
    duration_s: np.ndarray
    ghi: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray
    issued_s: int | None = None

    @property
    def n(self) -> int:
        return int(self.start_s.shape[0])


def _none_for_nan(x: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in x.tolist()]


def _series(rows: list[tuple[object, ...]], issued_s: int | None = None) -> WeatherSeries:
    if not rows:
        empty = np.zeros(0)
        return WeatherSeries(np.zeros(0, np.int64), np.zeros(0, np.int64), empty, empty, empty,
                             issued_s)  # fmt: skip
    cols = list(zip(*rows, strict=True))
    ghi, temp_air, wind_speed = (np.array(c, dtype=np.float64) for c in cols[2:])  # None: NaN
    return WeatherSeries(
        np.array(cols[0], dtype=np.int64),
        np.array(cols[1], dtype=np.int64),
        ghi,
        temp_air,
        wind_speed,
        issued_s,
    )


class WeatherRepository:
    """The weather feed of a store. Every write is one unit of work of `database`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn = database.connection

    def upsert(self, upload: WeatherUpload) -> StoredCounts:
        """Store a weather document's station and values not stored yet, as one unit of
        work; returns the values inserted and the duplicates (a value is one interval of a
        station's observations or of one forecast issue, all quantities; a value already
        stored is kept, so there are no conflicts)."""
        s = upload.station
        n = upload.n
        columns = [
            [s.station_id] * n,
            upload.start_s.tolist(),
            [upload.interval_s] * n,
            _none_for_nan(upload.ghi),
            _none_for_nan(upload.temp_air),
            _none_for_nan(upload.wind_speed),
        ]
        statement = _INSERT_OBSERVATION
        if upload.issued_s is not None:
            columns.insert(1, [upload.issued_s] * n)
            statement = _INSERT_FORECAST
        with self._db.unit():
            self._conn.execute(
                _UPSERT_STATION,
                (s.station_id, s.latitude_deg, s.longitude_deg, s.altitude_m, s.wind_height_m),
            )
            before = self._conn.total_changes
            self._conn.executemany(statement, zip(*columns, strict=True))
            inserted = self._conn.total_changes - before
        return StoredCounts(inserted, n - inserted, 0)

    def stations(self) -> dict[str, WeatherStation]:
        """The stations that reported, by id."""
        return {
            str(r[0]): WeatherStation(str(r[0]), *(float(v) for v in r[1:]))
            for r in self._conn.execute(_SELECT_STATIONS)
        }

    def observations(self, station_id: str, lo_s: int, hi_s: int) -> WeatherSeries:
        """A station's observations with ``lo_s <= start_s <= hi_s`` (epoch s)."""
        rows = self._conn.execute(_SELECT_OBSERVATIONS, (station_id, lo_s, hi_s)).fetchall()
        return _series(rows)

    def issues(self, station_id: str, issued_lo_s: int, issued_hi_s: int) -> list[WeatherSeries]:
        """The station's forecast issues with ``issued_lo_s <= issued_s <= issued_hi_s``
        (epoch s), oldest first, each with all its steps."""
        rows = self._conn.execute(
            _SELECT_ISSUES, (station_id, issued_lo_s, issued_hi_s, 0, 2**62)
        ).fetchall()
        by_issue: dict[int, list[tuple[object, ...]]] = {}
        for issued, *rest in rows:
            by_issue.setdefault(int(issued), []).append(tuple(rest))
        return [_series(r, issued) for issued, r in sorted(by_issue.items())]
