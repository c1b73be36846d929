"""The pipeline's short-term PV forecasts, scored by the twin against the true output."""

from __future__ import annotations

from pathlib import Path

from twin.runner import run
from twin.scenario.loader import load_scenario

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"


def test_pv_forecasts_beat_persistence_on_clear_summer_days() -> None:
    # four days: forecasts start once two days of history are stored
    scenario = load_scenario(
        BASELINE, ["fleet.pv.count=12", "fleet.wind.count=0", 'scenario.duration="4d"']
    )
    fc = run(scenario).forecasts
    assert fc.issued > 12 * 24  # hourly, per site, over the last two days
    assert fc.scored is not None and fc.scored > 0
    errors = fc.realised
    assert errors is not None
    # the clear-sky expectation carries the diurnal shape that persistence misses
    assert errors.skill is not None and errors.skill > 0.3
    assert errors.mae_wh < 0.5 * errors.mae_persistence_wh
    # errors grow with the horizon
    first, last = errors.mae_wh_by_step[0], errors.mae_wh_by_step[-1]
    assert first is not None and last is not None and first < last
