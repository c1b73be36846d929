"""Builds the field side of a scenario: sites, their power series and their meters' readings.

Per-site parameters are drawn from each site's own generator (keyed by its id), so adding a
site changes no other site. Power is computed for all sites of a fleet at once (sites x
time arrays), then turned into interval-energy register values as the meters record them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from meters.energy import interval_energy_wh, quantise_register
from meters.espi import ReadingTypeSpec
from meters.pv import PvSites, pvwatts_ac_power_w
from meters.weather import WEATHER_SOURCES, Weather
from meters.wind import wind_power_w
from twin.rng import component_rng
from twin.scenario import FleetSpec, Scenario, meter_ids

#: ESPI flowDirection of a generation meter: 19 = reverse, energy received from the site
#: (NAESB REQ.21 FlowDirectionKind), as in net-metering Green Button feeds.
GENERATION_FLOW_DIRECTION = 19


@dataclass(frozen=True)
class FleetData:
    """One fleet's meters and what they will record over the run."""

    spec: FleetSpec
    meter_ids: list[str]
    power_w: np.ndarray  # [n_sites, n_steps], the sources' true AC output
    values: np.ndarray  # int64 [n_sites, n_steps], register values (10**m Wh)
    reading_type: ReadingTypeSpec
    upload_offset_s: np.ndarray  # [n_sites]
    params: dict[str, np.ndarray]  # per-site parameters drawn from the fleet's spec


def load_weather(scenario: Scenario, step_s: float) -> Weather:
    kind, _, station = scenario.weather_source.partition(":")
    return WEATHER_SOURCES[kind](station, scenario.start, scenario.duration_s, step_s)


def _site_params(spec: FleetSpec, ids: list[str], seed: int) -> dict[str, np.ndarray]:
    """Draw each site's parameters from its own generator, in a fixed order."""
    names = {
        "pv": ("capacity_kw", "tilt_deg", "azimuth_deg", "dc_ac_ratio"),
        "wind": ("hub_height_m",),
    }[spec.kind]
    table = np.empty((len(ids), len(names)))
    for i, site_id in enumerate(ids):
        rng = component_rng(seed, f"site/{site_id}")
        table[i] = [getattr(spec, name).sample(rng) for name in names]
    return {name: table[:, j] for j, name in enumerate(names)}


def _pv_power(spec: FleetSpec, params: dict[str, np.ndarray], weather: Weather) -> np.ndarray:
    sites = PvSites(
        capacity_dc_w=params["capacity_kw"] * 1000.0,
        tilt_deg=params["tilt_deg"],
        azimuth_deg=params["azimuth_deg"],
        dc_ac_ratio=params["dc_ac_ratio"],
    )
    return pvwatts_ac_power_w(weather, sites)


def _wind_power(spec: FleetSpec, params: dict[str, np.ndarray], weather: Weather) -> np.ndarray:
    return wind_power_w(weather, spec.turbine, params["hub_height_m"], spec.roughness_length_m)


#: Registry of source models by fleet kind.
SOURCE_MODELS: dict[str, Callable[[FleetSpec, dict[str, np.ndarray], Weather], np.ndarray]] = {
    "pv": _pv_power,
    "wind": _wind_power,
}


def build_fleets(scenario: Scenario) -> list[FleetData]:
    """Power and register values of every fleet, weather loaded once per sample interval."""
    weather_by_step: dict[float, Weather] = {}
    fleets = []
    for spec in scenario.fleets:
        step_s = spec.meter.sample_s
        if step_s not in weather_by_step:
            weather_by_step[step_s] = load_weather(scenario, step_s)
        weather = weather_by_step[step_s]
        ids = meter_ids(spec)
        params = _site_params(spec, ids, scenario.seed)
        if ids:
            power_w = SOURCE_MODELS[spec.kind](spec, params, weather)
        else:
            power_w = np.zeros((0, len(weather.ghi)))
        multiplier = spec.meter.power_of_ten_multiplier
        values = quantise_register(interval_energy_wh(power_w, step_s), multiplier)
        offsets = np.array(
            [
                component_rng(scenario.seed, f"meter/{m}/schedule").uniform(
                    0.0, spec.meter.upload_jitter_s
                )
                for m in ids
            ]
        )
        reading_type = ReadingTypeSpec(
            power_of_ten_multiplier=multiplier,
            interval_length_s=int(step_s),
            flow_direction=GENERATION_FLOW_DIRECTION,
        )
        fleets.append(FleetData(spec, ids, power_w, values, reading_type, offsets, params))
    return fleets
