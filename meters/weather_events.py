"""Weather events laid over any weather source: heat waves and wind storms.

An event is a smooth bump in time: it ramps up over ``ramp_s``, holds its peak, and ramps
down over ``ramp_s`` before ``at_s + duration_s``. The profile is a raised cosine on each
ramp (no step that a detector would see as an artefact). Events are what-if perturbations
of the weather, not forecasts: a scenario says "4 degC hotter than the typical year for
three days" and the sources respond through their own physics (PV cell temperature, HVAC
load, turbine cut-out above the power curve's last wind speed).

Registry :data:`WEATHER_EVENTS`: kind -> function(profile, arrays) applying the event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WeatherEvent:
    """One event: ``kind`` from :data:`WEATHER_EVENTS`, window in s after the run's start,
    and its ``peak`` (degC added for a heat wave; mean wind speed in m/s for a storm)."""

    kind: str
    at_s: float
    duration_s: float
    peak: float
    ramp_s: float = 3 * 3600.0


def event_profile(t_s: np.ndarray, at_s: float, duration_s: float, ramp_s: float) -> np.ndarray:
    """Event intensity in [0, 1] at times ``t_s`` (s after start): 0 outside the window,
    1 on its plateau, raised-cosine ramps of ``min(ramp_s, duration_s / 2)`` at each end."""
    t = np.asarray(t_s, dtype=np.float64)
    ramp = max(min(ramp_s, duration_s / 2.0), 1e-9)
    rise = np.clip((t - at_s) / ramp, 0.0, 1.0)
    fall = np.clip((at_s + duration_s - t) / ramp, 0.0, 1.0)
    x = np.minimum(rise, fall)
    profile: np.ndarray = 0.5 - 0.5 * np.cos(np.pi * x)
    return profile


def heat_wave(
    t_s: np.ndarray, event: WeatherEvent, temp_air: np.ndarray, wind_speed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Air temperature raised by up to ``event.peak`` degC; wind unchanged."""
    profile = event_profile(t_s, event.at_s, event.duration_s, event.ramp_s)
    return temp_air + event.peak * profile, wind_speed


def storm(
    t_s: np.ndarray, event: WeatherEvent, temp_air: np.ndarray, wind_speed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Wind speed scaled so that its mean over the event's window becomes ``event.peak``
    m/s (at the weather's measurement height) on the plateau; the weather's own gusts and
    lulls are kept in proportion. Each row (site) is scaled by its own window mean, so a
    storm arriving in a lull is still a storm. Temperature unchanged.

    For scale: 18 m/s at 10 m is about 28 m/s at a 108 m hub (log profile, z0 = 0.15 m),
    above the 25 m/s cut-out of most multi-MW turbines (oedb power curves)."""
    profile = event_profile(t_s, event.at_s, event.duration_s, event.ramp_s)
    window = profile > 0
    wind = np.atleast_2d(wind_speed)
    if not np.any(window):
        return temp_air, wind
    window_mean = np.maximum(wind[:, window].mean(axis=1, keepdims=True), 0.1)
    factor = 1.0 + (event.peak / window_mean - 1.0) * profile
    return temp_air, wind * factor


#: kind -> (t_s [n_steps], event, temp_air, wind_speed) -> (temp_air, wind_speed); arrays
#: are [n_rows, n_steps] and the profile broadcasts over rows.
WEATHER_EVENTS: dict[
    str,
    Callable[[np.ndarray, WeatherEvent, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
] = {
    "heat_wave": heat_wave,
    "storm": storm,
}

#: Meaning and bounds of ``peak`` per kind: (description, minimum, maximum).
EVENT_PEAK_BOUNDS: dict[str, tuple[str, float, float]] = {
    "heat_wave": ("degC added at the peak", -30.0, 30.0),
    "storm": ("mean wind speed over the storm, m/s at the measurement height", 0.0, 60.0),
}
