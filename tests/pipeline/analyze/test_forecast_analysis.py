"""The short-term forecast of `Pipeline.analyze`: hourly energy of the next six hours per
generation series, with the backtest of its method against persistence.

Known answers: on a PV day repeated exactly, seasonal methods forecast the next hours
exactly (the same hours of yesterday), while persistence (the last hour, held) errs by the
day's ramps; on days that are the clear sky scaled by a daily factor, clear-sky index
persistence is exact within a day. Net-meter export, consumption and voltage are not
forecast; a series with less than two days of whole hours is not either."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from meters.espi import Channel, ReadingTypeSpec, encode_meter_upload
from pipeline import ForecastRecord, Pipeline, SiteMeta
from pipeline.analyze.clearsky import expected_energy_wh
from pipeline.analyze.forecast import FORECAST_HORIZON_S, FORECAST_STEP_S, forecast_series
from pipeline.analyze.series import Series

pytestmark = pytest.mark.filterwarnings("ignore:.*dayofyear.*")

STEP_S = 900
PER_DAY = 86_400 // STEP_S
PER_HOUR = FORECAST_STEP_S // STEP_S
HORIZON = FORECAST_HORIZON_S // FORECAST_STEP_S
T0 = 1_780_272_000  # 2026-06-01T00:00:00Z
SITE = SiteMeta("pv-1", "pv", 10_000.0, 40.0, -105.0, 1600.0, 30.0, 180.0)


def pv_day_wh() -> np.ndarray:
    """A clear-sky-like PV day, 15-minute energy, Wh: a half-sine from 12:00 to 02:00 UTC
    (solar noon 19:00 UTC, as near 105 W), peak 2 kWh per interval (8 kW), zero at night."""
    t_h = (np.arange(PER_DAY) + 0.5) * 24.0 / PER_DAY
    phase = (t_h - 12.0) % 24.0 / 14.0  # 0..1 over the 14 h of daylight
    return np.where(phase < 1.0, 2000.0 * np.sin(np.pi * phase), 0.0)


def grid(n_days: float, first_s: int = T0) -> np.ndarray:
    return first_s + STEP_S * np.arange(int(n_days * PER_DAY), dtype=np.int64)


def hourly(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, PER_HOUR).sum(axis=1)


def test_a_repeated_day_is_forecast_exactly_and_beats_persistence() -> None:
    days = 4
    x = np.tile(pv_day_wh(), days)
    record = forecast_series(Series("g", grid(days), x, STEP_S), 19, "blend")
    assert record is not None
    assert (record.method, record.interval_length_s, record.horizon_steps) == (
        "blend", FORECAST_STEP_S, HORIZON,
    )  # fmt: skip
    assert record.issued_s == T0 + days * 86_400
    # the next six hours are the first six hours of the day: night, then the morning ramp
    np.testing.assert_allclose(record.forecast_wh, hourly(pv_day_wh())[:HORIZON], atol=1e-6)
    assert record.mae_wh < 1e-6 < record.mae_persistence_wh
    assert record.rmse_wh < record.rmse_persistence_wh
    assert record.skill == pytest.approx(1.0)
    # origins: every hour with a day before it and a target inside the window
    n_hours = days * 24
    assert record.n_scored == sum(max(0, n_hours - h - 24) for h in range(1, HORIZON + 1))


def test_clear_sky_index_persistence_follows_the_day_on_scaled_clear_days() -> None:
    """Days are the site's clear sky times a daily factor (cloudier and clearer days):
    from an origin in daylight, the last hour's clear-sky index carries the day's factor to
    the next hours exactly, which neither persistence nor yesterday's profile does (from
    night origins the method falls back to ``blend``, which cannot know tomorrow's factor:
    the backtest's remaining error)."""
    factors = np.array([1.0, 0.4, 0.9, 0.6, 0.8])
    days = factors.size
    extended = grid(days + 1)
    expected = expected_energy_wh(SITE, extended, STEP_S)
    x = expected[: days * PER_DAY] * np.repeat(factors, PER_DAY)
    series = Series("pv-1", extended[: days * PER_DAY], x, STEP_S)
    cs = forecast_series(series, 19, "clear_sky_persistence", expected)
    blend = forecast_series(series, 19, "blend")
    assert cs is not None and blend is not None
    assert cs.skill > 0 and cs.mae_wh < cs.mae_persistence_wh
    assert cs.mae_wh < blend.mae_wh < cs.mae_persistence_wh
    # issued at the end of the last day: the last hour's index is that day's factor, and
    # the forecast is the clear sky of the next hours times it (0 at night)
    e_next = hourly(expected[days * PER_DAY : (days + 1) * PER_DAY])[:HORIZON]
    assert cs.issued_s == T0 + days * 86_400
    np.testing.assert_allclose(cs.forecast_wh, factors[-1] * e_next, rtol=1e-9, atol=1e-9)
    assert max(cs.forecast_wh) > 0  # the evening's last hours of sun are in it


def test_not_enough_history_or_an_unfit_grid_gives_no_forecast() -> None:
    x = np.tile(pv_day_wh(), 2)
    assert (
        forecast_series(Series("g", grid(1.9), x[: int(1.9 * PER_DAY)], STEP_S), 19, "blend")
        is None
    )
    seven_min = 420  # does not divide an hour
    s = Series("g", T0 + seven_min * np.arange(1000, dtype=np.int64), np.ones(1000), seven_min)
    assert forecast_series(s, 19, "blend") is None
    off_grid = Series("g", grid(3, T0 + 60), np.tile(pv_day_wh(), 3), STEP_S)
    assert forecast_series(off_grid, 19, "blend") is None  # starts not on the hour grid
    zeros = Series("g", grid(3), np.zeros(3 * PER_DAY), STEP_S)
    assert forecast_series(zeros, 19, "blend") is None  # persistence exact: no skill defined


def test_a_partial_last_hour_is_not_used() -> None:
    x = np.tile(pv_day_wh(), 3)
    n = 3 * PER_DAY - 2  # the last hour has two of its four intervals
    record = forecast_series(Series("g", grid(3)[:n], x[:n], STEP_S), 19, "blend")
    assert record is not None and record.issued_s == T0 + 3 * 86_400 - FORECAST_STEP_S


# --- through the pipeline -----------------------------------------------------------------


def upload(meter_id: str, seq: int, starts: np.ndarray, flows: dict[int, np.ndarray]) -> bytes:
    channels = [
        Channel(ReadingTypeSpec(flow_direction=f, interval_length_s=STEP_S), v.astype(np.int64))
        for f, v in flows.items()
    ]
    return encode_meter_upload(meter_id, seq, starts, channels, int(starts[0]))


def deliver(pipe: Pipeline, meter_id: str, flows: dict[int, np.ndarray], n: int) -> None:
    starts = grid(n / PER_DAY)
    for seq, lo in enumerate(range(0, n, PER_DAY // 4)):
        hi = min(n, lo + PER_DAY // 4)
        part = {f: v[lo:hi] for f, v in flows.items()}
        outcome = pipe.handle(upload(meter_id, seq, starts[lo:hi], part))
        assert outcome.accepted, outcome.reason


def test_analyze_forecasts_generation_series_only(tmp_path: Path) -> None:
    days = 3
    n = days * PER_DAY
    pv = np.round(np.tile(pv_day_wh(), days))
    load = np.round(300 + 100 * np.sin(np.arange(n) / 9.0))
    with Pipeline(tmp_path / "db.sqlite") as pipe:
        deliver(pipe, "gen-1", {19: pv}, n)
        deliver(pipe, "load-1", {1: load}, n)
        deliver(pipe, "net-1", {1: load, 19: pv}, n)
        outcome = pipe.analyze(T0 + days * 86_400)
        assert [(r.series_id, r.flow_direction) for r in outcome.forecasts] == [("gen-1", 19)]
        [record] = outcome.forecasts
        assert isinstance(record, ForecastRecord)
        assert record.method == "blend" and record.issued_s == T0 + days * 86_400
        assert len(record.forecast_wh) == record.horizon_steps == HORIZON
        np.testing.assert_allclose(record.forecast_wh, hourly(pv[:PER_DAY])[:HORIZON])
        assert record.skill > 0 and record.mae_wh < record.mae_persistence_wh
        # flat and JSON-friendly: no NaN, no numpy types
        text = json.dumps(asdict(record), allow_nan=False)
        assert json.loads(text)["forecast_wh"] == list(record.forecast_wh)
        assert {type(v) for v in asdict(record).values()} <= {str, int, float, tuple}
        assert pipe.analyze(T0 + days * 86_400).forecasts == []  # no new readings: none


def test_a_registered_pv_site_gets_the_clear_sky_forecast(tmp_path: Path) -> None:
    days = 3
    n = days * PER_DAY
    expected = expected_energy_wh(SITE, grid(days + 1), STEP_S)
    pv = np.round(expected[:n] * np.repeat([1.0, 0.5, 0.7], PER_DAY))
    with Pipeline(tmp_path / "db.sqlite") as pipe:
        pipe.register_site(SITE)
        deliver(pipe, SITE.site_id, {19: pv}, n)
        [record] = pipe.analyze(T0 + days * 86_400).forecasts
    assert record.method == "clear_sky_persistence"
    assert record.skill > 0 and record.mae_wh < record.mae_persistence_wh
    # issued in daylight (17:00 local): the day's index 0.7 times the clear sky ahead
    e_next = hourly(expected[n : n + HORIZON * PER_HOUR])
    np.testing.assert_allclose(record.forecast_wh, 0.7 * e_next, rtol=0.01, atol=1.0)
