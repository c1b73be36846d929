"""``twin sweep``: every point of the ``--vary`` axes, ``replications`` times each, with
common random numbers, and the confidence interval of every KPI per point (DESIGN.md §8).

Replication ``i`` of every point runs with seed ``S + i`` (``S``: ``--seed``, else the
scenario's), so differences between points are not drowned by the noise of different
random streams (common random numbers: A. M. Law, *Simulation Modeling and Analysis*, 5th
ed., 2015, §11.2), and replication 0 of a point is exactly ``twin run`` of that point.

The study folder holds ``runs.jsonl`` (the run records, :mod:`twin.study.records`),
``sweep.json`` and ``sweep.csv`` (the KPI table: per point and KPI, N, mean, standard
deviation and the 95 % Student-t interval), ``sweep.html`` and, per run,
``points/<point>/rep-<i>/results.json`` (the scenario, seed, ``kpis`` and ``mdcs`` records
of the run's ``results.json``: what a comparison of two sweep points reads).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from twin.errors import ScenarioError
from twin.study.points import Axis, Point, check_distinct, grid, resolve, zipped
from twin.study.records import POINTS_DIR, RunRecord, RunTask, run_results_path
from twin.study.runbook import RunBook
from twin.study.stats import CONFIDENCE, Estimate, estimate


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep: the scenario file and its ``--set`` overrides, the axes combined as a
    grid or zipped, replications per point, the base seed (None: the scenario's) and where
    to keep the pipeline's stores (None: not kept)."""

    scenario_path: Path
    base_overrides: tuple[str, ...] = ()
    axes: tuple[Axis, ...] = ()
    zip_axes: bool = False
    replications: int = 1
    seed: int | None = None
    keep_stores: Path | None = None


@dataclass(frozen=True)
class PointResult:
    """One point: its runs in replication order and the estimate of every KPI."""

    point: Point
    runs: list[RunRecord]
    estimates: dict[str, Estimate]


@dataclass(frozen=True)
class SweepResult:
    spec: SweepSpec
    points: list[PointResult]
    executed: int = 0
    reused: int = 0
    files: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "scenario": str(spec.scenario_path),
            "set": list(spec.base_overrides),
            "vary": [{"key": a.key, "values": list(a.values)} for a in spec.axes],
            "combine": "zip" if spec.zip_axes else "grid",
            "replications": spec.replications,
            "confidence": CONFIDENCE,
            "points": [
                p.point.to_json()
                | {
                    "folder": f"{POINTS_DIR}/{p.point.id}",
                    "runs": [
                        {
                            "replication": i,
                            "seed": r.seed,
                            "key": r.key,
                            "results": run_results_path(p.point.id, i),
                        }
                        for i, r in enumerate(p.runs)
                    ],
                    "kpis": {name: e.to_json() for name, e in p.estimates.items()},
                }
                for p in self.points
            ],
        }


def plan(spec: SweepSpec) -> tuple[list[Point], list[RunTask]]:
    """Resolve every point (a bad key or value, an empty axis: :class:`ScenarioError`) and
    its tasks, replication by replication."""
    if spec.replications < 1:
        raise ScenarioError("--replications", spec.replications, "an integer >= 1")
    if spec.seed is not None and spec.seed < 0:
        raise ScenarioError("--seed", spec.seed, "an integer >= 0")
    check_distinct(spec.axes, "--vary")
    settings = zipped(spec.axes, "--zip") if spec.zip_axes else grid(spec.axes)
    points = resolve(spec.scenario_path, spec.base_overrides, settings, "p")
    tasks = [
        replication_task(p, i, spec.seed, spec.keep_stores)
        for p in points
        for i in range(spec.replications)
    ]
    return points, tasks


def replication_task(point: Point, i: int, seed: int | None, keep_stores: Path | None) -> RunTask:
    """Replication ``i`` of ``point``: seed ``seed + i`` (common random numbers; ``seed``
    None: the point's scenario's), its store kept under ``keep_stores/<point>/rep-<i>``."""
    run_seed = (point.scenario.seed if seed is None else seed) + i
    store = str(keep_stores / point.id / f"rep-{i}") if keep_stores is not None else None
    return RunTask(point.id, i, run_seed, replace(point.scenario, seed=run_seed), store)


def run_sweep(spec: SweepSpec, book: RunBook) -> SweepResult:
    points, tasks = plan(spec)
    records = book.run(tasks)
    n = spec.replications
    results = [
        PointResult(p, records[k * n : (k + 1) * n], summarise(records[k * n : (k + 1) * n]))
        for k, p in enumerate(points)
    ]
    return SweepResult(spec, results, book.executed, book.reused)


def summarise(runs: Sequence[RunRecord]) -> dict[str, Estimate]:
    """The estimate of every KPI over ``runs`` (names in the order the runs report them)."""
    tables = [r.table() for r in runs]
    names = list(dict.fromkeys(name for t in tables for name in t))
    return {name: estimate([t.get(name, math.nan) for t in tables]) for name in names}
