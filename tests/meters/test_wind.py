"""Wind power, checked against windpowerlib's ModelChain and its oedb turbine library."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pvlib
import pytest
from windpowerlib import ModelChain, WindTurbine
from windpowerlib.power_output import power_curve_density_correction

from meters.weather import PVLIB_DATA_DIR, TMY3_WIND_HEIGHT_M, Weather
from meters.wind import (
    PRESSURE_HEIGHT_M,
    STANDARD_DENSITY_KG_M3,
    TEMPERATURE_HEIGHT_M,
    density_corrected_power_curve_w,
    hub_air_density_kg_m3,
    hub_wind_speed_m_s,
    turbine_nominal_power_w,
    turbine_power_curve,
    wind_power_w,
)

TURBINE = "E-82/2300"
#: Temperature and pressure given at hub height (no lapse rate, no pressure gradient).
HUB_LEVEL: dict[str, Any] = {"temperature_height_m": 108.0, "pressure_height_m": 108.0}


def make_weather(
    wind_speed: np.ndarray,
    temp_air: np.ndarray,
    pressure: np.ndarray,
    wind_height_m: float = TMY3_WIND_HEIGHT_M,
    times_utc: pd.DatetimeIndex | None = None,
) -> Weather:
    """A Weather built directly from arrays (any of the accepted row layouts)."""
    n_steps = np.shape(wind_speed)[-1]
    if times_utc is None:
        times_utc = pd.date_range("2026-01-01 00:30", periods=n_steps, freq="h", tz="UTC")
    zeros = np.zeros_like(np.asarray(wind_speed, dtype=float))
    return Weather(
        times_utc=times_utc, step_s=3600.0, ghi=zeros, dni=zeros, dhi=zeros,
        temp_air=temp_air, wind_speed=wind_speed, pressure=pressure, latitude_deg=0.0,
        longitude_deg=0.0, altitude_m=0.0, wind_height_m=wind_height_m, name="synthetic",
    )  # fmt: skip


@pytest.fixture(scope="module")
def tmy_year() -> Weather:
    """The 723170TYA typical year (Greensboro NC), read with pvlib, as one weather row."""
    data, _ = pvlib.iotools.read_tmy3(
        str(PVLIB_DATA_DIR / "723170TYA.CSV"), coerce_year=2026, map_variables=True
    )
    times = pd.DatetimeIndex(data.index - pd.Timedelta(minutes=30)).tz_convert("UTC")
    row = {k: data[k].to_numpy(dtype=float)[None, :] for k in ("temp_air", "wind_speed")}
    return make_weather(
        row["wind_speed"], row["temp_air"], data["pressure"].to_numpy(float)[None, :] * 100.0,
        times_utc=times,
    )  # fmt: skip


def modelchain_power_w(
    weather: Weather, hub_height_m: float, roughness_m: float, **chain: Any
) -> np.ndarray:
    """Reference: windpowerlib ModelChain on a MultiIndex weather frame of the same arrays."""
    wind = np.atleast_2d(weather.wind_speed)[0]
    columns = pd.MultiIndex.from_arrays(
        [["wind_speed", "temperature", "pressure", "roughness_length"],
         [weather.wind_height_m, TEMPERATURE_HEIGHT_M, PRESSURE_HEIGHT_M, 0]]
    )  # fmt: skip
    frame = pd.DataFrame(
        np.column_stack([
            wind, np.atleast_2d(weather.temp_air)[0] + 273.15,
            np.atleast_2d(weather.pressure)[0], np.full(wind.shape, roughness_m),
        ]),
        index=weather.times_utc,
        columns=columns,
    )  # fmt: skip
    turbine = WindTurbine(turbine_type=TURBINE, hub_height=hub_height_m)
    result = ModelChain(turbine, power_output_model="power_curve", **chain).run_model(frame)
    return np.asarray(result.power_output.to_numpy(), dtype=float)


CHAINS = [
    ("logarithmic", False, "barometric"),
    ("logarithmic", True, "barometric"),
    ("logarithmic", True, "ideal_gas"),
    ("hellman", False, "barometric"),
    ("hellman", True, "barometric"),
    ("hellman", True, "ideal_gas"),
]


@pytest.mark.parametrize(("profile", "correct", "density_model"), CHAINS)
def test_year_matches_windpowerlib_modelchain(
    tmy_year: Weather, profile: str, correct: bool, density_model: str
) -> None:
    hubs_m = np.array([78.0, 138.0])
    roughness_m = 0.1
    power_w = wind_power_w(
        tmy_year, TURBINE, hubs_m, roughness_m, wind_profile=profile,
        density_correction=correct, density_model=density_model,
    )  # fmt: skip
    assert power_w.shape == (2, 8760) and (power_w >= 0).all()
    for i, hub_m in enumerate(hubs_m):
        ref_w = modelchain_power_w(
            tmy_year, hub_m, roughness_m, wind_speed_model=profile,
            temperature_model="linear_gradient", density_model=density_model,
            density_correction=correct,
        )  # fmt: skip
        assert ref_w.sum() > 0
        assert power_w[i].sum() / ref_w.sum() == pytest.approx(1.0, abs=0.005)
        np.testing.assert_allclose(power_w[i], ref_w, rtol=1e-9, atol=1e-6)
    assert power_w[1].sum() > power_w[0].sum()  # taller hub, more wind, more energy


def test_explicit_hellman_exponent_matches_modelchain(tmy_year: Weather) -> None:
    power_w = wind_power_w(
        tmy_year, TURBINE, np.array([100.0]), wind_profile="hellman", hellman_exponent=0.2
    )[0]
    ref_w = modelchain_power_w(
        tmy_year, 100.0, 0.15, wind_speed_model="hellman", hellman_exp=0.2,
        density_correction=True,
    )  # fmt: skip
    np.testing.assert_allclose(power_w, ref_w, rtol=1e-9, atol=1e-6)


def test_density_correction_on_an_annual_energy_scale(tmy_year: Weather) -> None:
    # Greensboro sits at ~270 m with a mild climate: hub air is thinner than 1.225 kg/m3 on
    # average, so the corrected curve yields less energy, by a few per cent.
    hub = np.array([108.0])
    rho = hub_air_density_kg_m3(tmy_year.temp_air, tmy_year.pressure, hub)
    assert 1.12 < rho.mean() < 1.20
    plain = wind_power_w(tmy_year, TURBINE, hub, density_correction=False).sum()
    corrected = wind_power_w(tmy_year, TURBINE, hub, density_correction=True).sum()
    assert 0.90 < corrected / plain < 0.99


@pytest.mark.parametrize("turbine", ["E-82/2300", "V126/3300", "SWT130/3600", "E-126/4200"])
def test_vectorised_density_correction_equals_windpowerlib(turbine: str) -> None:
    xs, fp = turbine_power_curve(turbine)
    rng = np.random.default_rng(20260621)
    speed = np.concatenate([rng.uniform(0.0, 40.0, 5000), xs, xs, [np.nextafter(xs[-1], 99)]])
    rho = np.concatenate([rng.uniform(0.8, 1.6, 5000), np.full(xs.size, 1.225),
                          rng.uniform(0.9, 1.4, xs.size), [1.1]])  # fmt: skip
    ref = power_curve_density_correction(speed, xs, fp, rho)
    ours = density_corrected_power_curve_w(speed, rho, xs, fp)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=0.0)
    assert (ours[ref == 0] == 0).all()
    # 2-D layout (turbines x steps) gives the same values
    np.testing.assert_array_equal(
        density_corrected_power_curve_w(speed.reshape(1, -1), rho.reshape(1, -1), xs, fp)[0],
        ours,
    )


def test_oedb_power_curve_and_nominal_power() -> None:
    speed_m_s, power_w = turbine_power_curve(TURBINE)
    assert (np.diff(speed_m_s) > 0).all()
    assert power_w[speed_m_s == 5.0] == pytest.approx(174_000.0)  # oedb power_curves.csv
    for turbine in (TURBINE, "V126/3300", "E-126/4200"):
        expected = WindTurbine(turbine_type=turbine, hub_height=100).nominal_power
        assert turbine_nominal_power_w(turbine) == expected
    assert turbine_nominal_power_w(TURBINE) == 2_300_000.0


@pytest.mark.parametrize("temp_c", [-25.0, 15.0, 40.0])
def test_zero_below_cut_in_and_above_cut_out(temp_c: float) -> None:
    hub_m = 108.0
    hub = np.array([hub_m])
    speeds = np.array([0.0, 0.5, 0.9, 30.0, 45.0])
    weather = make_weather(
        speeds, np.full(speeds.size, temp_c), np.full(speeds.size, 101_325.0), wind_height_m=hub_m
    )
    for correct in (False, True):
        power_w = wind_power_w(weather, TURBINE, hub, density_correction=correct)
        np.testing.assert_array_equal(power_w, 0.0)
    # The corrected curve moves cut-out (oedb: last speed 25 m/s) to 25 (1.225/rho)^(2/3), as
    # windpowerlib's power_curve_density_correction does: rated just below, 0 just above.
    rho = hub_air_density_kg_m3(np.array([temp_c]), np.array([101_325.0]), hub, **HUB_LEVEL)
    cut_out = 25.0 * (STANDARD_DENSITY_KG_M3 / rho[0, 0]) ** (2 / 3)
    edge = np.array([cut_out * (1 - 1e-9), cut_out * (1 + 1e-9)])
    at_edge = make_weather(edge, np.full(2, temp_c), np.full(2, 101_325.0), wind_height_m=hub_m)
    power_w = wind_power_w(at_edge, TURBINE, hub, **HUB_LEVEL)[0]
    np.testing.assert_allclose(power_w, [2_350_000.0, 0.0])


def test_power_curve_lookup_without_correction() -> None:
    hub_m = 108.0
    speeds = np.array([0.5, 5.0, 5.5, 14.0, 25.0, 26.0, 30.0])
    weather = make_weather(
        speeds, np.full(speeds.size, 15.0), np.full(speeds.size, 101_325.0), wind_height_m=hub_m
    )
    power_w = wind_power_w(weather, TURBINE, np.array([hub_m]), density_correction=False)[0]
    # oedb curve: 5 m/s 174 kW, 6 m/s 321 kW, 14-25 m/s 2.35 MW, none beyond 25 m/s.
    expected = [0.0, 174_000.0, 247_500.0, 2_350_000.0, 2_350_000.0, 0.0, 0.0]
    np.testing.assert_allclose(power_w, expected)


def test_colder_denser_air_gives_more_power_below_rated() -> None:
    hub_m = 108.0
    speeds = np.array([4.0, 6.0, 8.0, 10.0, 11.0, 16.0, 20.0])
    pressure = np.full(speeds.size, 101_325.0)
    cold = make_weather(speeds, np.full(speeds.size, -20.0), pressure, wind_height_m=hub_m)
    warm = make_weather(speeds, np.full(speeds.size, 35.0), pressure, wind_height_m=hub_m)
    hub = np.array([hub_m])
    rho_cold = hub_air_density_kg_m3(cold.temp_air, cold.pressure, hub)
    rho_warm = hub_air_density_kg_m3(warm.temp_air, warm.pressure, hub)
    assert (rho_cold > STANDARD_DENSITY_KG_M3).all() and (rho_warm < STANDARD_DENSITY_KG_M3).all()
    p_cold = wind_power_w(cold, TURBINE, hub)[0]
    p_warm = wind_power_w(warm, TURBINE, hub)[0]
    p_std = wind_power_w(cold, TURBINE, hub, density_correction=False)[0]
    below_rated = speeds <= 11.0
    assert (p_cold[below_rated] > p_std[below_rated]).all()
    assert (p_warm[below_rated] < p_std[below_rated]).all()
    # at rated power the curve is flat: density no longer matters
    np.testing.assert_allclose(p_cold[~below_rated], 2_350_000.0)
    np.testing.assert_allclose(p_warm[~below_rated], 2_350_000.0)
    # below 7.5 m/s the correction is the cube-root law, P ~ rho to first order
    ratio = p_cold[1] / p_std[1]
    assert ratio == pytest.approx(1.0 + (rho_cold[0, 1] / STANDARD_DENSITY_KG_M3 - 1.0), rel=0.05)


def test_standard_atmosphere_density() -> None:
    # ISA sea level: 15 degC and 1013.3 hPa give 1.225 kg/m3 (barometric, windpowerlib's
    # reference 101330 Pa) and 101325 / (287.058 * 288.15) = 1.22498 kg/m3 (ideal gas).
    hub = np.array([100.0])
    kwargs: dict[str, Any] = {"temperature_height_m": 100.0, "pressure_height_m": 100.0}
    baro = hub_air_density_kg_m3(np.array([15.0]), np.array([101_330.0]), hub, **kwargs)
    ideal = hub_air_density_kg_m3(
        np.array([15.0]), np.array([101_325.0]), hub, density_model="ideal_gas", **kwargs
    )
    assert baro[0, 0] == pytest.approx(1.225, rel=1e-12)
    assert ideal[0, 0] == pytest.approx(1.22498, rel=1e-5)
    # 100 m up from the screen: -0.65 K and -12.5 hPa, both from windpowerlib's gradients
    up = hub_air_density_kg_m3(np.array([15.0]), np.array([101_330.0]), hub)
    expected = (1013.3 - 12.5) * 1.225 * 288.15 * 100 / (101_330 * (288.15 - 0.0065 * 98.0))
    assert up[0, 0] == pytest.approx(expected, rel=1e-12)


def test_profiles_closed_form() -> None:
    # logarithmic: from 10 m to 100 m over z0 = 0.1 m the factor is ln(1000)/ln(100) = 1.5
    speed = hub_wind_speed_m_s(np.array([4.0, 8.0]), 10.0, np.array([100.0, 10.0]), 0.1)
    np.testing.assert_allclose(speed, [[6.0, 12.0], [4.0, 8.0]])
    # power law with the 1/7 exponent: 10 m -> 100 m multiplies by 10 ** (1/7)
    speed = hub_wind_speed_m_s(
        np.array([5.0]), 10.0, np.array([100.0]), wind_profile="hellman", hellman_exponent=1 / 7
    )
    assert speed[0, 0] == pytest.approx(5.0 * 10 ** (1 / 7))
    # default exponent 1 / ln(h_hub / z0) (windpowerlib), per turbine roughness
    speed = hub_wind_speed_m_s(
        np.array([5.0]), 10.0, np.array([100.0, 100.0]), np.array([0.1, 1.0]), "hellman"
    )
    np.testing.assert_allclose(speed[:, 0], 5.0 * 10 ** (1 / np.log([1000.0, 100.0])))


def test_weather_row_layouts() -> None:
    rng = np.random.default_rng(7)
    n = 48
    wind = rng.uniform(2.0, 20.0, (2, n))
    temp = rng.uniform(-10.0, 30.0, (2, n))
    pressure = rng.uniform(95_000.0, 103_000.0, (2, n))
    hubs = np.array([80.0, 120.0])
    per_site = wind_power_w(make_weather(wind, temp, pressure), TURBINE, hubs)
    for i in range(2):
        one_row = make_weather(wind[i : i + 1], temp[i : i + 1], pressure[i : i + 1])
        flat = make_weather(wind[i], temp[i], pressure[i])  # old 1-D layout
        row = wind_power_w(one_row, TURBINE, hubs)
        np.testing.assert_array_equal(per_site[i], row[i])
        np.testing.assert_array_equal(wind_power_w(flat, TURBINE, hubs), row)
    with pytest.raises(ValueError, match="1 or 3 rows"):
        wind_power_w(make_weather(wind, temp, pressure), TURBINE, np.array([80.0, 90.0, 100.0]))


def test_bad_arguments_get_clear_errors() -> None:
    weather = make_weather(np.full(3, 8.0), np.full(3, 10.0), np.full(3, 101_325.0))
    with pytest.raises(ValueError, match=r"'E82/2300'.*E-82/2300"):
        wind_power_w(weather, "E82/2300", np.array([108.0]))
    with pytest.raises(ValueError, match="no_such_turbine"):
        turbine_power_curve("no_such_turbine")
    with pytest.raises(ValueError, match="no_such_turbine"):
        turbine_nominal_power_w("no_such_turbine")
    with pytest.raises(ValueError, match=r"wind_profile 'cubic'.*hellman.*logarithmic"):
        wind_power_w(weather, TURBINE, np.array([108.0]), wind_profile="cubic")
    with pytest.raises(ValueError, match="density_model 'dense'"):
        wind_power_w(weather, TURBINE, np.array([108.0]), density_model="dense")
    with pytest.raises(ValueError, match="hellman_exponent applies only"):
        wind_power_w(weather, TURBINE, np.array([108.0]), hellman_exponent=0.2)
    with pytest.raises(ValueError, match="roughness length"):
        wind_power_w(weather, TURBINE, np.array([108.0]), roughness_length_m=200.0)
