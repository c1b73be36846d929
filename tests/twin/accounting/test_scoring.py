"""Event-based scoring of detections against injected faults."""

from __future__ import annotations

import pytest

from twin.accounting.records import DetectionRecord
from twin.accounting.scoring import score_detections


def _fault(kind: str, meter: str, start: float, end: float) -> dict[str, object]:
    return {"kind": kind, "meter_id": meter, "start_s": start, "end_s": end}


def _detection(kind: str, meter: str, start: float, end: float, at: float) -> DetectionRecord:
    return DetectionRecord(kind, meter, start, end, at, at, 1.0, "")


def test_recall_precision_and_delay_per_kind() -> None:
    truth = [
        _fault("inverter_trip", "pv-1", 10_000, 20_000),
        _fault("inverter_trip", "pv-2", 50_000, 60_000),
        _fault("stuck_value", "pv-3", 0, 7_200),
        _fault("icing", "wind-1", 0, 3_600),  # no detector for icing
    ]
    detections = [
        _detection("inverter_trip", "pv-1", 10_060, 19_800, 10_960),  # found, 960 s late
        _detection("inverter_trip", "pv-4", 10_000, 12_000, 12_000),  # a false alarm
        _detection("stuck_meter", "pv-3", 120, 7_200, 3_720),
        _detection("stuck_meter", "pv-3", 90_000, 99_000, 99_000),  # outside the window
    ]
    scores = {s.fault_kind: s for s in score_detections(truth, detections, tolerance_s=600)}
    trip = scores["inverter_trip"]
    assert (trip.faults, trip.faults_detected, trip.recall) == (2, 1, 0.5)
    assert (trip.detections, trip.detections_true, trip.precision) == (2, 1, 0.5)
    assert trip.delay_s_median == trip.delay_s_max == pytest.approx(960.0)
    stuck = scores["stuck_value"]
    assert (stuck.detection_kind, stuck.recall, stuck.precision) == ("stuck_meter", 1.0, 0.5)
    assert stuck.delay_s_max == pytest.approx(3_720.0)
    icing = scores["icing"]
    assert (icing.detection_kind, icing.recall, icing.precision) == (None, None, None)


def test_detections_with_no_injected_kind_are_all_false_and_anomalies_match_any_fault() -> None:
    truth = [_fault("icing", "wind-1", 0, 3_600)]
    detections = [
        _detection("curtailment", "wind-2", 0, 100, 100),
        _detection("anomaly", "wind-1", 1_000, 1_060, 1_060),
    ]
    scores = {s.detection_kind: s for s in score_detections(truth, detections)}
    assert scores["curtailment"].precision == 0.0 and scores["curtailment"].fault_kind == "(none)"
    assert scores["anomaly"].precision == 1.0
    icing = next(s for s in score_detections(truth, detections) if s.fault_kind == "icing")
    assert (icing.faults_detected, icing.recall) == (1, 1.0)
