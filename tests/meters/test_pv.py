"""PVWatts AC power, checked against pvlib's ModelChain and the PVWatts v5 equations."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pvlib
import pytest
from pvlib.location import Location
from pvlib.modelchain import ModelChain
from pvlib.pvsystem import PVSystem

from meters.pv import PvSites, pvwatts_ac_power_w
from meters.weather import Weather, load_tmy3

SAPM = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]


@pytest.fixture(scope="module")
def solstice() -> Weather:
    return load_tmy3("723170TYA", datetime(2026, 6, 21, tzinfo=UTC), 86_400.0, 60.0)


@pytest.fixture(scope="module")
def two_sites() -> PvSites:
    return PvSites(
        capacity_dc_w=np.array([10_000.0, 50_000.0]),
        tilt_deg=np.array([30.0, 20.0]),
        azimuth_deg=np.array([180.0, 250.0]),
        dc_ac_ratio=np.array([1.2, 1.5]),
        system_losses_pct=pvlib.pvsystem.pvwatts_losses(),  # the exact value ModelChain uses
    )


def modelchain_ac_w(weather: Weather, sites: PvSites, i: int) -> np.ndarray:
    """Reference: pvlib ModelChain.with_pvwatts (isotropic sky) for site i on the same weather."""
    frame = pd.DataFrame(
        {k: getattr(weather, k) for k in ("ghi", "dni", "dhi", "temp_air", "wind_speed")}
        | {"pressure": weather.pressure},
        index=weather.times_utc,
    )
    system = PVSystem(
        surface_tilt=sites.tilt_deg[i],
        surface_azimuth=sites.azimuth_deg[i],
        albedo=sites.albedo,
        module_parameters={"pdc0": sites.capacity_dc_w[i], "gamma_pdc": sites.gamma_pdc_per_c},
        inverter_parameters={
            "pdc0": sites.inverter_ac_nameplate_w[i] / sites.inverter_eta_nominal,
            "eta_inv_nom": sites.inverter_eta_nominal,
        },
        temperature_model_parameters=SAPM[sites.temperature_model],
    )
    location = Location(
        weather.latitude_deg, weather.longitude_deg, tz="UTC", altitude=weather.altitude_m
    )
    chain = ModelChain.with_pvwatts(system, location, transposition_model="isotropic")
    chain.run_model(frame)
    return np.asarray(chain.results.ac.to_numpy(), dtype=float)


@pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofyear")  # inside pvlib, pandas 3
def test_daily_energy_matches_pvlib_modelchain(solstice: Weather, two_sites: PvSites) -> None:
    power_w = pvwatts_ac_power_w(solstice, two_sites)
    assert power_w.shape == (2, 1440) and power_w.dtype == np.float64
    zenith = pvlib.solarposition.get_solarposition(
        solstice.times_utc, solstice.latitude_deg, solstice.longitude_deg
    )["apparent_zenith"].to_numpy()
    for i in range(2):
        ref_w = modelchain_ac_w(solstice, two_sites, i)
        energy_ratio = power_w[i].sum() / ref_w.sum()
        assert energy_ratio == pytest.approx(1.0, abs=0.01), energy_ratio
        # Away from the horizon (where we zero the POA at night) every sample agrees.
        day = zenith < 89.0
        np.testing.assert_allclose(power_w[i, day], ref_w[day], rtol=1e-4, atol=1e-3)


def test_night_power_is_exactly_zero(solstice: Weather, two_sites: PvSites) -> None:
    power_w = pvwatts_ac_power_w(solstice, two_sites)
    zenith = pvlib.solarposition.get_solarposition(
        solstice.times_utc,
        solstice.latitude_deg,
        solstice.longitude_deg,
        altitude=solstice.altitude_m,
        pressure=solstice.pressure,
        temperature=solstice.temp_air,
    )["apparent_zenith"].to_numpy()
    night = zenith >= 90.0
    assert night.sum() > 400  # the solstice night at 36 N is about 9.5 h
    assert (power_w[:, night] == 0.0).all()
    assert (power_w[:, ~night].max(axis=1) > 0).all()
    # Linear interpolation of hourly means leaks light past sunset; the model must not.
    assert (solstice.ghi[night] > 0).any()


def test_ac_clips_at_the_inverter_nameplate(solstice: Weather) -> None:
    sites = PvSites(
        capacity_dc_w=np.array([20_000.0, 20_000.0]),
        tilt_deg=np.array([25.0, 25.0]),
        azimuth_deg=np.array([180.0, 180.0]),
        dc_ac_ratio=np.array([1.0, 1.8]),
    )
    power_w = pvwatts_ac_power_w(solstice, sites)
    nameplate_w = sites.inverter_ac_nameplate_w
    assert (power_w <= nameplate_w[:, None] * (1 + 1e-12)).all()
    clipped = np.isclose(power_w[1], nameplate_w[1], rtol=1e-9)
    assert clipped.sum() > 30  # the oversized array clips around noon
    assert not np.isclose(power_w[0], nameplate_w[0], rtol=1e-3).any()


def test_sun_facing_module_follows_the_pvwatts_v5_equations() -> None:
    """Beam of 1000 W/m2 at normal incidence, cell at 25 degC: DC = pdc0 x (1 - losses).

    Equations of the PVWatts v5 manual (Dobos 2014): DC eq. in sec. 8, SAPM cell temperature
    (King et al. 2004), inverter efficiency eta = eta_nom/eta_ref (-0.0162 z - 0.0059/z + 0.9858).
    """
    times = pd.DatetimeIndex([pd.Timestamp("2026-06-21 17:00:30", tz="UTC")])
    lat, lon, alt = 36.1, -79.95, 273.0
    pressure_pa = np.array([98_000.0])
    # SAPM open rack: T_cell = E exp(a + b ws) + T_air + E/1000 dT = 25 degC at E=1000, ws=1.
    p = SAPM["open_rack_glass_polymer"]
    temp_air = np.array([25.0 - 1000.0 * np.exp(p["a"] + p["b"] * 1.0) - p["deltaT"]])
    sun = pvlib.solarposition.get_solarposition(
        times, lat, lon, altitude=alt, pressure=pressure_pa, temperature=temp_air
    )
    zenith, azimuth = sun["apparent_zenith"].iloc[0], sun["azimuth"].iloc[0]
    weather = Weather(
        times_utc=times, step_s=60.0, ghi=np.array([1000.0 * np.cos(np.radians(zenith))]),
        dni=np.array([1000.0]), dhi=np.array([0.0]), temp_air=temp_air,
        wind_speed=np.array([1.0]), pressure=pressure_pa, latitude_deg=lat,
        longitude_deg=lon, altitude_m=alt, wind_height_m=10.0, name="synthetic",
    )  # fmt: skip
    sites = PvSites(
        capacity_dc_w=np.array([1000.0]), tilt_deg=np.array([zenith]),
        azimuth_deg=np.array([azimuth]), dc_ac_ratio=np.array([0.5]), albedo=0.0,
    )  # fmt: skip
    dc_w = 1000.0 * (1 - 14.08 / 100)
    inverter_pdc0_w = 2000.0 / 0.96
    z = dc_w / inverter_pdc0_w
    eta = 0.96 / 0.9637 * (-0.0162 * z - 0.0059 / z + 0.9858)
    power_w = pvwatts_ac_power_w(weather, sites)
    assert power_w[0, 0] == pytest.approx(eta * dc_w, rel=1e-6)


def test_defaults_are_the_pvwatts_v5_defaults() -> None:
    sites = PvSites(np.array([1.0]), np.array([0.0]), np.array([180.0]), np.array([1.0]))
    assert sites.system_losses_pct == pytest.approx(pvlib.pvsystem.pvwatts_losses(), abs=0.005)
    assert sites.temperature_model in SAPM


def test_many_sites_equal_each_site_alone(solstice: Weather) -> None:
    rng = np.random.default_rng(7)
    n = 3000  # more than one block of sites
    sites = PvSites(
        rng.uniform(5e3, 5e4, n), rng.uniform(0, 60, n), rng.uniform(90, 270, n),
        rng.uniform(1.0, 1.6, n),
    )  # fmt: skip
    power_w = pvwatts_ac_power_w(solstice, sites)
    for i in (0, 1499, n - 1):
        alone = PvSites(
            sites.capacity_dc_w[i : i + 1], sites.tilt_deg[i : i + 1],
            sites.azimuth_deg[i : i + 1], sites.dc_ac_ratio[i : i + 1],
        )  # fmt: skip
        np.testing.assert_array_equal(power_w[i], pvwatts_ac_power_w(solstice, alone)[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity_dc_w": np.array([1.0, 2.0])},  # length mismatch
        {"capacity_dc_w": np.array([0.0])},
        {"dc_ac_ratio": np.array([0.0])},
        {"temperature_model": "no_such_mount"},
    ],
)
def test_bad_sites_are_rejected(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "capacity_dc_w": np.array([1.0]), "tilt_deg": np.array([20.0]),
        "azimuth_deg": np.array([180.0]), "dc_ac_ratio": np.array([1.2]),
    }  # fmt: skip
    with pytest.raises(ValueError):
        PvSites(**(base | kwargs))  # type: ignore[arg-type]
