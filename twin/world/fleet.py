"""Builds the field side of a scenario: sites, their weather, sources, loads and meters.

The chain per fleet (all arrays sites x time, DESIGN.md §1):
weather (+ events) -> source power (PV / wind) -> source faults -> facility load and net
flows -> meter clock (drift) -> meter accuracy -> register quantisation -> register faults
-> labels (clock jumps). Per-site parameters and every random draw come from generators
keyed by the site's or meter's id (DESIGN.md §3), so adding a site changes no other site.
Each injected fault leaves a ground-truth record (meters.faults.GROUND_TRUTH_FIELDS).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from meters.accuracy import apply_accuracy, electrical_channels
from meters.clock import clock_offset_s, energy_on_meter_clock_wh, interval_labels_s
from meters.device import upload_offsets_s
from meters.energy import interval_energy_wh, quantise_register
from meters.espi import ReadingTypeSpec
from meters.faults import (
    FIELD_FAULTS,
    FaultInstance,
    apply_register_faults,
    apply_source_faults,
    clock_fault_offsets,
)
from meters.load import Facilities, facility_load_w, net_flows_wh
from meters.pv import PvSites, pvwatts_ac_power_w
from meters.synthetic_weather import SyntheticClimate, synthetic_weather
from meters.weather import WEATHER_SOURCES, Weather, WeatherRequest
from meters.weather_events import WEATHER_EVENTS
from meters.wind import (
    hub_wind_speed_m_s,
    turbine_nominal_power_w,
    turbine_power_curve,
    wind_power_w,
)
from twin.accounting.series import FleetSeries
from twin.rng import component_rng
from twin.scenario.field import FleetSpec, meter_ids
from twin.scenario.loader import Scenario

#: ESPI FlowDirectionKind: 1 forward (delivered to the site from the grid), 19 reverse
#: (received from the site), as in net-metering Green Button feeds.
FLOW_DELIVERED = 1
FLOW_RECEIVED = 19
#: A pure generation meter records what the site sends out: reverse flow.
GENERATION_FLOW_DIRECTION = FLOW_RECEIVED

#: ESPI codes of the electrical channels (espiDerived.xsd UnitSymbolKind, MeasurementKind,
#: AccumulationKind) and the multiplier their integer values carry: 0.1 V, 0.01 A, 0.001.
_ELECTRICAL_TYPES: dict[str, ReadingTypeSpec] = {
    "voltage": ReadingTypeSpec(
        uom=29, kind=54, power_of_ten_multiplier=-1, accumulation_behaviour=6, flow_direction=0
    ),
    "current": ReadingTypeSpec(
        uom=5, kind=4, power_of_ten_multiplier=-2, accumulation_behaviour=6, flow_direction=0
    ),
    "power_factor": ReadingTypeSpec(
        uom=65, kind=38, power_of_ten_multiplier=-3, accumulation_behaviour=6, flow_direction=0
    ),
}
#: Displacement power factor of a grid-tied inverter or turbine converter: unity is the
#: default setting of IEEE 1547-2018 inverters (constant power factor mode at 1.0).
SOURCE_POWER_FACTOR = 1.0


@dataclass(frozen=True)
class ChannelSeries:
    """One recorded series of a fleet's meters: its ESPI ReadingType and register values."""

    name: str
    reading_type: ReadingTypeSpec
    values: np.ndarray  # int64 [n_sites, n_steps], units of 10**multiplier uom


@dataclass(frozen=True)
class FleetData:
    """One fleet's meters and what they will record over the run."""

    spec: FleetSpec
    meter_ids: list[str]
    power_w: np.ndarray  # [n_sites, n_steps], the sources' AC output (field faults included)
    load_w: np.ndarray | None  # [n_sites, n_steps], the facility's consumption, if any
    channels: tuple[ChannelSeries, ...]
    #: Per meter with a clock jump: label shift of each reading, s (int64 [n_steps]).
    label_shift_s: dict[int, np.ndarray]
    upload_offset_s: np.ndarray  # [n_sites]
    params: dict[str, np.ndarray]  # per-site parameters drawn from the fleet's spec
    ground_truth: list[dict[str, Any]] = field(default_factory=list)
    latitude_deg: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [n_sites]
    longitude_deg: np.ndarray = field(default_factory=lambda: np.zeros(0))
    altitude_m: float = 0.0
    nominal_power_w: np.ndarray = field(default_factory=lambda: np.zeros(0))  # rated, W

    @property
    def values(self) -> np.ndarray:
        """Register values of the first (energy) channel."""
        return self.channels[0].values

    def energy_generated_kwh(self) -> float:
        """True AC energy of the fleet's sources over the run, kWh."""
        return float(np.sum(self.power_w) * self.spec.meter.sample_s / 3.6e6)

    def energy_consumed_kwh(self) -> float | None:
        """Energy its facilities drew over the run, kWh (None without loads)."""
        if self.load_w is None:
            return None
        return float(np.sum(self.load_w) * self.spec.meter.sample_s / 3.6e6)

    def series(self) -> FleetSeries:
        """The fleet's summed output and load over the run."""
        return FleetSeries(
            self.spec.name,
            self.spec.kind,
            self.spec.meter.sample_s,
            self.power_w.sum(axis=0),
            None if self.load_w is None else self.load_w.sum(axis=0),
        )

    def site_power(self) -> dict[str, tuple[np.ndarray, float]]:
        """Per meter: its site's true AC output, W [n_steps], and the step, s."""
        step_s = self.spec.meter.sample_s
        return {m: (self.power_w[i], step_s) for i, m in enumerate(self.meter_ids)}


_PARAM_NAMES = {
    "pv": ("capacity_kw", "tilt_deg", "azimuth_deg", "dc_ac_ratio", "system_losses_pct"),
    "wind": ("hub_height_m",),
}


def _site_params(spec: FleetSpec, ids: list[str], seed: int) -> dict[str, np.ndarray]:
    """Draw each site's parameters from its own generator, in a fixed order."""
    names = _PARAM_NAMES[spec.kind] + (("peak_kw",) if spec.load else ()) + ("drift_ppm",)
    table = np.empty((len(ids), len(names)))
    for i, site_id in enumerate(ids):
        rng = component_rng(seed, f"site/{site_id}")
        for j, name in enumerate(names):
            source = (
                spec.meter if name == "drift_ppm" else (spec.load if name == "peak_kw" else spec)
            )
            table[i, j] = getattr(source, name).sample(rng)
    return {name: table[:, j] for j, name in enumerate(names)}


def _rng_for(seed: int) -> Callable[[str], np.random.Generator]:
    return partial(component_rng, seed)


def load_weather(
    scenario: Scenario,
    step_s: float,
    ids: Sequence[str] = (),
    lat: np.ndarray | None = None,
    lon: np.ndarray | None = None,
) -> Weather:
    """The scenario's weather for these sites (one row for a file source, one per site for
    synthetic weather), with the scenario's weather events laid over it."""
    spec = scenario.weather
    request = WeatherRequest(
        start_utc=scenario.start,
        duration_s=scenario.duration_s,
        step_s=step_s,
        site_ids=tuple(ids),
        site_latitude_deg=np.empty(0) if lat is None else lat,
        site_longitude_deg=np.empty(0) if lon is None else lon,
        rng_for=_rng_for(scenario.seed),
    )
    if spec.source == "synthetic":
        weather = synthetic_weather(synthetic_climate(scenario), request)
    else:
        kind, _, arg = spec.source.partition(":")
        weather = WEATHER_SOURCES[kind](arg, request)
    if not spec.events:
        return weather
    t_s = (np.arange(len(weather.times_utc)) + 0.5) * step_s
    temp_air, wind_speed = np.atleast_2d(weather.temp_air), np.atleast_2d(weather.wind_speed)
    for event in spec.events:
        temp_air, wind_speed = WEATHER_EVENTS[event.kind](t_s, event, temp_air, wind_speed)
    return replace(weather, temp_air=temp_air, wind_speed=wind_speed)


def synthetic_climate(scenario: Scenario) -> SyntheticClimate:
    spec = scenario.weather
    climate = (
        SyntheticClimate.from_tmy3(spec.climate.partition(":")[2])
        if spec.climate
        else SyntheticClimate()
    )
    overrides: dict[str, Any] = dict(spec.synthetic)
    return replace(climate, **overrides)


def weather_location(scenario: Scenario) -> tuple[float, float]:
    """Latitude and longitude of the weather's reference location (the region's centre)."""
    spec = scenario.weather
    if spec.source == "synthetic":
        climate = synthetic_climate(scenario)
        return climate.latitude_deg, climate.longitude_deg
    request = WeatherRequest(start_utc=scenario.start, duration_s=3600.0, step_s=3600.0)
    kind, _, arg = spec.source.partition(":")
    weather = WEATHER_SOURCES[kind](arg, request)
    return weather.latitude_deg, weather.longitude_deg


def _source_power(
    spec: FleetSpec, params: dict[str, np.ndarray], weather: Weather
) -> tuple[np.ndarray, np.ndarray]:
    """AC power [n_sites, n_steps] W and each site's nominal (rated) power [n_sites] W."""
    if spec.kind == "pv":
        sites = PvSites(
            capacity_dc_w=params["capacity_kw"] * 1000.0,
            tilt_deg=params["tilt_deg"],
            azimuth_deg=params["azimuth_deg"],
            dc_ac_ratio=params["dc_ac_ratio"],
            system_losses_pct=params["system_losses_pct"],
            temperature_model=spec.temperature_model,
        )
        return pvwatts_ac_power_w(weather, sites), sites.inverter_ac_nameplate_w
    power_w = wind_power_w(
        weather,
        spec.turbine,
        params["hub_height_m"],
        spec.roughness_length_m,
        wind_profile=spec.wind_profile,
        density_correction=spec.density_correction,
    )
    return power_w, np.full(len(power_w), turbine_nominal_power_w(spec.turbine))


def _utc_offset_h(timezone: str, at: datetime) -> float:
    offset = at.astimezone(ZoneInfo(timezone)).utcoffset()
    return 0.0 if offset is None else offset.total_seconds() / 3600.0


def _fleet_faults(scenario: Scenario, spec: FleetSpec, ids: list[str]) -> list[FaultInstance]:
    row = {m: i for i, m in enumerate(ids)}
    utc_offset_h = _utc_offset_h(scenario.timezone, scenario.start)
    faults = []
    for f in scenario.faults:
        if f.meter in row and f.kind in FIELD_FAULTS:
            params = f.param_dict
            if "utc_offset_h" in params:
                params["utc_offset_h"] = utc_offset_h
            faults.append(
                FaultInstance(f.kind, row[f.meter], f.meter, f.at_s, f.duration_s, params)
            )
    return faults


def site_positions(
    seed: int, spec: FleetSpec, ids: list[str], centre: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of each site, deg: uniform over a disk of ``spec.spread_km``
    around the region's centre, drawn from the site's own generator (equirectangular
    approximation, exact to well under 1 % within a few hundred km)."""
    xy = np.array([component_rng(seed, f"site/{m}/position").random(2) for m in ids])
    xy = xy.reshape(len(ids), 2)
    radius_km = spec.spread_km * np.sqrt(xy[:, 0])
    angle = 2.0 * np.pi * xy[:, 1]
    lat0, lon0 = centre
    lat = lat0 + radius_km * np.cos(angle) / _KM_PER_DEG
    lon = lon0 + radius_km * np.sin(angle) / (_KM_PER_DEG * np.cos(np.radians(lat0)))
    return lat, lon


#: Length of one degree of latitude, km (mean Earth radius 6371.0 km, IUGG).
_KM_PER_DEG = 6371.0 * np.pi / 180.0


def build_fleet(scenario: Scenario, spec: FleetSpec, centre: tuple[float, float]) -> FleetData:
    seed, step_s = scenario.seed, spec.meter.sample_s
    ids = meter_ids(spec)
    params = _site_params(spec, ids, seed)
    lat, lon = site_positions(seed, spec, ids, centre)
    weather = load_weather(scenario, step_s, ids, lat, lon)
    n_steps = len(weather.times_utc)
    if not ids:
        empty = np.zeros((0, n_steps), dtype=np.int64)
        rt = ReadingTypeSpec(
            power_of_ten_multiplier=spec.meter.power_of_ten_multiplier,
            interval_length_s=int(step_s),
            flow_direction=GENERATION_FLOW_DIRECTION,
        )
        return FleetData(
            spec,
            ids,
            empty.astype(float),
            None,
            (ChannelSeries("energy_received", rt, empty),),
            {},
            np.zeros(0),
            params,
        )
    faults = _fleet_faults(scenario, spec, ids)
    power_w, nominal_w = _source_power(spec, params, weather)
    power_w, truth = apply_source_faults(
        power_w, faults, step_s, weather.times_utc, nominal_w, fleet_kind=spec.kind
    )
    if spec.kind == "wind" and scenario.weather.events:
        truth += storm_cutouts(spec, ids, params, weather)
    load_w = None
    if spec.load is not None:
        facilities = Facilities.from_kinds(
            [spec.load.facility] * len(ids),
            peak_load_w=params["peak_kw"] * 1000.0,
            utc_offset_h=_utc_offset_h(scenario.timezone, scenario.start),
        )
        rngs = [component_rng(seed, f"site/{m}/load") for m in ids]
        load_w = facility_load_w(weather.times_utc, step_s, weather.temp_air, facilities, rngs)

    meter = spec.meter
    starts_s = np.arange(n_steps) * step_s
    offset_s = clock_offset_s(
        starts_s,
        params["drift_ppm"],
        meter.time_sync_s,
        np.array(
            [component_rng(seed, f"meter/{m}/clock").uniform(0.0, meter.time_sync_s) for m in ids]
        ),
    )
    flows = _energy_flows(power_w, load_w, step_s)
    rated_w = np.maximum(nominal_w, params["peak_kw"] * 1000.0 if load_w is not None else 0.0)
    channels = []
    for name, flow_direction, energy_wh in flows:
        energy_wh = energy_on_meter_clock_wh(energy_wh, offset_s, step_s)
        rngs = [component_rng(seed, f"meter/{m}/accuracy/{name}") for m in ids]
        load_fraction = energy_wh / (rated_w[:, None] * step_s / 3600.0)
        measured = apply_accuracy(energy_wh, load_fraction, meter.accuracy_class, rngs)
        values = quantise_register(measured, meter.power_of_ten_multiplier)
        values, register_truth = apply_register_faults(
            values,
            faults,
            step_s,
            power_of_ten_multiplier=meter.power_of_ten_multiplier,
            fleet_kind=spec.kind,
        )
        truth += [r | {"channel": name} for r in register_truth]
        rt = ReadingTypeSpec(
            power_of_ten_multiplier=meter.power_of_ten_multiplier,
            interval_length_s=int(step_s),
            flow_direction=flow_direction,
        )
        channels.append(ChannelSeries(name, rt, values))
    channels += _electrical(spec, ids, seed, power_w, load_w, rated_w)

    shift_s, clock_truth = clock_fault_offsets(
        faults, len(ids), n_steps, step_s, sync_period_s=meter.time_sync_s, fleet_kind=spec.kind
    )
    truth += clock_truth
    # how the meter labels its readings under the jump (whole intervals, meters.clock)
    no_shift = np.zeros(n_steps, dtype=np.int64)
    label_shift_s = {}
    for row in np.flatnonzero(np.any(shift_s != 0.0, axis=1)).tolist():
        shift = interval_labels_s(no_shift, shift_s[row], step_s)
        if np.any(shift):
            label_shift_s[row] = shift
    offsets = upload_offsets_s(
        [component_rng(seed, f"meter/{m}/schedule") for m in ids],
        meter.upload_s,
        meter.upload_jitter_s,
        herd=meter.herd,
    )
    truth.sort(key=lambda r: (r["start_s"], r["meter_id"], r["kind"]))
    return FleetData(
        spec,
        ids,
        power_w,
        load_w,
        tuple(channels),
        label_shift_s,
        offsets,
        params,
        truth,
        lat,
        lon,
        weather.altitude_m,
        nominal_w,
    )


def storm_cutouts(
    spec: FleetSpec, ids: list[str], params: dict[str, np.ndarray], weather: Weather
) -> list[dict[str, Any]]:
    """Ground truth of the weather's own faults: every run of steps in which a turbine's
    hub-height wind is above its power curve's cut-out speed (the last speed with power),
    so it stands still in a storm. Records have the fields of
    meters.faults.GROUND_TRUTH_FIELDS, kind ``storm_cutout``, layer ``weather``."""
    curve_speed_m_s, curve_power_w = turbine_power_curve(spec.turbine)
    cut_out_m_s = float(curve_speed_m_s[np.flatnonzero(curve_power_w > 0)[-1]])
    speed_m_s = hub_wind_speed_m_s(
        weather.wind_speed,
        weather.wind_height_m,
        params["hub_height_m"],
        spec.roughness_length_m,
        wind_profile=spec.wind_profile,
    )
    step_s = weather.step_s
    above = np.zeros((len(ids), speed_m_s.shape[1] + 2), dtype=np.int8)
    above[:, 1:-1] = speed_m_s > cut_out_m_s
    edges = np.diff(above, axis=1)
    records = []
    for (row, lo), (_, hi) in zip(
        np.argwhere(edges == 1).tolist(), np.argwhere(edges == -1).tolist(), strict=True
    ):
        records.append(
            {
                "kind": "storm_cutout",
                "layer": "weather",
                "meter_id": ids[row],
                "row": row,
                "start_s": lo * step_s,
                "end_s": hi * step_s,
                "first_reading": lo,
                "end_reading": hi,
                "window_readings": hi - lo,
                "affected_readings": hi - lo,
                "energy_delta_wh": None,
                "params": {"cut_out_m_s": cut_out_m_s},
            }
        )
    return records


def _energy_flows(
    power_w: np.ndarray, load_w: np.ndarray | None, step_s: float
) -> list[tuple[str, int, np.ndarray]]:
    """(channel name, flowDirection, true energy Wh [n_sites, n_steps]) the meter records:
    generation only (reverse flow), or the net flows of a site with a load."""
    generation_wh = interval_energy_wh(power_w, step_s)
    if load_w is None:
        return [("energy_received", FLOW_RECEIVED, generation_wh)]
    delivered_wh, received_wh = net_flows_wh(interval_energy_wh(load_w, step_s), generation_wh)
    return [
        ("energy_delivered", FLOW_DELIVERED, delivered_wh),
        ("energy_received", FLOW_RECEIVED, received_wh),
    ]


def _electrical(
    spec: FleetSpec,
    ids: list[str],
    seed: int,
    power_w: np.ndarray,
    load_w: np.ndarray | None,
    rated_w: np.ndarray,
) -> list[ChannelSeries]:
    wanted = [c for c in spec.meter.channels if c != "energy"]
    if not wanted:
        return []
    through_w = np.abs(power_w - (load_w if load_w is not None else 0.0))
    rngs = [component_rng(seed, f"meter/{m}/electrical") for m in ids]
    voltage_v, current_a, power_factor = electrical_channels(
        through_w,
        spec.meter.nominal_voltage_v,
        SOURCE_POWER_FACTOR,
        rngs,
        spec.meter.phases,
        rated_power_w=rated_w,
    )
    series = {"voltage": voltage_v, "current": current_a, "power_factor": power_factor}
    out = []
    for name in wanted:
        rt = replace(_ELECTRICAL_TYPES[name], interval_length_s=int(spec.meter.sample_s))
        out.append(
            ChannelSeries(name, rt, quantise_register(series[name], rt.power_of_ten_multiplier))
        )
    return out


def build_fleets(scenario: Scenario) -> list[FleetData]:
    """Every fleet of the scenario, in scenario order."""
    centre = weather_location(scenario)
    return [build_fleet(scenario, spec, centre) for spec in scenario.fleets]
