"""A synthetic fleet for the analysis tests, built with pvlib independently of the
pipeline's own chain: PV sites of varied orientation and wind turbines around one place,
under one sky and one wind, with meter noise, as 15-minute energy.

`pv_energy_wh` makes each PV site's AC energy from the sky's clear-sky index (Ineichen
clear sky with a Linke turbidity of 3.5, not the pipeline's 3.0; Erbs split; isotropic
plane of array; a DC derate of 0.85, not the pipeline's PVWatts 0.825; AC clipped at the
inverter), `wind_energy_wh` each turbine's from one wind series through a cubic power
curve (cut-in 3 m/s, rated 13 m/s, cut-out 25 m/s: the shape of the E-82's). `metered` adds
an IEC 62053 class 0.5S meter's noise and rounds to whole Wh.

Import from a test: ``from tests.pipeline.analyze.fleet_data import ...``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

from pipeline.store.sites import SiteMeta

__all__ = [
    "DAY",
    "LAT",
    "LON",
    "STEP_S",
    "T0",
    "metered",
    "pv_energy_wh",
    "pv_sites",
    "sky_index",
    "wind_energy_wh",
    "wind_sites",
]

STEP_S = 900
DAY = 86_400 // STEP_S
T0 = int(pd.Timestamp("2026-05-01", tz="UTC").timestamp())
LAT, LON = 36.1, -79.9


def pv_sites(n: int, seed: int = 1, prefix: str = "pv") -> list[SiteMeta]:
    """`n` PV sites within ~15 km, tilts 15-35 deg, azimuths 140-220 deg, 10-40 kW DC,
    DC/AC 1.2."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        dc = float(rng.uniform(10_000, 40_000))
        out.append(
            SiteMeta(
                f"{prefix}-{i:02d}", "pv", dc,
                LAT + rng.uniform(-0.1, 0.1), LON + rng.uniform(-0.1, 0.1), 270.0,
                float(rng.uniform(15, 35)), float(rng.uniform(140, 220)), ac_nameplate_w=dc / 1.2,
            )
        )  # fmt: skip
    return out


def wind_sites(n: int, prefix: str = "wt") -> list[SiteMeta]:
    """`n` 2.3 MW turbines near the PV sites."""
    return [
        SiteMeta(f"{prefix}-{i:02d}", "wind", 2.3e6, LAT + 0.01 * i, LON - 0.01 * i, 270.0)
        for i in range(n)
    ]


def sky_index(n_days: int, seed: int, overcast_days: tuple[int, ...] = ()) -> np.ndarray:
    """The sky's clear-sky index (GHI over clear-sky GHI) per 15-minute bin: clear days
    (0.98-1.0), broken cloud on a random day in four, full overcast (0.15-0.35) on
    `overcast_days`."""
    rng = np.random.default_rng(seed)
    k = np.clip(rng.normal(0.99, 0.005, n_days * DAY), 0.0, 1.05)
    for d in range(n_days):
        day = slice(d * DAY, (d + 1) * DAY)
        if d in overcast_days:
            k[day] = rng.uniform(0.15, 0.35, DAY)
        elif rng.random() < 0.25:
            k[day] = rng.uniform(0.3, 1.05, DAY)
    return k


def pv_energy_wh(sites: list[SiteMeta], k: np.ndarray) -> np.ndarray:
    """AC energy of each site per bin [S, T], Wh, under the clear-sky index `k` [T] (module
    docstring); bins from `T0`."""
    t = T0 + STEP_S * np.arange(k.size)
    times = pd.to_datetime(t + STEP_S // 2, unit="s", utc=True)
    loc = pvlib.location.Location(LAT, LON, altitude=270.0)
    sun = loc.get_solarposition(times)
    cs = loc.get_clearsky(times, model="ineichen", linke_turbidity=3.5)
    ghi = cs.ghi.to_numpy() * k
    split = pvlib.irradiance.erbs(ghi, sun.zenith.to_numpy(), times)
    out = np.empty((len(sites), k.size))
    for i, s in enumerate(sites):
        poa = pvlib.irradiance.get_total_irradiance(
            s.tilt_deg, s.azimuth_deg, sun.apparent_zenith, sun.azimuth,
            split["dni"], ghi, split["dhi"], model="isotropic",
        ).poa_global.to_numpy()  # fmt: skip
        power = np.minimum(s.capacity_w * np.nan_to_num(poa) / 1000 * 0.85, s.nameplate_w)
        out[i] = power * STEP_S / 3600
    return out


def wind_energy_wh(
    sites: list[SiteMeta], n_days: int, seed: int, mean_m_s: float = 9.0
) -> np.ndarray:
    """Energy of each turbine per bin [S, T], Wh: one hub-height wind for all (a mean-
    reverting hourly random walk around `mean_m_s`, interpolated), each turbine's within
    +-2 % of it, through a cubic power curve."""
    rng = np.random.default_rng(seed)
    n_h = n_days * 24 + 2
    ws_h = np.empty(n_h)
    ws_h[0] = mean_m_s
    for i in range(1, n_h):  # hourly weather, not readings
        ws_h[i] = max(0.0, ws_h[i - 1] + 0.15 * (mean_m_s - ws_h[i - 1]) + rng.normal(0, 1.3))
    ws = np.interp(np.arange(n_days * DAY) / 4.0, np.arange(n_h), ws_h)
    out = np.empty((len(sites), ws.size))
    for i in range(len(sites)):
        v = ws * (1.0 + 0.02 * (i % 3 - 1))
        p = 2.3e6 * np.clip((v - 3.0) / 10.0, 0, 1) ** 3
        p[v > 25] = 0.0
        out[i] = p * STEP_S / 3600
    return out


def metered(energy_wh: np.ndarray, seed: int) -> np.ndarray:
    """A class 0.5S meter's register (0.1 % per-reading error), whole Wh, int64."""
    rng = np.random.default_rng(seed)
    noisy = energy_wh * (1 + 0.001 * rng.standard_normal(energy_wh.shape))
    return np.round(noisy).astype(np.int64)
