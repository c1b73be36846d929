"""Run records: the key is the resolved scenario and seed, nothing else; the record file keeps
every complete line through a kill mid-write and goes on after a torn one; the progress bar
over a study's runs."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from tests.twin.study.conftest import TINY
from twin.scenario.loader import load_scenario
from twin.study.records import RecordFile, RunRecord, run_key
from twin.study.runbook import RunProgress
from twin.study.sweep import SweepResult


def test_the_key_is_the_resolved_scenario_and_the_seed() -> None:
    base = load_scenario(TINY)
    same = load_scenario(TINY, ["fleet.pv.count=10", "scenario.seed=99"])  # same runs
    assert run_key(base, 5) == run_key(same, 5)
    assert run_key(base, 5) != run_key(base, 6)
    assert run_key(base, 5) != run_key(load_scenario(TINY, ["fleet.pv.count=11"]), 5)


def _record(key: str) -> RunRecord:
    return RunRecord(key, "p0", 0, 3, {"latency_s": {"p99": 1.5}}, [], 0.1)


def test_records_survive_a_torn_last_line(tmp_path: Path) -> None:
    book = RecordFile(tmp_path)
    book.append(_record("a"))
    book.append(_record("b"))
    with book.path.open("ab") as f:
        f.write(b'{"key": "c", "point": "p0", "replic')  # killed mid-write
    assert set(book.load()) == {"a", "b"}
    book.append(_record("d"))
    assert set(book.load()) == {"a", "b", "d"}
    lines = book.path.read_text().splitlines()
    assert len(lines) == 4 and lines[2].endswith('"replic')  # d starts on a line of its own


def test_a_record_round_trips_exactly(serial_sweep: SweepResult, tmp_path: Path) -> None:
    record = serial_sweep.points[0].runs[0]
    book = RecordFile(tmp_path)
    book.append(record)
    (loaded,) = book.load().values()
    assert loaded == record and loaded.table() == record.table()
    assert dataclasses.asdict(loaded)["kpis"]["latency_s"]["p99"] == record.kpis["latency_s"]["p99"]


def test_progress_counts_runs_and_estimates_the_time_left() -> None:
    log = io.StringIO()
    bar = RunProgress(log)
    bar.delay_s = 0.0
    bar.total, bar.done, bar.reused = 10, 4, 2  # 2 found recorded, 2 run
    text = bar.describe(0.0, 30.0)
    # 2 runs took 30 s: the 6 left take about 90 s
    assert text.startswith("[" + "#" * 12 + "." * 18 + "] 4/10 runs, 2 reused, 30s")
    assert text.endswith("~1m30s left")
    bar.update()
    bar.done = 10
    bar.close()
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("[") and " 10/10 runs" in lines[-1] and "left" not in lines[-1]
