"""End-to-end throughput of the twin (DESIGN.md §7: uploads per wall-second with the real
pipeline in the loop), in ``calibrated`` mode and in ``model`` mode at a 5 % sample, on a
six-hour slice of the baseline (66 sites). Reported, not gated: the DESIGN budget of 6,000
uploads/s is not met yet (see the README); the ratio model / calibrated shows what the
pipeline's share of the wall time is.

Run: ``.venv/bin/pytest bench/test_twin_bench.py -o testpaths=bench``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.conftest import RATIOS
from twin.runner import run
from twin.scenario.loader import load_scenario

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml"
SLICE = ["fleet.pv.count=60", "fleet.wind.count=6", 'scenario.duration="6h"']

RATIOS.append(("twin run, model 5 % / calibrated (wall time)", "twin_model", "twin_calibrated"))


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("twin_calibrated", []),
        ("twin_model", ['pipeline.service_time="model"', "pipeline.pipeline_sample_rate=0.05"]),
    ],
)
def test_twin_uploads_per_second(
    benchmark: Any, record_median: Any, name: str, extra: list[str]
) -> None:
    scenario = load_scenario(BASELINE, [*SLICE, *extra])
    results = benchmark.pedantic(lambda: run(scenario), rounds=3, iterations=1, warmup_rounds=1)
    record_median(name)
    uploads = results.kpis.uploads_started
    benchmark.extra_info["uploads"] = uploads
    benchmark.extra_info["uploads_per_s"] = uploads / benchmark.stats.stats.median
    k = results.kpis
    assert k.readings_lost_total == 0
    assert k.readings_generated == k.readings_stored + k.readings_in_flight
