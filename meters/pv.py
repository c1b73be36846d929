"""PV sites: AC power from weather with the PVWatts v5 chain of pvlib functions.

Model chain (Dobos 2014, "PVWatts Version 5 Manual", NREL/TP-6A20-62641), the same as
``pvlib.modelchain.ModelChain.with_pvwatts`` with ``transposition_model='isotropic'``:
solar position (NREL SPA, :func:`pvlib.solarposition.get_solarposition`) -> plane-of-array
irradiance, isotropic sky (the components :func:`pvlib.irradiance.get_total_irradiance`
adds up: :func:`~pvlib.irradiance.aoi_projection`, :func:`~pvlib.irradiance.isotropic`,
:func:`~pvlib.irradiance.get_ground_diffuse`, computed once per site-step) -> cover
reflection loss on the beam (:func:`pvlib.iam.physical`, the PVWatts v5 Fresnel model) ->
cell temperature (:func:`pvlib.temperature.sapm_cell`, King et al. 2004, SAND2004-3535) ->
DC (:func:`pvlib.pvsystem.pvwatts_dc`) -> system losses as a derate -> AC
(:func:`pvlib.inverter.pvwatts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pvlib

from meters.weather import Weather

#: Sites x time steps evaluated at once; bounds the temporary arrays to a few tens of MB.
_BLOCK_ELEMENTS = 1 << 20

#: pvlib.iam.physical (n=1.526, K=4 /m, L=2 mm: PVWatts v5 glass cover) tabulated on a uniform
#: grid of cos(AOI) in [0, 1]; see _iam_physical.
_IAM_GRID_N = 2048
_IAM_TABLE = pvlib.iam.physical(np.degrees(np.arccos(np.linspace(0.0, 1.0, _IAM_GRID_N + 1))))
_IAM_SLOPE = np.diff(_IAM_TABLE)


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class PvSites:
    """Parameters of n PV sites (arrays of shape [n_sites]) and fleet-wide PVWatts settings."""

    capacity_dc_w: np.ndarray  # [n_sites] PVWatts pdc0: DC nameplate at 1000 W/m2, 25 degC
    tilt_deg: np.ndarray  # surface tilt from horizontal
    azimuth_deg: np.ndarray  # surface azimuth, degrees east of north (180 = south)
    dc_ac_ratio: np.ndarray  # inverter AC nameplate = capacity_dc_w / dc_ac_ratio
    #: Power temperature coefficient, 1/degC: the PVWatts v5 "premium" module (Dobos 2014; NREL
    #: SSC cmod_pvwattsv5: standard -0.0047, premium -0.0035, thin film -0.0020).
    gamma_pdc_per_c: float = -0.0035
    #: Total system losses, % of DC: the PVWatts v5 default (Dobos 2014), i.e.
    #: ``pvlib.pvsystem.pvwatts_losses()`` with its default arguments (14.0757 -> 14.08 %).
    system_losses_pct: float = 14.08
    #: Nominal inverter efficiency: PVWatts v5 default (Dobos 2014; pvlib.inverter.pvwatts).
    inverter_eta_nominal: float = 0.96
    #: Ground albedo; pvlib's default (``pvlib.irradiance.get_ground_diffuse``).
    albedo: float = 0.25
    #: Key of ``pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS['sapm']`` (King et al. 2004).
    temperature_model: str = "open_rack_glass_polymer"

    def __post_init__(self) -> None:
        arrays = (self.capacity_dc_w, self.tilt_deg, self.azimuth_deg, self.dc_ac_ratio)
        shapes = {np.shape(a) for a in arrays}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"PvSites arrays must be 1-D and of equal length, got {shapes}")
        if np.any(np.asarray(self.capacity_dc_w) <= 0) or np.any(np.asarray(self.dc_ac_ratio) <= 0):
            raise ValueError("capacity_dc_w and dc_ac_ratio must be > 0")
        if self.temperature_model not in pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]:
            raise ValueError(f"unknown SAPM temperature model {self.temperature_model!r}")

    @property
    def inverter_ac_nameplate_w(self) -> np.ndarray:
        """AC nameplate of each site's inverter, W."""
        return np.asarray(self.capacity_dc_w, dtype=float) / np.asarray(self.dc_ac_ratio)


def pvwatts_ac_power_w(weather: Weather, sites: PvSites) -> np.ndarray:
    """AC power of every site at every sample, W, float64 [n_sites, n_steps], >= 0.

    Solar position is computed once per time step (all sites share the weather's location)
    and broadcast against per-site orientation. Only steps with the sun above the horizon
    (apparent zenith < 90 deg) are evaluated, the others are exactly 0, as in PVWatts v5
    itself (NREL SSC cmod_pvwattsv5 computes nothing while the sun is down); without this,
    linear interpolation of hourly means would leak diffuse light past sunset. The inverter gets
    ``pdc0 = AC nameplate / eta_nominal``, so AC clips at the nameplate
    (:func:`pvlib.inverter.pvwatts`).
    """
    solpos = pvlib.solarposition.get_solarposition(
        weather.times_utc,
        weather.latitude_deg,
        weather.longitude_deg,
        altitude=weather.altitude_m,
        pressure=weather.pressure,
        temperature=weather.temp_air,
    )
    zenith_deg = solpos["apparent_zenith"].to_numpy()
    day = np.flatnonzero(zenith_deg < 90.0)
    sun = _Sun(
        zenith_deg[None, day],
        solpos["azimuth"].to_numpy()[None, day],
        weather.dni[None, day],
        weather.ghi[None, day],
        weather.dhi[None, day],
        weather.temp_air[None, day],
        weather.wind_speed[None, day],
    )
    n_sites = len(sites.capacity_dc_w)
    power_w = np.zeros((n_sites, len(weather.times_utc)))
    block = max(1, _BLOCK_ELEMENTS // max(day.size, 1))
    for first in range(0, n_sites, block):
        rows = slice(first, min(first + block, n_sites))
        power_w[rows, day] = _pvwatts_block(sites, rows, sun)
    return power_w


class _Sun(NamedTuple):
    """Per-step inputs of the daytime steps, each of shape [1, n_day]."""

    zenith_deg: np.ndarray
    azimuth_deg: np.ndarray
    dni: np.ndarray
    ghi: np.ndarray
    dhi: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray


def _iam_physical(cos_aoi: np.ndarray) -> np.ndarray:
    """:func:`pvlib.iam.physical` (PVWatts v5 defaults) of cos(AOI), from a uniform table.

    Linear interpolation on a 2048-interval grid in cos(AOI): within 2e-6 of the direct
    formula and several times faster than evaluating it per site-step.
    """
    pos = np.clip(cos_aoi, 0.0, 1.0) * _IAM_GRID_N
    i = np.minimum(pos.astype(np.intp), _IAM_GRID_N - 1)
    return _IAM_TABLE[i] + (pos - i) * _IAM_SLOPE[i]


def _pvwatts_block(sites: PvSites, rows: slice, sun: _Sun) -> np.ndarray:
    """PVWatts chain for the sites in ``rows``: [n_rows, 1] parameters x [1, n_day] sun."""
    tilt_deg = np.asarray(sites.tilt_deg, dtype=float)[rows, None]
    surface_azimuth_deg = np.asarray(sites.azimuth_deg, dtype=float)[rows, None]
    capacity_dc_w = np.asarray(sites.capacity_dc_w, dtype=float)[rows, None]
    ac_nameplate_w = sites.inverter_ac_nameplate_w[rows, None]
    cos_aoi = pvlib.irradiance.aoi_projection(
        tilt_deg, surface_azimuth_deg, sun.zenith_deg, sun.azimuth_deg
    )
    poa_direct_w_m2 = np.maximum(sun.dni * cos_aoi, 0.0)  # as pvlib.irradiance.poa_components
    poa_diffuse_w_m2 = pvlib.irradiance.isotropic(
        tilt_deg, sun.dhi
    ) + pvlib.irradiance.get_ground_diffuse(tilt_deg, sun.ghi, albedo=sites.albedo)
    effective_w_m2 = poa_direct_w_m2 * _iam_physical(cos_aoi) + poa_diffuse_w_m2
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][sites.temperature_model]
    temp_cell_c = pvlib.temperature.sapm_cell(
        poa_direct_w_m2 + poa_diffuse_w_m2, sun.temp_air, sun.wind_speed, **params
    )
    dc_w = pvlib.pvsystem.pvwatts_dc(
        effective_w_m2, temp_cell_c, capacity_dc_w, sites.gamma_pdc_per_c
    ) * (1.0 - sites.system_losses_pct / 100.0)
    ac_w = pvlib.inverter.pvwatts(
        dc_w, ac_nameplate_w / sites.inverter_eta_nominal, sites.inverter_eta_nominal
    )
    return np.asarray(ac_w, dtype=np.float64)
