"""The run's time series conserve what the KPIs count and show what the run went through."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from twin.outputs.files import write_outputs
from twin.runner import run
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import load_scenario

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"


def test_timeseries_add_up_to_the_kpis_and_show_the_outage(tmp_path: Path) -> None:
    scenario = load_scenario(
        BASELINE, ["fleet.pv.count=20", "fleet.wind.count=4", 'scenario.duration="12h"']
    )
    outage = FaultSpec(kind="cell_outage", at_s=6 * 3600.0, duration_s=3600.0, region="north")
    results = run(replace(scenario, faults=(outage,)))
    files = write_outputs(results, tmp_path, plots=False)
    assert files.timeseries == tmp_path / "timeseries.csv"
    table = np.genfromtxt(files.timeseries, delimiter=",", names=True)
    assert len(table) == 12 * 12
    assert np.all(np.diff(table["t_s"]) == 300.0)
    # every committed reading is in exactly one bin
    assert table["readings_stored"].sum() == results.kpis.readings_stored
    # mean power per 5 min, integrated, is the fleet's energy
    for fleet, energy_kwh in results.kpis.energy_generated_kwh.items():
        integrated_kwh = float(np.sum(table[f"generation_kw_{fleet}"]) * 300.0 / 3600.0)
        assert integrated_kwh == pytest.approx(energy_kwh, rel=1e-7)
    down = table["cell_up_north"] == 0
    assert table["t_s"][down].tolist() == [6 * 3600.0 + 300.0 * i for i in range(12)]
    # nothing is stored while the cell is down (uploads in the VPN/MDC drain within seconds)
    assert table["readings_stored"][down][1:].sum() == 0
    # a meter whose attempt fails in the outage waits for the cell instead of burning its
    # retry budget, so no session gives up; its session stays open through the outage and
    # the windows that fall in it (about 4 per meter) find it busy
    assert results.kpis.uploads_failed == 0
    assert 24 * 3 <= results.kpis.upload_windows_skipped <= 24 * 5
    assert table["sessions_open"][down].mean() > table["sessions_open"][~down].mean()
