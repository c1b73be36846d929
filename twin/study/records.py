"""One run of a study as a task, what it returns, and the file that remembers it.

A :class:`RunTask` carries the resolved scenario and the seed (pickled to a worker); its
``key`` is a hash of exactly those, so the same run is recognised in any study, point or
order. :func:`execute_run` is what a worker calls: one :func:`twin.runner.run`, returning a
:class:`RunRecord` (the run's ``kpis`` and ``mdcs`` records, as ``results.json`` holds
them), never the store. :class:`RecordFile` is the study's ``runs.jsonl``: one JSON line per
finished run, appended and fsync'd as the run ends, so that a study killed at any moment
keeps every finished run and a rerun of the same command skips them (a line torn by the
kill is ignored, and its run done again).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from twin.runner import run
from twin.scenario.loader import Scenario
from twin.study.kpi_names import kpi_table

#: Version of the record line; part of every key, so a new format never reuses old lines.
RECORD_FORMAT = 1
RECORD_FILE = "runs.jsonl"
#: Folder of a study holding each run's ``results.json`` (:mod:`twin.study.files`).
POINTS_DIR = "points"


def run_results_path(point_id: str, replication: int) -> str:
    """Where replication ``replication`` of point ``point_id`` is, in a study folder."""
    return f"{POINTS_DIR}/{point_id}/rep-{replication}/results.json"


def run_key(scenario: Scenario, seed: int) -> str:
    """SHA-256 of the resolved scenario run with ``seed`` (and the record format)."""
    data = {
        "format": RECORD_FORMAT,
        "scenario": dataclasses.replace(scenario, seed=seed).to_json(),
        "seed": seed,
    }
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RunTask:
    """Replication ``replication`` (seed ``seed``) of ``point``'s ``scenario``; the store
    is kept in ``store_dir`` when given."""

    point: str
    replication: int
    seed: int
    scenario: Scenario
    store_dir: str | None = None

    @cached_property
    def key(self) -> str:
        return run_key(self.scenario, self.seed)


@dataclass(frozen=True)
class RunRecord:
    """What one run returns to the study: its ``key``, where it belongs (``point``,
    ``replication``, ``seed``), the ``kpis`` and ``mdcs`` records of its ``results.json``
    and its wall time, s."""

    key: str
    point: str
    replication: int
    seed: int
    kpis: dict[str, Any]
    mdcs: list[dict[str, Any]]
    wall_time_s: float

    def results_json(self) -> dict[str, Any]:
        """The run's part of ``results.json`` that a study keeps."""
        return {
            "seed": self.seed,
            "kpis": self.kpis,
            "mdcs": self.mdcs,
            "wall_time_s": self.wall_time_s,
        }

    def table(self) -> dict[str, float]:
        """Every KPI of the run by name (:func:`twin.study.kpi_names.kpi_table`)."""
        return kpi_table(self.results_json())

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        return cls(**data)


def execute_run(task: RunTask) -> RunRecord:
    """Run ``task`` and keep its KPIs (what a worker does)."""
    results = run(task.scenario, task.seed, store_dir=task.store_dir)
    return RunRecord(
        key=task.key,
        point=task.point,
        replication=task.replication,
        seed=task.seed,
        kpis=results.kpis.to_json(),
        mdcs=[m.to_json() for m in results.mdcs],
        wall_time_s=results.wall_time_s,
    )


class RecordFile:
    """The append-only ``runs.jsonl`` of a study folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / RECORD_FILE

    def load(self) -> dict[str, RunRecord]:
        """Every complete record, by key (a later line for a key wins)."""
        records: dict[str, RunRecord] = {}
        if not self.path.exists():
            return records
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = RunRecord.from_json(json.loads(line))
            except (ValueError, TypeError):
                continue  # a line torn by a kill mid-write
            records[record.key] = record
        return records

    def append(self, record: RunRecord) -> None:
        """Add one line and force it to disk before returning."""
        new = not self.path.exists()
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record.to_json(), sort_keys=True, separators=(",", ":")) + "\n"
        with self.path.open("ab") as out:
            if not new and out.tell() > 0 and not self._ends_with_newline():
                line = "\n" + line  # start after a torn line
            out.write(line.encode())
            out.flush()
            os.fsync(out.fileno())
        if new:
            _fsync_dir(self.path.parent)

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
