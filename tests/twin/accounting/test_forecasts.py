"""The pipeline's short-term PV forecasts, scored by the twin against the true output and
against smart persistence on the same hours, per horizon step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import ForecastRecord
from twin.accounting.forecasts import score_forecasts, score_forecasts_by_kind
from twin.runner import run
from twin.scenario.loader import load_scenario

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"


def test_realised_errors_and_skill_per_step_against_the_reference() -> None:
    """Truth 100 Wh every hour; the forecast is off by 10 Wh, the reference by 20 Wh at
    step 1 and 40 Wh at step 2: skill 0.5 and 0.75 per step; night hours (all zero) do not
    count."""
    sites = {"pv-1": (np.full(48, 100.0), 3600.0), "pv-2": (np.zeros(48), 3600.0)}
    records = [
        ForecastRecord("pv-1", 19, "m", 3600 * h, 3600, 2, (110.0, 90.0), "ref", (120.0, 60.0))
        for h in range(10)
    ] + [ForecastRecord("pv-2", 19, "m", 0, 3600, 2, (0.0, 0.0), "ref", (0.0, 0.0))]
    s = score_forecasts(records, sites, 0)
    assert s.issued == 11 and s.methods == ["m"] and s.references == ["ref"]
    assert [e.n for e in s.by_step] == [10, 10]
    assert [e.skill for e in s.by_step] == [0.5, 0.75]
    assert s.overall is not None and s.overall.mae_wh == 10.0
    assert s.overall.reference_rmse_wh == np.sqrt((20**2 + 40**2) / 2)
    by_kind = score_forecasts_by_kind(records, sites, 0, {"pv-1": "pv"})
    assert set(by_kind) == {"pv", "other"}


def test_pv_forecasts_with_the_feed_beat_smart_persistence() -> None:
    scenario = load_scenario(
        BASELINE, ["fleet.pv.count=12", "fleet.wind.count=0", 'scenario.duration="2d"']
    )
    pv = run(scenario).forecasts["pv"]
    # hourly per site from the first morning hour with a measured clear-sky index (about
    # 9 h after the start at midnight) to the end
    assert 12 * 38 <= pv.issued <= 12 * 40
    assert "feed_regression" in pv.methods and pv.references == ["smart_persistence"]
    assert pv.overall is not None and pv.overall.skill is not None and pv.overall.skill > 0.2
    # the aim: skill >= 0.2 against smart persistence at every step of 1-6 h
    assert len(pv.by_step) == 6 and all(e.n > 100 for e in pv.by_step)
    assert all(e.skill is not None and e.skill >= 0.2 for e in pv.by_step), pv.by_step
