"""Scenario schema of the field side: weather, fleets of sites, their loads and meters.

Parsed from ``[weather]`` (with ``[weather.synthetic]`` and ``[[weather.event]]``) and
``[[fleet]]`` (with ``meter`` and ``load`` tables) into frozen dataclasses; every mistake is
one :class:`~twin.errors.ScenarioError` naming the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from meters.accuracy import ACCURACY_CLASSES
from meters.load import FACILITY_KINDS
from meters.pv import CELL_TEMPERATURE_MODELS
from meters.synthetic_weather import SyntheticClimate
from meters.weather import read_epw_year, tmy3_stations
from meters.weather_events import EVENT_PEAK_BOUNDS, WEATHER_EVENTS, WeatherEvent
from meters.wind import WIND_PROFILES, turbine_types
from pipeline.espi.identity import MAX_METER_ID_CHARS
from twin.errors import ScenarioError
from twin.scenario.schema import Table, check_number
from twin.scenario.weather_feed import WeatherFeedSpec, parse_weather_feed
from twin.units import format_duration

FLEET_KINDS = ("pv", "wind")
#: Most sites in one fleet.
MAX_FLEET_SITES = 1_000_000
#: Meter channels and what they record (ESPI ReadingTypes, see meters.espi).
METER_CHANNELS = ("energy", "voltage", "current", "power_factor")
DEFAULT_TMY3 = "tmy3:723170TYA"


@dataclass(frozen=True)
class ValueSpec:
    """A per-site parameter: a constant, or drawn uniformly from [low, high] per site."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return self.low if self.low == self.high else float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class WeatherSpec:
    """Where the weather comes from, and the events laid over it."""

    source: str = DEFAULT_TMY3  # "tmy3:STATION", "epw:PATH" or "synthetic"
    #: Synthetic weather: the TMY3 whose statistics seed the climate ("" = the defaults of
    #: meters.synthetic_weather.SyntheticClimate), then field overrides (name, value).
    climate: str = ""
    synthetic: tuple[tuple[str, float], ...] = ()
    events: tuple[WeatherEvent, ...] = ()
    #: The regional weather feed (met station and forecast product) sent to the MDC.
    feed: WeatherFeedSpec = field(default_factory=WeatherFeedSpec)


@dataclass(frozen=True)
class MeterSpec:
    sample_s: float = 60.0
    upload_s: float = 900.0
    buffer_readings: int = 2880
    power_of_ten_multiplier: int = 0
    upload_jitter_s: float = 900.0  # upload offsets spread uniformly over [0, jitter)
    #: Every meter uploads at the same offset (a synchronised herd), only when asked for.
    herd: bool = False
    #: Readings per upload at most; a backlog goes out in consecutive chunks. 1440 = a day of
    #: 1-min readings, about 400 KB of ESPI XML, well inside the pipeline's 4 MB size limit.
    max_upload_readings: int = 1440
    #: IEC 62053 accuracy class (meters.accuracy.ACCURACY_CLASSES).
    accuracy_class: str = "0.5S"
    channels: tuple[str, ...] = ("energy",)
    nominal_voltage_v: float = 230.0
    phases: int = 3
    #: RTC drift of each meter, ppm (drawn per meter), and the time-sync period.
    drift_ppm: ValueSpec = ValueSpec(-5.0, 5.0)
    time_sync_s: float = 86400.0
    #: Readings written from RAM to non-volatile memory at a time (what survives power loss).
    nvm_flush_readings: int = 15


@dataclass(frozen=True)
class LoadSpec:
    """The medical facility a site's source feeds (meters.load)."""

    facility: str  # meters.load.FACILITY_KINDS
    #: Scheduled peak demand (base plus full activity) before HVAC and equipment spikes
    #: (meters.load ``peak_load_w``); default: the kind's reference building.
    peak_kw: ValueSpec


@dataclass(frozen=True)
class FleetSpec:
    name: str
    kind: str
    count: int
    region: str
    meter: MeterSpec
    #: Sites lie uniformly in a disk of this radius around the region's weather location.
    spread_km: float = 20.0
    load: LoadSpec | None = None
    capacity_kw: ValueSpec = ValueSpec(5.0, 50.0)  # PV: DC nameplate
    tilt_deg: ValueSpec = ValueSpec(25.0, 25.0)
    azimuth_deg: ValueSpec = ValueSpec(180.0, 180.0)
    dc_ac_ratio: ValueSpec = ValueSpec(1.2, 1.2)
    system_losses_pct: ValueSpec = ValueSpec(14.08, 14.08)  # PVWatts v5 default
    temperature_model: str = "open_rack_glass_polymer"  # meters.pv.CELL_TEMPERATURE_MODELS
    turbine: str = "E-82/2300"  # wind: windpowerlib turbine type
    hub_height_m: ValueSpec = ValueSpec(108.0, 108.0)
    roughness_length_m: float = 0.15
    wind_profile: str = "logarithmic"
    density_correction: bool = True


def parse_weather(table: Table, duration_s: float) -> WeatherSpec:
    source = table.string("source", DEFAULT_TMY3)
    kind, _, arg = source.partition(":")
    stations = tmy3_stations()
    if kind == "tmy3":
        _check_station(table.key("source"), source, arg, stations)
    elif kind == "epw":
        if not arg or not Path(arg).is_file():
            raise ScenarioError(table.key("source"), source, '"epw:PATH" of an existing EPW file')
        try:
            read_epw_year(arg)  # the run reads it again: a broken file is found here
        except (ValueError, OSError) as exc:
            why = f"reading it failed: {exc.__cause__ or exc}"
            raise ScenarioError(
                table.key("source"), source, f'"epw:PATH" of a readable EPW file ({why})'
            ) from None
    elif source != "synthetic":
        raise ScenarioError(
            table.key("source"),
            source,
            '"synthetic", "epw:PATH" or "tmy3:STATION" with a TMY3 file shipped with pvlib ('
            + ", ".join(f"tmy3:{s}" for s in stations)
            + ")",
        )
    spec = WeatherSpec(source=source)
    synthetic = table.table("synthetic")
    if synthetic.data and source != "synthetic":
        raise ScenarioError(synthetic.path, dict(synthetic.data), 'source = "synthetic" with it')
    climate = synthetic.string("climate", "")
    if climate:
        kind, _, station = climate.partition(":")
        if kind != "tmy3":
            raise ScenarioError(synthetic.key("climate"), climate, '"tmy3:STATION"')
        _check_station(synthetic.key("climate"), climate, station, stations)
    fields = {
        f.name: f.default
        for f in dataclasses.fields(SyntheticClimate)
        if isinstance(f.default, int | float) and not isinstance(f.default, bool)
    }
    overrides = []
    for name in sorted(set(synthetic.data) - {"climate"}):
        if name not in fields:
            raise ScenarioError(
                synthetic.key(name),
                synthetic.raw(name),
                "a SyntheticClimate number: " + ", ".join(fields),
            )
        overrides.append((name, synthetic.number(name)))
    synthetic.finish()
    events = tuple(_event(t, duration_s) for t in table.tables("event"))
    feed = parse_weather_feed(table.table("feed"))
    table.finish()
    return replace(spec, climate=climate, synthetic=tuple(overrides), events=events, feed=feed)


def _check_station(key: str, value: str, station: str, stations: list[str]) -> None:
    if station.upper() not in {s.upper() for s in stations}:
        raise ScenarioError(
            key,
            value,
            "a TMY3 file shipped with pvlib: " + ", ".join(f"tmy3:{s}" for s in stations),
        )


def _event(table: Table, duration_s: float) -> WeatherEvent:
    kind = table.string("kind", choices=tuple(WEATHER_EVENTS))
    _meaning, low, high = EVENT_PEAK_BOUNDS[kind]
    at_s = table.duration_s("at", positive=False)
    if at_s >= duration_s:
        raise ScenarioError(table.key("at"), table.raw("at"), "a time before the scenario's end")
    event = WeatherEvent(
        kind=kind,
        at_s=at_s,
        duration_s=table.duration_s("duration"),
        peak=table.number("peak", minimum=low, maximum=high),
        ramp_s=table.duration_s("ramp", "3h", positive=False),
    )
    table.finish()
    return event


def value_spec(
    table: Table, name: str, default: ValueSpec, minimum: float, maximum: float
) -> ValueSpec:
    value = table.raw(name, None)
    key = table.key(name)
    if value is None:
        return default
    if isinstance(value, dict):
        bounds = value.get("uniform")
        if set(value) != {"uniform"} or not isinstance(bounds, list) or len(bounds) != 2:
            raise ScenarioError(key, value, "a number or { uniform = [low, high] }")
        low = check_number(f"{key}.uniform[0]", bounds[0], minimum, maximum)
        high = check_number(f"{key}.uniform[1]", bounds[1], low, maximum)
        return ValueSpec(low, high)
    number = check_number(key, value, minimum, maximum)
    return ValueSpec(number, number)


def _meter(table: Table) -> MeterSpec:
    sample_s = table.duration_s("sample", "1min")
    upload_s = table.duration_s("upload", "15min")
    if upload_s < sample_s:
        raise ScenarioError(
            table.key("upload"), table.raw("upload"), "at least the sample interval"
        )
    for name, seconds in (("sample", sample_s), ("upload", upload_s)):
        if not float(seconds).is_integer():
            raise ScenarioError(table.key(name), table.raw(name), "a whole number of seconds")
    channels = table.raw("channels", ["energy"])
    if (
        not isinstance(channels, list)
        or not channels
        or "energy" not in channels
        or any(c not in METER_CHANNELS for c in channels)
        or len(set(channels)) != len(channels)
    ):
        raise ScenarioError(
            table.key("channels"),
            channels,
            f"a list with 'energy' and any of {list(METER_CHANNELS)}",
        )
    meter = MeterSpec(
        sample_s=sample_s,
        upload_s=upload_s,
        buffer_readings=table.integer("buffer_readings", 2880, 1, 10_000_000),
        power_of_ten_multiplier=table.integer("power_of_ten_multiplier", 0, -9, 9),
        max_upload_readings=table.integer("max_upload_readings", 1440, 1, 10_000),
        upload_jitter_s=table.duration_s(
            "upload_jitter", format_duration(upload_s), positive=False
        ),
        herd=table.boolean("herd", False),
        accuracy_class=table.string("accuracy_class", "0.5S", choices=tuple(ACCURACY_CLASSES)),
        channels=tuple(channels),
        nominal_voltage_v=table.number("nominal_voltage_v", 230.0, 50.0, 1000.0),
        phases=table.integer("phases", 3, 1, 3),
        drift_ppm=value_spec(table, "drift_ppm", MeterSpec.drift_ppm, -1000.0, 1000.0),
        time_sync_s=table.duration_s("time_sync", "1d"),
        nvm_flush_readings=table.integer("nvm_flush_readings", 15, 1, 1_000_000),
    )
    if meter.phases == 2:
        raise ScenarioError(table.key("phases"), 2, "1 or 3")
    if meter.upload_jitter_s > upload_s:
        raise ScenarioError(
            table.key("upload_jitter"), table.raw("upload_jitter"), "at most the upload interval"
        )
    table.finish()
    return meter


def _load(table: Table) -> LoadSpec | None:
    if not table.data:
        table.finish()
        return None
    facility = table.string("facility", choices=tuple(FACILITY_KINDS))
    reference_kw = FACILITY_KINDS[facility].peak_load_w / 1000.0
    spec = LoadSpec(
        facility=facility,
        peak_kw=value_spec(table, "peak_kw", ValueSpec(reference_kw, reference_kw), 0.1, 1e6),
    )
    table.finish()
    return spec


def parse_fleet(table: Table) -> FleetSpec:
    name = table.string("name")
    if not (name.isascii() and name.replace("-", "").replace("_", "").isalnum()):
        raise ScenarioError(table.key("name"), name, "ASCII letters, digits, '-' or '_'")
    kind = table.string("kind", choices=FLEET_KINDS)
    count = table.integer("count", minimum=0, maximum=MAX_FLEET_SITES)
    longest = len(meter_id(name, max(count - 1, 0)))
    if longest > MAX_METER_ID_CHARS:
        raise ScenarioError(
            table.key("name"),
            name,
            f"a name of at most {len(name) - (longest - MAX_METER_ID_CHARS)} characters (its "
            f"meter ids, such as {meter_id('NAME', 0)!r}, must fit the pipeline's "
            f"{MAX_METER_ID_CHARS})",
        )
    fleet = FleetSpec(
        name=name,
        kind=kind,
        count=count,
        region=table.string("region", "north"),
        meter=_meter(table.table("meter")),
        spread_km=table.number("spread_km", 20.0, 0.0, 500.0),
        load=_load(table.table("load")),
    )
    if kind == "pv":
        fleet = replace(
            fleet,
            capacity_kw=value_spec(table, "capacity_kw", fleet.capacity_kw, 0.001, 1e6),
            tilt_deg=value_spec(table, "tilt_deg", fleet.tilt_deg, 0.0, 90.0),
            azimuth_deg=value_spec(table, "azimuth_deg", fleet.azimuth_deg, 0.0, 360.0),
            dc_ac_ratio=value_spec(table, "dc_ac_ratio", fleet.dc_ac_ratio, 0.1, 10.0),
            system_losses_pct=value_spec(
                table, "system_losses_pct", fleet.system_losses_pct, 0.0, 99.0
            ),
            temperature_model=table.string(
                "temperature_model", fleet.temperature_model, choices=tuple(CELL_TEMPERATURE_MODELS)
            ),
        )
    else:
        fleet = replace(
            fleet,
            turbine=table.string("turbine", fleet.turbine),
            hub_height_m=value_spec(table, "hub_height_m", fleet.hub_height_m, 10.0, 300.0),
            # roughness lengths span 0.0002 m (open sea) to about 2 m (city centres)
            # (Wieringa 1992, "Updating the Davenport roughness classification")
            roughness_length_m=table.number(
                "roughness_length_m", 0.15, 0.0, 2.0, exclusive_minimum=True
            ),
            wind_profile=table.string("wind_profile", "logarithmic", choices=tuple(WIND_PROFILES)),
            density_correction=table.boolean("density_correction", True),
        )
        types = turbine_types()
        if fleet.turbine not in types:
            close = difflib.get_close_matches(fleet.turbine, types, n=5, cutoff=0.5)
            raise ScenarioError(
                table.key("turbine"),
                fleet.turbine,
                "a windpowerlib turbine type with a power curve"
                + (f", e.g. {', '.join(close)}" if close else " (see windpowerlib's oedb library)"),
            )
    table.finish()
    return fleet


def meter_id(fleet_name: str, index: int) -> str:
    """The stable id of a fleet's meter: ``{fleet}-{index:05d}``."""
    return f"{fleet_name}-{index:05d}"


def meter_ids(fleet: FleetSpec) -> list[str]:
    """Stable meter ids of a fleet (:func:`meter_id`)."""
    return [meter_id(fleet.name, i) for i in range(fleet.count)]


def meter_exists(meter: str, fleets: tuple[FleetSpec, ...]) -> FleetSpec | None:
    """The fleet of ``meter`` when it is exactly one of the ids ``meter_ids`` gives."""
    name, _, index = meter.rpartition("-")
    if not (index.isascii() and index.isdigit()):
        return None
    for f in fleets:
        if f.name == name and int(index) < f.count and meter == meter_id(name, int(index)):
            return f
    return None
