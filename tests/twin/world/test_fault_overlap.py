"""Overlapping faults compose as the union of their windows (DESIGN.md §9), kind by kind of
the world's faults: the end of one fault never ends another early. Meter power losses are
checked against the ledger and the pipeline's own store; the network's and MDCs' faults
against the state of what they hit, over a grid of times."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from network.cellular import CELLULAR_PROFILES, SharedCell
from network.faults import NOMINAL, OutageSchedule
from network.vpn import TunnelDynamics, TunnelTimeline
from twin.runner import STORE_NAME, run
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import Scenario, load_scenario
from twin.world.faults import WORLD_FAULTS, CellFaultContext, MdcEffect
from twin.world.world import fault_windows

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
HORIZON_S = 4 * 3600.0
_SMALL = load_scenario(
    SCENARIOS / "baseline.toml",
    ['scenario.duration="4h"', "fleet.wind.count=0", "fleet.pv.count=2"],
)
METER = "pv-00001"
LedgerCheck = Callable[..., None]  # the ledger_check fixture (tests/twin/conftest.py)
#: Times at which states are compared: every 7 s over the run (off the windows' grid).
GRID_S = np.arange(0.0, HORIZON_S, 7.0)

#: Windows [at, end) in whole minutes inside the run.
windows_min = st.lists(
    st.tuples(st.integers(0, 239), st.integers(1, 150)).map(lambda w: (w[0], w[0] + w[1])),
    min_size=2,
    max_size=3,
)


def _union_down(windows_s: list[tuple[float, float]]) -> np.ndarray:
    """Whether each time of ``GRID_S`` lies in the union of ``windows_s``."""
    down = np.zeros(GRID_S.shape, dtype=bool)
    for a, b in windows_s:
        down |= (a <= GRID_S) & (b > GRID_S)
    return down


def _power_losses(windows: list[tuple[int, int]]) -> Scenario:
    faults = tuple(
        FaultSpec(kind="meter_power_loss", at_s=60.0 * a, duration_s=60.0 * (b - a), meter=METER)
        for a, b in windows
    )
    return dataclasses.replace(_SMALL, faults=faults)


def _stored_minutes(store_dir: Path, epoch_s: int) -> set[int]:
    with sqlite3.connect(store_dir / STORE_NAME) as db:
        rows = db.execute("SELECT start_s FROM readings WHERE meter_id = ?", (METER,)).fetchall()
    return {(start_s - epoch_s) // 60 for (start_s,) in rows}


def _check_unpowered(
    windows: list[tuple[int, int]], tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    """The meter records nothing in the union of the windows (whole minutes, clipped to the
    run), the ledger counts exactly those readings as never recorded, the store holds none of
    them, and the faults' ``lost`` add up to the run's losses."""
    scenario = _power_losses(windows)
    results = run(scenario, store_dir=tmp_path, audit_every_s=300.0)
    horizon_min = int(HORIZON_S // 60)
    union = OutageSchedule((a, min(b, horizon_min)) for a, b in windows).windows
    dark = {m for a, b in union for m in range(int(a), int(b))}
    lost = results.kpis.readings_lost
    assert lost["meter_unpowered"] == len(dark)
    # every loss is one of the faults', counted once however they overlap
    assert sum(f.lost or 0 for f in results.faults) == sum(lost.values())
    stored = _stored_minutes(tmp_path, int(scenario.start.timestamp()))
    assert not stored & dark
    ledger_check(results, tmp_path)


def test_the_inner_of_two_nested_power_losses_does_not_power_the_meter_back_on(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    # 60-120 min and 80-100 min: unpowered for the hour, minutes 100-119 never recorded
    _check_unpowered([(60, 120), (80, 100)], tmp_path, ledger_check)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(windows=windows_min)
def test_overlapping_power_losses_leave_the_meter_dark_over_their_union(
    windows: list[tuple[int, int]], tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    _check_unpowered(windows, tmp_path, ledger_check)


def _cell_effect(kind: str, cells: list[SharedCell], window: tuple[float, float]) -> None:
    effect = WORLD_FAULTS[kind].on_cells
    assert effect is not None
    params = {"mtbf_s": 600.0, "mttr_s": 120.0} if kind == "cell_flapping" else {}
    context = CellFaultContext(*window, params, lambda: np.random.default_rng(3))
    effect(cells, context)


@settings(max_examples=40, deadline=None)
@given(
    kinds=st.tuples(
        st.sampled_from(["cell_outage", "regional_outage"]),
        st.sampled_from(["cell_outage", "regional_outage", "cell_flapping"]),
    ),
    windows=windows_min,
)
def test_overlapping_cell_outages_keep_the_cell_down_over_their_union(
    kinds: tuple[str, str], windows: list[tuple[int, int]]
) -> None:
    cell = SharedCell(simpy.Environment(), CELLULAR_PROFILES["lte-m"])
    seconds = [(60.0 * a, 60.0 * b) for a, b in windows]
    _cell_effect(kinds[0], [cell], seconds[0])
    for window in seconds[1:]:
        _cell_effect(kinds[1], [cell], window)
    up = np.array([cell.is_up(t) for t in GRID_S])
    outage = _union_down(seconds[:1] + (seconds[1:] if kinds[1] != "cell_flapping" else []))
    assert not np.any(up & outage)  # down whenever any outage holds it down
    if kinds[1] != "cell_flapping":
        assert np.array_equal(~up, outage)  # and up everywhere else


@settings(max_examples=40, deadline=None)
@given(windows=windows_min)
def test_overlapping_degradations_of_one_kind_act_as_one_over_their_union(
    windows: list[tuple[int, int]],
) -> None:
    params = {"extra_loss_probability": 0.2, "extra_latency_s": 0.5, "rate_factor": 0.5}
    twice = SharedCell(simpy.Environment(), CELLULAR_PROFILES["lte-m"])
    seconds = [(60.0 * a, 60.0 * b) for a, b in windows]
    effect = WORLD_FAULTS["degraded_coverage"].on_cells
    assert effect is not None
    for window in seconds:
        effect([twice], CellFaultContext(*window, params, lambda: np.random.default_rng(0)))
    once = SharedCell(simpy.Environment(), CELLULAR_PROFILES["lte-m"])
    effect([once], CellFaultContext(0.0, HORIZON_S, params, lambda: np.random.default_rng(0)))
    inside = _union_down(seconds)
    for t, degraded in zip(GRID_S.tolist(), inside.tolist(), strict=True):
        assert twice.condition_at(t) == (once.condition_at(t) if degraded else NOMINAL)


@settings(max_examples=40, deadline=None)
@given(windows=windows_min, seed=st.integers(0, 100))
def test_overlapping_vpn_drops_keep_the_tunnel_down_over_their_union(
    windows: list[tuple[int, int]], seed: int
) -> None:
    seconds = [(60.0 * a, 60.0 * b) for a, b in windows]
    timeline = TunnelTimeline.build(
        TunnelDynamics(rekey_interval_s=10 * HORIZON_S),
        HORIZON_S,
        np.random.default_rng(seed),
        [(a, b - a) for a, b in seconds],
    )
    up = timeline.is_up_many(GRID_S)
    assert not np.any(up & _union_down(seconds))


@given(windows=windows_min)
def test_power_losses_of_an_mdc_and_of_a_meter_merge_into_their_union(
    windows: list[tuple[int, int]],
) -> None:
    seconds = [(60.0 * a, 60.0 * b) for a, b in windows]
    faults = [
        FaultSpec(kind=kind, at_s=a, duration_s=b - a, mdc="north", meter=METER)
        for kind in ("mdc_power_loss", "meter_power_loss", "vpn_drop")
        for a, b in seconds
    ]
    union = OutageSchedule(seconds).windows
    dark = fault_windows(faults, lambda k: k.on_mdc is MdcEffect.DARK, "mdc")
    unpowered = fault_windows(faults, lambda k: k.on_meter_power, "meter")
    assert dark == {"north": union} and unpowered == {METER: union}


def test_an_mdc_under_two_overlapping_power_losses_stays_dark_until_the_later_end() -> None:
    faults = tuple(
        FaultSpec(kind="mdc_power_loss", at_s=60.0 * a, duration_s=60.0 * (b - a), mdc="north")
        for a, b in [(60, 120), (80, 100)]
    )
    results = run(dataclasses.replace(_SMALL, faults=faults))
    table = results.series.timeseries
    t_s = table.rows[:, table.columns.index("t_s")]
    mdc_up = table.rows[:, table.columns.index("mdc_up_north")]
    assert np.all(mdc_up[(t_s >= 3600.0) & (t_s < 7200.0)] == 0.0)
    assert np.all(mdc_up[(t_s < 3600.0) | (t_s >= 7200.0)] == 1.0)
    assert results.mdcs[0].power_losses == 1  # one loss of power, over the union
