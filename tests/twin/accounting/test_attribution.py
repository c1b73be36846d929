"""Which fault lost which readings: each loss counts for at most the one fault whose scope
(causes, meters, time) holds it, the latest-begun where scopes overlap; in a run, a fault
that loses nothing reports nothing lost beside one that does."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from twin.accounting.attribution import LossScope, attribute_losses
from twin.accounting.ledger import Ledger, Losses
from twin.runner import run
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import load_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
LedgerCheck = Callable[..., None]  # the ledger_check fixture (tests/twin/conftest.py)


def _losses(*rows: tuple[int, str, float]) -> Losses:
    meter, cause, at_s = zip(*rows, strict=True)
    return Losses(np.array(meter), np.array(cause), np.array(at_s))


def test_a_loss_goes_to_the_scope_of_its_cause_meter_and_time() -> None:
    losses = _losses(
        (0, "meter_unpowered", 100.0),
        (0, "meter_unpowered", 500.0),  # after the power loss's window
        (1, "meter_unpowered", 100.0),  # another meter
        (0, "rejected_invalid", 100.0),  # a cause the power loss cannot have
    )
    power = LossScope(np.array([0]), ("meter_power_loss", "meter_unpowered"), 50.0, 200.0)
    assert attribute_losses(losses, [power]) == [1]


def test_overlapping_scopes_share_no_loss_and_the_latest_begun_takes_it() -> None:
    losses = _losses(*[(m, "meter_buffer_overflow", t) for m in (0, 1) for t in (10.0, 70.0)])
    cell = LossScope(np.array([0, 1]), ("meter_buffer_overflow",), 0.0, 100.0)
    mdc = LossScope(np.array([1]), ("meter_buffer_overflow",), 60.0, 100.0)
    # meter 1 at 70 s is in both: the MDC's, begun later; the cell keeps the other three
    assert attribute_losses(losses, [cell, mdc]) == [3, 1]
    assert attribute_losses(losses, [mdc, cell]) == [1, 3]


def test_the_ledger_dates_each_loss_by_its_clock() -> None:
    now = [0.0]
    ledger = Ledger(np.array([10, 10]), np.array([60.0, 60.0]), clock=lambda: now[0])
    ledger.touch(1, 5)
    now[0] = 330.0
    ledger.drop_copy(1, 0, 3, "meter_power_loss")
    losses = ledger.losses()
    assert losses.meter.tolist() == [1, 1, 1]
    assert losses.cause.tolist() == ["meter_power_loss"] * 3
    assert losses.at_s.tolist() == [330.0] * 3


def test_a_fault_that_loses_nothing_reports_nothing_lost_beside_one_that_does(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    scenario = load_scenario(
        SCENARIOS / "baseline.toml",
        ['scenario.duration="4h"', "fleet.wind.count=0", "fleet.pv.count=2"],
    )
    faults = (
        FaultSpec(kind="meter_power_loss", at_s=1800.0, duration_s=3600.0, meter="pv-00001"),
        FaultSpec(kind="mdc_power_loss", at_s=7200.0, duration_s=1800.0, mdc="north"),
    )
    results = run(dataclasses.replace(scenario, faults=faults), store_dir=tmp_path)
    lost = results.kpis.readings_lost
    meter, mdc = results.faults
    assert lost["meter_unpowered"] == 60 and sum(lost.values()) > 0
    assert meter.lost == sum(lost.values())  # every loss of the run is the meter's
    assert mdc.lost == 0 and mdc.drain is not None and mdc.drain.meters_affected == 2
    assert meter.to_json()["lost"] == meter.lost and mdc.to_json()["lost"] == 0
    ledger_check(results, tmp_path)
