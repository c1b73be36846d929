"""Scenario schema: TOML -> typed, validated objects (DESIGN.md §5).

``load_scenario(path, overrides)`` reads the file with :mod:`tomllib`, applies ``--set``
overrides (``fleet.pv.count=500``; arrays of tables are addressed by their ``name``, or by
index for ``fault``), and validates everything into frozen dataclasses. Any mistake raises
one :class:`~twin.errors.ScenarioError` naming the key, the value and what was expected.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from meters.weather import tmy3_stations
from meters.wind import turbine_types
from network.cellular import CELLULAR_PROFILES, CellularProfile
from network.vpn import VpnTunnel
from twin.bridge import load_cost_model
from twin.errors import ScenarioError
from twin.schema import Table, check_number
from twin.units import format_duration

FLEET_KINDS = ("pv", "wind")
SERVICE_TIME_MODES = ("calibrated", "measured")
FAULT_KINDS = ("cell_outage", "malformed_upload")

#: Sanity bounds that keep a typo from exhausting memory or overflowing arithmetic.
MAX_DURATION_S = 366 * 86400.0
MAX_SITES_PER_FLEET = 1_000_000
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ValueSpec:
    """A per-site parameter: a constant, or drawn uniformly from [low, high] per site."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return self.low if self.low == self.high else float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class MeterSpec:
    sample_s: float = 60.0
    upload_s: float = 900.0
    buffer_readings: int = 2880
    power_of_ten_multiplier: int = 0
    upload_jitter_s: float = 900.0  # upload offsets spread uniformly over [0, jitter)
    #: Readings per upload at most; a backlog goes out in consecutive chunks. 1440 = a day of
    #: 1-min readings, about 400 KB of ESPI XML, well inside the pipeline's 4 MB size limit.
    max_upload_readings: int = 1440


@dataclass(frozen=True)
class FleetSpec:
    name: str
    kind: str
    count: int
    region: str
    meter: MeterSpec
    capacity_kw: ValueSpec = ValueSpec(5.0, 50.0)  # PV: DC nameplate
    tilt_deg: ValueSpec = ValueSpec(25.0, 25.0)
    azimuth_deg: ValueSpec = ValueSpec(180.0, 180.0)
    dc_ac_ratio: ValueSpec = ValueSpec(1.2, 1.2)
    turbine: str = "E-82/2300"  # wind: windpowerlib turbine type
    hub_height_m: ValueSpec = ValueSpec(108.0, 108.0)
    roughness_length_m: float = 0.15


@dataclass(frozen=True)
class MdcSpec:
    name: str
    region: str
    servers: int = 1
    cores_per_server: int = 4
    speed_factor: float = 1.0


@dataclass(frozen=True)
class PipelineSpec:
    service_time: str = "calibrated"
    cost_model: str = "default"  # "default" = the committed twin/data/cost_model.json
    alert_window: int = 60
    alert_threshold: float = 8.0


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    at_s: float
    duration_s: float = 0.0
    region: str = ""
    meter: str = ""
    payload: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    question: str
    start: datetime
    duration_s: float
    seed: int
    weather_source: str
    fleets: tuple[FleetSpec, ...]
    cellular: CellularProfile
    vpn: VpnTunnel
    mdcs: tuple[MdcSpec, ...]
    pipeline: PipelineSpec
    faults: tuple[FaultSpec, ...] = field(default=())

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted({f.region for f in self.fleets}))


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError("SCENARIO", str(path), "an existing scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), "(file)", f"valid TOML ({exc})") from None
    for item in overrides or []:
        apply_override(raw, item)
    return parse_scenario(raw)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``KEY=VALUE``; VALUE is read as a TOML value, or as a bare string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError("--set", item, "KEY=VALUE, e.g. fleet.pv.count=500")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    parts = key.split(".")
    node: Any = raw
    walked: list[str] = []
    for part in parts[:-1]:
        walked.append(part)
        if isinstance(node, list):
            node = _select_item(node, part, ".".join(walked))
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ScenarioError(".".join(walked[:-1]), node, f"a table, to set {key}")
    if isinstance(node, list):
        raise ScenarioError(key, value, "a key inside one item of the array (e.g. fleet.pv.count)")
    if not isinstance(node, dict):
        raise ScenarioError(".".join(walked), node, f"a table, to set {key}")
    node[parts[-1]] = value


def _select_item(items: list[Any], selector: str, key: str) -> Any:
    for item in items:
        if isinstance(item, dict) and item.get("name") == selector:
            return item
    if selector.isdigit() and int(selector) < len(items):
        return items[int(selector)]
    names = [str(i.get("name")) for i in items if isinstance(i, dict) and "name" in i]
    expected = "the name of an item (" + ", ".join(names) + ")" if names else "an item index"
    raise ScenarioError(key, selector, expected)


def parse_scenario(raw: dict[str, Any]) -> Scenario:
    """Validate a scenario dictionary (as read from TOML) into a :class:`Scenario`."""
    root = Table(raw, "")
    head = root.table("scenario", default_empty=False)
    name = head.string("name")
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ScenarioError(
            head.key("name"), name, "a name of letters, digits, '.', '-', '_' (used as a folder)"
        )
    question = head.string("question", "")
    start = head.timestamp_utc("start")
    if not 1900 <= start.year <= 2200:
        raise ScenarioError(head.key("start"), head.raw("start"), "a year in [1900, 2200]")
    duration_s = head.duration_s("duration")
    if duration_s > MAX_DURATION_S:
        raise ScenarioError(head.key("duration"), head.raw("duration"), "at most 366d")
    seed = head.integer("seed", 0, minimum=0)
    head.finish()

    weather = root.table("weather")
    weather_source = weather.string("source", "tmy3:723170TYA")
    stations = tmy3_stations()
    kind, _, station = weather_source.partition(":")
    if kind != "tmy3" or station.upper() not in {s.upper() for s in stations}:
        expected = '"tmy3:STATION" with a TMY3 file shipped with pvlib: ' + ", ".join(
            f"tmy3:{s}" for s in stations
        )
        raise ScenarioError("weather.source", weather_source, expected)
    weather.finish()

    fleets = tuple(_fleet(t) for t in root.tables("fleet"))
    if not fleets:
        raise ScenarioError("fleet", [], "at least one [[fleet]] table")
    _unique([f.name for f in fleets], "fleet")
    for fleet in fleets:
        if not float(duration_s / fleet.meter.sample_s).is_integer():
            raise ScenarioError(
                "scenario.duration",
                head.raw("duration"),
                f"a whole number of fleet {fleet.name}'s sample intervals "
                f"({fleet.meter.sample_s:g} s)",
            )

    network = root.table("network")
    cellular = _cellular(network.table("cellular"))
    vpn = _vpn(network.table("vpn"))
    network.finish()

    mdcs = tuple(_mdc(t) for t in root.tables("mdc"))
    if len(mdcs) != 1:
        raise ScenarioError("mdc", len(mdcs), "exactly one [[mdc]] table (several MDCs come later)")
    regions = sorted({f.region for f in fleets})
    for mdc in mdcs:
        if mdc.region not in regions:
            raise ScenarioError(
                f"mdc.{mdc.name}.region", mdc.region, "a region of the fleet: " + ", ".join(regions)
            )
    pipeline = _pipeline(root.table("pipeline"))
    faults = tuple(_fault(t, fleets, duration_s) for t in root.tables("fault"))
    root.finish()
    return Scenario(
        name,
        question,
        start,
        duration_s,
        seed,
        weather_source,
        fleets,
        cellular,
        vpn,
        mdcs,
        pipeline,
        faults,
    )


def _value_spec(
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
    meter = MeterSpec(
        sample_s=sample_s,
        upload_s=upload_s,
        buffer_readings=table.integer("buffer_readings", 2880, 1, 10_000_000),
        power_of_ten_multiplier=table.integer("power_of_ten_multiplier", 0, -9, 9),
        max_upload_readings=table.integer("max_upload_readings", 1440, 1, 10_000),
        upload_jitter_s=table.duration_s(
            "upload_jitter", format_duration(upload_s), positive=False
        ),
    )
    if meter.upload_jitter_s > upload_s:
        raise ScenarioError(
            table.key("upload_jitter"), table.raw("upload_jitter"), "at most the upload interval"
        )
    table.finish()
    return meter


def _fleet(table: Table) -> FleetSpec:
    name = table.string("name")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ScenarioError(table.key("name"), name, "letters, digits, '-' or '_'")
    kind = table.string("kind", choices=FLEET_KINDS)
    fleet = FleetSpec(
        name=name,
        kind=kind,
        count=table.integer("count", minimum=0, maximum=MAX_SITES_PER_FLEET),
        region=table.string("region", "north"),
        meter=_meter(table.table("meter")),
    )
    if kind == "pv":
        fleet = replace(
            fleet,
            capacity_kw=_value_spec(table, "capacity_kw", fleet.capacity_kw, 0.001, 1e6),
            tilt_deg=_value_spec(table, "tilt_deg", fleet.tilt_deg, 0.0, 90.0),
            azimuth_deg=_value_spec(table, "azimuth_deg", fleet.azimuth_deg, 0.0, 360.0),
            dc_ac_ratio=_value_spec(table, "dc_ac_ratio", fleet.dc_ac_ratio, 0.1, 10.0),
        )
    else:
        fleet = replace(
            fleet,
            turbine=table.string("turbine", fleet.turbine),
            hub_height_m=_value_spec(table, "hub_height_m", fleet.hub_height_m, 10.0, 300.0),
            # roughness lengths span 0.0002 m (open sea) to about 2 m (city centres)
            # (Wieringa 1992, "Updating the Davenport roughness classification")
            roughness_length_m=table.number(
                "roughness_length_m", 0.15, 0.0, 2.0, exclusive_minimum=True
            ),
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


def _cellular(table: Table) -> CellularProfile:
    profile_name = table.string("profile", "lte-m", choices=tuple(CELLULAR_PROFILES))
    base = CELLULAR_PROFILES[profile_name]
    profile = replace(
        base,
        access_latency_median_s=table.duration_s(
            "access_latency_median", f"{base.access_latency_median_s}s"
        ),
        access_latency_sigma=table.number(
            "access_latency_sigma", base.access_latency_sigma, 0.0, 3.0
        ),
        uplink_rate_bps=table.number(
            "uplink_rate_bps", base.uplink_rate_bps, 0.0, exclusive_minimum=True
        ),
        loss_probability=table.number("loss_probability", base.loss_probability, 0.0, 1.0),
        ack_loss_probability=table.number(
            "ack_loss_probability", base.ack_loss_probability, 0.0, 1.0
        ),
        ack_timeout_s=table.duration_s("ack_timeout", f"{base.ack_timeout_s}s"),
        max_attempts=table.integer("max_attempts", base.max_attempts, 1, 1000),
        backoff_base_s=table.duration_s("backoff_base", f"{base.backoff_base_s}s"),
        backoff_cap_s=table.duration_s("backoff_cap", f"{base.backoff_cap_s}s"),
    )
    table.finish()
    return profile


def _vpn(table: Table) -> VpnTunnel:
    table.string("protocol", "dtls", choices=("dtls",))
    base = VpnTunnel()
    vpn = VpnTunnel(
        latency_s=table.duration_s("latency", f"{base.latency_s * 1000:g}ms", positive=False),
        overhead_bytes_per_packet=table.integer(
            "overhead_bytes_per_packet", base.overhead_bytes_per_packet, 0
        ),
        inner_header_bytes=table.integer("inner_header_bytes", base.inner_header_bytes, 0),
        mtu_bytes=table.integer("mtu_bytes", base.mtu_bytes, 576, 65535),
        bandwidth_bps=table.number(
            "bandwidth_bps", base.bandwidth_bps, 0.0, exclusive_minimum=True
        ),
    )
    if vpn.payload_bytes_per_packet <= 0:
        raise ScenarioError(
            "network.vpn.mtu_bytes", vpn.mtu_bytes, "room for payload after the headers"
        )
    table.finish()
    return vpn


def _mdc(table: Table) -> MdcSpec:
    mdc = MdcSpec(name=table.string("name"), region=table.string("region", "north"))
    servers = table.table("servers")
    mdc = replace(
        mdc,
        servers=servers.integer("count", 1, 1, 10_000),
        cores_per_server=servers.integer("cores", 4, 1, 1024),
        speed_factor=servers.number("speed_factor", 1.0, 0.0, exclusive_minimum=True),
    )
    servers.finish()
    table.finish()
    return mdc


def _pipeline(table: Table) -> PipelineSpec:
    spec = PipelineSpec(
        service_time=table.string("service_time", "calibrated", choices=SERVICE_TIME_MODES),
        cost_model=table.string("cost_model", "default"),
        alert_window=table.integer("alert_window", 60, 4, 100_000),
        alert_threshold=table.number("alert_threshold", 8.0, 0.0, exclusive_minimum=True),
    )
    load_cost_model(spec.cost_model)  # raises a ScenarioError naming the key if unusable
    table.finish()
    return spec


def _fault(table: Table, fleets: tuple[FleetSpec, ...], duration_s: float) -> FaultSpec:
    kind = table.string("kind", choices=FAULT_KINDS)
    at_s = table.duration_s("at", positive=False)
    if at_s >= duration_s:
        raise ScenarioError(table.key("at"), table.raw("at"), "a time before the scenario's end")
    fault = FaultSpec(kind=kind, at_s=at_s)
    if kind == "cell_outage":
        regions = sorted({f.region for f in fleets})
        fault = replace(
            fault,
            duration_s=table.duration_s("duration"),
            region=table.string("region", regions[0], choices=regions),
        )
    elif kind == "malformed_upload":
        from twin.hostile import HOSTILE_PAYLOADS

        meter = table.string("meter")
        if not _meter_exists(meter, fleets):
            raise ScenarioError(
                table.key("meter"), meter, "a meter id such as 'pv-00000' (fleet name, '-', index)"
            )
        fault = replace(
            fault, meter=meter, payload=table.string("payload", choices=tuple(HOSTILE_PAYLOADS))
        )
    table.finish()
    return fault


def meter_ids(fleet: FleetSpec) -> list[str]:
    """Stable meter ids of a fleet: ``{fleet}-{index:05d}``."""
    return [f"{fleet.name}-{i:05d}" for i in range(fleet.count)]


def _meter_exists(meter: str, fleets: tuple[FleetSpec, ...]) -> bool:
    """Whether ``meter`` is exactly one of the ids that ``meter_ids`` gives."""
    name, _, index = meter.rpartition("-")
    return any(
        f.name == name and len(index) == 5 and index.isdigit() and int(index) < f.count
        for f in fleets
    )


def _unique(names: list[str], key: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ScenarioError(f"{key}.name", name, "a name not used by another item")
        seen.add(name)
