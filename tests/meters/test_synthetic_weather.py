"""Synthetic weather: statistics against the TMY3 it was estimated from, spatial correlation,
determinism and independence of sites."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pvlib
import pytest
import scipy.stats

from meters.synthetic_weather import (
    EARTH_RADIUS_KM,
    SyntheticClimate,
    erbs_kernel,
    field_correlation,
    synthetic_weather,
)
from meters.weather import PVLIB_DATA_DIR, Weather, WeatherRequest, clearsky_ghi
from twin.rng import component_rng

STATION = "723170TYA"
YEAR_START = datetime(2025, 1, 1, 5, tzinfo=UTC)  # Jan 1 00:00 local standard time (UTC-5)
DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
HOUR_MONTH = np.repeat(np.repeat(np.arange(12), DAYS_IN_MONTH), 24)  # month of each hour


def rngs(seed: int) -> Callable[[str], np.random.Generator]:
    return lambda key: component_rng(seed, key)


def east_of_reference(distances_km: np.ndarray, climate: SyntheticClimate) -> np.ndarray:
    """Longitudes (deg) of points ``distances_km`` due east of the reference location."""
    scale = EARTH_RADIUS_KM * math.cos(math.radians(climate.latitude_deg)) * math.pi / 180
    return climate.longitude_deg + np.asarray(distances_km, dtype=float) / scale


def sites_request(
    climate: SyntheticClimate,
    longitudes: np.ndarray,
    *,
    seed: int = 1,
    start: datetime = YEAR_START,
    duration_s: float = 365 * 86_400.0,
    step_s: float = 3600.0,
    ids: tuple[str, ...] | None = None,
) -> WeatherRequest:
    n = len(longitudes)
    return WeatherRequest(
        start_utc=start,
        duration_s=duration_s,
        step_s=step_s,
        site_ids=ids if ids is not None else tuple(f"site-{i}" for i in range(n)),
        site_latitude_deg=np.full(n, climate.latitude_deg),
        site_longitude_deg=((np.asarray(longitudes) + 180.0) % 360.0) - 180.0,
        rng_for=rngs(seed),
    )


@pytest.fixture(scope="module")
def climate() -> SyntheticClimate:
    return SyntheticClimate.from_tmy3(STATION)


@pytest.fixture(scope="module")
def tmy3() -> pd.DataFrame:
    data, _ = pvlib.iotools.read_tmy3(
        str(PVLIB_DATA_DIR / f"{STATION}.CSV"), coerce_year=2025, map_variables=True
    )
    return data


@pytest.fixture(scope="module")
def independent_year(climate: SyntheticClimate) -> Weather:
    """One synthetic year (hourly) at 16 sites 25 deg of longitude (~2250 km, over 5 cloud
    correlation lengths) apart, so that their weather is practically independent."""
    longitudes = climate.longitude_deg + 25.0 * np.arange(16)
    return synthetic_weather(climate, sites_request(climate, longitudes))


def test_defaults_are_the_greensboro_estimate(climate: SyntheticClimate) -> None:
    default = SyntheticClimate()
    for f in dataclasses.fields(SyntheticClimate):
        expected, actual = getattr(climate, f.name), getattr(default, f.name)
        if isinstance(expected, str):
            assert actual == expected, f.name
        else:
            np.testing.assert_allclose(actual, expected, rtol=0, atol=6e-4, err_msg=f.name)


def test_estimates_follow_the_file(climate: SyntheticClimate, tmy3: pd.DataFrame) -> None:
    month = (pd.DatetimeIndex(tmy3.index) - pd.Timedelta(hours=1)).month.to_numpy()  # hour start
    temp = tmy3["temp_air"].to_numpy()
    for m in range(12):
        assert climate.temp_air_monthly_mean_c[m] == pytest.approx(temp[month == m + 1].mean())
    wind = tmy3["wind_speed"].to_numpy()
    k = (wind.std() / wind.mean()) ** -1.086  # Justus et al. 1978
    assert climate.wind_weibull_k == pytest.approx(k)
    assert climate.wind_weibull_c_m_s == pytest.approx(wind.mean() / math.gamma(1 + 1 / k))
    assert 12.0 < climate.temp_air_peak_hour < 17.0  # afternoon maximum
    assert 10.0 < climate.wind_peak_hour < 16.0 and 0.1 < climate.wind_diurnal_amplitude < 0.4
    table = climate.quantile_table
    assert table.shape == (12, 21) and (np.diff(table, axis=1) >= 0).all()
    alaska = SyntheticClimate.from_tmy3("703165TY")
    assert (alaska.latitude_deg, alaska.utc_offset_h) == (55.317, -9.0)
    assert alaska.quantile_table.mean() < table.mean()  # Sand Point AK is cloudier


def test_monthly_mean_ghi_of_a_synthetic_year_matches_the_tmy3(
    independent_year: Weather, tmy3: pd.DataFrame
) -> None:
    """Every month within 10 % of the TMY3's mean GHI. The ratio is taken over 16 independent
    sites: one site's single year scatters by about 7 % per month around the climate (as real
    years do around a TMY), which would make a one-site check a test of luck."""
    ghi = independent_year.ghi
    assert ghi.shape == (16, 8760)
    file_ghi = tmy3["ghi"].to_numpy()  # 8760 hour-ending rows in file (= calendar) order
    for m in range(12):
        synthetic = ghi[:, np.equal(HOUR_MONTH, m)].mean()
        reference = file_ghi[np.equal(HOUR_MONTH, m)].mean()
        assert synthetic / reference == pytest.approx(1.0, abs=0.10), m + 1


def test_weibull_shape_and_scale_are_recovered(
    independent_year: Weather, climate: SyntheticClimate
) -> None:
    speeds = independent_year.wind_speed.ravel()
    k, loc, c = scipy.stats.weibull_min.fit(speeds, floc=0)
    assert loc == 0
    assert k == pytest.approx(climate.wind_weibull_k, rel=0.10)
    assert c == pytest.approx(climate.wind_weibull_c_m_s, rel=0.10)
    assert (speeds > 0).all() and independent_year.wind_height_m == 10.0


@pytest.mark.parametrize(("lag1", "step_s"), [(None, 3600.0), (0.9, 600.0)])
def test_wind_lag1_autocorrelation_is_the_configured_one(
    climate: SyntheticClimate, lag1: float | None, step_s: float
) -> None:
    """Without the diurnal cycle, the lag-1 h autocorrelation of the speeds is the configured
    one, at hourly steps and at 10-min steps (lag of 6 steps)."""
    flat = dataclasses.replace(
        climate, wind_diurnal_amplitude=0.0, wind_lag1=lag1 if lag1 else climate.wind_lag1
    )
    days = 365 if step_s == 3600 else 120
    w = synthetic_weather(flat, sites_request(
        flat, flat.longitude_deg + 25.0 * np.arange(8), duration_s=days * 86_400.0, step_s=step_s
    ))  # fmt: skip
    lag = round(3600 / step_s)
    r = np.mean([np.corrcoef(row[:-lag], row[lag:])[0, 1] for row in w.wind_speed])
    assert r == pytest.approx(flat.wind_lag1, abs=0.02)


def test_correlation_between_sites_falls_with_distance(climate: SyntheticClimate) -> None:
    distances_km = np.array([0.0, 1.0, 20.0, 100.0])
    w = synthetic_weather(climate, sites_request(climate, east_of_reference(distances_km, climate)))
    clear, _ = clearsky_ghi(w.times_utc, climate.latitude_deg, climate.longitude_deg, 273.0)
    day = clear > 100.0
    kc = w.ghi[:, day] / clear[day]
    r_cloud = [np.corrcoef(kc[0], kc[i])[0, 1] for i in (1, 2, 3)]
    r_wind = [np.corrcoef(w.wind_speed[0], w.wind_speed[i])[0, 1] for i in (1, 2, 3)]
    assert r_cloud[0] > r_cloud[1] > r_cloud[2] and r_cloud[0] > 0.8 and r_cloud[2] < 0.6
    assert r_wind[0] > r_wind[1] > r_wind[2]
    expected_wind = np.exp(-distances_km[1:] / climate.wind_correlation_km)
    np.testing.assert_allclose(r_wind, expected_wind, atol=0.08)


def test_latent_fields_have_exponential_correlation() -> None:
    """The plane-wave field's exact correlation ``mean(cos(k.d))`` tracks ``exp(-d/L)``."""
    length_km = 18.0
    d = np.linspace(0.0, 3.0 * length_km, 31)
    for angle in np.linspace(0.0, np.pi, 7):
        rho = field_correlation(length_km, d * np.cos(angle), d * np.sin(angle))
        np.testing.assert_allclose(rho, np.exp(-d / length_km), atol=0.05)
    assert field_correlation(length_km, np.array(0.0), np.array(0.0)) == pytest.approx(1.0)


def test_adding_or_reordering_sites_changes_no_other_row(climate: SyntheticClimate) -> None:
    lon = east_of_reference(np.array([0.0, 3.0, 40.0]), climate)
    day = datetime(2026, 6, 21, tzinfo=UTC)
    base = synthetic_weather(climate, sites_request(
        climate, lon, ids=("a", "b", "c"), start=day, duration_s=86_400.0, step_s=60.0
    ))  # fmt: skip
    more_lon = np.array([lon[2], east_of_reference(np.array([1.0]), climate)[0], lon[0], lon[1]])
    more = synthetic_weather(climate, sites_request(
        climate, more_lon, ids=("c", "new", "a", "b"), start=day, duration_s=86_400.0, step_s=60.0
    ))  # fmt: skip
    for name in ("ghi", "dni", "dhi", "wind_speed", "temp_air", "pressure"):
        rows_base, rows_more = getattr(base, name), getattr(more, name)
        for i_base, i_more in ((0, 2), (1, 3), (2, 0)):
            assert rows_base[i_base].tobytes() == rows_more[i_more].tobytes(), name
    assert not np.array_equal(more.ghi[1], more.ghi[2])  # the new site has its own minutes


def test_same_seed_same_bytes_other_seed_other_weather(climate: SyntheticClimate) -> None:
    lon = east_of_reference(np.array([0.0, 5.0]), climate)
    a, b, c = (
        synthetic_weather(climate, sites_request(
            climate, lon, seed=seed, start=datetime(2026, 3, 1, tzinfo=UTC),
            duration_s=2 * 86_400.0, step_s=300.0,
        ))
        for seed in (3, 3, 4)
    )  # fmt: skip
    for name in ("ghi", "dni", "dhi", "wind_speed", "temp_air", "pressure"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert not np.array_equal(a.ghi, c.ghi) and not np.array_equal(a.temp_air, c.temp_air)


def test_rows_shapes_and_physics(climate: SyntheticClimate) -> None:
    start = datetime(2026, 6, 21, tzinfo=UTC)
    one = synthetic_weather(climate, WeatherRequest(start, 86_400.0, 60.0, rng_for=rngs(1)))
    assert one.n_rows == 1 and one.ghi.shape == (1, 1440) and one.times_utc.size == 1440
    w = synthetic_weather(climate, sites_request(
        climate, east_of_reference(np.arange(5.0), climate), start=start, duration_s=86_400.0,
        step_s=60.0,
    ))  # fmt: skip
    assert w.n_rows == 5
    for name in ("ghi", "dni", "dhi", "temp_air", "wind_speed", "pressure"):
        values = getattr(w, name)
        assert values.shape == (5, 1440) and values.dtype == np.float64, name
    assert (w.temp_air == w.temp_air[0]).all() and (w.pressure == w.pressure[0]).all()
    assert w.pressure[0, 0] == pytest.approx(pvlib.atmosphere.alt2pres(273.0))
    assert (w.ghi >= 0).all() and (w.dhi >= 0).all() and (w.dni >= 0).all()
    assert (w.dhi <= w.ghi + 1e-9).all() and w.ghi.max() < 1200
    zenith = pvlib.solarposition.get_solarposition(
        w.times_utc, w.latitude_deg, w.longitude_deg, altitude=w.altitude_m
    )["zenith"].to_numpy()
    assert (w.ghi[:, zenith > 92] == 0).all()
    up = zenith < 87
    cos_z = np.cos(np.radians(zenith[up]))
    np.testing.assert_allclose(w.dhi[:, up] + w.dni[:, up] * cos_z, w.ghi[:, up], rtol=1e-12)
    assert 5.0 < w.temp_air.min() < w.temp_air.max() < 45.0  # June in North Carolina


def test_ghi_centres_on_local_solar_noon_in_utc(climate: SyntheticClimate) -> None:
    w = synthetic_weather(climate, sites_request(
        climate, climate.longitude_deg + 25.0 * np.arange(16), start=datetime(2026, 5, 1, 5,
        tzinfo=UTC), duration_s=10 * 86_400.0, step_s=600.0,
    ))  # fmt: skip
    zenith = (
        pvlib.solarposition.get_solarposition(
            w.times_utc, climate.latitude_deg, climate.longitude_deg
        )["zenith"]
        .to_numpy()
        .reshape(10, 144)
    )
    minute = (np.arange(144) + 0.5) * 10.0
    noon = minute[np.argmin(zenith, axis=1)]  # minutes after 05:00 UTC
    ghi = w.ghi.sum(axis=0).reshape(10, 144)
    centroid = (ghi * minute).sum(axis=1) / ghi.sum(axis=1)
    assert abs(np.mean(centroid - noon)) < 10.0
    # Solar noon at 79.95 W is about 12:00 + 79.95 * 4 min = 17:20 UTC (equation of time aside).
    assert abs(5 * 60 + np.mean(noon) - (12 * 60 + 79.95 * 4)) < 10.0


def test_erbs_kernel_equals_pvlib() -> None:
    rng = np.random.default_rng(5)
    times = pd.date_range("2026-01-01", periods=2000, freq="4h17min", tz="UTC")
    ghi = rng.uniform(0.0, 1100.0, 2000)
    zenith = rng.uniform(0.0, 100.0, 2000)
    reference = pvlib.irradiance.erbs(ghi, zenith, times)
    extra = pvlib.irradiance.get_extra_radiation(times).to_numpy()
    cos_z = np.cos(np.radians(zenith))
    ours = np.array([
        erbs_kernel(g, c, z, e) for g, c, z, e in zip(ghi, cos_z, zenith, extra, strict=True)
    ])  # fmt: skip
    np.testing.assert_allclose(ours[:, 0], reference["dni"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(ours[:, 1], reference["dhi"], rtol=1e-12, atol=1e-9)


def test_temperature_keeps_monthly_means_and_its_anomaly_statistics(
    climate: SyntheticClimate,
) -> None:
    no_anomaly = dataclasses.replace(climate, temp_air_anomaly_std_c=0.0)
    w = synthetic_weather(no_anomaly, WeatherRequest(YEAR_START, 365 * 86_400.0, 3600.0,
                                                     rng_for=rngs(2)))  # fmt: skip
    temp = w.temp_air[0]
    for m in range(12):
        assert temp[np.equal(HOUR_MONTH, m)].mean() == pytest.approx(
            climate.temp_air_monthly_mean_c[m], abs=0.2
        ), m + 1
    daily = temp.reshape(365, 24).mean(axis=0)
    assert abs(np.argmax(daily) + 0.5 - climate.temp_air_peak_hour) <= 1.0
    flat = dataclasses.replace(
        climate, temp_air_monthly_mean_c=(15.0,) * 12, temp_air_monthly_amplitude_c=(0.0,) * 12
    )
    anomalies = np.concatenate([
        synthetic_weather(flat, WeatherRequest(YEAR_START, 365 * 86_400.0, 3600.0,
                                               rng_for=rngs(seed))).temp_air[0] - 15.0
        for seed in range(2)
    ])  # fmt: skip
    assert anomalies.std() == pytest.approx(climate.temp_air_anomaly_std_c, rel=0.2)
    lag1 = np.corrcoef(anomalies[:-1], anomalies[1:])[0, 1]
    assert lag1 == pytest.approx(climate.temp_air_anomaly_lag1, abs=0.01)


def test_bad_input_is_named(climate: SyntheticClimate) -> None:
    start = datetime(2026, 6, 21, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"needs request\.rng_for"):
        synthetic_weather(climate, WeatherRequest(start, 3600.0, 60.0))
    with pytest.raises(ValueError, match=r"coordinates|for each of the 2 sites"):
        synthetic_weather(climate, WeatherRequest(start, 3600.0, 60.0, ("a", "b"), rng_for=rngs(1)))
    with pytest.raises(ValueError, match=r"wind_weibull_k = -1\.0; expected a number in \[0\.5"):
        SyntheticClimate(wind_weibull_k=-1.0)
    with pytest.raises(ValueError, match=r"cloud_day_share = 1\.5"):
        SyntheticClimate(cloud_day_share=1.5)
    with pytest.raises(ValueError, match=r"clearsky_index_quantiles has shape \(1, 3\)"):
        SyntheticClimate(clearsky_index_quantiles=((0.1, 0.5, 1.0),))
    with pytest.raises(ValueError, match=r"temp_air_monthly_mean_c.*12 numbers"):
        SyntheticClimate(temp_air_monthly_mean_c=(10.0,) * 11)
    with pytest.raises(ValueError, match=r"'nowhere'.*723170TYA"):
        SyntheticClimate.from_tmy3("nowhere")
