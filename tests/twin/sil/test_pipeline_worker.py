"""The pipeline in a worker process (``--pipeline-workers 1``): the same results as the
in-process run, byte for byte, on scenarios with faults; a wrong prediction or a dead
worker stops the run naming the upload, never a hang or a silent drop."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from meters.weather_station import StationSpec, encode_observations
from pipeline import AnalysisOutcome, Pipeline
from twin.errors import PipelineWorkerError
from twin.runner import STORE_NAME, run
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import load_scenario
from twin.sil.calibrate import sample_upload
from twin.sil.pipeline_worker import Expected, PipelineWorker

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"

#: Each scenario shortened and thinned, its fault windows kept: a few seconds a run.
CASES = {
    "baseline": ["fleet.pv.count=40", "fleet.wind.count=4", 'scenario.duration="8h"'],
    "cell_outage": ["fleet.pv.count=40", "fleet.wind.count=4", 'scenario.duration="13h"'],
    "mdc_failover": [
        "fleet.pv.count=30",
        "fleet.pvsouth.count=30",
        "fleet.wind.count=4",
        'scenario.duration="15h"',
    ],
    "server_failure": ["fleet.pv.count=60", "fleet.wind.count=6", 'scenario.duration="12h"'],
}


def _results_text(results: Any) -> str:
    data = results.to_json()
    del data["wall_time_s"], data["store_path"]
    return json.dumps(data, sort_keys=True)


def _store_rows(store_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store_dir / STORE_NAME) as db:
        readings = db.execute("SELECT * FROM readings ORDER BY 1, 2, 3, 4").fetchall()
        revisions = db.execute("SELECT * FROM reading_revisions ORDER BY 1, 2, 3, 4").fetchall()
    return readings + revisions


@pytest.mark.parametrize("name", sorted(CASES))
def test_worker_run_is_identical_to_the_in_process_run(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml", CASES[name])
    inline = run(scenario, store_dir=tmp_path / "inline", pipeline_workers=0)
    worker = run(scenario, store_dir=tmp_path / "worker", pipeline_workers=1)
    assert worker.kpis.uploads_delivered > 1000
    assert _results_text(worker) == _results_text(inline)
    assert _store_rows(tmp_path / "worker") == _store_rows(tmp_path / "inline")


def test_hostile_uploads_are_waited_for_and_rejected_alike(tmp_path: Path) -> None:
    faults = [
        FaultSpec(kind="malformed_upload", at_s=3600.0, meter="pv-00001", payload=p)
        for p in ("billion_laughs", "truncated")
    ] + [
        FaultSpec(kind="tampered_upload", at_s=5400.0, meter="pv-00002", payload=p)
        for p in ("replayed_sequence", "bad_signature")
    ]
    base = load_scenario(SCENARIOS / "baseline.toml", CASES["baseline"])
    scenario = replace(base, faults=tuple(faults))
    inline, worker = (run(scenario, pipeline_workers=n) for n in (0, 1))
    assert len(worker.rejections) == 4
    assert _results_text(worker) == _results_text(inline)


#: ``model`` mode at a 20 % sample: the sampled uploads go to the worker, the rest are costed.
MODEL = ['pipeline.service_time="model"', "pipeline.pipeline_sample_rate=0.2"]


@pytest.mark.parametrize("name", ["baseline", "cell_outage"])
def test_a_model_mode_worker_run_is_identical_to_the_in_process_run(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In ``model`` mode the worker runs the sample (hostile uploads among them, waited
    for) and the hourly analyses; the results and the store are the in-process run's."""
    submitted: list[Expected] = []
    submit = PipelineWorker.submit

    def counted(worker: PipelineWorker, body: bytes, expected: Expected, *on: Any) -> None:
        submitted.append(expected)
        submit(worker, body, expected, *on)

    monkeypatch.setattr(PipelineWorker, "submit", counted)
    base = load_scenario(SCENARIOS / f"{name}.toml", [*CASES[name], *MODEL])
    hostile = (
        FaultSpec(kind="malformed_upload", at_s=3600.0, meter="pv-00001", payload="truncated"),
        FaultSpec(kind="tampered_upload", at_s=5400.0, meter="pv-00002", payload="bad_signature"),
    )
    scenario = replace(base, faults=(*base.faults, *hostile))
    inline = run(scenario, store_dir=tmp_path / "inline", pipeline_workers=0)
    worker = run(scenario, store_dir=tmp_path / "worker", pipeline_workers=1)
    assert worker.service_time.uploads_run > 200 and worker.service_time.uploads_modelled > 1000
    assert len(worker.rejections) == 2
    # the sample and the met stations' uploads went to the worker without waits
    assert sum(e.inserted is not None for e in submitted) > 200
    assert sum(e.inserted is None for e in submitted) > 20
    assert _results_text(worker) == _results_text(inline)
    assert _store_rows(tmp_path / "worker") == _store_rows(tmp_path / "inline")


def test_more_than_one_worker_is_refused_naming_the_parameter() -> None:
    scenario = load_scenario(SCENARIOS / "baseline.toml", CASES["baseline"])
    with pytest.raises(ValueError, match=r"pipeline_workers = 2: expected 0 or 1"):
        run(scenario, pipeline_workers=2)


def test_a_wrong_prediction_stops_the_run_naming_the_upload(tmp_path: Path) -> None:
    body = sample_upload("pv-9", 15)
    with PipelineWorker(tmp_path / "store.sqlite", None, [], batch_uploads=2) as worker:
        worker.submit(body, Expected("pv-9", 0, 15, 15))
        worker.submit(body, Expected("pv-9", 0, 15, 15))  # a copy: duplicates, no rows
        with pytest.raises(PipelineWorkerError, match=r"meter pv-9 upload 0: .* 0 rows inserted"):
            worker.finish(0)


def test_a_station_upload_gets_its_rows_back_or_stops_the_run_naming_it(tmp_path: Path) -> None:
    """A met station's upload goes on without a wait; its real outcome (rows inserted and
    duplicates) is told back in order, and a wrong count of values stops the run."""
    spec = StationSpec("met-north", 45.0, -100.0, 500.0)
    values = {
        "ghi": np.array([500.0, 510.0, np.nan]),
        "temp_air": np.array([20.0, 20.5, np.nan]),
        "wind_speed": np.array([3.0, 3.5, np.nan]),
    }
    bodies = [encode_observations(spec, seq, 1_781_913_600, 60, values, 1_781_913_800)
              for seq in (1, 2)]  # fmt: skip
    told: list[tuple[int, int]] = []
    with PipelineWorker(tmp_path / "store.sqlite", None, [], batch_uploads=4) as worker:
        for seq, body in enumerate(bodies, 1):  # the second: the same intervals again
            worker.submit(
                body,
                Expected("met-north", seq, 3, None),
                lambda outcome: told.append((outcome.inserted, outcome.duplicates)),
            )
        worker.finish(0)
    assert told == [(3, 0), (0, 3)]
    with (
        PipelineWorker(tmp_path / "other.sqlite", None, [], batch_uploads=1) as worker,
        pytest.raises(PipelineWorkerError, match=r"station met-north upload 1: .* 3 readings"),
    ):
        worker.submit(bodies[0], Expected("met-north", 1, 4, None), lambda outcome: None)
        worker.finish(0)
    with pytest.raises(ValueError, match="on_outcome"):
        worker.submit(bodies[0], Expected("met-north", 1, 3, None))


def test_a_large_analysis_outcome_while_uploads_pour_in_is_no_deadlock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker (forked: it inherits the patch) sends an analysis outcome far larger than
    # the socket's buffer (~200 kB) while the twin sends it ~2 MB of uploads. Without a
    # reader on the twin's side both would block sending, for ever.
    real_analyze = Pipeline.analyze

    def large_and_slow(self: Pipeline, now_epoch_s: int, clock: Any = None,
                       on_points: Any = None) -> AnalysisOutcome:  # fmt: skip
        outcome = real_analyze(self, now_epoch_s, clock, on_points)
        time.sleep(0.5)  # meanwhile the twin fills the pipe with uploads
        return replace(outcome, stage_ns={f"stage-{i}": i for i in range(50_000)})

    monkeypatch.setattr(Pipeline, "analyze", large_and_slow)
    applied: list[AnalysisOutcome] = []
    finished = threading.Event()

    def twin_side() -> None:
        with PipelineWorker(tmp_path / "store.sqlite", None, [], batch_uploads=1) as worker:
            worker.analyze_later(0, applied.append)
            for i in range(60):
                worker.submit(sample_upload(f"pv-{i}", 240), Expected(f"pv-{i}", 0, 240, 240))
            assert worker.finish(0)[0] == 60 * 240
        finished.set()

    thread = threading.Thread(target=twin_side, daemon=True)
    thread.start()
    if not finished.wait(timeout=120.0):  # deadlocked: free the thread, then fail
        for child in multiprocessing.active_children():
            child.kill()
    thread.join(30.0)
    assert finished.is_set(), "the twin and its pipeline worker deadlocked"
    assert len(applied) == 1 and len(applied[0].stage_ns or {}) == 50_000


def test_a_killed_worker_stops_the_run_naming_the_upload_in_flight(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "baseline.toml", CASES["baseline"])
    killed: list[int] = []

    def progress(now_s: float) -> None:
        if now_s >= 2 * 3600.0 and not killed:
            (child,) = multiprocessing.active_children()
            assert child.pid is not None
            os.kill(child.pid, signal.SIGKILL)
            killed.append(child.pid)

    with pytest.raises(PipelineWorkerError) as failure:
        run(scenario, store_dir=tmp_path, progress=progress, pipeline_workers=1)
    message = str(failure.value)
    assert killed and f"(pid {killed[0]}) died (killed by SIGKILL)" in message
    assert "upload" in message or "analysis" in message
    assert not multiprocessing.active_children()


def test_twin_run_reports_a_dead_worker_in_one_line(tmp_path: Path) -> None:
    # the worker dies at its start: its store path is a folder
    (tmp_path / "out").mkdir()
    code = (
        "import sys; from pathlib import Path; import twin.runner as r;"
        "r.fresh_store_path = lambda folder, name='x': Path(folder);"
        "from twin.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            str(SCENARIOS / "baseline.toml"),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            "--pipeline-workers",
            "1",
            *[a for s in CASES["baseline"] for a in ("--set", s)],
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("twin: error: pipeline worker failed")
