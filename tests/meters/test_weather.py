"""TMY3 weather on the sample grid, checked against pvlib's own reading of the file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pvlib
import pytest

from meters.weather import PVLIB_DATA_DIR, WEATHER_SOURCES, Weather, load_tmy3

STATION = "723170TYA"  # Greensboro NC, shipped with pvlib
COLUMNS = ("ghi", "dni", "dhi", "temp_air", "wind_speed", "pressure")


def tmy3_hour_midpoints_utc(year: int) -> pd.DataFrame:
    """Reference: pvlib's TMY3 frame, each hour-ending row moved to its hour's midpoint, UTC."""
    data, _ = pvlib.iotools.read_tmy3(
        str(PVLIB_DATA_DIR / f"{STATION}.CSV"), coerce_year=year, map_variables=True
    )
    frame = data.loc[:, list(COLUMNS)].astype(float)
    frame["pressure"] *= 100.0  # mbar -> Pa
    frame.index = (frame.index - pd.Timedelta(minutes=30)).tz_convert("UTC")
    return frame.sort_index()


def test_grid_metadata_and_units() -> None:
    start = datetime(2026, 6, 21, tzinfo=UTC)
    w = load_tmy3(STATION, start, 86_400.0, 60.0)
    assert isinstance(w, Weather)
    assert len(w.times_utc) == 1440 and str(w.times_utc.tz) == "UTC"
    assert w.times_utc[0] == pd.Timestamp("2026-06-21 00:00:30", tz="UTC")
    assert (np.diff(w.times_utc.asi8) == np.diff(w.times_utc.asi8)[0]).all()
    for name in COLUMNS:
        values = getattr(w, name)
        assert values.shape == (1440,) and values.dtype == np.float64
    assert (w.ghi >= 0).all() and (w.dni >= 0).all() and (w.dhi >= 0).all()
    assert w.ghi.max() > 500  # a June day in North Carolina
    assert w.pressure.min() > 90_000 and w.pressure.max() < 105_000  # Pa, at 273 m
    assert (w.latitude_deg, w.longitude_deg, w.altitude_m) == (36.1, -79.95, 273.0)
    assert w.wind_height_m == 10.0 and STATION in w.name and w.step_s == 60.0
    assert WEATHER_SOURCES["tmy3"] is load_tmy3


def test_hourly_grid_hits_the_tmy3_hour_midpoints_exactly() -> None:
    # Hour midpoints in UTC are xx:30 (Greensboro is UTC-5 standard time).
    start = datetime(2026, 3, 10, tzinfo=UTC)
    w = load_tmy3(STATION, start, 5 * 86_400.0, 3600.0)
    ref = tmy3_hour_midpoints_utc(2026).reindex(w.times_utc)
    assert not ref.isna().any().any()
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(w, name), ref[name].to_numpy(), err_msg=name)


def test_minute_grid_is_linear_interpolation_of_hourly_means() -> None:
    start = datetime(2026, 6, 21, tzinfo=UTC)
    w = load_tmy3(STATION, start, 86_400.0, 60.0)
    ref = tmy3_hour_midpoints_utc(2026)
    x = (w.times_utc - pd.Timestamp(0, tz="UTC")).total_seconds().to_numpy()
    x_ref = (ref.index - pd.Timestamp(0, tz="UTC")).total_seconds().to_numpy()
    for name in COLUMNS:
        expected = np.interp(x, x_ref, ref[name].to_numpy())
        np.testing.assert_allclose(getattr(w, name), expected, rtol=1e-12, err_msg=name)


def test_window_across_new_year_tiles_the_typical_year() -> None:
    start = datetime(2026, 12, 31, 20, tzinfo=UTC)
    across = load_tmy3(STATION, start, 12 * 3600.0, 3600.0)  # midpoints 20:30 .. 07:30 UTC
    # Local Dec 31 (until 05:00 UTC) comes from the year coerced to 2026, local Jan 1 from 2027.
    before = tmy3_hour_midpoints_utc(2026).reindex(across.times_utc[:9])
    after = tmy3_hour_midpoints_utc(2027).reindex(across.times_utc[9:])
    for name in COLUMNS:
        expected = np.concatenate([before[name].to_numpy(), after[name].to_numpy()])
        np.testing.assert_array_equal(getattr(across, name), expected, err_msg=name)
    # The same instants give the same weather whichever window they are loaded in.
    jan = load_tmy3(STATION, datetime(2027, 1, 1, tzinfo=UTC), 8 * 3600.0, 3600.0)
    np.testing.assert_array_equal(across.temp_air[4:], jan.temp_air)


def test_leap_day_repeats_feb_28() -> None:
    local_midnight_utc = datetime(2028, 2, 28, 5, tzinfo=UTC)  # 00:00 local standard time
    w = load_tmy3(STATION, local_midnight_utc, 3 * 86_400.0, 3600.0)
    np.testing.assert_array_equal(w.ghi[24:48], w.ghi[:24])
    np.testing.assert_array_equal(w.temp_air[24:48], w.temp_air[:24])
    assert w.ghi[24:48].max() > 100  # Feb 29 has daylight (not interpolated across a gap)
    march_first = tmy3_hour_midpoints_utc(2027)["temp_air"].to_numpy()[59 * 24 : 60 * 24]
    np.testing.assert_array_equal(w.temp_air[48:72], march_first)


def test_unknown_station_lists_the_available_files() -> None:
    with pytest.raises(ValueError, match=r"'nowhere'.*723170TYA"):
        load_tmy3("nowhere", datetime(2026, 6, 21, tzinfo=UTC), 3600.0, 60.0)


@pytest.mark.parametrize(
    ("start", "duration_s", "step_s"),
    [
        (datetime(2026, 6, 21), 3600.0, 60.0),  # naive
        (datetime(2026, 6, 21, tzinfo=UTC), 3600.0, 7.0),  # not a whole number of steps
        (datetime(2026, 6, 21, tzinfo=UTC), 0.0, 60.0),
    ],
)
def test_bad_windows_are_rejected(start: datetime, duration_s: float, step_s: float) -> None:
    with pytest.raises(ValueError):
        load_tmy3(STATION, start, duration_s, step_s)


def test_aware_non_utc_start_is_the_same_instant() -> None:
    eastern = datetime(2026, 6, 20, 16, tzinfo=timezone(timedelta(hours=-4)))
    a = load_tmy3(STATION, eastern, 3600.0, 60.0)
    b = load_tmy3(STATION, datetime(2026, 6, 20, 20, tzinfo=UTC), 3600.0, 60.0)
    np.testing.assert_array_equal(a.ghi, b.ghi)
    assert (a.times_utc == b.times_utc).all()
