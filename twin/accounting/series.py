"""The run over time, compact enough to travel with its results (not in ``results.json``):
the time series table (``timeseries.csv``, DESIGN.md §6), each fleet's summed output and
load, and the distributions of end-to-end and per-hop latency.

Time series columns, one row per ``SAMPLE_EVERY_S``: ``t_s`` (start of the bin, simulated
s); ``generation_kw_<fleet>`` (mean AC power of the fleet's sources over the bin);
``consumption_kw_<fleet>`` (mean demand of the fleet's facilities, for fleets with a load);
``readings_stored`` (readings committed in the bin); and the states the world samples at
the start of each bin (``twin.world.world.World.sample_columns``): ``uploads_waiting``
(MDC ingest queue), ``cores_busy``, ``sessions_open`` (meters with an upload session),
``cell_up_<region>`` (fraction of the region's cells up), tunnel and MDC states and each
MDC's own figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from twin.accounting.kpis import LatencyStats
from twin.accounting.ledger import STORED, Ledger

#: Interval of the run's time series, s: the world samples its state this often.
SAMPLE_EVERY_S = 300.0
#: Bins of the latency histogram.
LATENCY_BINS = 60
#: Probabilities at which a latency distribution keeps its empirical quantiles: every
#: 0.5 % and the far tail, enough to draw its CDF and read p50/p95/p99 off it.
QUANTILE_LEVELS = np.unique(
    np.round(np.concatenate((np.arange(201) / 200, [0.9925, 0.9975, 0.999, 0.9995, 0.9999])), 6)
)


@dataclass(frozen=True)
class FleetSeries:
    """One fleet over the run: its ``name`` and ``kind``, the meters' ``sample_s`` and the
    summed AC output of its sources and demand of its facilities, W [n_steps] (interval
    means; ``load_w`` None for a fleet without loads)."""

    name: str
    kind: str
    sample_s: float
    power_w: np.ndarray
    load_w: np.ndarray | None


@dataclass(frozen=True)
class TimeSeries:
    """``columns`` (module docstring) and ``rows`` [n_bins, n_columns], float64."""

    columns: list[str]
    rows: np.ndarray


@dataclass(frozen=True)
class LatencyDistribution:
    """A distribution of latencies, s (end to end: end of a reading's interval to its
    commit, for every stored reading, committed by the horizon or after it; per hop: the
    time uploads spent in it): a histogram (``counts`` in ``LATENCY_BINS`` bins between
    ``edges_s``), its percentiles (``stats``), how many values (``n``) and its empirical
    quantiles at ``QUANTILE_LEVELS`` (``quantiles_s``, empty without values)."""

    counts: np.ndarray
    edges_s: np.ndarray
    stats: LatencyStats
    n: int = 0
    quantiles_s: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(cls, latencies_s: np.ndarray) -> LatencyDistribution:
        if latencies_s.size == 0:
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0), LatencyStats.of(latencies_s))
        counts, edges = np.histogram(latencies_s, bins=LATENCY_BINS)
        return cls(
            counts,
            edges,
            LatencyStats.of(latencies_s),
            int(latencies_s.size),
            np.quantile(latencies_s, QUANTILE_LEVELS),
        )


@dataclass(frozen=True)
class RunSeries:
    """What the run's plots and tables draw on: :class:`FleetSeries` per fleet, the
    :class:`TimeSeries`, the end-to-end :class:`LatencyDistribution` and one per hop of
    the uploads' path (``network.hops``: cellular, vpn, ..., in path order)."""

    fleets: tuple[FleetSeries, ...]
    timeseries: TimeSeries
    latency: LatencyDistribution
    hop_latency: dict[str, LatencyDistribution] = field(default_factory=dict)


def timeseries_table(
    fleets: Sequence[FleetSeries],
    ledger: Ledger,
    samples: list[tuple[float, ...]],
    sample_columns: list[str],
    horizon_s: float,
) -> TimeSeries:
    """The run's time series (module docstring) from the fleets, the ledger's commit times
    and the world's samples (whose first column is ``t_s``)."""
    n_bins = int(np.ceil(horizon_s / SAMPLE_EVERY_S))
    edges_s = np.arange(n_bins + 1) * SAMPLE_EVERY_S
    columns: list[str] = ["t_s"]
    data: list[np.ndarray] = [edges_s[:-1]]
    for fleet in fleets:
        mid_s = (np.arange(fleet.power_w.shape[0]) + 0.5) * fleet.sample_s
        bins = np.minimum((mid_s // SAMPLE_EVERY_S).astype(np.int64), n_bins - 1)
        counts = np.maximum(np.bincount(bins, minlength=n_bins), 1)
        series = [("generation", fleet.power_w)]
        if fleet.load_w is not None:
            series.append(("consumption", fleet.load_w))
        for name, power_w in series:
            sums = np.bincount(bins, weights=power_w, minlength=n_bins)
            columns.append(f"{name}_kw_{fleet.name}")
            data.append(sums / counts / 1000.0)
    committed = ledger.final_at_s[ledger.final == STORED]
    columns.append("readings_stored")
    data.append(np.histogram(committed, bins=edges_s)[0].astype(np.float64))
    sampled = np.array(samples, dtype=np.float64).reshape(-1, len(sample_columns))[:n_bins]
    padded = np.full((n_bins, len(sample_columns) - 1), np.nan)
    padded[: len(sampled)] = sampled[:, 1:]
    columns += sample_columns[1:]
    data += list(padded.T)
    return TimeSeries(columns, np.column_stack(data))
