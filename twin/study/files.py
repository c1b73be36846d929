"""The files of a study folder: beside ``runs.jsonl`` (:mod:`twin.study.records`), the table
as ``NAME.json`` and ``NAME.csv``, the page ``NAME.html`` and, for every run the table
uses, ``points/<point>/rep-<i>/results.json`` (the scenario as run, the seed, the ``kpis``
and ``mdcs`` records of its ``results.json``, the wall time and where it sits in the
study): what a comparison of two points reads. ``write_sweep`` and ``write_sizing`` write
the folders of ``twin sweep`` and ``twin size``."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from twin.study.kpi_names import HEADLINE_KPIS
from twin.study.pages import size_page, sweep_page
from twin.study.points import Point
from twin.study.records import RunRecord, run_results_path
from twin.study.sizing import SizingResult, axis_keys
from twin.study.sweep import SweepResult


def write_study(
    out_dir: Path,
    name: str,
    runs: Iterable[tuple[Point, Sequence[RunRecord]]],
    data: dict[str, Any],
    header: list[str],
    rows: Iterable[list[Any]],
    page: str,
) -> list[Path]:
    """Write each point's ``runs``, ``NAME.json`` (``data``), ``NAME.csv`` (``header`` and
    ``rows``) and ``NAME.html`` (``page``) into ``out_dir``; the three paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for point, point_runs in runs:
        for i, run in enumerate(point_runs):
            path = out_dir / run_results_path(point.id, i)
            path.parent.mkdir(parents=True, exist_ok=True)
            record = {"scenario": replace(point.scenario, seed=run.seed).to_json()}
            record |= run.results_json()
            record["study"] = {"point": point.id, "replication": i} | point.to_json()
            path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", "utf-8")
    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    csv_path = out_dir / f"{name}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    html_path = out_dir / f"{name}.html"
    html_path.write_text(page, "utf-8")
    return [csv_path, json_path, html_path]


def write_sweep(
    result: SweepResult, out_dir: Path, headline: tuple[str, ...] = HEADLINE_KPIS
) -> list[Path]:
    """Write ``sweep.json``, ``sweep.csv``, each run's ``results.json`` and ``sweep.html``
    (``headline``: the KPIs charted first)."""
    keys = [a.key for a in result.spec.axes]
    rows = [
        [p.point.id, *(p.point.value(k) for k in keys), name, e.n]
        + ["" if math.isnan(v) else v for v in (e.mean, e.sd, e.ci_low, e.ci_high)]
        for p in result.points
        for name, e in p.estimates.items()
    ]
    return write_study(
        out_dir,
        "sweep",
        [(p.point, p.runs) for p in result.points],
        result.to_json(),
        ["point", *keys, "kpi", "n", "mean", "sd", "ci_low", "ci_high"],
        rows,
        sweep_page(result, headline),
    )


def write_sizing(result: SizingResult, out_dir: Path) -> list[Path]:
    """Write ``size.json``, ``size.csv`` (the candidates), each run's ``results.json`` and
    ``size.html``."""
    keys = axis_keys(result.spec)
    kpis = [s.kpi for s in result.spec.slos]
    rows = []
    for c in result.candidates:
        row: list[Any] = [c.point.id, *(c.point.value(k) for k in keys)]
        row += [c.verdict.verdict, c.verdict.replications, ";".join(c.verdict.broken)]
        row += [round(c.cost.total_usd, 2), round(c.cost.capex_usd, 2)]
        for k in kpis:
            e = c.estimates.get(k)
            row += [e.mean, e.ci_low, e.ci_high] if e is not None else ["", "", ""]
        rows.append(row)
    header = ["candidate", *keys, "verdict", "replications", "broken", "cost_usd", "capex_usd"]
    header += [f"{k}_{stat}" for k in kpis for stat in ("mean", "ci_low", "ci_high")]
    return write_study(
        out_dir,
        "size",
        [(c.point, c.runs) for c in result.candidates],
        result.to_json(),
        header,
        rows,
        size_page(result),
    )
