"""Scoring detections against injected faults: the confusion matrix, a right meter with
the wrong kind is found and misclassified (not a false alarm), faults without effect are
not scored, channels of one register fault are one fault, delays run from the evidence,
and storm cut-outs recognised as events are right while alerts on them are false."""

from __future__ import annotations

import pytest

from twin.accounting.records import DetectionRecord
from twin.accounting.scoring import FALSE_ALARM, MISSED, daylight_start, score_analytics


def _fault(kind: str, meter: str, start: float, end: float, **extra: object) -> dict[str, object]:
    return {"kind": kind, "meter_id": meter, "start_s": start, "end_s": end,
            "affected_readings": 10} | extra  # fmt: skip


def _detection(kind: str, meter: str, start: float, end: float, at: float) -> DetectionRecord:
    return DetectionRecord(kind, meter, start, end, at, at + 300.0, 1.0, "")


def test_the_confusion_matrix_counts_found_misclassified_missed_and_false() -> None:
    truth = [
        _fault("inverter_trip", "pv-1", 10_000, 20_000),
        _fault("inverter_trip", "pv-2", 50_000, 60_000),
        _fault("zero_value", "pv-3", 0, 7_200, channel="energy_received"),
        _fault("zero_value", "pv-3", 0, 7_200, channel="energy_delivered"),  # one fault
        _fault("icing", "wind-1", 0, 3_600),
        _fault("turbine_curtailment", "wind-2", 0, 3_600, affected_readings=0),  # no effect
    ]
    detections = [
        _detection("inverter_trip", "pv-1", 10_060, 19_800, 10_960),  # found, right
        _detection("inverter_trip", "pv-3", 900, 7_200, 2_700),  # found, wrong kind
        _detection("curtailment", "wind-1", 600, 3_000, 3_000),  # found, wrong kind
        _detection("stuck_meter", "pv-4", 10_000, 12_000, 12_000),  # a false alarm
    ]
    s = score_analytics(truth, detections, tolerance_s=600)
    assert (s.faults, s.found, s.classified_right) == (4, 3, 1)
    assert (s.detections, s.false_alarms) == (4, 1)
    assert s.recall == pytest.approx(0.75) and s.precision == pytest.approx(0.75)
    assert s.classified_right_fraction == pytest.approx(1 / 3)
    assert s.confusion == {
        "inverter_trip": {"inverter_trip": 1, MISSED: 1},
        "zero_value": {"inverter_trip": 1},
        "icing": {"curtailment": 1},
        FALSE_ALARM: {"stuck_meter": 1},
    }
    assert s.no_effect == [("turbine_curtailment", "wind-2", 0.0)]
    trip = next(k for k in s.kinds if k.fault_kind == "inverter_trip")
    assert (trip.faults, trip.found, trip.classified_right, trip.recall) == (2, 1, 1, 0.5)
    assert trip.delay_reported_s_max == pytest.approx(960 + 300)
    assert trip.delay_detected_s_max == pytest.approx(960)


def test_the_right_kind_among_several_detections_counts_as_right() -> None:
    truth = [_fault("soiling", "pv-1", 0, 200_000)]
    detections = [
        _detection("degradation", "pv-1", 1_000, 90_000, 90_000),
        _detection("soiling", "pv-1", 100_000, 190_000, 150_000),
    ]
    s = score_analytics(truth, detections)
    assert s.classified_right == 1 and s.confusion == {"soiling": {"soiling": 1}}
    assert s.false_alarms == 0 and s.precision == 1.0


def test_storm_cut_outs_are_events_and_alerts_on_them_are_false() -> None:
    truth = [
        {"kind": "storm_cutout", "meter_id": "wind-1", "start_s": 0, "end_s": 3600},
        {"kind": "storm_cutout", "meter_id": "wind-2", "start_s": 0, "end_s": 3600},
    ]
    events = [_detection("storm_cutout", "wind-1", 300, 3600, 1200)]
    alerts = [_detection("zero_register", "wind-2", 300, 3600, 1200)]
    s = score_analytics(truth, alerts, events)
    assert (s.cutouts, s.cutouts_recognised, s.cutout_false_alarms) == (2, 1, 1)
    assert s.faults == 0 and s.recall is None and s.false_alarms == 1 and s.precision == 0.0
    quiet = score_analytics(truth, [], events)
    assert quiet.precision is None and quiet.false_alarms == 0


def test_delays_of_night_faults_on_pv_run_from_daylight() -> None:
    """A trip at midnight local time shows at dawn: its evidence starts when the sun is 10
    degrees up (Greensboro, 21 June: about 06:50 EDT, 10:50 UTC)."""
    epoch = 1_782_014_400  # 2026-06-21T04:00:00Z, local midnight (EDT)
    start = daylight_start({"pv-1": (36.1, -79.9, "pv"), "wind-1": (36.1, -79.9, "wind")}, epoch)
    evidence = start("inverter_trip", "pv-1", 0.0, 12 * 3600.0)
    assert 6.5 * 3600 < evidence < 7.2 * 3600
    assert start("inverter_trip", "pv-1", 12 * 3600.0, 13 * 3600.0) == 12 * 3600.0  # in sun
    assert start("zero_value", "wind-1", 0.0, 3600.0) == 0.0  # a turbine: at once
    assert start("soiling", "pv-1", 0.0, 86_400.0) == 0.0  # not a daylight kind
