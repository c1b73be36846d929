"""The files of a study folder: beside ``runs.jsonl`` (:mod:`twin.study.records`), the table
as ``NAME.json`` and ``NAME.csv``, the page ``NAME.html`` and, for every run the table
uses, ``points/<point>/rep-<i>/results.json`` (the scenario as run, the seed, the ``kpis``
and ``mdcs`` records of its ``results.json``, the wall time and where it sits in the
study): what a comparison of two points reads."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from twin.study.points import Point
from twin.study.records import RunRecord

POINTS_DIR = "points"


def run_results_path(point_id: str, replication: int) -> str:
    """Where replication ``replication`` of point ``point_id`` is, in the study folder."""
    return f"{POINTS_DIR}/{point_id}/rep-{replication}/results.json"


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
