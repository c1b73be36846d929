"""Wind turbines: power from weather with windpowerlib's power curves (offline oedb library).

Hub-height wind speed from the logarithmic wind profile
(:func:`windpowerlib.wind_speed.logarithmic_profile`, Gasch & Twele 2008), power from the
manufacturer power curve as :func:`windpowerlib.power_output.power_curve` does it (linear
interpolation, 0 outside the curve, i.e. below cut-in and above cut-out). No air-density
correction of the power curve yet: this equals
``windpowerlib.ModelChain(wind_speed_model='logarithmic', power_output_model='power_curve',
density_correction=False)``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import windpowerlib
from windpowerlib.wind_speed import logarithmic_profile
from windpowerlib.wind_turbine import get_turbine_data_from_file

from meters.weather import Weather

#: The oedb turbine library shipped inside windpowerlib (read offline).
OEDB_DIR = Path(windpowerlib.__file__).resolve().parent / "oedb"

#: Roughness length, m: open farmland with hedges and scattered buildings, between roughness
#: classes 2 (0.1 m) and 3 (0.4 m) of the European Wind Atlas (Troen & Petersen 1989).
DEFAULT_ROUGHNESS_LENGTH_M = 0.15


def turbine_types() -> list[str]:
    """Turbine types that have a power curve in windpowerlib's shipped oedb library."""
    table = windpowerlib.get_turbine_types(turbine_library="local", print_out=False)
    return sorted(table.loc[table["has_power_curve"].astype(bool), "turbine_type"])


def turbine_power_curve(turbine_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Power curve of a turbine type: (wind_speed_m_s, power_w), sorted by wind speed.

    From windpowerlib's shipped oedb ``power_curves.csv`` (what ``windpowerlib.WindTurbine``
    reads). Raises ValueError naming the type and suggesting close names if it has no curve.
    """
    try:
        curve = get_turbine_data_from_file(turbine_type, str(OEDB_DIR / "power_curves.csv"))
    except KeyError:
        known = turbine_types()
        close = difflib.get_close_matches(turbine_type, known, n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known types: {', '.join(known)}"
        raise ValueError(
            f"unknown turbine type {turbine_type!r} (no power curve in windpowerlib's oedb "
            f"library); {hint}"
        ) from None
    order = np.argsort(curve["wind_speed"].to_numpy(dtype=float), kind="stable")
    wind_speed_m_s = curve["wind_speed"].to_numpy(dtype=float)[order]
    power_w = curve["value"].to_numpy(dtype=float)[order]
    return wind_speed_m_s, power_w


def hub_wind_speed_m_s(
    wind_speed_m_s: np.ndarray,
    measurement_height_m: float,
    hub_height_m: np.ndarray,
    roughness_length_m: float = DEFAULT_ROUGHNESS_LENGTH_M,
) -> np.ndarray:
    """Wind speed at each hub height, m/s, [n_turbines, n_steps].

    Logarithmic profile v_hub = v * ln(h_hub / z0) / ln(h_meas / z0), no obstacle height
    (:func:`windpowerlib.wind_speed.logarithmic_profile`); ``wind_speed_m_s`` is [n_steps]
    at ``measurement_height_m``, ``hub_height_m`` is [n_turbines].
    """
    hub_m = np.asarray(hub_height_m, dtype=float)
    if np.any(hub_m <= roughness_length_m) or measurement_height_m <= roughness_length_m:
        raise ValueError("hub and measurement heights must exceed the roughness length")
    speed: np.ndarray = logarithmic_profile(
        np.asarray(wind_speed_m_s, dtype=float)[None, :],
        measurement_height_m,
        hub_m.reshape(-1)[:, None],
        roughness_length_m,
    )
    return speed


def wind_power_w(
    weather: Weather,
    turbine_type: str,
    hub_height_m: np.ndarray,
    roughness_length_m: float = DEFAULT_ROUGHNESS_LENGTH_M,
) -> np.ndarray:
    """Electrical power of n turbines of one type, W, float64 [n_turbines, n_steps], >= 0.

    Weather wind speed (at ``weather.wind_height_m``) is lifted to each hub height with the
    logarithmic profile and read off the power curve (np.interp, 0 outside the curve), as
    ``windpowerlib.power_output.power_curve`` with ``density_correction=False``.
    """
    curve_speed_m_s, curve_power_w = turbine_power_curve(turbine_type)
    speed_m_s = hub_wind_speed_m_s(
        weather.wind_speed, weather.wind_height_m, hub_height_m, roughness_length_m
    )
    power_w = np.interp(speed_m_s.ravel(), curve_speed_m_s, curve_power_w, left=0.0, right=0.0)
    return power_w.reshape(speed_m_s.shape)
