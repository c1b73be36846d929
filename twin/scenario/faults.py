"""Scenario schema of ``[[fault]]`` entries: network faults, hostile uploads, meter power
loss and the field faults of :data:`meters.faults.FIELD_FAULTS` (with their parameters).

Every fault has a ``kind`` and an ``at`` time; the rest depends on the kind. Field faults
target one meter (``meter = "pv-00003"``) and take the parameters their kind declares, each
checked against its declared range, so a typo or an out-of-range value names the key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from meters.faults import FIELD_FAULTS
from twin.errors import ScenarioError
from twin.scenario.field import FleetSpec, meter_exists
from twin.scenario.schema import Table
from twin.world.hostile import HOSTILE_PAYLOADS, TAMPERED_ENVELOPES

#: Faults the twin's world injects itself (the network, the meter's power supply, hostile
#: uploads); field faults come from meters.faults.FIELD_FAULTS.
WORLD_FAULT_KINDS = (
    "cell_flapping",
    "cell_outage",
    "degraded_coverage",
    "malformed_upload",
    "mdc_power_loss",
    "meter_power_loss",
    "regional_outage",
    "tampered_upload",
    "vpn_drop",
)
#: Faults of the network and the MDCs that take (name, default, minimum, maximum) numbers.
_NUMBER_PARAMS: dict[str, tuple[tuple[str, float, float, float], ...]] = {
    # extra attempt loss, data-rate factor (extra latency: `_DURATION_PARAMS`)
    "degraded_coverage": (
        ("extra_loss_probability", 0.1, 0.0, 1.0),
        ("rate_factor", 0.5, 1e-6, 1.0),
    ),
}
#: ... and durations (DESIGN §3: durations are strings such as "500ms"): TOML key, param
#: name in seconds, default.
_DURATION_PARAMS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # extra latency per round trip
    "degraded_coverage": (("extra_latency", "extra_latency_s", "500ms"),),
}
FAULT_KINDS = WORLD_FAULT_KINDS + tuple(sorted(FIELD_FAULTS))
_METER_EXPECTED = "a meter id such as 'pv-00000' (fleet name, '-', index)"


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    at_s: float
    duration_s: float = 0.0
    region: str = ""
    meter: str = ""
    mdc: str = ""
    cell: int = -1  # cell index within the region; -1: every cell of the region
    payload: str = ""
    params: tuple[tuple[str, float], ...] = ()  # field faults: (name, value), sorted by name

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
    regions = sorted({f.region for f in fleets})
    if kind in ("cell_outage", "cell_flapping", "regional_outage", "degraded_coverage"):
        fault = replace(
            fault,
            duration_s=table.duration_s("duration"),
            region=table.string("region", regions[0], choices=regions),
        )
        if kind in ("cell_outage", "cell_flapping"):
            fault = replace(fault, cell=table.integer("cell", 0, 0, cells_per_region - 1))
        if kind == "cell_flapping":  # a Markov up/down process over [at, at + duration)
            fault = replace(
                fault,
                params=(("mtbf_s", table.duration_s("mtbf")), ("mttr_s", table.duration_s("mttr"))),
            )
        for name, default, low, high in _NUMBER_PARAMS.get(kind, ()):
            value = table.number(name, default, low, high)
            fault = replace(fault, params=(*fault.params, (name, value)))
        for key, name, default_text in _DURATION_PARAMS.get(kind, ()):
            value = table.duration_s(key, default_text, positive=False)
            fault = replace(fault, params=tuple(sorted((*fault.params, (name, value)))))
    elif kind in ("vpn_drop", "mdc_power_loss"):
        if not mdc_names:
            raise ScenarioError(table.key("kind"), kind, "an [[mdc]] to act on")
        fault = replace(
            fault,
            duration_s=table.duration_s("duration"),
            mdc=table.string("mdc", mdc_names[0], choices=mdc_names),
        )
    elif kind == "malformed_upload":
        fault = replace(
            fault,
            meter=_meter(table, fleets)[0],
            payload=table.string("payload", choices=tuple(HOSTILE_PAYLOADS)),
        )
    elif kind == "tampered_upload":
        fault = replace(
            fault,
            meter=_meter(table, fleets)[0],
            payload=table.string("payload", choices=tuple(TAMPERED_ENVELOPES)),
        )
    elif kind == "meter_power_loss":
        fault = replace(
            fault, meter=_meter(table, fleets)[0], duration_s=table.duration_s("duration")
        )
    else:
        fault = _field_fault(table, fault, fleets)
    table.finish()
    return fault


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
    params = []
    for name, param in sorted(spec.params.items()):
        value = table.number(name, param.default, param.minimum, param.maximum)
        params.append((name, value))
    unknown = sorted(set(table.data) - {"kind", "at", "meter", "duration", *spec.params})
    if unknown:
        allowed = ", ".join(["kind", "at", "meter", "duration", *sorted(spec.params)])
        raise ScenarioError(
            table.key(unknown[0]), table.data[unknown[0]], f"a key of {fault.kind}: {allowed}"
        )
    return replace(fault, meter=meter, duration_s=duration_s, params=tuple(params))
