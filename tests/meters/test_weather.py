"""File weather (TMY3, EPW) on the sample grid, checked against pvlib's own reading of the file.

The reference for every check is the file as pvlib reads it, in local standard time: irradiance
rows are means over the hour before their timestamp, temperature, wind and pressure values at
the timestamp (TMY3 manual NREL/TP-581-43156, Table 1-1; EPW likewise).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import pytest

from meters.weather import (
    MAX_ZENITH_DEG,
    PVLIB_DATA_DIR,
    WEATHER_FIELDS,
    WEATHER_SOURCES,
    Weather,
    WeatherRequest,
    load_epw,
    load_tmy3,
    read_tmy3_year,
    sample_grid_s,
    tmy3_stations,
)

STATION = "723170TYA"  # Greensboro NC, shipped with pvlib, UTC-5 standard time
#: Tolerance of the hourly energy check, W/m2: the resampling is exact up to float rounding of
#: a cumulative integral over the window (about 1e-9 W/m2 for a year).
HOURLY_MEAN_ATOL_W_M2 = 1e-6


def request(start: datetime, duration_s: float, step_s: float) -> WeatherRequest:
    return WeatherRequest(start_utc=start, duration_s=duration_s, step_s=step_s)


def tmy3_frame(year: int, station: str = STATION) -> pd.DataFrame:
    """Reference: pvlib's TMY3 frame indexed by the UTC *start* of each row's hour (its
    timestamp is the hour's end)."""
    path = next(PVLIB_DATA_DIR.glob(f"{station}.*"))
    data, _ = pvlib.iotools.read_tmy3(str(path), coerce_year=year, map_variables=True)
    frame = data.loc[:, list(WEATHER_FIELDS)].astype(float)
    frame["pressure"] *= 100.0  # mbar -> Pa
    frame.index = (frame.index - pd.Timedelta(hours=1)).tz_convert("UTC")
    return frame.sort_index()


def hourly_means(values: np.ndarray, step_s: float) -> np.ndarray:
    return np.asarray(values).reshape(-1, round(3600 / step_s)).mean(axis=1)


def true_zenith_deg(w: Weather) -> np.ndarray:
    return pvlib.solarposition.get_solarposition(
        w.times_utc, w.latitude_deg, w.longitude_deg, altitude=w.altitude_m
    )["zenith"].to_numpy()


def test_grid_metadata_shapes_and_units() -> None:
    w = load_tmy3(STATION, request(datetime(2026, 6, 21, tzinfo=UTC), 86_400.0, 60.0))
    assert isinstance(w, Weather) and w.n_rows == 1
    assert len(w.times_utc) == 1440 and str(w.times_utc.tz) == "UTC"
    assert w.times_utc[0] == pd.Timestamp("2026-06-21 00:00:30", tz="UTC")
    assert (np.diff(w.times_utc.asi8) == np.diff(w.times_utc.asi8)[0]).all()
    for name in WEATHER_FIELDS:
        values = getattr(w, name)
        assert values.shape == (1, 1440) and values.dtype == np.float64, name
    assert (w.ghi >= 0).all() and (w.dni >= 0).all() and (w.dhi >= 0).all()
    assert (w.dhi <= w.ghi + 1e-9).all()
    assert w.ghi.max() > 500  # a June day in North Carolina
    assert w.pressure.min() > 90_000 and w.pressure.max() < 105_000  # Pa, at 273 m
    assert (w.latitude_deg, w.longitude_deg, w.altitude_m) == (36.1, -79.95, 273.0)
    assert w.wind_height_m == 10.0 and STATION in w.name and w.step_s == 60.0
    assert {"tmy3": load_tmy3, "epw": load_epw} == WEATHER_SOURCES
    assert tmy3_stations() == ["703165TY", "723170TYA"]


def test_hourly_steps_are_the_file_hours_in_utc() -> None:
    # Greensboro is UTC-5: the file row "Mar 12 13:00" (LST) holds the GHI of 12:00-13:00 LST,
    # i.e. 17:00-18:00 UTC, and the temperature at 13:00 LST = 18:00 UTC.
    start = datetime(2026, 3, 10, tzinfo=UTC)
    w = load_tmy3(STATION, request(start, 5 * 86_400.0, 3600.0))
    ref = tmy3_frame(2026).reindex(w.times_utc - pd.Timedelta(minutes=30))
    assert not ref.isna().any().any()
    np.testing.assert_allclose(w.ghi[0], ref["ghi"].to_numpy(), rtol=0, atol=1e-9)
    noon_row = tmy3_frame(2026).loc[pd.Timestamp("2026-03-12 17:00", tz="UTC")]
    assert w.ghi[0, 2 * 24 + 17] == pytest.approx(noon_row["ghi"], abs=1e-9)
    # Steps centred on the timestamps (xx:00 UTC) carry the instantaneous values exactly.
    on_the_hour = load_tmy3(STATION, request(start - timedelta(minutes=30), 5 * 86_400.0, 3600.0))
    at_end = tmy3_frame(2026).reindex(on_the_hour.times_utc - pd.Timedelta(hours=1))
    for name in ("temp_air", "wind_speed", "pressure"):
        np.testing.assert_array_equal(getattr(on_the_hour, name)[0], at_end[name].to_numpy(), name)


@pytest.mark.parametrize(
    ("station", "step_s"), [(STATION, 60.0), (STATION, 300.0), (STATION, 900.0), ("703165TY", 60.0)]
)
def test_hourly_means_of_ghi_equal_the_file(station: str, step_s: float) -> None:
    """Energy is preserved hour by hour at any step that divides the hour."""
    year = 2026
    tz_h = read_tmy3_year(station).utc_offset_h
    start = datetime(year, 4, 1, tzinfo=UTC) - timedelta(hours=tz_h)  # local midnight
    w = load_tmy3(station, request(start, 10 * 86_400.0, step_s))
    ref = tmy3_frame(year, station).loc[pd.Timestamp(start) : pd.Timestamp(start) + pd.Timedelta(
        hours=239)]  # fmt: skip
    np.testing.assert_allclose(
        hourly_means(w.ghi[0], step_s), ref["ghi"].to_numpy(), rtol=0, atol=HOURLY_MEAN_ATOL_W_M2
    )
    # DHI too, in hours where the sun stays above 3 deg (below, DHI = GHI as in erbs).
    zenith = true_zenith_deg(w).reshape(-1, round(3600 / step_s))
    sun_up = (zenith <= MAX_ZENITH_DEG).all(axis=1)
    assert sun_up.sum() > 80
    np.testing.assert_allclose(
        hourly_means(w.dhi[0], step_s)[sun_up],
        np.minimum(ref["dhi"].to_numpy(), ref["ghi"].to_numpy())[sun_up],
        rtol=0,
        atol=HOURLY_MEAN_ATOL_W_M2,
    )


def test_a_whole_year_at_hourly_and_5min_steps_keeps_every_hour() -> None:
    start = datetime(2026, 1, 1, 5, tzinfo=UTC)  # 00:00 LST
    ref = tmy3_frame(2026)["ghi"].to_numpy()
    for step_s in (3600.0, 300.0):
        w = load_tmy3(STATION, request(start, 365 * 86_400.0, step_s))
        np.testing.assert_allclose(
            hourly_means(w.ghi[0], step_s), ref, rtol=0, atol=HOURLY_MEAN_ATOL_W_M2
        )


def test_irradiance_follows_the_sun_not_a_straight_line() -> None:
    """Within the hour the clear-sky index, not GHI, is interpolated: no light while the sun is
    well below the horizon, unlike linear interpolation of hourly means."""
    start = datetime(2026, 6, 1, tzinfo=UTC)
    w = load_tmy3(STATION, request(start, 30 * 86_400.0, 60.0))
    zenith = true_zenith_deg(w)
    night = zenith > 96.0  # below civil twilight
    assert w.ghi[0, night].max() == 0.0
    # Linear interpolation of the same hourly means would leak light into the night.
    ref = tmy3_frame(2026)
    x = w.times_utc.as_unit("ns").asi8 / 1e9
    x_ref = (pd.DatetimeIndex(ref.index) + pd.Timedelta(minutes=30)).as_unit("ns").asi8 / 1e9
    linear = np.interp(x, x_ref, ref["ghi"].to_numpy())
    assert linear[night].max() > 1.0  # W/m2 of spurious light after dusk and before dawn
    # Closure on the grid: GHI = DHI + DNI cos(zenith); DNI = 0 and DHI = GHI at low sun.
    cos_z = np.cos(np.radians(zenith))
    up = zenith <= MAX_ZENITH_DEG
    np.testing.assert_allclose(
        w.dhi[0, up] + w.dni[0, up] * cos_z[up], w.ghi[0, up], rtol=1e-12, atol=1e-9
    )
    assert (w.dni[0, ~up] == 0).all() and (w.dhi[0, ~up] == w.ghi[0, ~up]).all()
    # DNI stays physical and its energy close to the file's (within 5 % over the month).
    assert w.dni.max() < 1100
    file_dni = ref.loc[pd.Timestamp(start) : pd.Timestamp(start) + pd.Timedelta(days=30)][
        "dni"
    ].iloc[:-1]
    assert w.dni[0].sum() / 60 == pytest.approx(file_dni.sum(), rel=0.05)


def test_minute_temperature_wind_pressure_are_linear_between_the_timestamps() -> None:
    start = datetime(2026, 6, 21, tzinfo=UTC)
    w = load_tmy3(STATION, request(start, 86_400.0, 60.0))
    ref = tmy3_frame(2026)
    x = w.times_utc.as_unit("ns").asi8 / 1e9
    x_ref = (pd.DatetimeIndex(ref.index) + pd.Timedelta(hours=1)).as_unit("ns").asi8 / 1e9
    for name in ("temp_air", "wind_speed", "pressure"):
        expected = np.interp(x, x_ref, ref[name].to_numpy())
        np.testing.assert_allclose(getattr(w, name)[0], expected, rtol=1e-12, err_msg=name)


def test_ghi_centres_on_local_solar_noon_in_utc() -> None:
    """The GHI-weighted mean time of day over a month lies within 10 min of solar noon: a
    time-zone error (60 min) or an hour-ending/-beginning mix-up (30 min) would fail."""
    for month in (3, 6, 9, 12):
        start = datetime(2026, month, 1, 5, tzinfo=UTC)
        w = load_tmy3(STATION, request(start, 30 * 86_400.0, 300.0))
        ghi = w.ghi[0].reshape(30, 288)
        minute = (np.arange(288) + 0.5) * 5.0
        noon = minute[np.argmin(true_zenith_deg(w).reshape(30, 288), axis=1)]
        centroid = (ghi * minute).sum(axis=1) / ghi.sum(axis=1)
        assert abs(np.mean(centroid - noon)) < 10.0, month


def test_window_across_new_year_tiles_the_typical_year() -> None:
    start = datetime(2026, 12, 31, 20, tzinfo=UTC)
    across = load_tmy3(STATION, request(start, 12 * 3600.0, 3600.0))  # 20:30 .. 07:30 UTC
    # Local Dec 31 (until 05:00 UTC) comes from the year coerced to 2026, Jan 1 from 2027.
    before = tmy3_frame(2026).reindex(across.times_utc[:9] - pd.Timedelta(minutes=30))
    after = tmy3_frame(2027).reindex(across.times_utc[9:] - pd.Timedelta(minutes=30))
    expected = np.concatenate([before["ghi"].to_numpy(), after["ghi"].to_numpy()])
    np.testing.assert_allclose(across.ghi[0], expected, atol=1e-9)
    # Dec 31 24:00 LST (05:00 UTC) is the last row of the year, Jan 1 01:00 the first.
    temps = tmy3_frame(2026)["temp_air"]
    at_0500 = across.temp_air[0, 8:10].mean()  # 04:30 and 05:30 UTC straddle 05:00
    assert at_0500 == pytest.approx(temps.iloc[-1] * 0.5 + 0.25 * (temps.iloc[-2] + temps.iloc[0]))
    # The same instants give the same weather whichever window they are loaded in.
    jan = load_tmy3(STATION, request(datetime(2027, 1, 1, tzinfo=UTC), 8 * 3600.0, 3600.0))
    np.testing.assert_array_equal(across.temp_air[0, 4:], jan.temp_air[0])
    np.testing.assert_allclose(across.ghi[0, 4:], jan.ghi[0], rtol=1e-12, atol=1e-9)
    a = load_tmy3(STATION, request(datetime(2026, 7, 1, 10, tzinfo=UTC), 6 * 3600.0, 60.0))
    b = load_tmy3(STATION, request(datetime(2026, 7, 1, 12, tzinfo=UTC), 2 * 3600.0, 60.0))
    np.testing.assert_allclose(a.ghi[0, 120:240], b.ghi[0], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(a.dni[0, 120:240], b.dni[0], rtol=1e-9, atol=1e-9)


def test_leap_day_repeats_feb_28() -> None:
    local_midnight_utc = datetime(2028, 2, 28, 5, tzinfo=UTC)  # 00:00 local standard time
    w = load_tmy3(STATION, request(local_midnight_utc, 3 * 86_400.0, 3600.0))
    np.testing.assert_allclose(w.ghi[0, 24:48], w.ghi[0, :24], atol=1e-9)
    np.testing.assert_array_equal(w.temp_air[0, 25:48], w.temp_air[0, 1:24])  # 01:30-23:30
    assert w.ghi[0, 24:48].max() > 100  # Feb 29 has daylight (not interpolated across a gap)
    march_first_ghi = tmy3_frame(2027)["ghi"].to_numpy()[59 * 24 : 60 * 24]
    np.testing.assert_allclose(w.ghi[0, 48:72], march_first_ghi, atol=1e-9)


def test_aware_non_utc_start_is_the_same_instant() -> None:
    eastern = datetime(2026, 6, 20, 16, tzinfo=timezone(timedelta(hours=-4)))
    a = load_tmy3(STATION, request(eastern, 3600.0, 60.0))
    b = load_tmy3(STATION, request(datetime(2026, 6, 20, 20, tzinfo=UTC), 3600.0, 60.0))
    np.testing.assert_array_equal(a.ghi, b.ghi)
    assert (a.times_utc == b.times_utc).all()


# ----------------------------------------------------------------------------------- EPW


def write_epw_from_tmy3(path: Path, station: str = STATION) -> None:
    """A valid EPW file (8 header lines + 8760 data rows, EnergyPlus Auxiliary Programs field
    order) holding the TMY3's values: same hours, local standard time, pressure in Pa."""
    tmy_path = next(PVLIB_DATA_DIR.glob(f"{station}.*"))
    data, meta = pvlib.iotools.read_tmy3(str(tmy_path), map_variables=True)
    name = str(meta["Name"]).strip('"').replace(",", " ")
    header = [
        f"LOCATION,{name},{meta['State']},USA,TMY3,{meta['USAF']},{meta['latitude']},"
        f"{meta['longitude']},{meta['TZ']},{meta['altitude']}",
        "DESIGN CONDITIONS,0",
        "TYPICAL/EXTREME PERIODS,0",
        "GROUND TEMPERATURES,0",
        "HOLIDAYS/DAYLIGHT SAVINGS,No,0,0,0",
        f"COMMENTS 1,written by the IMDC Twin tests from pvlib's {tmy_path.name}",
        "COMMENTS 2,",
        "DATA PERIODS,1,1,Data,Sunday, 1/ 1,12/31",
    ]
    dates = pd.to_datetime(data["Date (MM/DD/YYYY)"], format="%m/%d/%Y")
    hours = data["Time (HH:MM)"].str.split(":").str[0].astype(int)
    rows = []
    for i in range(len(data)):
        r = data.iloc[i]
        rows.append(",".join(str(v) for v in (
            dates.iloc[i].year, dates.iloc[i].month, dates.iloc[i].day, hours.iloc[i], 60,
            "?9?9?9?9E0?9?9?9?9?9?9?9?9?9?9?9?9?9*9*9?9?9?9",
            r["temp_air"], r["temp_dew"], r["relative_humidity"], round(r["pressure"] * 100),
            r["ghi_extra"], r["dni_extra"], 9999, r["ghi"], r["dni"], r["dhi"],
            999999, 999999, 999999, 9999, r["wind_direction"], r["wind_speed"],
            r["TotCld (tenths)"], r["OpqCld (tenths)"], 9999, 99999, 9, 999999999, 999, 0.999,
            999, 99, 999, 0, 0,
        )))  # fmt: skip
    path.write_text("\n".join(header + rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def epw_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("epw") / "USA_NC_Greensboro.723170_TMY3.epw"
    write_epw_from_tmy3(path)
    return path


def test_written_epw_is_valid_for_pvlib(epw_path: Path) -> None:
    lines = epw_path.read_text().splitlines()
    assert len(lines) == 8 + 8760 and all(len(row.split(",")) == 35 for row in lines[8:])
    data, meta = pvlib.iotools.read_epw(str(epw_path))
    assert len(data) == 8760 and meta["TZ"] == -5.0 and meta["latitude"] == 36.1
    assert data["ghi"].sum() == read_tmy3_year(STATION).ghi.sum()


@pytest.mark.parametrize(("start", "duration_s", "step_s"), [
    (datetime(2026, 6, 21, tzinfo=UTC), 2 * 86_400.0, 300.0),
    (datetime(2026, 12, 31, 12, tzinfo=UTC), 86_400.0, 60.0),  # across New Year
    (datetime(2026, 3, 1, tzinfo=UTC), 7 * 86_400.0, 3600.0),
])  # fmt: skip
def test_epw_gives_the_same_weather_as_tmy3_on_the_same_data(
    epw_path: Path, start: datetime, duration_s: float, step_s: float
) -> None:
    req = request(start, duration_s, step_s)
    via_epw = WEATHER_SOURCES["epw"](str(epw_path), req)
    via_tmy3 = WEATHER_SOURCES["tmy3"](STATION, req)
    for name in WEATHER_FIELDS:
        np.testing.assert_array_equal(getattr(via_epw, name), getattr(via_tmy3, name), name)
    assert (via_epw.times_utc == via_tmy3.times_utc).all()
    for attr in ("latitude_deg", "longitude_deg", "altitude_m", "wind_height_m", "step_s"):
        assert getattr(via_epw, attr) == getattr(via_tmy3, attr)
    assert via_epw.name.startswith("epw:USA_NC_Greensboro")


def test_epw_errors_name_the_problem(epw_path: Path, tmp_path: Path) -> None:
    req = request(datetime(2026, 6, 21, tzinfo=UTC), 3600.0, 60.0)
    with pytest.raises(ValueError, match=r"'/no/such\.epw' not found"):
        load_epw("/no/such.epw", req)
    lines = epw_path.read_text().splitlines()
    short = tmp_path / "short.epw"
    short.write_text("\n".join(lines[:-24]) + "\n")
    with pytest.raises(ValueError, match=r"8736 hourly rows; expected 8760"):
        load_epw(str(short), req)
    missing = tmp_path / "missing.epw"
    fields = lines[8 + 4000].split(",")
    fields[13] = "9999"  # GHI missing-value code
    missing.write_text("\n".join([*lines[: 8 + 4000], ",".join(fields), *lines[8 + 4001 :]]))
    with pytest.raises(ValueError, match=r"ghi = 9999\.0 in row 4001.*\[0\.0, 1500\.0\]"):
        load_epw(str(missing), req)
    shuffled = tmp_path / "shuffled.epw"
    shuffled.write_text("\n".join([*lines[:8], lines[9], lines[8], *lines[10:]]))
    with pytest.raises(ValueError, match=r"row 1: month/day/hour 1/1/2; expected 1/1/1"):
        load_epw(str(shuffled), req)


# ----------------------------------------------------------------------------- bad input


def test_unknown_station_lists_the_available_files() -> None:
    with pytest.raises(ValueError, match=r"'nowhere'.*703165TY, 723170TYA"):
        load_tmy3("nowhere", request(datetime(2026, 6, 21, tzinfo=UTC), 3600.0, 60.0))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"start_utc": datetime(2026, 6, 21)}, r"timezone-aware.*naive datetime\.datetime\(2026"),
    ({"step_s": 7.0}, r"duration_s=3600\.0 is not a whole number of step_s=7\.0"),
    ({"duration_s": 0.0}, r"finite and > 0.*duration_s=0\.0"),
    ({"step_s": -60.0}, r"finite and > 0.*step_s=-60\.0"),
    ({"site_ids": ("a", "a")}, r"unique; repeated: \['a'\]"),
    ({"site_ids": ("a", "b"), "site_latitude_deg": np.array([1.0])},
     r"site_latitude_deg has 1 values; expected 0 or one per site \(2 site_ids\)"),
    ({"site_ids": ("a",), "site_latitude_deg": np.array([91.0]),
      "site_longitude_deg": np.array([0.0])}, r"site_latitude_deg\[0\] = 91\.0.*\[-90\.0, 90\.0\]"),
    ({"site_ids": ("a",), "site_latitude_deg": np.array([1.0])},
     r"site_longitude_deg has 0.*expected both"),
])  # fmt: skip
def test_bad_requests_are_rejected_with_the_value(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "start_utc": datetime(2026, 6, 21, tzinfo=UTC),
        "duration_s": 3600.0,
        "step_s": 60.0,
    }
    with pytest.raises(ValueError, match=message):
        WeatherRequest(**(base | kwargs))  # type: ignore[arg-type]


def test_sample_grid_midpoints() -> None:
    np.testing.assert_array_equal(sample_grid_s(3600.0, 900.0), [450.0, 1350.0, 2250.0, 3150.0])
    req = WeatherRequest(datetime(2026, 1, 1, tzinfo=UTC), 1800.0, 600.0)
    assert req.n_steps == 3 and req.times_utc()[0] == pd.Timestamp("2026-01-01 00:05", tz="UTC")
