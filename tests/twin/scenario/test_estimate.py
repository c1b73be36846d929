"""The run's size estimate against the run's real arrays: what it keeps is exactly the bytes
of the fleets' and the ledger's arrays, its peak is what numpy allocates at the run's peak
(tracemalloc), and a run that cannot fit is refused naming both figures."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from twin.accounting.ledger import Ledger
from twin.cli import main
from twin.errors import UsageError
from twin.runner import run
from twin.scenario.estimate import RunEstimate, check_fits, estimate_run
from twin.scenario.loader import load_scenario
from twin.world.fleet import build_fleets

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
MODEL = ['pipeline.service_time="model"', "pipeline.pipeline_sample_rate=0.05"]
#: Scenario, and its overrides for a fleet of ``n`` sites (weather file, loads, synthetic).
CASES = [
    ("baseline.toml", lambda n: [f"fleet.pv.count={n}", "fleet.wind.count=0", *MODEL]),
    ("heatwave.toml", lambda n: ['scenario.duration="1d"', f"fleet.clinic.count={n}", *MODEL]),
    ("windstorm.toml", lambda n: ['scenario.duration="1d"', f"fleet.wind.count={n}", *MODEL]),
]


def _traced_peak_bytes(call: Callable[[], object]) -> int:
    """What numpy (and Python) allocated at the peak of ``call``, bytes (tracemalloc)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("name", "sized"), CASES)
def test_the_estimate_keeps_exactly_the_runs_arrays(
    name: str, sized: Callable[[int], list[str]]
) -> None:
    scenario = load_scenario(SCENARIOS / name, sized(8))
    estimate = estimate_run(scenario)
    fleets = build_fleets(scenario)
    arrays = [f.power_w for f in fleets] + [f.load_w for f in fleets if f.load_w is not None]
    arrays += [c.values for f in fleets for c in f.channels]
    n_readings = np.array([f.power_w.shape[1] for f in fleets for _ in f.meter_ids])
    ledger = Ledger(n_readings, np.full(len(n_readings), 60.0))
    ledger_bytes = sum(
        a.nbytes for a in (ledger.copies, ledger.final, ledger.blame, ledger.final_at_s)
    )
    assert estimate.readings == int(n_readings.sum())
    assert estimate.kept_bytes == sum(a.nbytes for a in arrays) + ledger_bytes


@pytest.mark.parametrize(("name", "sized"), CASES[:2])
def test_the_estimate_of_building_grows_as_its_peak(
    name: str, sized: Callable[[int], list[str]]
) -> None:
    # what 300 more sites add to the peak of building the fleets: within 25 %
    small, large = (load_scenario(SCENARIOS / name, sized(n)) for n in (100, 400))
    measured = _traced_peak_bytes(lambda: build_fleets(large))
    measured -= _traced_peak_bytes(lambda: build_fleets(small))
    estimated = estimate_run(large).build_bytes - estimate_run(small).build_bytes
    assert 0.75 <= measured / estimated <= 1.25


def test_the_estimate_of_a_run_grows_as_its_peak() -> None:
    # what 180 more sites add to the peak of a run (half a day): within 25 %
    sized = CASES[0][1]
    small, large = (
        load_scenario(SCENARIOS / "baseline.toml", [*sized(n), 'scenario.duration="12h"'])
        for n in (60, 240)
    )
    measured = _traced_peak_bytes(lambda: run(large)) - _traced_peak_bytes(lambda: run(small))
    estimated = estimate_run(large).memory_bytes - estimate_run(small).memory_bytes
    assert 0.75 <= measured / estimated <= 1.25


def test_a_run_that_cannot_fit_is_refused_naming_its_need_and_the_machines_memory() -> None:
    scenario = load_scenario(SCENARIOS / "baseline.toml", ["fleet.pv.count=1000000"])
    estimate = estimate_run(scenario)
    assert estimate.readings == (1_000_000 + 20) * 1440
    with pytest.raises(UsageError) as info:
        check_fits(estimate, available=16 * 2**30)
    message = str(info.value)
    assert f"it needs about {estimate.memory_bytes / 2**30:,.1f} GiB" in message
    assert "this machine has 16.0 GiB available" in message
    check_fits(RunEstimate(1, 1, 1, 1, 1, 1, 2**30, 1.0), available=2 * 2**30)  # fits: no error


def test_validate_prints_the_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SCENARIOS / "baseline.toml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  estimate: 220 sites, 316,800 readings, 21,120 uploads; about ")
