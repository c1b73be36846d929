"""Wind turbines: power from weather with windpowerlib's power curves (offline oedb library).

The chain is the one of :class:`windpowerlib.ModelChain` with ``power_output_model =
'power_curve'``, vectorised over turbines x time steps:

1. **Hub-height wind speed** from the weather's wind speed at ``weather.wind_height_m``, by a
   model from :data:`WIND_PROFILES`: the logarithmic profile
   (:func:`windpowerlib.wind_speed.logarithmic_profile`, Gasch & Twele 2012, no obstacle) or
   the power (Hellman) law (:func:`windpowerlib.wind_speed.hellman`, Hau 2008, exponent
   ``1 / ln(h_hub / z0)`` unless given).
2. **Air temperature at hub height** by :data:`TEMPERATURE_MODELS` (the ICAO standard
   atmosphere's -6.5 K/km lapse rate, :func:`windpowerlib.temperature.linear_gradient`) from
   ``temp_air`` at screen height :data:`TEMPERATURE_HEIGHT_M`.
3. **Air density at hub height** by :data:`DENSITY_MODELS` (barometric height equation,
   :func:`windpowerlib.density.barometric`, Hau 2008; or the ideal gas law,
   :func:`windpowerlib.density.ideal_gas`) from the station ``pressure`` at
   :data:`PRESSURE_HEIGHT_M` above ground, with a -1/8 hPa/m pressure gradient (DWD).
4. **Power** from the manufacturer power curve (linear interpolation, 0 below its first and
   above its last wind speed, i.e. below cut-in and above cut-out), optionally
   **density-corrected** (Svenningsen 2010, as IEC 61400-12-1 normalises measured curves):
   each curve wind speed v_std becomes ``v_site = v_std * (rho_0 / rho) ** p(v_std)`` with
   ``rho_0 = 1.225`` kg/m3 and p = 1/3 up to 7.5 m/s, 2/3 from 12.5 m/s, linear in between
   (:func:`windpowerlib.power_output.power_curve_density_correction`). windpowerlib builds
   one curve per time step in a Python loop; :func:`density_corrected_power_curve_w` is an
   equivalent compiled (numba) kernel over all turbines x steps.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import windpowerlib
from numba import njit
from windpowerlib import density as wpl_density
from windpowerlib import temperature as wpl_temperature
from windpowerlib.wind_speed import hellman, logarithmic_profile
from windpowerlib.wind_turbine import get_turbine_data_from_file

from meters.weather import Weather

#: The oedb turbine library shipped inside windpowerlib (read offline).
OEDB_DIR = Path(windpowerlib.__file__).resolve().parent / "oedb"

#: Roughness length, m: open farmland with hedges and scattered buildings, between roughness
#: classes 2 (0.1 m) and 3 (0.4 m) of the European Wind Atlas (Troen & Petersen 1989).
DEFAULT_ROUGHNESS_LENGTH_M = 0.15

#: Height of ``Weather.temp_air`` above ground, m: thermometer screen height (WMO-No. 8,
#: Guide to Meteorological Instruments, 2018: 1.25-2 m; TMY3 dry-bulb from airport stations).
TEMPERATURE_HEIGHT_M = 2.0

#: Height of ``Weather.pressure`` above ground, m: station pressure is reported at the
#: station (TMY3 field "Pressure", Wilcox & Marion 2008), i.e. at ground level. Only the
#: difference to the hub height enters the density models.
PRESSURE_HEIGHT_M = 0.0

#: Standard air density, kg/m3, to which manufacturer power curves refer (ISO 2533 standard
#: atmosphere at sea level, 15 degC; IEC 61400-12-1), as in windpowerlib.
STANDARD_DENSITY_KG_M3 = 1.225

_KELVIN = 273.15
#: Exponents of the density correction below 7.5 m/s and above 12.5 m/s (Svenningsen 2010).
_P_LOW = 1.0 / 3.0
_P_HIGH = 2.0 / 3.0

#: Wind profile model: (wind_speed_m_s [rows, n_steps] at measurement_height_m,
#: measurement_height_m, hub_height_m [n, 1], roughness_length_m [n, 1],
#: hellman_exponent [n, 1] or None) -> wind speed at hub height, m/s, [n, n_steps].
WindProfile = Callable[[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]


def _logarithmic(
    speed: np.ndarray,
    height_m: float,
    hub_m: np.ndarray,
    z0_m: np.ndarray,
    exponent: np.ndarray | None,
) -> np.ndarray:
    """Logarithmic profile v_hub = v ln(h_hub/z0) / ln(h/z0), no obstacle (windpowerlib)."""
    if exponent is not None:
        raise ValueError("hellman_exponent applies only to wind_profile='hellman'")
    out: np.ndarray = logarithmic_profile(speed, height_m, hub_m, z0_m, 0.0)
    return out


def _hellman(
    speed: np.ndarray,
    height_m: float,
    hub_m: np.ndarray,
    z0_m: np.ndarray,
    exponent: np.ndarray | None,
) -> np.ndarray:
    """Power law v_hub = v (h_hub/h)^alpha, alpha = 1/ln(h_hub/z0) unless given (windpowerlib)."""
    out: np.ndarray = hellman(speed, height_m, hub_m, z0_m, exponent)
    return out


#: Registry of wind profile models (names as windpowerlib's ``wind_speed_model``).
WIND_PROFILES: dict[str, WindProfile] = {
    "logarithmic": _logarithmic,
    "hellman": _hellman,
}

#: Registry of hub-height temperature models: (temp_K, temp_height_m, hub_height_m) -> K.
TEMPERATURE_MODELS: dict[str, Callable[[np.ndarray, float, np.ndarray], np.ndarray]] = {
    "linear_gradient": wpl_temperature.linear_gradient,
}

#: Registry of hub-height air density models:
#: (pressure_pa, pressure_height_m, hub_height_m, temperature_hub_k) -> kg/m3.
DENSITY_MODELS: dict[str, Callable[[np.ndarray, float, np.ndarray, np.ndarray], np.ndarray]] = {
    "barometric": wpl_density.barometric,
    "ideal_gas": wpl_density.ideal_gas,
}


def turbine_types() -> list[str]:
    """Turbine types that have a power curve in windpowerlib's shipped oedb library."""
    table = windpowerlib.get_turbine_types(turbine_library="local", print_out=False)
    return sorted(table.loc[table["has_power_curve"].astype(bool), "turbine_type"])


def _unknown_turbine(turbine_type: str) -> ValueError:
    known = turbine_types()
    close = difflib.get_close_matches(turbine_type, known, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known types: {', '.join(known)}"
    return ValueError(
        f"unknown turbine type {turbine_type!r} (no power curve in windpowerlib's oedb "
        f"library); {hint}"
    )


@lru_cache(maxsize=64)
def _power_curve(turbine_type: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        curve = get_turbine_data_from_file(turbine_type, str(OEDB_DIR / "power_curves.csv"))
    except KeyError:
        raise _unknown_turbine(turbine_type) from None
    speed = curve["wind_speed"].to_numpy(dtype=float)
    order = np.argsort(speed, kind="stable")
    wind_speed_m_s = speed[order]
    power_w = curve["value"].to_numpy(dtype=float)[order]
    wind_speed_m_s.flags.writeable = False
    power_w.flags.writeable = False
    return wind_speed_m_s, power_w


def turbine_power_curve(turbine_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Power curve of a turbine type: (wind_speed_m_s, power_w), sorted by wind speed.

    From windpowerlib's shipped oedb ``power_curves.csv`` (what ``windpowerlib.WindTurbine``
    reads), at standard air density. Raises ValueError naming the type and suggesting close
    names if it has no curve.
    """
    wind_speed_m_s, power_w = _power_curve(turbine_type)
    return wind_speed_m_s.copy(), power_w.copy()


def turbine_nominal_power_w(turbine_type: str) -> float:
    """Nominal (rated) power of a turbine type, W, from windpowerlib's oedb
    ``turbine_data.csv`` (what ``WindTurbine.nominal_power`` reads). Raises ValueError with
    suggestions for a type that has no power curve in the library."""
    if turbine_type not in turbine_types():
        raise _unknown_turbine(turbine_type)
    data: pd.DataFrame = get_turbine_data_from_file(
        turbine_type, str(OEDB_DIR / "turbine_data.csv")
    )
    return float(data["nominal_power"].iloc[0])


def _per_turbine(value: float | np.ndarray, n: int, name: str) -> np.ndarray:
    """A scalar or [n] parameter as a float column [n, 1]."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full((n, 1), float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
    return arr[:, None]


def _weather_rows(values: np.ndarray, n_turbines: int, name: str) -> np.ndarray:
    """Weather array as [1 or n_turbines, n_steps] (1-D means one row for all)."""
    rows = np.atleast_2d(np.asarray(values, dtype=float))
    if rows.ndim != 2 or rows.shape[0] not in (1, n_turbines):
        raise ValueError(
            f"weather.{name} must have 1 or {n_turbines} rows (one per turbine), "
            f"got shape {np.shape(values)}"
        )
    return rows


def hub_wind_speed_m_s(
    wind_speed_m_s: np.ndarray,
    measurement_height_m: float,
    hub_height_m: np.ndarray,
    roughness_length_m: float | np.ndarray = DEFAULT_ROUGHNESS_LENGTH_M,
    wind_profile: str = "logarithmic",
    hellman_exponent: float | np.ndarray | None = None,
) -> np.ndarray:
    """Wind speed at each hub height, m/s, [n_turbines, n_steps].

    ``wind_speed_m_s`` is [n_steps], [1, n_steps] or [n_turbines, n_steps] at
    ``measurement_height_m``; ``hub_height_m`` is [n_turbines]; roughness length (m) and
    Hellman exponent are scalars or [n_turbines]. ``wind_profile`` names a model of
    :data:`WIND_PROFILES`.
    """
    try:
        profile = WIND_PROFILES[wind_profile]
    except KeyError:
        raise ValueError(
            f"unknown wind_profile {wind_profile!r}; expected one of {sorted(WIND_PROFILES)}"
        ) from None
    hub_m = np.asarray(hub_height_m, dtype=float).reshape(-1)
    n = hub_m.size
    z0_m = _per_turbine(roughness_length_m, n, "roughness_length_m")
    if np.any(hub_m[:, None] <= z0_m) or np.any(measurement_height_m <= z0_m):
        raise ValueError("hub and measurement heights must exceed the roughness length")
    speed = _weather_rows(wind_speed_m_s, n, "wind_speed")
    exponent = (
        None if hellman_exponent is None else _per_turbine(hellman_exponent, n, "hellman_exponent")
    )
    out = profile(speed, float(measurement_height_m), hub_m[:, None], z0_m, exponent)
    return np.broadcast_to(out, (n, speed.shape[1])).astype(float, copy=False)


def hub_air_density_kg_m3(
    temp_air_c: np.ndarray,
    pressure_pa: np.ndarray,
    hub_height_m: np.ndarray,
    density_model: str = "barometric",
    temperature_model: str = "linear_gradient",
    temperature_height_m: float = TEMPERATURE_HEIGHT_M,
    pressure_height_m: float = PRESSURE_HEIGHT_M,
) -> np.ndarray:
    """Air density at each hub height, kg/m3, [n_turbines, n_steps].

    ``temp_air_c`` (degC at ``temperature_height_m``) and ``pressure_pa`` (Pa at
    ``pressure_height_m``) are [n_steps], [1, n_steps] or [n_turbines, n_steps]. Temperature
    is carried to hub height by ``TEMPERATURE_MODELS[temperature_model]``, density by
    ``DENSITY_MODELS[density_model]`` (as windpowerlib's ModelChain ``density_hub``).
    """
    for name, registry, key in (
        ("density_model", DENSITY_MODELS, density_model),
        ("temperature_model", TEMPERATURE_MODELS, temperature_model),
    ):
        if key not in registry:
            raise ValueError(f"unknown {name} {key!r}; expected one of {sorted(registry)}")
    hub_m = np.asarray(hub_height_m, dtype=float).reshape(-1)[:, None]
    n = hub_m.shape[0]
    temp_k = _weather_rows(temp_air_c, n, "temp_air") + _KELVIN
    pressure = _weather_rows(pressure_pa, n, "pressure")
    temp_hub_k = TEMPERATURE_MODELS[temperature_model](temp_k, temperature_height_m, hub_m)
    rho = DENSITY_MODELS[density_model](pressure, pressure_height_m, hub_m, temp_hub_k)
    return np.broadcast_to(rho, (n, max(temp_k.shape[1], pressure.shape[1]))).astype(
        float, copy=False
    )


def power_curve_w(
    wind_speed_m_s: np.ndarray, curve_speed_m_s: np.ndarray, curve_power_w: np.ndarray
) -> np.ndarray:
    """Power from a power curve at standard density, W: linear interpolation, 0 below the
    curve's first and above its last wind speed (:func:`windpowerlib.power_output.power_curve`
    with ``density_correction=False``). Any array shape."""
    speed = np.asarray(wind_speed_m_s, dtype=float)
    out = np.interp(speed.ravel(), curve_speed_m_s, curve_power_w, left=0.0, right=0.0)
    return out.reshape(speed.shape)


@njit(cache=True, fastmath=False, inline="always")
def _site_knot(
    xs: np.ndarray, ex: np.ndarray, k: int, ratio: float, f_lo: float, f_hi: float
) -> float:
    """Density-corrected speed of knot k: ratio ** ex[k] * xs[k] (cube root shortcuts)."""
    e = ex[k]
    if e == _P_LOW:
        return f_lo * xs[k]
    if e == _P_HIGH:
        return f_hi * xs[k]
    return float(ratio**e * xs[k])


@njit(cache=True, fastmath=False)
def _density_corrected_kernel(
    v: np.ndarray,
    ratio: np.ndarray,
    cube_root: np.ndarray,
    xs: np.ndarray,
    fp: np.ndarray,
    ex: np.ndarray,
) -> np.ndarray:
    """Power on the corrected curve for flat arrays v (m/s), ratio = rho_0 / rho and its
    cube root (computed by numpy beforehand: SIMD, several times faster than per element)."""
    n = xs.size
    out = np.empty(v.size)
    c = 0  # number of corrected knots <= v, carried over from the previous element
    for i in range(v.size):
        vi = v[i]
        ri = ratio[i]
        if vi != vi or ri != ri:  # NaN in, NaN out (as np.interp)
            out[i] = np.nan
            continue
        f_lo = cube_root[i]
        f_hi = f_lo * f_lo
        # walk to c = number of corrected knots <= vi, keeping the two knots around vi
        x_below = 0.0  # corrected speed of knot c - 1
        x_above = 0.0  # corrected speed of knot c
        moved_down = False
        while c > 0:
            x = _site_knot(xs, ex, c - 1, ri, f_lo, f_hi)
            if x <= vi:
                x_below = x
                break
            x_above = x
            c -= 1
            moved_down = True
        while not moved_down and c < n:
            x = _site_knot(xs, ex, c, ri, f_lo, f_hi)
            if x > vi:
                x_above = x
                break
            x_below = x
            c += 1
        if c == 0:  # below the corrected cut-in speed
            out[i] = 0.0
        elif c == n:  # at or above the corrected cut-out speed (np.interp's right edge)
            out[i] = fp[n - 1] if vi == x_below else 0.0
        else:
            out[i] = (fp[c] - fp[c - 1]) / (x_above - x_below) * (vi - x_below) + fp[c - 1]
    return out


def density_corrected_power_curve_w(
    wind_speed_m_s: np.ndarray,
    density_kg_m3: np.ndarray,
    curve_speed_m_s: np.ndarray,
    curve_power_w: np.ndarray,
) -> np.ndarray:
    """Power from a density-corrected power curve, W, vectorised (any broadcastable shapes).

    Same result as :func:`windpowerlib.power_output.power_curve_density_correction`
    (Svenningsen 2010; Biank 2014): at each element the curve speeds become
    ``v_std * (1.225 / rho) ** p(v_std)``, p = interp(v_std, [7.5, 12.5], [1/3, 2/3]), and
    the power is interpolated on that curve, 0 outside it (np.interp semantics: a speed equal
    to the last corrected curve speed gives the last power). windpowerlib builds one curve
    and calls np.interp per element in a Python loop; here a compiled numba kernel walks the
    knots from the previous element's position (time series move little between steps) and
    uses the cube root for the p = 1/3 and 2/3 knots. The corrected curve is monotone for
    any density ratio above 0.3, so the walk finds the same interval as np.interp.
    """
    speed, rho = np.broadcast_arrays(
        np.asarray(wind_speed_m_s, dtype=np.float64), np.asarray(density_kg_m3, dtype=np.float64)
    )
    xs = np.ascontiguousarray(curve_speed_m_s, dtype=np.float64)
    fp = np.ascontiguousarray(curve_power_w, dtype=np.float64)
    if xs.ndim != 1 or xs.shape != fp.shape or xs.size < 2 or (np.diff(xs) <= 0).any():
        raise ValueError("power curve needs >= 2 strictly increasing wind speeds and powers")
    exponent = np.interp(xs, [7.5, 12.5], [_P_LOW, _P_HIGH])
    ratio = np.ascontiguousarray(STANDARD_DENSITY_KG_M3 / rho).ravel()
    out = _density_corrected_kernel(
        np.ascontiguousarray(speed).ravel(), ratio, np.cbrt(ratio), xs, fp, exponent
    )
    return out.reshape(speed.shape)


def wind_power_w(
    weather: Weather,
    turbine_type: str,
    hub_height_m: np.ndarray,
    roughness_length_m: float | np.ndarray = DEFAULT_ROUGHNESS_LENGTH_M,
    wind_profile: str = "logarithmic",
    density_correction: bool = True,
    hellman_exponent: float | np.ndarray | None = None,
    density_model: str = "barometric",
    temperature_model: str = "linear_gradient",
    temperature_height_m: float = TEMPERATURE_HEIGHT_M,
    pressure_height_m: float = PRESSURE_HEIGHT_M,
) -> np.ndarray:
    """Electrical power of n turbines of one type, W, float64 [n_turbines, n_steps], >= 0.

    Weather arrays may be [n_steps], [1, n_steps] (one weather for all turbines) or
    [n_turbines, n_steps]. ``hub_height_m`` is [n_turbines]; ``roughness_length_m`` (m) and
    ``hellman_exponent`` are scalars or [n_turbines]. Wind speed is lifted from
    ``weather.wind_height_m`` to hub height by ``WIND_PROFILES[wind_profile]`` and read off
    the oedb power curve (0 below cut-in and above cut-out). With ``density_correction``
    (default) the curve is corrected to the air density at hub height from ``temp_air`` and
    ``pressure`` (``density_model`` of :data:`DENSITY_MODELS`). Equals windpowerlib's
    ``ModelChain(wind_speed_model=wind_profile, temperature_model, density_model,
    power_output_model='power_curve', density_correction)`` on the same weather.
    """
    curve_speed_m_s, curve_power_w = _power_curve(turbine_type)
    hub_m = np.asarray(hub_height_m, dtype=float).reshape(-1)
    speed_m_s = hub_wind_speed_m_s(
        weather.wind_speed,
        weather.wind_height_m,
        hub_m,
        roughness_length_m,
        wind_profile,
        hellman_exponent,
    )
    if not density_correction:
        return power_curve_w(speed_m_s, curve_speed_m_s, curve_power_w)
    rho = hub_air_density_kg_m3(
        weather.temp_air,
        weather.pressure,
        hub_m,
        density_model,
        temperature_model,
        temperature_height_m,
        pressure_height_m,
    )
    return density_corrected_power_curve_w(speed_m_s, rho, curve_speed_m_s, curve_power_w)
