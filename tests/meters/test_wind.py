"""Wind power, checked against windpowerlib's ModelChain and its oedb turbine library."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from windpowerlib import ModelChain, WindTurbine

from meters.weather import Weather, load_tmy3
from meters.wind import hub_wind_speed_m_s, turbine_power_curve, wind_power_w

TURBINE = "E-82/2300"


@pytest.fixture(scope="module")
def solstice() -> Weather:
    return load_tmy3("723170TYA", datetime(2026, 6, 21, tzinfo=UTC), 86_400.0, 60.0)


def windpowerlib_power_w(weather: Weather, hub_height_m: float, roughness_m: float) -> np.ndarray:
    """Reference: windpowerlib ModelChain on a weather frame built from the same arrays."""
    columns = pd.MultiIndex.from_arrays(
        [["wind_speed", "temperature", "pressure", "roughness_length"],
         [weather.wind_height_m, 2, 0, 0]]
    )  # fmt: skip
    frame = pd.DataFrame(
        np.column_stack([
            weather.wind_speed, weather.temp_air + 273.15, weather.pressure,
            np.full(weather.wind_speed.shape, roughness_m),
        ]),
        index=weather.times_utc,
        columns=columns,
    )  # fmt: skip
    turbine = WindTurbine(turbine_type=TURBINE, hub_height=hub_height_m)
    chain = ModelChain(
        turbine,
        wind_speed_model="logarithmic",
        power_output_model="power_curve",
        density_correction=False,
    ).run_model(frame)
    return np.asarray(chain.power_output.to_numpy(), dtype=float)


@pytest.mark.parametrize("roughness_m", [0.15, 0.03])
def test_daily_energy_matches_windpowerlib_modelchain(
    solstice: Weather, roughness_m: float
) -> None:
    hubs_m = np.array([78.0, 108.0, 138.0])
    power_w = wind_power_w(solstice, TURBINE, hubs_m, roughness_m)
    assert power_w.shape == (3, 1440) and (power_w >= 0).all()
    for i, hub_m in enumerate(hubs_m):
        ref_w = windpowerlib_power_w(solstice, hub_m, roughness_m)
        assert ref_w.sum() > 0
        assert power_w[i].sum() / ref_w.sum() == pytest.approx(1.0, abs=0.005)
    assert (np.diff(power_w.sum(axis=1)) > 0).all()  # taller hub, more wind, more energy


def test_oedb_power_curve_values() -> None:
    speed_m_s, power_w = turbine_power_curve(TURBINE)
    assert (np.diff(speed_m_s) > 0).all()
    assert power_w[speed_m_s == 5.0] == pytest.approx(174_000.0)  # oedb power_curves.csv
    assert WindTurbine(turbine_type=TURBINE, hub_height=108).nominal_power == 2_300_000.0


def test_power_curve_lookup_with_cut_in_and_cut_out() -> None:
    hub_m = 108.0
    speeds = np.array([0.5, 5.0, 5.5, 14.0, 25.0, 26.0, 30.0])
    weather = Weather(
        times_utc=pd.date_range("2026-06-21", periods=speeds.size, freq="min", tz="UTC"),
        step_s=60.0, ghi=np.zeros(speeds.size), dni=np.zeros(speeds.size),
        dhi=np.zeros(speeds.size), temp_air=np.full(speeds.size, 15.0), wind_speed=speeds,
        pressure=np.full(speeds.size, 101_325.0), latitude_deg=0.0, longitude_deg=0.0,
        altitude_m=0.0, wind_height_m=hub_m, name="synthetic",
    )  # fmt: skip
    power_w = wind_power_w(weather, TURBINE, np.array([hub_m]))[0]
    # oedb curve: 5 m/s 174 kW, 6 m/s 321 kW, 14-25 m/s 2.35 MW, none beyond 25 m/s.
    expected = [0.0, 174_000.0, 247_500.0, 2_350_000.0, 2_350_000.0, 0.0, 0.0]
    np.testing.assert_allclose(power_w, expected)


def test_logarithmic_profile_closed_form() -> None:
    # v(h) = v_ref ln(h/z0) / ln(h_ref/z0): from 10 m to 100 m over z0 = 0.1 m the factor is
    # ln(1000)/ln(100) = 1.5 exactly.
    speed = hub_wind_speed_m_s(np.array([4.0, 8.0]), 10.0, np.array([100.0, 10.0]), 0.1)
    np.testing.assert_allclose(speed, [[6.0, 12.0], [4.0, 8.0]])


def test_unknown_turbine_suggests_close_names(solstice: Weather) -> None:
    with pytest.raises(ValueError, match=r"'E82/2300'.*E-82/2300"):
        wind_power_w(solstice, "E82/2300", np.array([108.0]))
    with pytest.raises(ValueError, match="no_such_turbine"):
        turbine_power_curve("no_such_turbine")
