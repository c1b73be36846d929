"""Scenario schema of ``[[fault]]`` entries: the world's faults of
:data:`twin.world.faults.WORLD_FAULTS` (network, MDCs, meter power, hostile uploads) and the
field faults of :data:`meters.faults.FIELD_FAULTS`.

Every fault has a ``kind`` and an ``at`` time; the rest is what its kind declares: the keys
that name its target, a ``duration``, and its parameters, each checked against its declared
range, so a typo or an out-of-range value names the key. Field faults target one meter
(``meter = "pv-00003"``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from meters.faults import FIELD_FAULTS, ParamSpec
from twin.errors import ScenarioError
from twin.scenario.field import FleetSpec, meter_exists
from twin.scenario.schema import Table
from twin.world.faults import WORLD_FAULTS, DurationParam, Target, WorldFaultKind

FAULT_KINDS = tuple(sorted(WORLD_FAULTS)) + tuple(sorted(FIELD_FAULTS))
_METER_EXPECTED = "a meter id such as 'pv-00000' (fleet name, '-', index)"


@dataclass(frozen=True)
class FaultSpec:
    """One ``[[fault]]``: ``kind`` from ``at_s`` for ``duration_s`` (s after the start; 0
    for kinds without a duration, or open-ended field faults), its target (``region`` and
    ``cell``, -1 for every cell of the region; ``mdc``; ``meter``), an upload fault's
    ``payload`` and its parameters as (name, value) pairs sorted by name (seconds for
    durations)."""

    kind: str
    at_s: float
    duration_s: float = 0.0
    region: str = ""
    meter: str = ""
    mdc: str = ""
    cell: int = -1
    payload: str = ""
    params: tuple[tuple[str, float], ...] = ()

    @property
    def param_dict(self) -> dict[str, float]:
        return dict(self.params)


def parse_fault(
    table: Table,
    fleets: tuple[FleetSpec, ...],
    duration_s: float,
    mdc_names: tuple[str, ...] = (),
    cells_per_region: int = 1,
) -> FaultSpec:
    kind = table.string("kind", choices=FAULT_KINDS)
    at_s = table.duration_s("at", positive=False)
    if at_s >= duration_s:
        raise ScenarioError(table.key("at"), table.raw("at"), "a time before the scenario's end")
    fault = FaultSpec(kind=kind, at_s=at_s)
    world = WORLD_FAULTS.get(kind)
    if world is None:
        fault = _field_fault(table, fault, fleets)
    else:
        fault = _world_fault(table, fault, world, fleets, mdc_names, cells_per_region)
    table.finish()
    return fault


def _world_fault(
    table: Table,
    fault: FaultSpec,
    kind: WorldFaultKind,
    fleets: tuple[FleetSpec, ...],
    mdc_names: tuple[str, ...],
    cells_per_region: int,
) -> FaultSpec:
    target = kind.target
    if target is Target.MDC and not mdc_names:
        raise ScenarioError(table.key("kind"), kind.name, "an [[mdc]] to act on")
    if target is Target.METER:
        fault = replace(fault, meter=_meter(table, fleets)[0])
    if kind.timed:
        fault = replace(fault, duration_s=table.duration_s("duration"))
    if target in (Target.CELL, Target.REGION):
        regions = sorted({f.region for f in fleets})
        fault = replace(fault, region=table.string("region", regions[0], choices=regions))
    if target is Target.CELL:
        fault = replace(fault, cell=table.integer("cell", 0, 0, cells_per_region - 1))
    if target is Target.MDC:
        fault = replace(fault, mdc=table.string("mdc", mdc_names[0], choices=mdc_names))
    if kind.on_upload is not None:
        fault = replace(fault, payload=table.string("payload", choices=kind.on_upload.payloads))
    params = []
    for name, spec in kind.params.items():
        if isinstance(spec, DurationParam):
            value = (
                table.duration_s(spec.key, positive=spec.positive, minimum_s=spec.minimum_s)
                if spec.default is None
                else table.duration_s(
                    spec.key, spec.default, positive=spec.positive, minimum_s=spec.minimum_s
                )
            )
        else:
            value = _number(table, name, spec)
        params.append((name, value))
    return replace(fault, params=tuple(sorted(params)))


def _meter(table: Table, fleets: tuple[FleetSpec, ...]) -> tuple[str, FleetSpec]:
    meter = table.string("meter")
    fleet = meter_exists(meter, fleets)
    if fleet is None:
        raise ScenarioError(table.key("meter"), meter, _METER_EXPECTED)
    return meter, fleet


def _field_fault(table: Table, fault: FaultSpec, fleets: tuple[FleetSpec, ...]) -> FaultSpec:
    spec = FIELD_FAULTS[fault.kind]
    meter, fleet = _meter(table, fleets)
    if fleet.kind not in spec.fleet_kinds:
        raise ScenarioError(
            table.key("meter"),
            meter,
            f"a meter of a {' or '.join(spec.fleet_kinds)} fleet ({fault.kind} does not apply "
            f"to {fleet.kind} fleet {fleet.name})",
        )
    duration_s = table.duration_s("duration", "0s", positive=False)
    params = [(name, _number(table, name, param)) for name, param in sorted(spec.params.items())]
    unknown = sorted(set(table.data) - {"kind", "at", "meter", "duration", *spec.params})
    if unknown:
        allowed = ", ".join(["kind", "at", "meter", "duration", *sorted(spec.params)])
        raise ScenarioError(
            table.key(unknown[0]), table.data[unknown[0]], f"a key of {fault.kind}: {allowed}"
        )
    return replace(fault, meter=meter, duration_s=duration_s, params=tuple(params))


def _number(table: Table, name: str, spec: ParamSpec) -> float:
    return table.number(name, spec.default, spec.minimum, spec.maximum)
