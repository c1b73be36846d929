"""PVWatts AC power: the numba kernel against the pvlib-function reference, both against
pvlib's ModelChain and the PVWatts v5 equations (Dobos 2014)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pvlib
import pytest
from pvlib.location import Location
from pvlib.modelchain import ModelChain
from pvlib.pvsystem import PVSystem

from meters.pv import (
    CELL_TEMPERATURE_MODELS,
    PVWATTS_V5_SYSTEM_LOSSES_PCT,
    PvSites,
    pvwatts_ac_power_w,
    pvwatts_ac_power_w_reference,
)
from meters.weather import PVLIB_DATA_DIR, Weather, WeatherRequest, load_tmy3

pytestmark = pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofyear")  # pvlib, pandas 3

SAPM = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]
STATION = "723170TYA"  # Greensboro NC, shipped with pvlib
WEATHER_FIELDS = ("ghi", "dni", "dhi", "temp_air", "wind_speed", "pressure")


def rows2d(weather: Weather) -> dict[str, np.ndarray]:
    """The weather arrays as [n_rows, n_steps], whatever shape the Weather holds."""
    return {k: np.atleast_2d(getattr(weather, k)) for k in WEATHER_FIELDS}


def with_arrays(weather: Weather, **arrays: np.ndarray) -> Weather:
    return replace(weather, **arrays)  # type: ignore[arg-type]


def tmy3_day(month: int, day: int) -> Weather:
    """A day of 1-min samples (hourly TMY3 means interpolated), as [1, n_steps] arrays."""
    weather = load_tmy3(
        STATION, WeatherRequest(datetime(2026, month, day, 5, tzinfo=UTC), 86_400.0, 60.0)
    )
    return with_arrays(weather, **rows2d(weather))


def tmy3_year_hourly() -> Weather:
    """The full TMY3 year read with pvlib: 8760 hourly means at their hours' midpoints."""
    data, meta = pvlib.iotools.read_tmy3(
        str(PVLIB_DATA_DIR / f"{STATION}.CSV"), coerce_year=2026, map_variables=True
    )
    times = pd.DatetimeIndex(data.index - pd.Timedelta(minutes=30)).tz_convert("UTC")
    arrays = {k: data[k].to_numpy(dtype=np.float64)[None, :] for k in WEATHER_FIELDS}
    arrays["pressure"] = arrays["pressure"] * 100.0  # mbar -> Pa
    return Weather(
        times_utc=times, step_s=3600.0, latitude_deg=float(meta["latitude"]),
        longitude_deg=float(meta["longitude"]), altitude_m=float(meta["altitude"]),
        wind_height_m=10.0, name=f"tmy3:{STATION} hourly", **arrays,
    )  # fmt: skip


def apparent_zenith_deg(weather: Weather) -> np.ndarray:
    w = rows2d(weather)
    return pvlib.solarposition.get_solarposition(
        weather.times_utc, weather.latitude_deg, weather.longitude_deg,
        altitude=weather.altitude_m, pressure=w["pressure"][0], temperature=w["temp_air"][0],
    )["apparent_zenith"].to_numpy()  # fmt: skip


@pytest.fixture(scope="module")
def solstice() -> Weather:
    return tmy3_day(6, 21)


@pytest.fixture(scope="module")
def year() -> Weather:
    return tmy3_year_hourly()


def varied_sites(n: int, seed: int, **kwargs: object) -> PvSites:
    rng = np.random.default_rng(seed)
    return PvSites(
        capacity_dc_w=rng.uniform(5e3, 5e5, n), tilt_deg=rng.uniform(0, 90, n),
        azimuth_deg=rng.uniform(0, 360, n), dc_ac_ratio=rng.uniform(0.9, 1.8, n),
        system_losses_pct=rng.uniform(3, 25, n), **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def assert_kernel_matches_reference(weather: Weather, sites: PvSites) -> float:
    """Kernel == reference to 1e-6 relative where > 1 W, 1e-6 W elsewhere; max rel. error."""
    fast_w = pvwatts_ac_power_w(weather, sites)
    ref_w = pvwatts_ac_power_w_reference(weather, sites)
    n_steps = len(weather.times_utc)
    assert fast_w.shape == ref_w.shape == (sites.n_sites, n_steps)
    assert fast_w.dtype == np.float64 and fast_w.flags.c_contiguous
    big = ref_w > 1.0
    assert big.sum() > 0.2 * big.size  # most daytime samples carry real power
    rel = np.abs(fast_w[big] - ref_w[big]) / ref_w[big]
    assert rel.max() <= 1e-6, rel.max()
    np.testing.assert_allclose(fast_w[~big], ref_w[~big], rtol=0, atol=1e-6)
    return float(rel.max())


def test_kernel_matches_reference_on_a_tmy3_day(solstice: Weather) -> None:
    assert_kernel_matches_reference(solstice, varied_sites(60, seed=1))


def test_kernel_matches_reference_on_the_tmy3_year(year: Weather) -> None:
    assert_kernel_matches_reference(year, varied_sites(30, seed=2))


@pytest.mark.parametrize("model", sorted(CELL_TEMPERATURE_MODELS))
def test_kernel_matches_reference_for_every_temperature_model(
    solstice: Weather, model: str
) -> None:
    assert_kernel_matches_reference(solstice, varied_sites(8, seed=3, temperature_model=model))


def test_kernel_matches_reference_with_a_weather_row_per_site(solstice: Weather) -> None:
    sites = varied_sites(12, seed=4)
    rng = np.random.default_rng(5)
    w = rows2d(solstice)
    scale = rng.uniform(0.3, 1.2, (sites.n_sites, 1))  # clouds differ from site to site
    arrays = {k: np.repeat(w[k], sites.n_sites, axis=0) for k in WEATHER_FIELDS} | {
        "ghi": w["ghi"] * scale, "dni": w["dni"] * scale, "dhi": w["dhi"] * scale,
        "temp_air": w["temp_air"] + rng.uniform(-5, 5, (sites.n_sites, 1)),
        "wind_speed": w["wind_speed"] * rng.uniform(0, 3, (sites.n_sites, 1)),
    }  # fmt: skip
    per_site = with_arrays(solstice, **arrays)
    assert_kernel_matches_reference(per_site, sites)


def test_cell_temperature_registry_matches_the_pvlib_functions() -> None:
    """Kernel form T_air + E h(ws) == pvlib.temperature.sapm_cell / pvsyst_cell."""
    rng = np.random.default_rng(6)
    poa, temp_air = rng.uniform(0, 1200, 200), rng.uniform(-10, 40, 200)
    wind = rng.uniform(0, 15, (1, 200))
    for name, model in CELL_TEMPERATURE_MODELS.items():
        h = model.heating(wind, np.arange(200), **model.parameters)[0]
        expected = model.pvlib_function(poa, temp_air, wind[0], **model.parameters)
        np.testing.assert_allclose(temp_air + poa * h, expected, rtol=1e-12, err_msg=name)
    assert {
        "open_rack_glass_polymer", "close_mount_glass_glass", "open_rack_glass_glass",
        "insulated_back_glass_polymer", "pvsyst_freestanding", "pvsyst_insulated",
    } <= set(CELL_TEMPERATURE_MODELS)  # fmt: skip


# --- against pvlib's ModelChain -------------------------------------------------------------


def modelchain_ac_w(weather: Weather, sites: PvSites, i: int) -> np.ndarray:
    """pvlib ModelChain, PVWatts models, for site i on the (first row of the) same weather."""
    w = rows2d(weather)
    frame = pd.DataFrame({k: w[k][0] for k in WEATHER_FIELDS}, index=weather.times_utc)
    model = CELL_TEMPERATURE_MODELS[sites.temperature_model]
    params = dict(model.parameters)
    module = {"pdc0": sites.capacity_dc_w[i], "gamma_pdc": sites.gamma_pdc_per_c}
    for key in ("module_efficiency", "alpha_absorption"):  # PVsyst: pvlib reads them here
        if key in params:
            module[key] = params.pop(key)
    system = PVSystem(
        surface_tilt=sites.tilt_deg[i],
        surface_azimuth=sites.azimuth_deg[i],
        albedo=sites.albedo,
        module_parameters=module,
        inverter_parameters={
            "pdc0": sites.inverter_ac_nameplate_w[i] / sites.inverter_eta_nominal,
            "eta_inv_nom": sites.inverter_eta_nominal,
        },
        temperature_model_parameters=params,
        losses_parameters=LOSSES_PARAMETERS[i % len(LOSSES_PARAMETERS)],
    )
    location = Location(
        weather.latitude_deg, weather.longitude_deg, tz="UTC", altitude=weather.altitude_m
    )
    chain = ModelChain(
        system, location, dc_model="pvwatts", ac_model="pvwatts", aoi_model="physical",
        spectral_model="no_loss", losses_model="pvwatts", transposition_model="isotropic",
    )  # fmt: skip
    chain.run_model(frame)
    return np.asarray(chain.results.ac.to_numpy(), dtype=float)


#: pvlib.pvsystem.pvwatts_losses arguments of the ModelChain sites (default, dusty, clean).
LOSSES_PARAMETERS: list[dict[str, float]] = [{}, {"soiling": 8.0, "age": 4.0}, {"shading": 0.0}]


def modelchain_sites(temperature_model: str = "open_rack_glass_polymer") -> PvSites:
    return PvSites(
        capacity_dc_w=np.array([10_000.0, 50_000.0, 250_000.0]),
        tilt_deg=np.array([30.0, 20.0, 45.0]),
        azimuth_deg=np.array([180.0, 250.0, 120.0]),
        dc_ac_ratio=np.array([1.2, 1.5, 1.0]),
        system_losses_pct=np.array([pvlib.pvsystem.pvwatts_losses(**p) for p in LOSSES_PARAMETERS]),
        temperature_model=temperature_model,
    )


@pytest.mark.parametrize(("month", "day"), [(1, 15), (3, 20), (6, 21), (9, 23), (12, 21)])
def test_daily_energy_matches_pvlib_modelchain(month: int, day: int) -> None:
    weather = tmy3_day(month, day)
    sites = modelchain_sites()
    power_w = pvwatts_ac_power_w(weather, sites)
    near_horizon = apparent_zenith_deg(weather) >= 89.0
    for i in range(sites.n_sites):
        ref_w = modelchain_ac_w(weather, sites, i)
        assert ref_w.sum() > 0
        assert power_w[i].sum() / ref_w.sum() == pytest.approx(1.0, abs=0.005)
        # Away from the horizon (where we are exactly 0 at night) every sample agrees.
        np.testing.assert_allclose(
            power_w[i, ~near_horizon], ref_w[~near_horizon], rtol=1e-9, atol=1e-6
        )


@pytest.mark.parametrize("temperature_model", ["open_rack_glass_polymer", "pvsyst_insulated"])
def test_annual_energy_matches_pvlib_modelchain(year: Weather, temperature_model: str) -> None:
    sites = modelchain_sites(temperature_model)
    power_w = pvwatts_ac_power_w(year, sites)
    for i in range(sites.n_sites):
        ref_w = modelchain_ac_w(year, sites, i)
        yield_kwh_per_kwp = ref_w.sum() / sites.capacity_dc_w[i]  # hourly: W h -> kWh/kWp
        assert 1000 < yield_kwh_per_kwp < 1700  # North Carolina: about 1300-1500
        assert power_w[i].sum() / ref_w.sum() == pytest.approx(1.0, abs=0.005)


# --- behaviour ------------------------------------------------------------------------------


def test_night_power_is_exactly_zero(solstice: Weather) -> None:
    sites = varied_sites(5, seed=8)
    night = apparent_zenith_deg(solstice) >= 90.0
    assert night.sum() > 400  # the solstice night at 36 N is about 9.5 h
    # Linear interpolation of hourly means leaks light past sunset; the model must not.
    assert (rows2d(solstice)["ghi"][0, night] > 0).any()
    for power_w in (
        pvwatts_ac_power_w(solstice, sites),
        pvwatts_ac_power_w_reference(solstice, sites),
    ):
        assert (power_w[:, night] == 0.0).all()
        assert not np.signbit(power_w).any()  # no -0.0 either
        assert (power_w[:, ~night].max(axis=1) > 0).all()


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


def test_hotter_mountings_make_less_energy(year: Weather) -> None:
    """Less cooling => hotter cells => less power (gamma_pdc < 0), sample by sample.

    SAPM (King et al. 2004): open rack < close mount < insulated back in cell temperature;
    PVsyst: U_c 29 (freestanding) > 20 (semi-integrated) > 15 (insulated) W/(m2 K).
    """
    base = PvSites(np.array([100e3]), np.array([30.0]), np.array([180.0]), np.array([1.0]))

    def energy_wh(model: str) -> tuple[float, np.ndarray]:
        power_w = pvwatts_ac_power_w(year, replace(base, temperature_model=model))[0]
        return float(power_w.sum()), power_w

    for cooler_to_hotter in (
        ["open_rack_glass_glass", "close_mount_glass_glass", "insulated_back_glass_polymer"],
        ["pvsyst_freestanding", "pvsyst_semi_integrated", "pvsyst_insulated"],
    ):
        results = [energy_wh(m) for m in cooler_to_hotter]
        for (e_cool, p_cool), (e_hot, p_hot) in itertools.pairwise(results):
            assert (p_hot <= p_cool * (1 + 1e-12)).all()
            assert e_hot < 0.995 * e_cool  # at least 0.5 % a year for this step of cooling
        # Insulated runs ~20 K hotter at 1000 W/m2 (King et al. 2004 Table 1; U_c 15 vs 29):
        # at -0.35 %/K, several per cent a year, weighted to the sunny hours.
        assert 0.92 < results[-1][0] / results[0][0] < 0.98


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("capacity_dc_w", 7_000.0),
        ("tilt_deg", 55.0),
        ("azimuth_deg", 100.0),
        ("dc_ac_ratio", 1.7),
        ("system_losses_pct", 25.0),
    ],
)
def test_a_site_parameter_changes_only_that_sites_row(
    solstice: Weather, name: str, value: float
) -> None:
    sites = varied_sites(6, seed=9)
    before = pvwatts_ac_power_w(solstice, sites)
    changed = np.array(getattr(sites, name))
    changed[2] = value
    after = pvwatts_ac_power_w(solstice, replace(sites, **{name: changed}))  # type: ignore[arg-type]
    others = np.arange(6) != 2
    np.testing.assert_array_equal(after[others], before[others])
    assert np.abs(after[2] - before[2]).max() > 10.0  # W


def test_many_sites_equal_each_site_alone(solstice: Weather) -> None:
    rng = np.random.default_rng(7)
    n = 3000
    sites = PvSites(
        rng.uniform(5e3, 5e4, n), rng.uniform(0, 60, n), rng.uniform(90, 270, n),
        rng.uniform(1.0, 1.6, n), system_losses_pct=rng.uniform(5, 20, n),
    )  # fmt: skip
    power_w = pvwatts_ac_power_w(solstice, sites)
    for i in (0, 1499, n - 1):
        alone = PvSites(
            sites.capacity_dc_w[i : i + 1], sites.tilt_deg[i : i + 1],
            sites.azimuth_deg[i : i + 1], sites.dc_ac_ratio[i : i + 1],
            system_losses_pct=sites.losses_pct[i : i + 1],
        )  # fmt: skip
        np.testing.assert_array_equal(power_w[i], pvwatts_ac_power_w(solstice, alone)[0])


def test_weather_shapes_1d_one_row_and_one_row_per_site(solstice: Weather) -> None:
    sites = varied_sites(3, seed=10)
    w = rows2d(solstice)
    one_row = pvwatts_ac_power_w(solstice, sites)
    flat = pvwatts_ac_power_w(with_arrays(solstice, **{k: v[0] for k, v in w.items()}), sites)
    np.testing.assert_array_equal(flat, one_row)
    # row i is site i's weather: site 1 under half the sun equals site 1 alone under it
    dim = {k: np.repeat(v, 3, axis=0) for k, v in w.items()}
    for k in ("ghi", "dni", "dhi"):
        dim[k][1] *= 0.5
    per_site = pvwatts_ac_power_w(with_arrays(solstice, **dim), sites)
    np.testing.assert_array_equal(per_site[[0, 2]], one_row[[0, 2]])
    site_1 = PvSites(
        sites.capacity_dc_w[1:2], sites.tilt_deg[1:2], sites.azimuth_deg[1:2],
        sites.dc_ac_ratio[1:2], system_losses_pct=sites.losses_pct[1:2],
    )  # fmt: skip
    half_sun = with_arrays(solstice, **{k: v[1:2] for k, v in dim.items()})
    np.testing.assert_array_equal(per_site[1], pvwatts_ac_power_w(half_sun, site_1)[0])
    assert per_site[1].sum() < 0.6 * one_row[1].sum()
    with pytest.raises(ValueError, match="n_sites"):  # 2 rows for 3 sites
        pvwatts_ac_power_w(with_arrays(solstice, **{k: v[:2] for k, v in dim.items()}), sites)


def test_sun_facing_module_follows_the_pvwatts_v5_equations() -> None:
    """Beam of 1000 W/m2 at normal incidence, cell at 25 degC: DC = pdc0 x (1 - losses).

    Equations of the PVWatts v5 manual (Dobos 2014): DC eq. in sec. 8, SAPM cell temperature
    (King et al. 2004), inverter efficiency eta = eta_nom/eta_ref (-0.0162 z - 0.0059/z + 0.9858).
    Also checks that 1-D weather arrays (the old Weather) are accepted.
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
    assert pvwatts_ac_power_w(weather, sites)[0, 0] == pytest.approx(eta * dc_w, rel=1e-6)
    assert pvwatts_ac_power_w_reference(weather, sites)[0, 0] == pytest.approx(eta * dc_w, rel=1e-6)


def test_defaults_are_the_pvwatts_v5_defaults() -> None:
    sites = PvSites(np.array([1.0, 2.0]), np.array([0.0, 0.0]), np.array([180.0] * 2), np.ones(2))
    assert abs(PVWATTS_V5_SYSTEM_LOSSES_PCT - pvlib.pvsystem.pvwatts_losses()) < 0.005
    np.testing.assert_array_equal(sites.losses_pct, [PVWATTS_V5_SYSTEM_LOSSES_PCT] * 2)
    assert (
        CELL_TEMPERATURE_MODELS[sites.temperature_model].parameters
        == SAPM["open_rack_glass_polymer"]
    )
    assert not sites.tilt_deg.flags.writeable  # frozen parameters


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity_dc_w": np.array([1.0, 2.0])},  # length mismatch
        {"capacity_dc_w": np.array([0.0])},
        {"dc_ac_ratio": np.array([0.0])},
        {"tilt_deg": np.array([-5.0])},
        {"azimuth_deg": np.array([np.nan])},
        {"system_losses_pct": np.array([10.0, 12.0])},
        {"system_losses_pct": 100.0},
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
