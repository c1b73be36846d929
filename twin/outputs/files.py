"""The files of a run's output folder (DESIGN.md §6), written from its :class:`Results`:
``results.json``, ``timeseries.csv``, ``ground_truth.csv`` (with field faults) and
``overview.png`` (optional), then ``report.html`` (:mod:`twin.outputs.report`). The
pipeline's own ``store.sqlite`` is written by the run."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from twin.accounting.results import Results

RESULTS_NAME = "results.json"


@dataclass(frozen=True)
class OutputFiles:
    """Paths written: ``results.json``, the time series, the ground truth (None without
    field faults), the plots and the report."""

    results: Path
    timeseries: Path
    ground_truth: Path | None = None
    plots: list[Path] = field(default_factory=list)
    report: Path | None = None

    def listing(self) -> dict[str, Any]:
        """The ``extra`` record of ``results.json``: the other files, as strings."""
        extra: dict[str, Any] = {"timeseries": str(self.timeseries)}
        if self.ground_truth is not None:
            extra["ground_truth"] = str(self.ground_truth)
        if self.plots:
            extra["plots"] = [str(p) for p in self.plots]
        return extra


def write_outputs(results: Results, out_dir: Path, plots: bool = True) -> OutputFiles:
    """Write the run's files into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = results.series.timeseries
    timeseries = write_csv(out_dir / "timeseries.csv", table.columns, table.rows)
    truth = (
        write_records(out_dir / "ground_truth.csv", results.ground_truth)
        if results.ground_truth
        else None
    )
    pngs = []
    if plots:
        from twin.outputs.plots import overview_png  # matplotlib only when plotting

        pngs.append(overview_png(out_dir / "overview.png", results))
    files = OutputFiles(out_dir / RESULTS_NAME, timeseries, truth, pngs)
    data = results.to_json() | {"extra": files.listing()}
    files.results.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
    from twin.outputs.report import write_run_report  # reads the folder written above

    return replace(files, report=write_run_report(results, out_dir))


def write_csv(path: Path, columns: list[str], rows: np.ndarray) -> Path:
    np.savetxt(path, rows, delimiter=",", header=",".join(columns), comments="", fmt="%.10g")
    return path


def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    """Flat records (e.g. the fault ground truth) as CSV; nested values as JSON text."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for record in records:
            writer.writerow(
                {
                    k: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v
                    for k, v in record.items()
                }
            )
    return path
