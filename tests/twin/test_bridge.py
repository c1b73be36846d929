"""Software in the loop: calibration fits the real pipeline; both service-time modes run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.service import STAGES
from twin.bridge import load_cost_model
from twin.calibrate import calibrate, sample_upload
from twin.cli import main
from twin.errors import ScenarioError
from twin.runner import run
from twin.scenario import load_scenario

BASELINE = Path(__file__).resolve().parents[2] / "scenarios" / "baseline.toml"
SMALL = ["fleet.pv.count=10", "fleet.wind.count=2", 'scenario.duration="3h"']


def test_calibration_fits_costs_that_grow_with_the_upload(tmp_path: Path) -> None:
    model = calibrate(repeats=5)
    assert set(model.stages) == set(STAGES)
    r2 = model.machine["r_squared"]
    assert isinstance(r2, dict) and all(r2[s] > 0.5 for s in ("fetch", "process", "store"))
    small = model.stages["process"].seconds(len(sample_upload("m", 1)), 1)
    large = model.stages["process"].seconds(len(sample_upload("m", 960)), 960)
    assert 0 < small < large
    # the CLI writes a file that a scenario can name as its cost model
    out = tmp_path / "model.json"
    assert main(["calibrate", "--repeats", "3", "--out", str(out)]) == 0
    assert set(json.loads(out.read_text())["stages"]) == set(STAGES)
    assert load_cost_model(str(out)).stages.keys() == model.stages.keys()


def test_committed_default_model_is_sane() -> None:
    model = load_cost_model("default")
    per_upload_s = sum(c.seconds(len(sample_upload("m", 15)), 15) for c in model.stages.values())
    assert 20e-6 < per_upload_s < 5e-3  # tens to hundreds of microseconds per upload


def test_measured_mode_uses_real_cpu_time_and_stores_the_same_readings() -> None:
    calibrated = run(load_scenario(BASELINE, SMALL))
    measured = run(load_scenario(BASELINE, [*SMALL, 'pipeline.service_time="measured"']))
    assert measured.ledger["balanced"]
    assert measured.service_time["mode"] == "measured"
    # service times differ in the microseconds, far below the network's timescales, so
    # the functional outcome is the same readings stored
    assert measured.kpis.readings_stored == calibrated.kpis.readings_stored
    assert 0 < measured.kpis.utilization["north/server-0"] < 1


def test_unknown_cost_model_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"pipeline\.cost_model"):
        load_scenario(BASELINE, [*SMALL, f'pipeline.cost_model="{tmp_path}/none.json"'])
