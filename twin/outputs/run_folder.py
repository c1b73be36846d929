"""A run's output folder read back for reports and comparisons: ``results.json``, the time
series (``timeseries.csv``) and the latency distributions (``latency.json``).

``latency.json`` is what a report needs that ``results.json`` lacks: the end-to-end and
per-hop latency distributions as empirical quantiles at fixed probabilities
(:data:`twin.accounting.series.QUANTILE_LEVELS`), a few kilobytes whatever the run's size::

    {"levels": [0.0, 0.005, ...],
     "end_to_end": {"n": 315019, "quantiles_s": [...]},
     "hops": {"cellular": {"n": 21343, "quantiles_s": [...]}, ...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twin.accounting.series import QUANTILE_LEVELS, LatencyDistribution, RunSeries, TimeSeries
from twin.errors import UsageError
from twin.outputs.files import RESULTS_NAME

TIMESERIES_NAME = "timeseries.csv"
LATENCY_NAME = "latency.json"


@dataclass(frozen=True)
class Quantiles:
    """A latency distribution read back: ``n`` values, their quantiles (s) at ``levels``."""

    n: int
    levels: np.ndarray
    quantiles_s: np.ndarray


@dataclass(frozen=True)
class RunFolder:
    """One run read from its folder: the ``results.json`` content, the time series (None
    when the folder has no ``timeseries.csv``), the end-to-end latency distribution and
    one per hop (None / empty without ``latency.json``)."""

    path: Path
    results: dict[str, Any]
    timeseries: TimeSeries | None
    latency: Quantiles | None
    hop_latency: dict[str, Quantiles]

    @property
    def label(self) -> str:
        return self.path.name or str(self.path)


def _distribution_json(dist: LatencyDistribution) -> dict[str, Any]:
    return {"n": dist.n, "quantiles_s": [float(f"{q:.9g}") for q in dist.quantiles_s.tolist()]}


def write_latency(series: RunSeries, out_dir: Path) -> Path:
    """Write ``latency.json`` (module docstring) from a run's series."""
    data = {
        "levels": [float(f"{p:.9g}") for p in QUANTILE_LEVELS.tolist()],
        "end_to_end": _distribution_json(series.latency),
        "hops": {hop: _distribution_json(d) for hop, d in series.hop_latency.items()},
    }
    path = out_dir / LATENCY_NAME
    path.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n", "utf-8")
    return path


def _quantiles(record: dict[str, Any], levels: np.ndarray) -> Quantiles:
    return Quantiles(int(record["n"]), levels, np.asarray(record["quantiles_s"], dtype=float))


def read_timeseries(path: Path) -> TimeSeries:
    """``timeseries.csv`` as written by :func:`twin.outputs.files.write_csv`."""
    with path.open(encoding="utf-8") as f:
        columns = f.readline().strip().split(",")
    rows = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return TimeSeries(columns, rows.reshape(-1, len(columns)))


def load_run(path: Path) -> RunFolder:
    """Read a run folder; a :class:`UsageError` if it has no readable ``results.json``."""
    results_path = path / RESULTS_NAME
    try:
        results = json.loads(results_path.read_text("utf-8"))
    except FileNotFoundError:
        raise UsageError("OUT_DIR", str(path), f"a run folder (it has no {RESULTS_NAME})") from None
    except (OSError, ValueError) as exc:
        raise UsageError(RESULTS_NAME, str(results_path), f"a readable file ({exc})") from None
    if not isinstance(results, dict) or "kpis" not in results or "scenario" not in results:
        raise UsageError(RESULTS_NAME, str(results_path), "the results of a twin run")
    timeseries = None
    if (path / TIMESERIES_NAME).exists():
        timeseries = read_timeseries(path / TIMESERIES_NAME)
    latency, hops = None, {}
    if (path / LATENCY_NAME).exists():
        data = json.loads((path / LATENCY_NAME).read_text("utf-8"))
        levels = np.asarray(data["levels"], dtype=float)
        latency = _quantiles(data["end_to_end"], levels)
        hops = {hop: _quantiles(r, levels) for hop, r in data["hops"].items()}
    return RunFolder(path, results, timeseries, latency, hops)
