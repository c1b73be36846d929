"""Everything one run reports (:class:`Results`), as typed records; ``to_json`` gives the
content of ``results.json`` (the folder's file list, ``extra``, is the writer's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline import Recommendation
from twin.accounting.counters import Rejection
from twin.accounting.forecasts import ForecastScores
from twin.accounting.kpis import Kpis
from twin.accounting.mdc_report import MdcReport
from twin.accounting.records import (
    DetectionRecord,
    FaultRecord,
    IssuedRecommendation,
    LedgerRecord,
    NetworkRecord,
    ServiceTimeRecord,
)
from twin.accounting.scoring import AnalyticsScores
from twin.accounting.series import RunSeries
from twin.scenario.loader import Scenario


@dataclass(frozen=True)
class Results:
    """One run: the resolved ``scenario`` and ``seed``; :class:`Kpis`; the ledger; each
    rejected upload; each world fault and what became of it; each MDC; the network; how
    service times were obtained; the software versions; wall time, s; the pipeline's store
    (``store_path``, None when it was a temporary one); the field faults' ground truth
    (``meters.faults.GROUND_TRUTH_FIELDS`` records); what the MDC's analytics reported
    (alerts and normal events), their scores (``twin.accounting.scoring``), the
    recommendations open at the end and those issued with each alert, the daily fleet
    digests; the forecasts' scores per kind of site; what
each region's weather feed did (``twin.world.weather_feed.FeedRecord``); and
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
    analytics: AnalyticsScores | None = None
    events: list[DetectionRecord] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    recommendations_issued: list[IssuedRecommendation] = field(default_factory=list)
    digests: list[dict[str, Any]] = field(default_factory=list)
    forecasts: dict[str, ForecastScores] = field(default_factory=dict)
    weather_feed: list[Any] = field(default_factory=list)

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
            "analytics": None if self.analytics is None else self.analytics.to_json(),
            "events": [e.to_json() for e in self.events],
            "recommendations": [r.to_json() for r in self.recommendations],
            "recommendations_issued": [r.to_json() for r in self.recommendations_issued],
            "digests": list(self.digests),
            "forecasts": {k: v.to_json() for k, v in self.forecasts.items()},
            "weather_feed": [f.to_json() for f in self.weather_feed],
        }
