"""PV sites: AC power from weather with the PVWatts v5 chain.

Model chain (Dobos 2014, "PVWatts Version 5 Manual", NREL/TP-6A20-62641), the same as
``pvlib.modelchain.ModelChain.with_pvwatts`` with ``transposition_model='isotropic'``,
``aoi_model='physical'``, ``spectral_model='no_loss'`` and ``losses_model='pvwatts'``:
solar position (NREL SPA, :func:`pvlib.solarposition.get_solarposition`, once per time step)
-> angle of incidence and plane-of-array irradiance, isotropic sky
(:func:`pvlib.irradiance.aoi`, :func:`~pvlib.irradiance.poa_components`,
:func:`~pvlib.irradiance.isotropic`, :func:`~pvlib.irradiance.get_ground_diffuse`) -> cover
reflection loss on the beam (:func:`pvlib.iam.physical`, the PVWatts v5 glass cover) -> cell
temperature (a model of :data:`CELL_TEMPERATURE_MODELS`: SAPM, King et al. 2004, or PVsyst)
-> DC (:func:`pvlib.pvsystem.pvwatts_dc`) -> per-site system losses as a derate -> AC with
clipping at the inverter nameplate (:func:`pvlib.inverter.pvwatts`).

Two implementations of the same chain:

- :func:`pvwatts_ac_power_w_reference` calls the pvlib functions on numpy blocks (the
  reference; readable and checked against ModelChain),
- :func:`pvwatts_ac_power_w` runs the fused numba kernel :mod:`meters.pv_kernel` (the fast
  path used by the twin; agrees with the reference to rounding).

Weather arrays may be [n_steps], [1, n_steps] (one weather for all sites) or
[n_sites, n_steps] (row i is site i's weather); solar position is computed once per step at
the weather's reference location.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pvlib

from meters.pv_kernel import pvsyst_heating, pvwatts_ac_kernel, sapm_heating
from meters.weather import Weather

#: Sites x time steps evaluated at once by the reference; bounds its temporaries to ~100 MB.
_BLOCK_ELEMENTS = 1 << 20

#: PVWatts v5 cover glass for :func:`pvlib.iam.physical` (Dobos 2014, sec. 6; pvlib's
#: defaults): refractive index 1.526, extinction coefficient 4 /m, thickness 2 mm.
IAM_PHYSICAL_N = 1.526
IAM_PHYSICAL_K_PER_M = 4.0
IAM_PHYSICAL_L_M = 0.002

#: PVWatts v5 default total system losses, % of DC (Dobos 2014, sec. 10):
#: ``pvlib.pvsystem.pvwatts_losses()`` with its default arguments, 14.0757 -> 14.08 %.
PVWATTS_V5_SYSTEM_LOSSES_PCT = 14.08


@dataclass(frozen=True)
class CellTemperatureModel:
    """A cell temperature model that is linear in plane-of-array irradiance ``E`` (W/m2).

    ``T_cell = T_air + E * h(wind_speed)`` (degC). The reference path calls ``pvlib_function``
    ``(poa_global, temp_air, wind_speed, **parameters)``; the kernel path gets ``h`` (K per
    W/m2) from ``heating(wind_speed [n_rows, n_steps], steps, **parameters)``.
    """

    pvlib_function: Callable[..., Any]
    heating: Callable[..., np.ndarray]
    parameters: Mapping[str, float]
    source: str


def _sapm(name: str) -> CellTemperatureModel:
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][name]
    return CellTemperatureModel(
        pvlib.temperature.sapm_cell,
        sapm_heating,
        MappingProxyType({k: float(v) for k, v in params.items()}),
        f"SAPM, King et al. 2004 (SAND2004-3535) Table 1, {name}; "
        f"pvlib TEMPERATURE_MODEL_PARAMETERS['sapm']",
    )


def _pvsyst(name: str) -> CellTemperatureModel:
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["pvsyst"][name]
    return CellTemperatureModel(
        pvlib.temperature.pvsyst_cell,
        pvsyst_heating,
        # module_efficiency 0.1, alpha_absorption 0.9: PVsyst defaults, as in pvsyst_cell
        MappingProxyType(
            {k: float(v) for k, v in params.items()}
            | {"module_efficiency": 0.1, "alpha_absorption": 0.9}
        ),
        f"PVsyst thermal model, U values of the PVsyst help ('{name}'); "
        f"pvlib TEMPERATURE_MODEL_PARAMETERS['pvsyst']",
    )


#: Registry of cell temperature models: name -> model. SAPM mountings (King et al. 2004):
#: open rack (free air flow, ground mounts), close mount (roofs with a gap), insulated back
#: (no air behind the module, BIPV). PVsyst: freestanding U_c = 29, semi-integrated 20,
#: insulated 15 W/(m2 K), U_v = 0.
CELL_TEMPERATURE_MODELS: Mapping[str, CellTemperatureModel] = MappingProxyType(
    {
        "open_rack_glass_polymer": _sapm("open_rack_glass_polymer"),
        "open_rack_glass_glass": _sapm("open_rack_glass_glass"),
        "close_mount_glass_glass": _sapm("close_mount_glass_glass"),
        "insulated_back_glass_polymer": _sapm("insulated_back_glass_polymer"),
        "pvsyst_freestanding": _pvsyst("freestanding"),
        "pvsyst_semi_integrated": _pvsyst("semi_integrated"),
        "pvsyst_insulated": _pvsyst("insulated"),
    }
)


def _site_array(name: str, value: object, n_sites: int) -> np.ndarray:
    """``value`` as a read-only float64 [n_sites] array (a scalar is broadcast)."""
    array = np.array(np.broadcast_to(np.asarray(value, dtype=np.float64), (n_sites,)))
    if not np.all(np.isfinite(array)):
        raise ValueError(f"PvSites.{name} must be finite")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class PvSites:
    """Parameters of n PV sites (float64 arrays of shape [n_sites]) and fleet-wide settings.

    Per-site arrays are copied and made read-only; ``system_losses_pct`` may be given as a
    scalar (same for every site).
    """

    capacity_dc_w: np.ndarray  # [n_sites] PVWatts pdc0: DC nameplate at 1000 W/m2, 25 degC
    tilt_deg: np.ndarray  # surface tilt from horizontal, 0..180
    azimuth_deg: np.ndarray  # surface azimuth, degrees east of north (180 = south)
    dc_ac_ratio: np.ndarray  # inverter AC nameplate = capacity_dc_w / dc_ac_ratio
    #: Total system losses (soiling, shading, mismatch, wiring, ...), % of DC, per site:
    #: default the PVWatts v5 value (Dobos 2014; ``pvlib.pvsystem.pvwatts_losses()``).
    system_losses_pct: np.ndarray | float = field(default=PVWATTS_V5_SYSTEM_LOSSES_PCT)
    #: Power temperature coefficient, 1/degC: the PVWatts v5 "premium" module (Dobos 2014; NREL
    #: SSC cmod_pvwattsv5: standard -0.0047, premium -0.0035, thin film -0.0020).
    gamma_pdc_per_c: float = -0.0035
    #: Nominal inverter efficiency: PVWatts v5 default (Dobos 2014; pvlib.inverter.pvwatts).
    inverter_eta_nominal: float = 0.96
    #: Ground albedo; pvlib's default (``pvlib.irradiance.get_ground_diffuse``).
    albedo: float = 0.25
    #: Key of :data:`CELL_TEMPERATURE_MODELS`, fleet-wide. Default: SAPM open rack,
    #: glass/polymer (King et al. 2004), pvlib's usual choice for PVWatts systems.
    temperature_model: str = "open_rack_glass_polymer"

    def __post_init__(self) -> None:
        shapes = {
            np.shape(a)
            for a in (self.capacity_dc_w, self.tilt_deg, self.azimuth_deg, self.dc_ac_ratio)
        }
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"PvSites arrays must be 1-D and of equal length, got {shapes}")
        n_sites = next(iter(shapes))[0]
        if np.shape(self.system_losses_pct) not in ((), (n_sites,)):
            raise ValueError(
                f"system_losses_pct must be a scalar or of shape ({n_sites},), "
                f"got {np.shape(self.system_losses_pct)}"
            )
        for name in ("capacity_dc_w", "tilt_deg", "azimuth_deg", "dc_ac_ratio"):
            object.__setattr__(self, name, _site_array(name, getattr(self, name), n_sites))
        losses = _site_array("system_losses_pct", self.system_losses_pct, n_sites)
        object.__setattr__(self, "system_losses_pct", losses)
        if np.any(self.capacity_dc_w <= 0) or np.any(self.dc_ac_ratio <= 0):
            raise ValueError("capacity_dc_w and dc_ac_ratio must be > 0")
        if np.any((self.tilt_deg < 0) | (self.tilt_deg > 180)):
            raise ValueError("tilt_deg must be in [0, 180]")
        if np.any((losses < 0) | (losses >= 100)):
            raise ValueError("system_losses_pct must be in [0, 100)")
        if not 0 < self.inverter_eta_nominal <= 1 or not 0 <= self.albedo <= 1:
            raise ValueError("inverter_eta_nominal must be in (0, 1] and albedo in [0, 1]")
        if self.temperature_model not in CELL_TEMPERATURE_MODELS:
            raise ValueError(
                f"unknown temperature_model {self.temperature_model!r}; "
                f"known: {', '.join(CELL_TEMPERATURE_MODELS)}"
            )

    @property
    def n_sites(self) -> int:
        return len(self.capacity_dc_w)

    @property
    def inverter_ac_nameplate_w(self) -> np.ndarray:
        """AC nameplate of each site's inverter, W."""
        return np.asarray(self.capacity_dc_w) / np.asarray(self.dc_ac_ratio)

    @property
    def losses_pct(self) -> np.ndarray:
        """``system_losses_pct`` as the float64 [n_sites] array it is after construction."""
        return np.asarray(self.system_losses_pct, dtype=np.float64)


class _Inputs(NamedTuple):
    """Inputs shared by both implementations (weather 2-D, [n_rows, n_steps])."""

    steps: np.ndarray  # int64 [n_day]: steps with the sun above the horizon
    zenith_deg: np.ndarray  # [n_day] apparent zenith
    azimuth_deg: np.ndarray  # [n_day] solar azimuth, east of north
    ghi: np.ndarray
    dni: np.ndarray
    dhi: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray
    n_steps: int


def _weather_rows(weather: Weather, n_sites: int) -> dict[str, np.ndarray]:
    """The weather arrays as C-contiguous float64 [n_rows, n_steps], n_rows in (1, n_sites)."""
    n_steps = len(weather.times_utc)
    rows = {}
    for name in ("ghi", "dni", "dhi", "temp_air", "wind_speed", "pressure"):
        array = np.ascontiguousarray(np.atleast_2d(getattr(weather, name)), dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != n_steps or array.shape[0] not in (1, n_sites):
            raise ValueError(
                f"weather.{name} has shape {np.shape(getattr(weather, name))}; expected "
                f"[{n_steps}], [1, {n_steps}] or [{n_sites}, {n_steps}] (n_sites, n_steps)"
            )
        rows[name] = array
    return rows


def _prepare(weather: Weather, sites: PvSites) -> _Inputs:
    """Solar position once per step; the daytime steps; the weather as 2-D arrays.

    Refraction (apparent zenith) uses the pressure and air temperature of the single weather
    row, or their mean over the rows when each site has its own row: solar position belongs to
    the reference location, not to a site.
    """
    rows = _weather_rows(weather, sites.n_sites)
    solpos = pvlib.solarposition.get_solarposition(
        weather.times_utc,
        weather.latitude_deg,
        weather.longitude_deg,
        altitude=weather.altitude_m,
        pressure=rows["pressure"].mean(axis=0),
        temperature=rows["temp_air"].mean(axis=0),
    )
    zenith_deg = solpos["apparent_zenith"].to_numpy(dtype=np.float64)
    steps = np.flatnonzero(zenith_deg < 90.0).astype(np.int64)
    return _Inputs(
        steps,
        np.ascontiguousarray(zenith_deg[steps]),
        np.ascontiguousarray(solpos["azimuth"].to_numpy(dtype=np.float64)[steps]),
        rows["ghi"],
        rows["dni"],
        rows["dhi"],
        rows["temp_air"],
        rows["wind_speed"],
        len(weather.times_utc),
    )


def pvwatts_ac_power_w(weather: Weather, sites: PvSites) -> np.ndarray:
    """AC power of every site at every sample, W, float64 [n_sites, n_steps], >= 0.

    The fused numba kernel (:func:`meters.pv_kernel.pvwatts_ac_kernel`) over sites x daytime
    steps; same model and results (to rounding) as :func:`pvwatts_ac_power_w_reference`.
    Solar position is computed once per time step with pvlib. Steps with the sun at or below
    the horizon (apparent zenith >= 90 deg) are exactly 0, as in PVWatts v5 itself (NREL SSC
    cmod_pvwattsv5 computes nothing while the sun is down); without this, linear
    interpolation of hourly means would leak diffuse light past sunset. The inverter gets
    ``pdc0 = AC nameplate / eta_nominal``, so AC clips at the nameplate.
    """
    x = _prepare(weather, sites)
    model = CELL_TEMPERATURE_MODELS[sites.temperature_model]
    heating = model.heating(x.wind_speed, x.steps, **model.parameters)
    power_w = np.zeros((sites.n_sites, x.n_steps))
    pvwatts_ac_kernel(
        power_w,
        x.steps,
        x.zenith_deg,
        x.azimuth_deg,
        x.dni,
        x.ghi,
        x.dhi,
        x.temp_air,
        heating,
        sites.tilt_deg,
        sites.azimuth_deg,
        sites.capacity_dc_w,
        np.ascontiguousarray(sites.inverter_ac_nameplate_w),
        sites.losses_pct,
        float(sites.gamma_pdc_per_c),
        float(sites.inverter_eta_nominal),
        float(sites.albedo),
        IAM_PHYSICAL_N,
        IAM_PHYSICAL_K_PER_M,
        IAM_PHYSICAL_L_M,
    )
    return power_w


def pvwatts_ac_power_w_reference(weather: Weather, sites: PvSites) -> np.ndarray:
    """:func:`pvwatts_ac_power_w` computed with pvlib's functions on numpy blocks (reference).

    Same inputs, outputs and night handling; the parameters of each site broadcast as
    [block, 1] against [1 or block, n_day] weather.
    """
    x = _prepare(weather, sites)
    model = CELL_TEMPERATURE_MODELS[sites.temperature_model]
    per_site = x.dni.shape[0] > 1
    power_w = np.zeros((sites.n_sites, x.n_steps))
    block = max(1, _BLOCK_ELEMENTS // max(x.steps.size, 1))
    for first in range(0, sites.n_sites, block):
        sel = slice(first, min(first + block, sites.n_sites))
        wsel = sel if per_site else slice(0, 1)
        dni, ghi, dhi, temp_air, wind_speed = (
            a[wsel][:, x.steps] for a in (x.dni, x.ghi, x.dhi, x.temp_air, x.wind_speed)
        )
        tilt_deg = sites.tilt_deg[sel, None]
        aoi_deg = pvlib.irradiance.aoi(
            tilt_deg, sites.azimuth_deg[sel, None], x.zenith_deg[None], x.azimuth_deg[None]
        )
        poa = pvlib.irradiance.poa_components(
            aoi_deg,
            dni,
            pvlib.irradiance.isotropic(tilt_deg, dhi),
            pvlib.irradiance.get_ground_diffuse(tilt_deg, ghi, albedo=sites.albedo),
        )
        iam = pvlib.iam.physical(
            aoi_deg, n=IAM_PHYSICAL_N, K=IAM_PHYSICAL_K_PER_M, L=IAM_PHYSICAL_L_M
        )
        effective_w_m2 = poa["poa_direct"] * iam + poa["poa_diffuse"]
        temp_cell_c = model.pvlib_function(
            poa["poa_global"], temp_air, wind_speed, **model.parameters
        )
        dc_w = pvlib.pvsystem.pvwatts_dc(
            effective_w_m2, temp_cell_c, sites.capacity_dc_w[sel, None], sites.gamma_pdc_per_c
        ) * (1.0 - sites.losses_pct[sel, None] / 100.0)
        ac_w = pvlib.inverter.pvwatts(
            dc_w,
            sites.inverter_ac_nameplate_w[sel, None] / sites.inverter_eta_nominal,
            sites.inverter_eta_nominal,
        )
        power_w[sel, x.steps] = np.broadcast_to(ac_w, (sel.stop - sel.start, x.steps.size))
    return power_w
