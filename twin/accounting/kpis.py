"""The run's headline figures (:class:`Kpis`) and how they are assembled from the ledger,
the upload counters, the cells, the MDCs' server pools and the per-hop latencies."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hw_models.server import ServerPool
from network.cellular import Cell
from network.hops import HopLatencies
from twin.accounting.counters import Counters
from twin.accounting.ledger import Ledger, LedgerSnapshot


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles of end-to-end latency, s: end of a reading's interval to its storage."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, latencies_s: np.ndarray) -> LatencyStats:
        if latencies_s.size == 0:
            return cls(None, None, None, None, None)
        p50, p95, p99 = np.percentile(latencies_s, [50, 95, 99]).tolist()
        return cls(p50, p95, p99, float(latencies_s.max()), float(latencies_s.mean()))


@dataclass(frozen=True)
class HopLatency:
    """Time uploads spent in one hop of their path (network.hops), s: how many crossed it
    (``n``), mean, percentiles and maximum; None where no upload crossed it."""

    n: float
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, stats: Mapping[str, float]) -> HopLatency:
        """From one hop of :meth:`network.hops.HopLatencies.percentiles` (NaN -> None)."""
        finite = {k: (None if math.isnan(v) else v) for k, v in stats.items() if k != "n"}
        return cls(n=stats["n"], **finite)


@dataclass(frozen=True)
class Kpis:
    """What a run achieved. Counts are readings unless the name says uploads."""

    readings_generated: int
    readings_stored: int
    readings_lost: dict[str, int]  # cause -> readings
    readings_in_flight: int  # in meter buffers, on the network or queued at the end
    duplicates_discarded: int  # extra copies that reached the store (never stored twice)
    uploads_started: int
    uploads_delivered: int  # copies that reached the MDC, retries included
    uploads_acknowledged: int
    uploads_failed: int  # sessions that ran out of attempts without an acknowledgement (the
    #                      data stays in the meter; some may have reached the MDC unacked)
    uploads_rejected: int
    upload_windows_skipped: int  # windows that found the previous upload still retrying
    cellular_attempts: int
    cellular_failed_attempts: int
    throughput_readings_per_s: float  # stored readings per simulated second
    latency_s: LatencyStats
    utilization: dict[str, float]  # server -> busy fraction of its cores
    mdc_queue_peak: int  # uploads waiting for a core, at most
    alerts: int  # faults and anomalies raised by the MDC's analytics
    energy_generated_kwh: dict[str, float]  # fleet -> true AC energy of its sources
    energy_consumed_kwh: dict[str, float] = field(default_factory=dict)  # fleet -> its loads
    #: Facility energy (IT x PUE) of each MDC over the run, kWh (hw_models power model).
    energy_mdc_kwh: dict[str, float] = field(default_factory=dict)
    #: Per hop (cellular, vpn, backbone, mdc_queue, pipeline, and the meter's wait and the
    #: acknowledgement): the time an upload spent in it.
    hop_latency_s: dict[str, HopLatency] = field(default_factory=dict)

    @property
    def readings_lost_total(self) -> int:
        return sum(self.readings_lost.values())

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"readings_lost_total": self.readings_lost_total}


def assemble_kpis(
    snapshot: LedgerSnapshot,
    ledger: Ledger,
    counters: Counters,
    cells: Sequence[Cell],
    pools: Sequence[ServerPool],
    hops: HopLatencies,
    alerts: int,
    energy_generated_kwh: dict[str, float],
    energy_consumed_kwh: dict[str, float],
    horizon_s: float,
) -> Kpis:
    """The KPIs of a run that ended at ``horizon_s``: ``snapshot`` is the ledger's audit
    then; ``pools`` are the MDCs' server pools (named by their MDC); ``alerts`` counts the
    analytics' detections; the energies are the fleets' (kWh)."""
    return Kpis(
        readings_generated=snapshot.generated,
        readings_stored=snapshot.stored,
        readings_lost=snapshot.lost,
        readings_in_flight=snapshot.in_flight,
        duplicates_discarded=snapshot.duplicates,
        uploads_started=counters.uploads_started,
        uploads_delivered=counters.uploads_delivered,
        uploads_acknowledged=counters.uploads_acknowledged,
        uploads_failed=counters.uploads_failed,
        uploads_rejected=counters.uploads_rejected,
        upload_windows_skipped=counters.windows_skipped_busy,
        cellular_attempts=sum(c.attempts for c in cells),
        cellular_failed_attempts=sum(c.failed_attempts for c in cells),
        throughput_readings_per_s=snapshot.stored / horizon_s,
        latency_s=LatencyStats.of(ledger.latencies_s(horizon_s)),
        utilization={s.name: s.busy_fraction(horizon_s) for pool in pools for s in pool.servers},
        mdc_queue_peak=max(pool.queue_peak for pool in pools),
        energy_mdc_kwh={pool.name: pool.facility_energy_j(horizon_s) / 3.6e6 for pool in pools},
        hop_latency_s={hop: HopLatency.of(stats) for hop, stats in hops.percentiles().items()},
        alerts=alerts,
        energy_generated_kwh=energy_generated_kwh,
        energy_consumed_kwh=energy_consumed_kwh,
    )
