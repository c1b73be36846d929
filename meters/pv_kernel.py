"""Fused numba kernel of the PVWatts v5 chain over sites x daytime steps.

The same model chain as :func:`meters.pv.pvwatts_ac_power_w_reference` (which calls pvlib's
functions), written as one pass over every (site, daytime step) pair so that no temporary
[n_sites, n_steps] arrays are built. Solar position is an input (computed once per time step
with pvlib, outside); everything after it is inside :func:`pvwatts_ac_kernel`:

- angle of incidence (:func:`pvlib.irradiance.aoi_projection`),
- plane-of-array irradiance with an isotropic sky (:func:`pvlib.irradiance.poa_components`,
  :func:`pvlib.irradiance.isotropic`, :func:`pvlib.irradiance.get_ground_diffuse`),
- cover reflection and absorption on the beam (:func:`pvlib.iam.physical`: Fresnel equations
  and Bouguer's law, De Soto et al. 2006; the PVWatts v5 IAM, Dobos 2014 sec. 6),
- cell temperature ``T_cell = T_air + E_poa * h``, where ``h`` (K per W/m2) is the heating
  coefficient of a cell temperature model that is linear in irradiance (SAPM, King et al.
  2004, eq. 11-12; PVsyst), computed per weather row and step by the model's ``*_heating``
  function below,
- DC power (:func:`pvlib.pvsystem.pvwatts_dc`), system losses as a derate,
- AC power with the PVWatts inverter and clipping at the AC nameplate
  (:func:`pvlib.inverter.pvwatts`, Dobos 2014 sec. 9).

Compiled with ``fastmath=False`` so that results agree with the pvlib functions to rounding.
Serial on purpose: one core already gives several times the DESIGN.md §7 budget
(50 M site-minutes/s), the second core is meant for the pipeline, and numba's default
``workqueue`` threading layer aborts when called from several threads at once (Dask workers).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, fastmath=False)
def sapm_heating(
    wind_speed: np.ndarray,
    steps: np.ndarray,
    a: float,
    b: float,
    deltaT: float,  # noqa: N803 - pvlib's parameter name
    irrad_ref: float = 1000.0,
) -> np.ndarray:
    """SAPM cell heating coefficient ``exp(a + b ws) + deltaT / irrad_ref``, K per W/m2.

    King et al. 2004 (SAND2004-3535) eq. 11-12, as :func:`pvlib.temperature.sapm_cell`:
    ``T_cell = T_air + E * exp(a + b ws) + E / irrad_ref * deltaT``. ``wind_speed`` (m/s at
    10 m) is [n_rows, n_steps]; returns [n_rows, len(steps)] for the columns ``steps``.
    """
    out = np.empty((wind_speed.shape[0], steps.size))
    for r in range(wind_speed.shape[0]):
        for k in range(steps.size):
            out[r, k] = math.exp(a + b * wind_speed[r, steps[k]]) + deltaT / irrad_ref
    return out


@njit(cache=True, fastmath=False)
def pvsyst_heating(
    wind_speed: np.ndarray,
    steps: np.ndarray,
    u_c: float = 29.0,
    u_v: float = 0.0,
    module_efficiency: float = 0.1,
    alpha_absorption: float = 0.9,
) -> np.ndarray:
    """PVsyst cell heating coefficient ``alpha (1 - eta) / (u_c + u_v ws)``, K per W/m2.

    PVsyst thermal balance, as :func:`pvlib.temperature.pvsyst_cell` (same defaults):
    ``T_cell = T_air + E * alpha (1 - eta_m) / (U_c + U_v ws)``. Shapes as :func:`sapm_heating`.
    """
    out = np.empty((wind_speed.shape[0], steps.size))
    gain = alpha_absorption * (1.0 - module_efficiency)
    for r in range(wind_speed.shape[0]):
        for k in range(steps.size):
            out[r, k] = gain / (u_c + u_v * wind_speed[r, steps[k]])
    return out


#: Degree of the Taylor polynomial of exp(y) in the glass absorption term; exact to double
#: rounding (truncation < 2e-18) for |y| <= _ABSORPTION_MAX_EXPONENT, checked per call.
_ABSORPTION_MAX_EXPONENT = 0.01
_INV_3F = 1.0 / 6.0
_INV_4F = 1.0 / 24.0
_INV_5F = 1.0 / 120.0
_INV_6F = 1.0 / 720.0


@njit(cache=True, fastmath=False, error_model="numpy")
def pvwatts_ac_kernel(
    power_w: np.ndarray,
    steps: np.ndarray,
    zenith_deg: np.ndarray,
    sun_azimuth_deg: np.ndarray,
    dni: np.ndarray,
    ghi: np.ndarray,
    dhi: np.ndarray,
    temp_air: np.ndarray,
    heating_k_m2_per_w: np.ndarray,
    tilt_deg: np.ndarray,
    surface_azimuth_deg: np.ndarray,
    capacity_dc_w: np.ndarray,
    ac_nameplate_w: np.ndarray,
    system_losses_pct: np.ndarray,
    gamma_pdc_per_c: float,
    inverter_eta_nominal: float,
    albedo: float,
    iam_n: float,
    iam_k_per_m: float,
    iam_l_m: float,
    temp_ref_c: float = 25.0,
    inverter_eta_ref: float = 0.9637,
) -> None:
    """Write the AC power (W) of every site at the time steps ``steps`` into ``power_w``.

    Arguments (all float64 unless said; C-contiguous):

    - ``power_w`` [n_sites, n_steps]: output; only the columns ``steps`` are written.
    - ``steps`` int64 [n_day]: the daytime steps (sun above the horizon).
    - ``zenith_deg``, ``sun_azimuth_deg`` [n_day]: apparent solar zenith and azimuth (degrees
      east of north) at those steps.
    - ``dni``, ``ghi``, ``dhi`` (W/m2), ``temp_air`` (degC) [n_rows, n_steps]: weather on the
      full step grid; n_rows is 1 (shared by all sites) or n_sites (row i for site i).
    - ``heating_k_m2_per_w`` [n_rows, n_day]: the cell temperature model's heating coefficient
      at the steps ``steps`` (:func:`sapm_heating`, :func:`pvsyst_heating`).
    - per site [n_sites]: ``tilt_deg``, ``surface_azimuth_deg`` (east of north),
      ``capacity_dc_w`` (PVWatts pdc0), ``ac_nameplate_w`` (inverter pac0),
      ``system_losses_pct``.
    - fleet-wide: ``gamma_pdc_per_c`` (1/degC), ``inverter_eta_nominal``, ``albedo``,
      ``iam_n`` (> 1), ``iam_k_per_m``, ``iam_l_m`` (:func:`pvlib.iam.physical` without AR
      coating), ``temp_ref_c`` and ``inverter_eta_ref`` (pvlib's PVWatts defaults, Dobos 2014).

    The inverter is :func:`pvlib.inverter.pvwatts` with ``pdc0 = ac_nameplate / eta_nominal``:
    AC clips at the nameplate and is 0 when the efficiency curve is negative (zeta < 0.006).

    Speed: the inner loop over steps is branch-free (selects instead of ``if``) and free of
    calls to libm's ``exp``, so that LLVM vectorises it; ``error_model='numpy'`` drops
    Python's division-by-zero checks (no division can be by zero for valid inputs). The glass
    absorption ``exp(-K L / cos_t)`` is written as ``exp(-K L) * exp(y)``,
    ``y = -K L (1/cos_t - 1)``, ``|y| <= K L (n / sqrt(n^2 - 1) - 1)`` (0.0026 for PVWatts
    glass), and ``exp(y)`` as its degree-6 Taylor polynomial (truncation < 2e-18 for
    ``|y| <= 0.01``; larger ``K L`` are rejected). ``exp(-K L)`` cancels against the same
    factor in the normal-incidence transmittance.
    """
    n_sites = power_w.shape[0]
    n_day = steps.size
    per_site_weather = dni.shape[0] > 1  # the caller checks n_rows in (1, n_sites)
    kl = iam_k_per_m * iam_l_m
    if not iam_n > 1.0:
        raise ValueError("iam_n must be > 1")
    if kl * (iam_n / math.sqrt(iam_n * iam_n - 1.0) - 1.0) > _ABSORPTION_MAX_EXPONENT:
        raise ValueError("iam_k_per_m * iam_l_m too large for the absorption polynomial")
    deg = math.pi / 180.0
    # Per step: the sun's direction cosines, shared by all sites.
    cos_zen = np.empty(n_day)
    sin_zen_cos_az = np.empty(n_day)
    sin_zen_sin_az = np.empty(n_day)
    for k in range(n_day):
        z = zenith_deg[k] * deg
        a = sun_azimuth_deg[k] * deg
        cos_zen[k] = math.cos(z)
        sin_zen_cos_az[k] = math.sin(z) * math.cos(a)
        sin_zen_sin_az[k] = math.sin(z) * math.sin(a)
    # The current weather row at the daytime steps, contiguous (gathered once per row).
    w_dni = np.empty(n_day)
    w_ghi = np.empty(n_day)
    w_dhi = np.empty(n_day)
    w_temp_air = np.empty(n_day)
    ac_w = np.empty(n_day)
    # pvlib.iam.physical, no AR coating: 1 / (2 x transmittance at normal incidence), exp(-KL)
    # left out (it cancels, see above).
    rho_0 = ((1.0 - iam_n) / (1.0 + iam_n)) ** 2
    half_over_tau_0 = 0.5 / (1.0 - rho_0)
    inv_n = 1.0 / iam_n
    eta_scale = inverter_eta_nominal / inverter_eta_ref
    for i in range(n_sites):
        r = i if per_site_weather else 0
        if i == 0 or per_site_weather:
            for k in range(n_day):
                s = steps[k]
                w_dni[k] = dni[r, s]
                w_ghi[k] = ghi[r, s]
                w_dhi[k] = dhi[r, s]
                w_temp_air[k] = temp_air[r, s]
        heating = heating_k_m2_per_w[r]
        cos_tilt = math.cos(tilt_deg[i] * deg)
        sin_tilt = math.sin(tilt_deg[i] * deg)
        cos_saz = math.cos(surface_azimuth_deg[i] * deg)
        sin_saz = math.sin(surface_azimuth_deg[i] * deg)
        sky_view = (1.0 + cos_tilt) * 0.5  # pvlib.irradiance.isotropic
        ground_view = albedo * (1.0 - cos_tilt) * 0.5  # pvlib.irradiance.get_ground_diffuse
        dc_per_w_m2 = 0.001 * capacity_dc_w[i]
        derate = 1.0 - system_losses_pct[i] / 100.0
        inverter_pdc0 = ac_nameplate_w[i] / inverter_eta_nominal
        pac0 = inverter_eta_nominal * inverter_pdc0  # as pvlib.inverter.pvwatts computes it
        for k in range(n_day):
            cos_aoi = cos_tilt * cos_zen[k] + sin_tilt * (
                sin_zen_cos_az[k] * cos_saz + sin_zen_sin_az[k] * sin_saz
            )
            cos_aoi = min(max(cos_aoi, -1.0), 1.0)  # pvlib.irradiance.aoi_projection
            poa_direct = max(w_dni[k] * cos_aoi, 0.0)  # pvlib.irradiance.poa_components
            poa_diffuse = w_dhi[k] * sky_view + w_ghi[k] * ground_view
            # pvlib.iam.physical: Fresnel reflectance (s, p) air -> glass, absorption in glass.
            cos_i = max(cos_aoi, 0.0)
            sin_t = math.sqrt(1.0 - cos_i * cos_i) * inv_n
            cos_t = math.sqrt(1.0 - sin_t * sin_t)
            n_cos_t = iam_n * cos_t
            n_cos_i = iam_n * cos_i
            q_s = (cos_i - n_cos_t) / (cos_i + n_cos_t)
            q_p = (cos_t - n_cos_i) / (cos_t + n_cos_i)
            y = -kl * (1.0 / cos_t - 1.0)
            absorbed = 1.0 + y * (
                1.0 + y * (0.5 + y * (_INV_3F + y * (_INV_4F + y * (_INV_5F + y * _INV_6F))))
            )
            iam = (2.0 - q_s * q_s - q_p * q_p) * absorbed * half_over_tau_0
            effective = poa_direct * iam + poa_diffuse
            temp_cell = w_temp_air[k] + (poa_direct + poa_diffuse) * heating[k]
            dc = effective * dc_per_w_m2 * (1.0 + gamma_pdc_per_c * (temp_cell - temp_ref_c))
            dc *= derate
            # pvlib.inverter.pvwatts (any finite efficiency at dc == 0 gives ac == 0).
            zeta = dc / inverter_pdc0 if dc != 0.0 else 1.0
            eta = eta_scale * (-0.0162 * zeta - 0.0059 / zeta + 0.9858)
            ac_w[k] = max(min(eta * dc, pac0), 0.0) + 0.0  # + 0.0: no negative zeros
        for k in range(n_day):
            power_w[i, steps[k]] = ac_w[k]
