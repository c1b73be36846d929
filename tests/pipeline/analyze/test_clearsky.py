"""The pipeline's clear sky against pvlib's own functions called the usual way: the SPA
split into its time part (once per step) and its observer part gives pvlib's sun
position; the clear-sky energy is the PVWatts-style chain on pvlib's clear sky; the plane
irradiance at a clear-sky index transposes the same sky onto any orientation; and the
pipeline imports none of the simulator's packages."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pvlib
import pytest

from pipeline.analyze.clearsky import (
    SiteArrays,
    clear_sky_bins,
    clear_sky_energy_wh,
    clear_sky_ghi_w_m2,
    expected_energy_wh,
    poa_at_index_w_m2,
    solar_position,
    sun_at,
)
from pipeline.store.sites import SiteMeta

T0 = int(pd.Timestamp("2026-03-20", tz="UTC").timestamp())
SITES = [
    SiteMeta("a", "pv", 10_000.0, 40.0, -105.0, 1600.0, 30.0, 180.0, ac_nameplate_w=8_500.0),
    SiteMeta("b", "pv", 20_000.0, -33.9, 18.4, 50.0, 15.0, 0.0),
    SiteMeta("c", "pv", 5_000.0, 64.1, -21.9, 10.0, 45.0, 120.0),
]


def test_the_sun_is_pvlibs_spa_whatever_the_observer() -> None:
    t = T0 + np.arange(0, 365 * 86_400, 12_617, dtype=np.int64)  # a year, every hour of day
    arrays = SiteArrays.of(SITES)
    pos = solar_position(sun_at(t), arrays.latitude_deg, arrays.longitude_deg, arrays.altitude_m)
    times = pd.to_datetime(t, unit="s", utc=True)
    for i, s in enumerate(SITES):
        ref = pvlib.solarposition.spa_python(
            times, s.latitude_deg, s.longitude_deg, s.altitude_m,
            pressure=pvlib.atmosphere.alt2pres(s.altitude_m),
        )  # fmt: skip
        np.testing.assert_allclose(pos.apparent_zenith_deg[i], ref.apparent_zenith, atol=1e-6)
        np.testing.assert_allclose(pos.zenith_deg[i], ref.zenith, atol=1e-6)
        np.testing.assert_allclose(pos.azimuth_deg[i], ref.azimuth, atol=1e-6)


def test_clear_sky_energy_is_the_pvwatts_chain_on_pvlibs_clear_sky() -> None:
    site = SITES[0]
    starts = T0 + 900 * np.arange(96, dtype=np.int64)
    mids = pd.to_datetime(
        (starts[:, None] + np.array([150, 450, 750])[None, :]).ravel(), unit="s", utc=True
    )
    loc = pvlib.location.Location(site.latitude_deg, site.longitude_deg, altitude=1600.0)
    sun = pvlib.solarposition.spa_python(
        mids, 40.0, -105.0, 1600.0, pressure=pvlib.atmosphere.alt2pres(1600.0)
    )
    cs = loc.get_clearsky(mids, model="ineichen", solar_position=sun, linke_turbidity=3.0)
    poa = pvlib.irradiance.get_total_irradiance(
        30.0, 180.0, sun.zenith, sun.azimuth, cs.dni, cs.ghi, cs.dhi, model="isotropic"
    ).poa_global.to_numpy()
    power = np.minimum(10_000 * np.nan_to_num(poa) / 1000 * site.derate, 8_500)
    ref = power.reshape(96, 3).mean(axis=1) * 0.25
    np.testing.assert_allclose(expected_energy_wh(site, starts, 900), ref, rtol=2e-3, atol=0.5)
    unclipped = clear_sky_energy_wh(SiteArrays.of([site]), starts, 900, clip=False)[0]
    assert unclipped.max() > ref.max() == pytest.approx(8_500 * 0.25)
    bins = clear_sky_bins(SiteArrays.of([site]), starts, 900)
    np.testing.assert_allclose(bins.energy_wh[0], unclipped)
    np.testing.assert_allclose(
        bins.ghi_w_m2[0], cs.ghi.to_numpy().reshape(96, 3).mean(axis=1), rtol=2e-3, atol=0.5
    )
    station = clear_sky_ghi_w_m2(starts + 450, 40.0, -105.0, 1600.0)
    np.testing.assert_allclose(station, bins.ghi_w_m2[0], rtol=1e-3, atol=1.0)


def test_clear_sky_bins_of_a_fleet_are_each_sites_own_bit_for_bit() -> None:
    """A fleet is computed in blocks of sites on threads: every site's row is exactly what
    the site alone gives, in the first block, at a block's edges and in the last."""
    rng = np.random.default_rng(7)
    fleet = [
        SiteMeta(
            f"pv-{i}",
            "pv",
            5_000.0,
            latitude_deg=30.0 + 15.0 * rng.random(),
            longitude_deg=-120.0 + 40.0 * rng.random(),
            altitude_m=2_000.0 * rng.random(),
            tilt_deg=40.0 * rng.random(),
            azimuth_deg=90.0 + 180.0 * rng.random(),
            ac_nameplate_w=4_500.0,
            linke_turbidity=2.0 + 3.0 * rng.random(),
            albedo=0.1 + 0.3 * rng.random(),
        )
        for i in range(300)  # blocks of 128, 128 and 44 sites
    ]
    starts = 1_781_913_600 + 900 * np.arange(96)
    bins = clear_sky_bins(SiteArrays.of(fleet), starts, 900)
    for i in (0, 127, 128, 255, 256, 299):
        alone = clear_sky_bins(SiteArrays.of([fleet[i]]), starts, 900)
        for name in ("energy_wh", "ghi_w_m2", "zenith_deg", "cos_aoi"):
            assert np.array_equal(getattr(bins, name)[i], getattr(alone, name)[0]), (i, name)
    assert np.array_equal(bins.day_of_year, alone.day_of_year)
    assert bins.energy_wh.shape == (300, 96) and np.nanmax(bins.energy_wh) > 0


def test_the_plane_irradiance_of_one_sky_for_every_orientation() -> None:
    """At a clear-sky index of 1 the planes facing the sun get more than the others; under
    overcast (index 0.2, nearly all diffuse) every plane of one tilt gets about the same;
    more index,
    more light."""
    starts = T0 + 900 * np.array([60, 68, 76], dtype=np.int64)  # 15:00-19:00 UTC
    east = SiteMeta("e", "pv", 1.0, 36.0, -80.0, 0.0, 30.0, 90.0)
    west = SiteMeta("w", "pv", 1.0, 36.0, -80.0, 0.0, 30.0, 270.0)
    bins = clear_sky_bins(SiteArrays.of([east, west]), starts, 900)

    def poa(k: float) -> np.ndarray:
        return poa_at_index_w_m2(
            np.full((2, 3), k), bins.ghi_w_m2, bins.zenith_deg, bins.cos_aoi,
            bins.day_of_year[None, :], np.full((2, 1), 30.0), np.full((2, 1), 0.25),
        )  # fmt: skip

    clear, overcast = poa(1.0), poa(0.2)
    assert clear[0, 0] > clear[1, 0] and clear[1, 2] > clear[0, 2]  # morning east, later west
    np.testing.assert_allclose(overcast[0], overcast[1], rtol=0.02)  # a 1 % beam is left
    assert np.all(poa(0.5) > overcast) and np.all(clear > poa(0.5))


def test_pipeline_modules_import_none_of_the_simulator() -> None:
    """DESIGN §2: pipeline/ stays deployable without the simulator (pvlib is the field's
    library, allowed)."""
    code = (
        "import sys, pipeline, pipeline.ingest\n"
        "bad = sorted(m for m in ('windpowerlib', 'simpy', 'meters', 'network', 'hw_models', "
        "'twin') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
