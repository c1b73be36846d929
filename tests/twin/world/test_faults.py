"""The registry of the world's faults: every kind declares one effect that fits its target,
the scenario schema reads each kind from its declaration (defaults filled in, parameters
sorted, unknown keys rejected), and a fault hits the cells its target says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import simpy

from meters.faults import ParamSpec
from network.cellular import CELLULAR_PROFILES, SharedCell
from twin.errors import ScenarioError
from twin.scenario.faults import FAULT_KINDS, FaultSpec, parse_fault
from twin.scenario.loader import load_scenario
from twin.scenario.schema import Table
from twin.world.faults import WORLD_FAULTS, CellFaultContext, DurationParam, Target

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"
_SCENARIO = load_scenario(BASELINE)
_TARGET_KEYS = {
    Target.CELL: {"region": "north", "cell": 0},
    Target.REGION: {"region": "north"},
    Target.MDC: {"mdc": "north"},
    Target.METER: {"meter": "pv-00001"},
}


def _table(kind: str, **extra: object) -> dict[str, object]:
    """The smallest [[fault]] table of ``kind`` its declaration accepts."""
    spec = WORLD_FAULTS[kind]
    table: dict[str, object] = {"kind": kind, "at": "1h", **_TARGET_KEYS[spec.target]}
    if spec.timed:
        table["duration"] = "30min"
    if spec.on_upload is not None:
        table["payload"] = spec.on_upload.payloads[0]
    for param in spec.params.values():
        if isinstance(param, DurationParam) and param.default is None:
            table[param.key] = "10min"
    return table | extra


def _parse(table: dict[str, object]) -> FaultSpec:
    names = tuple(m.name for m in _SCENARIO.mdcs)
    return parse_fault(Table(table, "fault.0"), _SCENARIO.fleets, 86400.0, names, 2)


@pytest.mark.parametrize("kind", sorted(WORLD_FAULTS))
def test_each_kind_has_one_effect_that_fits_its_target(kind: str) -> None:
    spec = WORLD_FAULTS[kind]
    assert spec.name == kind and kind in FAULT_KINDS
    effects = [spec.on_cells, spec.on_mdc, spec.on_upload, spec.on_meter_power or None]
    assert sum(e is not None for e in effects) == 1
    on_cells = spec.target in (Target.CELL, Target.REGION)
    assert (spec.on_cells is not None) == on_cells
    assert (spec.on_mdc is not None) == (spec.target is Target.MDC)
    assert spec.cuts_off_meters == (spec.target is not Target.METER)
    assert not spec.reconnect_storm or on_cells


@pytest.mark.parametrize("kind", sorted(WORLD_FAULTS))
def test_the_schema_reads_each_kind_from_its_declaration(kind: str) -> None:
    spec = WORLD_FAULTS[kind]
    fault = _parse(_table(kind))
    assert fault.kind == kind and fault.at_s == 3600.0
    assert fault.duration_s == (1800.0 if spec.timed else 0.0)
    params = fault.params
    assert [name for name, _ in params] == sorted(spec.params)
    for name, value in params:
        declared = spec.params[name]
        if isinstance(declared, ParamSpec):
            assert value == declared.default
        elif declared.default is None:
            assert value == 600.0
    with pytest.raises(ScenarioError, match="a known key here") as info:
        _parse(_table(kind, colour="red"))
    assert info.value.key == "fault.0.colour"


def test_targets_hit_one_cell_or_every_cell_of_the_region() -> None:
    env = simpy.Environment()
    cells = [SharedCell(env, CELLULAR_PROFILES["lte-m"]) for _ in range(3)]
    assert Target.CELL.cells_hit(cells, 1) == [cells[1]]
    assert Target.CELL.cells_hit(cells, -1) == cells
    assert Target.REGION.cells_hit(cells, 1) == cells
    flapping = WORLD_FAULTS["cell_flapping"]
    assert flapping.on_cells is not None
    context = CellFaultContext(
        100.0,
        7300.0,
        {"mtbf_s": 600.0, "mttr_s": 60.0},
        lambda: np.random.default_rng(5),
    )
    report = flapping.on_cells(cells[:1], context)
    outages = cells[0].schedule.windows
    assert report == {"outages": len(outages)} and len(outages) > 3
    assert all(100.0 <= a < b <= 7300.0 for a, b in outages)
    assert cells[1].schedule.windows == []  # a cell it does not hit is untouched
