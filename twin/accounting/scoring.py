"""Scoring the pipeline's analytics against the faults the twin injected (DESIGN.md §4).

The twin knows the truth (meters.faults ground-truth records, plus the storm cut-outs the
weather causes); the pipeline reports detections (pipeline.Detection). Per fault
kind this gives recall (injected faults found), precision (detections that correspond to a
real fault) and detection delay (when the evidence sufficed, minus the fault's start), the
standard event-based scores of fault-detection benchmarks (e.g. the Numenta Anomaly
Benchmark's windows, Lavin & Ahmad 2015, without its weighting).

A detection matches a fault when it names the same meter, is of the kind that should find
that fault (:data:`DETECTOR_FOR`; an ``anomaly`` detection may match any fault), and its
[start, end] overlaps the fault's window widened by ``tolerance_s`` on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from twin.accounting.records import DetectionRecord

#: Ground-truth fault kind -> the detection kind (pipeline.analyze.faults) meant to find it.
DETECTOR_FOR: dict[str, str] = {
    "inverter_trip": "inverter_trip",
    "soiling": "soiling",
    "stuck_value": "stuck_meter",
    "turbine_curtailment": "curtailment",
}
#: Detections of this kind may explain a fault of any kind.
ANY_FAULT = "anomaly"
#: Default slack around a fault's window, s: one hour, the analytics' batch period.
DEFAULT_TOLERANCE_S = 3600.0


@dataclass(frozen=True)
class KindScore:
    """How well one kind of fault was detected. Delays in s; None where undefined."""

    fault_kind: str
    detection_kind: str | None  # None: no detector exists for this kind of fault
    faults: int
    faults_detected: int
    recall: float | None
    detections: int  # detections of detection_kind
    detections_true: int  # of those, the ones that match a fault
    precision: float | None
    delay_s_median: float | None
    delay_s_max: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _overlaps(d: DetectionRecord, t: dict[str, Any], tolerance_s: float) -> bool:
    return bool(
        d.series_id == t["meter_id"]
        and d.start_s <= t["end_s"] + tolerance_s
        and d.end_s >= t["start_s"] - tolerance_s
    )


def _explains(detection_kind: str, fault_kind: str) -> bool:
    return detection_kind == ANY_FAULT or DETECTOR_FOR.get(fault_kind) == detection_kind


def score_detections(
    truth: Sequence[dict[str, Any]],
    detections: Sequence[DetectionRecord],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> list[KindScore]:
    """Scores per fault kind (sorted by kind), then one per detection kind that no injected
    fault kind maps to (its precision: every such detection that no fault explains is false,
    e.g. inverter trips reported in a run without any).

    ``truth``: ground-truth records (``meters.faults.GROUND_TRUTH_FIELDS``: ``kind``,
    ``meter_id``, ``start_s``, ``end_s`` are used), on the detections' time base (s after
    the scenario's start)."""
    scores = []
    for fault_kind in sorted({t["kind"] for t in truth}):
        faults = [t for t in truth if t["kind"] == fault_kind]
        detection_kind = DETECTOR_FOR.get(fault_kind)
        delays: list[float] = []
        found = 0
        for fault in faults:
            hits = [
                d
                for d in detections
                if _explains(d.kind, fault_kind) and _overlaps(d, fault, tolerance_s)
            ]
            if hits:
                found += 1
                delays.append(min(d.detected_s for d in hits) - fault["start_s"])
        own = [d for d in detections if d.kind == detection_kind]
        true = sum(any(_overlaps(d, t, tolerance_s) for t in faults) for d in own)
        scores.append(
            KindScore(
                fault_kind=fault_kind,
                detection_kind=detection_kind,
                faults=len(faults),
                faults_detected=found,
                recall=found / len(faults) if detection_kind or found else None,
                detections=len(own),
                detections_true=true,
                precision=true / len(own) if own else None,
                delay_s_median=float(np.median(delays)) if delays else None,
                delay_s_max=float(max(delays)) if delays else None,
            )
        )
    covered = {s.detection_kind for s in scores}
    for detection_kind in sorted({d.kind for d in detections} - covered):
        own = [d for d in detections if d.kind == detection_kind]
        true = sum(
            any(
                _explains(detection_kind, t["kind"]) and _overlaps(d, t, tolerance_s) for t in truth
            )
            for d in own
        )
        scores.append(
            KindScore(
                fault_kind="(none)",
                detection_kind=detection_kind,
                faults=0,
                faults_detected=0,
                recall=None,
                detections=len(own),
                detections_true=true,
                precision=true / len(own),
                delay_s_median=None,
                delay_s_max=None,
            )
        )
    return scores
