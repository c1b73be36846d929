"""Scenario schema: TOML -> typed, validated objects (DESIGN.md §5).

``load_scenario(path, overrides)`` reads the file with :mod:`tomllib`, applies ``--set``
overrides (``fleet.pv.count=500``; arrays of tables are addressed by their ``name``, or by
index for ``fault``), and validates everything into frozen dataclasses. Any mistake raises
one :class:`~twin.errors.ScenarioError` naming the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from network.cellular import CellularProfile
from network.vpn import VpnTunnel
from twin.errors import ScenarioError
from twin.scenario.faults import FaultSpec, parse_fault
from twin.scenario.field import (
    FleetSpec,
    WeatherSpec,
    parse_fleet,
    parse_weather,
)
from twin.scenario.mdc import MdcSpec, parse_mdc
from twin.scenario.network import NetworkSpec, check_backbone, parse_network
from twin.scenario.schema import MIN_PERIOD_S, Table, read_scenario_text
from twin.scenario.slo import Slo, parse_slo
from twin.sil.service_time import SERVICE_TIME_MODES, load_cost_model
from twin.world.faults import WORLD_FAULTS

#: Sanity bounds that keep a typo from exhausting memory or overflowing arithmetic.
MAX_DURATION_S = 366 * 86400.0
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class PipelineSpec:
    service_time: str = "calibrated"
    cost_model: str = "default"  # "default" = the committed twin/data/cost_model.json
    #: Uploads come in HMAC envelopes sealed with each meter's key (pipeline.fetch.auth).
    authenticate: bool = True
    #: How often the MDC runs its batch analytics (VEE, fault detectors) over new data, s.
    analytics_every_s: float = 3600.0
    #: ``model`` mode: fraction of uploads the real pipeline runs on (the rest are costed
    #: by the calibrated model and counted as stored); 1 in the other modes.
    pipeline_sample_rate: float = 1.0


@dataclass(frozen=True)
class Scenario:
    name: str
    question: str
    start: datetime
    duration_s: float
    seed: int
    weather: WeatherSpec
    fleets: tuple[FleetSpec, ...]
    cellular: CellularProfile
    vpn: VpnTunnel
    mdcs: tuple[MdcSpec, ...]
    pipeline: PipelineSpec
    faults: tuple[FaultSpec, ...] = field(default=())
    #: IANA time zone of the sites: local schedules (facility load, shading hours) and the
    #: ESPI LocalTimeParameters of the uploads.
    timezone: str = "UTC"
    #: Cells per region, the VPN's dynamics and gateway buffer, the backbone.
    network: NetworkSpec = field(default_factory=NetworkSpec)
    #: The service levels the run is judged against (``[slo]``, twin.scenario.slo).
    slo: tuple[Slo, ...] = ()

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted({f.region for f in self.fleets}))

    def to_json(self) -> dict[str, Any]:
        """The resolved scenario as plain JSON types (times in s, start as ISO 8601)."""
        data = dataclasses.asdict(self)
        data["start"] = self.start.isoformat().replace("+00:00", "Z")
        del data["slo"]  # as the table of limits, and only when the scenario has one
        if self.slo:
            data["slo"] = {s.key: s.limit for s in self.slo}
        return data


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario file."""
    path = Path(path)
    text = read_scenario_text(path)
    try:
        raw = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, an int too long to read
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ScenarioError(str(path), "(file)", f"valid TOML ({reason})") from None
    for item in overrides or []:
        apply_override(raw, item)
    return parse_scenario(raw)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``KEY=VALUE``; VALUE is read as a TOML value, or as a bare string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError("--set", item, "KEY=VALUE, e.g. fleet.pv.count=500")
    value = override_value(text)
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


def override_value(text: str) -> Any:
    """The value of an override's ``VALUE`` text: a TOML value, or else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (ValueError, RecursionError):  # not a TOML value (or an int too long to read)
        return text.strip()


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
    timezone = head.string("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScenarioError(
            head.key("timezone"), timezone, 'an IANA time zone, e.g. "America/New_York"'
        ) from None
    head.finish()

    weather = parse_weather(root.table("weather"), duration_s)

    fleets = tuple(parse_fleet(t) for t in root.tables("fleet"))
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

    cellular, vpn, network = parse_network(root.table("network"))

    mdcs = tuple(parse_mdc(t, duration_s) for t in root.tables("mdc"))
    if not mdcs:
        raise ScenarioError("mdc", [], "at least one [[mdc]] table")
    _unique([m.name for m in mdcs], "mdc")
    check_backbone(network, [m.name for m in mdcs])
    regions = sorted({f.region for f in fleets})
    for mdc in mdcs:
        if mdc.region not in regions:
            raise ScenarioError(
                f"mdc.{mdc.name}.region", mdc.region, "a region of the fleet: " + ", ".join(regions)
            )
    pipeline = _pipeline(root.table("pipeline"))
    faults = tuple(
        parse_fault(t, fleets, duration_s, tuple(m.name for m in mdcs), network.cells_per_region)
        for t in root.tables("fault")
    )
    for index, fault in enumerate(faults):
        upload = WORLD_FAULTS[fault.kind].on_upload if fault.kind in WORLD_FAULTS else None
        if upload is not None and upload.needs_authentication and not pipeline.authenticate:
            raise ScenarioError(
                f"fault.{index}.kind", fault.kind, "pipeline.authenticate = true (uploads sealed)"
            )
    slo = parse_slo(root.table("slo"))
    root.finish()
    return Scenario(
        name,
        question,
        start,
        duration_s,
        seed,
        weather,
        fleets,
        cellular,
        vpn,
        mdcs,
        pipeline,
        faults,
        timezone,
        network,
        slo,
    )


def _pipeline(table: Table) -> PipelineSpec:
    spec = PipelineSpec(
        service_time=table.string("service_time", "calibrated", choices=tuple(SERVICE_TIME_MODES)),
        cost_model=table.string("cost_model", "default"),
        authenticate=table.boolean("authenticate", True),
        analytics_every_s=table.duration_s("analytics_every", "1h", minimum_s=MIN_PERIOD_S),
        pipeline_sample_rate=table.number("pipeline_sample_rate", 1.0, 0.0, 1.0, True),
    )
    if spec.service_time != "model" and spec.pipeline_sample_rate != 1.0:
        raise ScenarioError(
            table.key("pipeline_sample_rate"),
            spec.pipeline_sample_rate,
            '1 unless service_time = "model" (the other modes run every upload)',
        )
    load_cost_model(spec.cost_model)  # raises a ScenarioError naming the key if unusable
    table.finish()
    return spec


def _unique(names: list[str], key: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ScenarioError(f"{key}.name", name, "a name not used by another item")
        seen.add(name)
