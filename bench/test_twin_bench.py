"""End-to-end throughput of the twin (DESIGN.md §7: uploads per wall-second with the real
pipeline in the loop), in ``calibrated`` mode (in-process and with the pipeline worker) and
in ``model`` mode at a 5 % sample, on a six-hour slice of the baseline (66 sites),
reported; and the gates on the twin's CPU time per upload against a bare ``fromstring`` of
one (``MAX_TWIN_UPLOAD_RATIO``) and on the pipeline worker's speed-up
(``MIN_WORKER_SPEEDUP``). The DESIGN budget of 6,000 uploads/s is not met yet (see the
README); the ratio model / calibrated shows what the pipeline's share of the wall time is.

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
RATIOS.append(
    ("twin run, pipeline worker / in-process (wall time)", "twin_worker", "twin_calibrated")
)
MODEL_5 = ['pipeline.service_time="model"', "pipeline.pipeline_sample_rate=0.05"]


@pytest.mark.parametrize(
    ("name", "extra", "workers"),
    [("twin_calibrated", [], 0), ("twin_worker", [], 1), ("twin_model", MODEL_5, 0)],
)
def test_twin_uploads_per_second(
    benchmark: Any, record_median: Any, name: str, extra: list[str], workers: int
) -> None:
    scenario = load_scenario(BASELINE, [*SLICE, *extra])
    results = benchmark.pedantic(
        lambda: run(scenario, pipeline_workers=workers), rounds=3, iterations=1, warmup_rounds=1
    )
    record_median(name)
    uploads = results.kpis.uploads_started
    benchmark.extra_info["uploads"] = uploads
    if benchmark.stats is not None:  # None under --benchmark-disable
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


#: Gate: the pipeline worker (``--pipeline-workers 1``) against the in-process run, wall
#: time of the baseline's day (220 sites), every upload through the real pipeline: at
#: least this speed-up. It gives 1.36-1.65x on the 2-core machine (1.27x on a day of 110
#: sites, where the set-up both share weighs more); the second core busy with something
#: else takes it towards 1, and a worker waited for on every upload falls below 1.
MIN_WORKER_SPEEDUP = 1.1


#: The ``model`` mode of the DESIGN budget (12,000 uploads/s): the pipeline on 2 % of uploads.
MODEL_2 = ['pipeline.service_time="model"', "pipeline.pipeline_sample_rate=0.02"]


@pytest.mark.gate
def test_pipeline_worker_speeds_up_the_run() -> None:
    """Calibrated and ``model`` 2 % runs of the baseline's day (each in-process and with
    the worker) and blocks of bare parses, in turn, three times: the minimum wall time of
    each; the worker's speed-up (gated), and each run's wall time per delivered upload
    against the parse (reported; DESIGN budget 4x calibrated, 2x model)."""
    runs = {
        "in-process": (load_scenario(BASELINE), 0),
        "pipeline worker": (load_scenario(BASELINE), 1),
        "model 2 %": (load_scenario(BASELINE, MODEL_2), 0),
        "model 2 %, worker": (load_scenario(BASELINE, MODEL_2), 1),
    }
    delivered = run(runs["in-process"][0]).kpis.uploads_delivered  # warm too
    body = sample_upload("pv-00042", 15)
    best = dict.fromkeys((*runs, "fromstring"), float("inf"))
    for _ in range(3):
        for label, (scenario, workers) in runs.items():
            t0 = time.perf_counter()
            run(scenario, pipeline_workers=workers)
            best[label] = min(best[label], time.perf_counter() - t0)
        (parse_s,) = fastest_calls_s([lambda: etree.fromstring(body)], blocks=50)
        best["fromstring"] = min(best["fromstring"], parse_s)
    speedup = best["in-process"] / best["pipeline worker"]
    INTERLEAVED["twin wall time, in-process / pipeline worker"] = (
        speedup,
        best["in-process"],
        best["pipeline worker"],
    )
    for label in runs:
        per_upload_s = best[label] / delivered
        INTERLEAVED[f"twin wall time per delivered upload ({label}) / bare fromstring"] = (
            per_upload_s / best["fromstring"],
            per_upload_s,
            best["fromstring"],
        )
    assert speedup >= MIN_WORKER_SPEEDUP, f"the pipeline worker speeds the run up {speedup:.2f}x"
