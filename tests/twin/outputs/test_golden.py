"""Golden KPIs: deterministic for a seed, every shipped scenario has them, drift fails
with a diff naming the value, and an update is reproducible byte for byte."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from twin.cli import main
from twin.outputs.golden import (
    GoldenFile,
    check,
    drift,
    golden_values,
    orphans,
    plan,
    run_golden,
    update,
)
from twin.scenario.loader import load_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
#: A 6 h slice of the baseline: 30 sites.
SLICE = ["fleet.pv.count=24", "fleet.wind.count=6", 'scenario.duration="6h"']


def test_two_runs_give_identical_golden_values() -> None:
    first, _ = run_golden(SCENARIOS / "baseline.toml", SLICE)
    second, _ = run_golden(SCENARIOS / "baseline.toml", SLICE)
    assert first == second
    assert first["readings_generated"] == 30 * 6 * 60
    assert first["ledger.balanced"] is True
    text = GoldenFile("baseline", 7, SLICE, "a slice", first).to_text()
    assert text == GoldenFile("baseline", 7, SLICE, "a slice", second).to_text()


def test_every_shipped_scenario_has_golden_kpis_for_its_default_seed() -> None:
    for path in sorted(SCENARIOS.glob("*.toml")):
        golden = GoldenFile.read(SCENARIOS / "golden" / f"{path.stem}.json")
        scenario = load_scenario(path, golden.overrides)  # the declared overrides still apply
        assert (golden.scenario, golden.seed) == (path.stem, scenario.seed)
        assert golden.note and ("shortened for CI" in golden.note) == bool(golden.overrides)
        assert golden.values["readings_generated"] == sum(
            int(f.count * scenario.duration_s // f.meter.sample_s) for f in scenario.fleets
        )
        assert golden.values["ledger.balanced"] is True
    # and no golden file outlives its scenario
    scenarios = {p.stem for p in SCENARIOS.glob("*.toml")}
    assert {p.stem for p in (SCENARIOS / "golden").glob("*.json")} == scenarios


def test_drift_names_each_value_outside_its_tolerance() -> None:
    golden = {"readings_lost_total": 0, "latency_s.p99": 900.0, "energy_mdc_kwh.north": 0.6}
    golden |= {"gone": 1, "mdcs.north.little_ok": True}
    now = {"readings_lost_total": 12, "latency_s.p99": 900.0004, "energy_mdc_kwh.north": 0.61}
    now |= {"new": 2.5, "mdcs.north.little_ok": True}
    assert drift(golden, now) == [
        "  energy_mdc_kwh.north: golden 0.6, now 0.61, +1.667 % (tolerance 1e-06 relative + 1e-06)",
        "- gone: golden 1, no longer reported",
        "+ new: now 2.5, not in the golden file",
        "  readings_lost_total: golden 0, now 12 (exact)",
    ]
    # p99 moved 0.4 ms of 900 s (4.4e-7 relative): within its tolerance; 2 ms is not
    assert drift({"latency_s.p99": 900.0}, {"latency_s.p99": 900.002}) == [
        "  latency_s.p99: golden 900.0, now 900.002, +0.0002222 % (tolerance 1e-06 relative "
        "+ 1e-06)"
    ]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A scenario folder holding the baseline only."""
    shutil.copy(SCENARIOS / "baseline.toml", tmp_path / "baseline.toml")
    return tmp_path


def test_check_fails_with_a_readable_diff_and_update_restores_it(folder: Path) -> None:
    out = io.StringIO()
    assert update(plan(folder, [], SLICE), 1, out) == 0
    golden_path = folder / "golden" / "baseline.json"
    written = golden_path.read_text("utf-8")
    assert "wrote  baseline" in out.getvalue()
    assert check(plan(folder, [], None), 1, io.StringIO()) == 0

    data = json.loads(written)
    data["values"]["readings_stored"] -= 1
    data["values"]["hop_latency_s.vpn.p50"] /= 2  # as if the VPN had been twice as fast
    golden_path.write_text(json.dumps(data), "utf-8")
    out = io.StringIO()
    assert check(plan(folder, ["baseline"], None), 1, out) == 1
    report = out.getvalue().splitlines()
    assert report[0].startswith("DRIFT  baseline")
    assert report[1].startswith("      hop_latency_s.vpn.p50: golden ")
    assert "+100 %" in report[1]
    assert report[2].startswith("      readings_stored: golden ")
    assert report[2].endswith("(exact)")
    assert report[-1].startswith("golden: 1 of 1 scenarios drifted (baseline)")

    # the update keeps the declared overrides and rewrites the very same file
    assert update(plan(folder, [], None), 1, io.StringIO()) == 0
    assert golden_path.read_text("utf-8") == written


def test_a_missing_golden_file_fails_the_check(folder: Path) -> None:
    out = io.StringIO()
    jobs = plan(folder, [], SLICE)
    assert check(jobs, 1, out) == 1
    assert "no golden file" in out.getvalue()


def test_a_golden_file_without_its_scenario_fails_the_check_and_the_update_removes_it(
    folder: Path,
) -> None:
    (folder / "golden").mkdir()
    gone = folder / "golden" / "renamed.json"
    gone.write_text(GoldenFile("renamed", 7, [], "the full scenario", {"x": 1}).to_text())
    (folder / "golden" / "baseline.json").write_text("{}")
    assert orphans(folder) == [gone]
    out = io.StringIO()
    assert check([], 1, out, orphans(folder)) == 1
    assert out.getvalue().startswith(f"STALE  {gone}: no scenario renamed.toml")
    assert out.getvalue().rstrip().endswith("if the change is intended: twin golden --update")
    out = io.StringIO()
    assert update([], 1, out, orphans(folder)) == 0
    assert out.getvalue() == f"removed {gone}: no scenario renamed.toml\n"
    assert not gone.exists() and orphans(folder) == []


def test_update_of_every_scenario_is_one_command(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``twin golden --update`` (no name) writes the golden file of each scenario and
    removes those of scenarios that are gone; the check then passes."""
    (folder / "golden").mkdir()
    gone = folder / "golden" / "renamed.json"
    gone.write_text(GoldenFile("renamed", 7, [], "the full scenario", {"x": 1}).to_text())
    tiny = ["fleet.pv.count=2", "fleet.wind.count=1", 'scenario.duration="1h"']
    sets = [arg for o in tiny for arg in ("--set", o)]
    assert main(["golden", "--dir", str(folder), "--update", "--jobs", "1", *sets]) == 0
    out = capsys.readouterr().out
    assert f"removed {gone}" in out and "wrote  baseline" in out
    assert sorted(p.name for p in (folder / "golden").iterdir()) == ["baseline.json"]
    assert GoldenFile.read(folder / "golden" / "baseline.json").overrides == tiny
    assert main(["golden", "--dir", str(folder), "--check", "--jobs", "1"]) == 0


def test_records_that_share_a_name_are_all_kept() -> None:
    """Two analytics scores of one fault kind (two detectors) both get golden values, as
    do the confusion matrix, each forecast step and each weather station."""
    score = {"fault_kind": "icing", "detection_kind": "flatline", "recall": 0.5}
    step = {"n": 4, "skill": 0.25}
    minimal = {
        "kpis": {"readings_generated": 10, "readings_lost_total": 0},
        "ledger": {},
        "faults": [],
        "mdcs": [],
        "network": {"vpn": []},
        "analytics": {
            "recall": 0.75,
            "kinds": [score, score | {"detection_kind": "drift", "recall": 1.0}],
            "confusion": {"icing": {"icing": 1, "missed": 2}},
            "no_effect": [["spike", "pv-1", 3.0]],
        },
        "forecasts": {"pv": {"issued": 3, "by_step": [step, step | {"skill": 0.5}]}},
        "weather_feed": [{"station_id": "met-north", "values_stored": 9}],
    }
    values = golden_values(minimal)
    assert values["analytics.recall"] == 0.75
    assert values["analytics.kinds.icing.flatline.recall"] == 0.5
    assert values["analytics.kinds.icing.drift.recall"] == 1.0
    assert values["analytics.confusion.icing.missed"] == 2
    assert values["forecasts.pv.by_step.2.skill"] == 0.5
    assert values["weather_feed.met-north.values_stored"] == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--check", "nosuch"], "NAME = 'nosuch': expected a scenario of"),
        (["--check", "--set", 'scenario.duration="1h"'], "expected given with --update only"),
        (["--check", "--jobs", "0"], "--jobs = 0: expected an integer >= 1"),
    ],
)
def test_misuse_is_one_line_and_exit_2(
    folder: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["golden", "--dir", str(folder), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("twin: error: ") and message in err
