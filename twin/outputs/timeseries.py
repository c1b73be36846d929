"""The run's time series as one CSV table (DESIGN.md §6), one row per ``SAMPLE_EVERY_S``.

Columns: ``t_s`` (start of the bin, simulated s); ``generation_kw_<fleet>`` (mean AC power
of the fleet's sources over the bin); ``consumption_kw_<fleet>`` (mean demand of the
fleet's facilities, for fleets with a load); ``readings_stored`` (readings committed in the bin);
and the states sampled at the start of the bin during the run: ``uploads_waiting`` (MDC
ingest queue), ``cores_busy``, ``sessions_open`` (meters with an upload session) and
``cell_up_<region>`` (1 up, 0 down).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from twin.accounting.ledger import Ledger
from twin.world.fleet import FleetData
from twin.world.world import SAMPLE_EVERY_S


def timeseries_table(
    fleets: list[FleetData],
    ledger: Ledger,
    samples: list[tuple[float, ...]],
    sample_columns: list[str],
    horizon_s: float,
) -> tuple[list[str], np.ndarray]:
    """(column names, float64 rows) of the run's time series."""
    n_bins = int(np.ceil(horizon_s / SAMPLE_EVERY_S))
    edges_s = np.arange(n_bins + 1) * SAMPLE_EVERY_S
    columns: list[str] = ["t_s"]
    data: list[np.ndarray] = [edges_s[:-1]]
    for fleet in fleets:
        step_s = fleet.spec.meter.sample_s
        mid_s = (np.arange(fleet.power_w.shape[1]) + 0.5) * step_s
        bins = np.minimum((mid_s // SAMPLE_EVERY_S).astype(np.int64), n_bins - 1)
        counts = np.maximum(np.bincount(bins, minlength=n_bins), 1)
        series = [("generation", fleet.power_w)]
        if fleet.load_w is not None:
            series.append(("consumption", fleet.load_w))
        for name, power_w in series:
            sums = np.bincount(bins, weights=power_w.sum(axis=0), minlength=n_bins)
            columns.append(f"{name}_kw_{fleet.spec.name}")
            data.append(sums / counts / 1000.0)
    committed = ledger.stored_at_s[np.isfinite(ledger.stored_at_s)]
    columns.append("readings_stored")
    data.append(np.histogram(committed, bins=edges_s)[0].astype(np.float64))
    sampled = np.array(samples, dtype=np.float64).reshape(-1, len(sample_columns))[:n_bins]
    padded = np.full((n_bins, len(sample_columns) - 1), np.nan)
    padded[: len(sampled)] = sampled[:, 1:]
    columns += sample_columns[1:]
    data += list(padded.T)
    return columns, np.column_stack(data)


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
