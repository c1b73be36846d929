"""End-to-end throughput of the twin (DESIGN.md §7: uploads per wall-second with the real
pipeline in the loop), in ``calibrated`` mode and in ``model`` mode at a 5 % sample, on a
six-hour slice of the baseline (66 sites), reported; and the gate on the twin's wall time
per upload against a bare ``fromstring`` of one (``MAX_TWIN_UPLOAD_RATIO``). The DESIGN
budget of 6,000 uploads/s is not met yet (see the README); the ratio model / calibrated
shows what the pipeline's share of the wall time is.

Run: ``.venv/bin/pytest bench/test_twin_bench.py -o testpaths=bench``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from bench.conftest import INTERLEAVED, RATIOS, fastest_calls_s
from twin.runner import run
from twin.scenario.loader import load_scenario
from twin.sil.calibrate import sample_upload

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


#: A longer and a shorter slice of the baseline (66 sites): their difference is the cost
#: of the uploads in between, without the set-up both share (weather, fleets, store).
MARGINAL = {"short": 'scenario.duration="2h"', "long": 'scenario.duration="6h"'}
#: Gate (DESIGN.md §7 budget: 4x, not met yet): the twin's time per upload, every upload
#: through the real pipeline, against a bare ``fromstring`` of the twin's typical upload.
#: The twin is one process, so its CPU time is its wall time on an idle machine, and the
#: robust measure on a busy one. It gives 17-23x on the shared 2-core machine under load,
#: so a twin that got half as fast again shows and noise does not.
MAX_TWIN_UPLOAD_RATIO = 32.0


def _cpu_s(scenario: Any) -> float:
    t0 = time.process_time()
    run(scenario)
    return time.process_time() - t0


@pytest.mark.gate
def test_twin_cost_per_upload_vs_bare_fromstring() -> None:
    """The long and the short slice (CPU time) and blocks of bare parses, in turn, three
    times: the minimum of each, and (long - short) / extra uploads against the parse."""
    scenarios = {k: load_scenario(BASELINE, [*SLICE[:2], v]) for k, v in MARGINAL.items()}
    uploads = {k: run(s).kpis.uploads_started for k, s in scenarios.items()}  # warm too
    body = sample_upload("pv-00042", 15)
    best = dict.fromkeys(("long", "short", "fromstring"), float("inf"))
    for _ in range(3):
        for name, scenario in scenarios.items():
            best[name] = min(best[name], _cpu_s(scenario))
        (parse_s,) = fastest_calls_s([lambda: etree.fromstring(body)], blocks=50)
        best["fromstring"] = min(best["fromstring"], parse_s)
    per_upload_s = (best["long"] - best["short"]) / (uploads["long"] - uploads["short"])
    ratio = per_upload_s / best["fromstring"]
    INTERLEAVED["twin CPU time per upload / bare fromstring"] = (
        ratio,
        per_upload_s,
        best["fromstring"],
    )
    assert ratio <= MAX_TWIN_UPLOAD_RATIO, f"the twin costs {ratio:.1f}x a bare parse per upload"
