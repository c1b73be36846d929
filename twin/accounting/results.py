"""Everything one run reports (:class:`Results`), as typed records; ``to_json`` gives the
content of ``results.json`` (the folder's file list, ``extra``, is the writer's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twin.accounting.counters import Rejection
from twin.accounting.forecasts import ForecastScores
from twin.accounting.kpis import Kpis
from twin.accounting.mdc_report import MdcReport
from twin.accounting.records import (
    DetectionRecord,
    FaultRecord,
    LedgerRecord,
    NetworkRecord,
    ServiceTimeRecord,
)
from twin.accounting.scoring import KindScore
from twin.accounting.series import RunSeries
from twin.scenario.loader import Scenario


@dataclass(frozen=True)
class Results:
    """One run: the resolved ``scenario`` and ``seed``; :class:`Kpis`; the ledger; each
    rejected upload; each world fault and what became of it; each MDC; the network; how
    service times were obtained; the software versions; wall time, s; the pipeline's store
    (``store_path``, None when it was a temporary one); the field faults' ground truth
    (``meters.faults.GROUND_TRUTH_FIELDS`` records); what the MDC's analytics reported,
    their scores per fault kind and recommendations at the end; the forecasts' scores; and
    the run over time (``series``, for plots and tables: not in ``results.json``)."""

    scenario: Scenario
    seed: int
    kpis: Kpis
    ledger: LedgerRecord
    rejections: list[Rejection]
    faults: list[FaultRecord]
    mdcs: list[MdcReport]
    network: NetworkRecord
    service_time: ServiceTimeRecord
    software: dict[str, str]
    wall_time_s: float
    store_path: str | None
    series: RunSeries
    ground_truth: list[dict[str, Any]] = field(default_factory=list)
    detections: list[DetectionRecord] = field(default_factory=list)
    analytics: list[KindScore] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    forecasts: ForecastScores = field(default_factory=lambda: ForecastScores(0))

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.to_json(),
            "seed": self.seed,
            "kpis": self.kpis.to_json(),
            "ledger": self.ledger.to_json(),
            "rejections": [r.to_json() for r in self.rejections],
            "faults": [f.to_json() for f in self.faults],
            "mdcs": [m.to_json() for m in self.mdcs],
            "network": self.network.to_json(),
            "service_time": self.service_time.to_json(),
            "software": dict(self.software),
            "wall_time_s": self.wall_time_s,
            "store_path": self.store_path,
            "ground_truth": [dict(r) for r in self.ground_truth],
            "detections": [d.to_json() for d in self.detections],
            "analytics": [s.to_json() for s in self.analytics],
            "recommendations": list(self.recommendations),
            "forecasts": self.forecasts.to_json(),
        }
