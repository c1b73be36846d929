"""The met station and its forecast product: sensor noise of the stated size, outages that
leave gaps, forecast errors that grow with the lead time within the cited range, and the
documents the pipeline reads."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from meters.weather_station import (
    ForecastErrorModel,
    StationSpec,
    encode_forecast,
    encode_observations,
    forecast_product,
    station_observations,
    station_outages,
)
from pipeline.fetch.parse import parse_upload
from pipeline.process.weather import read_weather

SPEC = StationSpec("met-north", 36.1, -79.9, 270.0, outage_mtbf_s=0.0)
EPOCH = 1_782_000_000


def rng_for(key: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(key.encode()))


def test_sensor_noise_has_the_stated_size() -> None:
    n = 200_000
    ghi = np.full(n, 600.0)
    temp = np.full(n, 20.0)
    wind = np.full(n, 10.0)
    obs = station_observations(SPEC, ghi, temp, wind, rng_for)
    # GHI: 1.5 % of 600 W/m2 and 1 W/m2 in quadrature; temperature 0.1 K; wind 5 % of 10 m/s
    assert np.std(obs.ghi) == pytest.approx(np.hypot(9.0, 1.0), rel=0.02)
    assert np.mean(obs.ghi) == pytest.approx(600.0, abs=0.2)
    assert np.std(obs.temp_air) == pytest.approx(0.1, rel=0.02)
    assert np.std(obs.wind_speed) == pytest.approx(0.5, rel=0.02)
    night = station_observations(SPEC, np.zeros(1000), temp[:1000], wind[:1000], rng_for)
    assert np.all(night.ghi >= 0.0)


def test_outages_leave_gaps_of_the_mean_length() -> None:
    rng = np.random.default_rng(3)
    windows = station_outages(3e8, 86_400.0, 3600.0, rng)
    down = np.array([b - a for a, b in windows])
    assert down.mean() == pytest.approx(3600.0, rel=0.05)
    ups = np.array([windows[i + 1][0] - windows[i][1] for i in range(len(windows) - 1)])
    assert ups.mean() == pytest.approx(86_400.0, rel=0.05)
    spec = StationSpec("met-x", 36.0, -80.0, 0.0, outage_mtbf_s=2 * 3600.0, outage_mttr_s=1800.0)
    obs = station_observations(spec, np.ones(1440), np.ones(1440), np.ones(1440), rng_for)
    missing = np.isnan(obs.ghi)
    assert 0 < missing.sum() < 1440
    assert np.array_equal(missing, np.isnan(obs.temp_air))
    assert station_outages(1e6, 0.0, 3600.0, rng) == []


def test_forecast_errors_grow_with_lead_and_stay_in_the_cited_range() -> None:
    """Hourly GHI errors of the product over many issues: relative RMSE (of the mean
    daytime GHI) about 0.25-0.35 over the first days (Perez et al. 2013), rising with the
    lead time."""
    hours = 24 * 400
    t = np.arange(hours)
    clear = np.maximum(0.0, 900.0 * np.sin(np.pi * ((t % 24) - 6) / 12))
    rng = np.random.default_rng(5)
    kc = np.clip(0.75 + 0.25 * rng.standard_normal(hours // 24).repeat(24), 0.1, 1.1)
    ghi = kc * clear
    issues = forecast_product(
        SPEC, ghi, clear, np.full(hours, 10.0), np.full(hours, 5.0), 0.0, rng,
    )  # fmt: skip
    assert [i.issued_s for i in issues[:3]] == [0.0, 21_600.0, 43_200.0]
    err_by_day = []
    for day in range(2):
        err = []
        for issue in issues[: len(issues) - 8]:
            idx = (issue.step_start_s / 3600).astype(int)
            lead = slice(24 * day, 24 * (day + 1))
            day_time = clear[idx[lead]] > 50
            err.append((issue.ghi[lead] - ghi[idx[lead]])[day_time])
        e = np.concatenate(err)
        err_by_day.append(float(np.sqrt(np.mean(e**2)) / np.mean(ghi[clear > 50])))
    assert 0.2 <= err_by_day[0] <= 0.35
    assert err_by_day[1] > err_by_day[0]
    worse = ForecastErrorModel(kc_sigma=0.3)
    assert worse.kc_sigma > ForecastErrorModel().kc_sigma


def test_the_documents_round_trip_through_the_pipeline_reader() -> None:
    values = {
        "ghi": np.array([0.0, np.nan, 512.34]),
        "temp_air": np.array([20.0, 21.0, 22.5]),
        "wind_speed": np.array([3.0, 4.0, 5.25]),
    }
    doc = encode_observations(SPEC, 7, EPOCH, 60, values, EPOCH + 200)
    up = read_weather(parse_upload(doc), ("met-north", 7))
    assert up is not None and up.issued_s is None and up.sequence_no == 7
    assert up.station.station_id == "met-north" and up.station.altitude_m == 270.0
    assert up.start_s.tolist() == [EPOCH, EPOCH + 60, EPOCH + 120]
    np.testing.assert_allclose(up.ghi, [0.0, np.nan, 512.3])
    np.testing.assert_allclose(up.wind_speed, values["wind_speed"])
    issue = forecast_product(
        SPEC, np.full(48, 300.0), np.full(48, 600.0), np.zeros(48), np.zeros(48), 0.0,
        np.random.default_rng(1),
    )[0]  # fmt: skip
    fc = read_weather(parse_upload(encode_forecast(SPEC, 8, issue, EPOCH)), None)
    assert fc is not None and fc.issued_s == EPOCH and fc.interval_s == 3600
    assert fc.n == 48 and fc.start_s[0] == EPOCH
    np.testing.assert_allclose(fc.ghi, np.round(issue.ghi, 1))
