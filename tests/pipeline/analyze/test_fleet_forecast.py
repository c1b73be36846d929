"""The fleet's PV forecasts: smart persistence as the reference (close under a steady
sky), and with the region's forecast product a regression that follows a change of sky
persistence cannot see."""

from __future__ import annotations

import numpy as np

from pipeline.analyze.clearsky import clear_sky_ghi_w_m2
from pipeline.analyze.fleet import GEN, FleetGrid
from pipeline.analyze.fleet_forecast import FEED_METHOD, SMART_PERSISTENCE, fleet_forecasts
from pipeline.process.weather import WeatherStation, WeatherUpload
from pipeline.store.store import Store
from pipeline.store.weather import WeatherSeries
from tests.pipeline.analyze.fleet_data import (
    DAY,
    LAT,
    LON,
    STEP_S,
    T0,
    metered,
    pv_energy_wh,
    pv_sites,
)

STATION = WeatherStation("met-1", LAT, LON, 270.0)
N_DAYS = 4


def sky(n_days: int) -> np.ndarray:
    """Clear mornings, then cloud (index 0.4) from 17:00 UTC every afternoon (a sea breeze
    that persistence at noon cannot foresee, a product can)."""
    k = np.full(n_days * DAY, 0.98)
    k[(np.arange(k.size) % DAY) >= 17 * 4] = 0.4
    return k


def setup(with_product: bool) -> tuple[FleetGrid, Store, np.ndarray]:
    sites = pv_sites(10)
    k = sky(N_DAYS)
    energy = pv_energy_wh(sites, k)
    grid = FleetGrid(window_days=N_DAYS + 1)
    grid.start(T0, sites)
    t = T0 + STEP_S * np.arange(k.size, dtype=np.int64)
    for s, row in zip(sites, metered(energy, 1), strict=True):
        v = row.astype(float)
        grid.put(s.site_id, GEN, t, STEP_S, v, v)
    clear = clear_sky_ghi_w_m2(t + STEP_S // 2, LAT, LON, 270.0)
    nan = np.full(t.size, np.nan)
    grid.put_weather(STATION, WeatherSeries(t, np.full(t.size, STEP_S), k * clear, nan, nan))
    store = Store(":memory:")
    if with_product:
        hours = T0 + 3600 * np.arange(N_DAYS * 24, dtype=np.int64)
        hourly = (k * clear).reshape(-1, 4).mean(axis=1)
        for issue in range(0, N_DAYS * 24, 6):
            steps = slice(issue, min(issue + 48, hourly.size))
            n = steps.stop - steps.start
            store.weather.upsert(WeatherUpload(
                STATION, issue, int(hours[issue]), hours[steps], 3600, hourly[steps],
                np.zeros(n), np.zeros(n),
            ))  # fmt: skip
    return grid, store, energy


def errors(grid: FleetGrid, store: Store, energy: np.ndarray) -> tuple[set[str], float, float]:
    """Methods used, and RMSE of forecast and reference over the last day's daylight."""
    methods: set[str] = set()
    err, ref = [], []
    for hour in range(3 * 24 + 8, 4 * 24 - 6):
        for r in fleet_forecasts(grid, store.weather, T0 + 3600 * hour):
            row = int(r.series_id.split("-")[1])
            truth = energy[row, 4 * hour : 4 * hour + 24].reshape(6, 4).sum(axis=1)
            methods.add(r.method)
            err += list(np.asarray(r.forecast_wh) - truth)
            ref += list(np.asarray(r.reference_wh) - truth)
    return methods, float(np.sqrt(np.mean(np.square(err)))), float(np.sqrt(np.mean(np.square(ref))))


def test_smart_persistence_is_the_reference_and_close_under_a_steady_sky() -> None:
    grid, store, energy = setup(with_product=False)
    morning = fleet_forecasts(grid, store.weather, T0 + 3 * 86_400 + 13 * 3600)
    assert {r.method for r in morning} == {SMART_PERSISTENCE}
    r = morning[0]
    assert r.forecast_wh == r.reference_wh and r.horizon_steps == 6
    truth = energy[0, 4 * (72 + 13) : 4 * (72 + 17)].reshape(4, 4).sum(axis=1)
    np.testing.assert_allclose(r.forecast_wh[:4], truth, rtol=0.08)  # clear till 17:00


def test_the_product_lets_the_forecast_see_the_afternoon_cloud_coming() -> None:
    grid, store, energy = setup(with_product=True)
    methods, rmse, rmse_reference = errors(grid, store, energy)
    assert methods == {FEED_METHOD}
    assert rmse < 0.5 * rmse_reference
