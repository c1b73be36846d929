"""Scoring the pipeline's analytics against the faults the twin injected (DESIGN.md §4): a
confusion matrix, recall, precision, the share classified right and the detection delay
per kind, and what became of the storm cut-outs.

The twin knows the truth (``meters.faults`` ground-truth records, one per channel a
register fault touched, merged here into one fault; plus the storm cut-outs the weather
causes); the pipeline reports detections and events. Matching is event based, as in fault
detection benchmarks (e.g. the windows of the Numenta Anomaly Benchmark, Lavin & Ahmad
2015, without its weighting):

- a detection *matches* a fault when it names the fault's meter and its [start, end]
  overlaps the fault's window widened by ``tolerance_s`` on both sides, whatever its kind;
- a fault is *found* when a detection matches it, and *classified right* when one of those
  is of the kind that names it (:data:`DETECTOR_FOR`); a found fault whose detections are
  all of other kinds is *misclassified* (it counts as found: the engineer is sent to the
  right meter), never as a false alarm;
- a detection matching no fault is a *false alarm* (row ``(none)`` of the matrix);
- faults that changed no reading (``affected_readings`` 0: a curtailment cap the wind
  never reached, a spike at night) cannot be seen and are listed apart, not scored.

Storm cut-outs are normal behaviour: a cut-out recognised as an event is right; an alert
on a cut-out turbine that matches no fault is a false alarm.

The detection delay of a fault is taken from its *evidence start*: the fault's start, or
for a fault on a PV site that shows only in daylight (a trip, a register reading zero or
stuck) the first moment of its window with the sun 10 degrees above the site's horizon
(``daylight_s``); until the reported time (when the MDC's analysis that found it ended)
and until the evidence sufficed (``detected_s``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from twin.accounting.records import DetectionRecord

#: Ground-truth fault kind (``meters.faults.FIELD_FAULTS``) -> the detection kind
#: (``pipeline.analyze.faults``) that names it.
DETECTOR_FOR: dict[str, str] = {
    "inverter_trip": "inverter_trip",
    "zero_value": "zero_register",
    "stuck_value": "stuck_meter",
    "spike": "spike",
    "soiling": "soiling",
    "degradation": "degradation",
    "partial_shading": "partial_shading",
    "turbine_curtailment": "curtailment",
    "icing": "icing",
    "clock_jump": "clock_offset",
}
#: Ground-truth kinds that are normal behaviour, and the event kind that recognises them.
EVENT_FOR: dict[str, str] = {"storm_cutout": "storm_cutout"}
#: Fault kinds whose evidence on a PV site waits for daylight.
DAYLIGHT_KINDS = frozenset({"inverter_trip", "zero_value", "stuck_value"})
#: Column of the confusion matrix for a fault no detection matched, row for detections
#: that matched no fault.
MISSED = "missed"
FALSE_ALARM = "(none)"
#: Default slack around a fault's window, s: one hour, the analytics' batch period.
DEFAULT_TOLERANCE_S = 3600.0

#: (meter_id, start_s, end_s) -> the evidence start of a fault on that meter, s.
EvidenceStart = Callable[[str, str, float, float], float]


@dataclass(frozen=True)
class KindScore:
    """How one kind of injected fault was detected. Delays in s from the evidence start
    (module docstring); None where undefined."""

    fault_kind: str
    detection_kind: str
    faults: int
    found: int
    classified_right: int
    recall: float | None
    delay_reported_s_median: float | None
    delay_reported_s_max: float | None
    delay_detected_s_max: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnalyticsScores:
    """The analytics of a run against the truth (module docstring).

    Attributes:
        faults: faults scored (injected, with an effect).
        found: faults found; classified_right: of those, named by the right kind.
        detections: alerts raised; false_alarms: those matching no fault.
        recall, precision: found / faults, (detections - false alarms) / detections.
        classified_right_fraction: classified_right / found.
        kinds: per fault kind.
        confusion: injected kind -> detected kind (or ``missed``) -> faults; row
            ``(none)``: the false alarms by detection kind.
        no_effect: faults that changed no reading (kind, meter, start), not scored.
        cutouts: storm cut-outs in the truth; cutouts_recognised: of those, matched by an
            event; cutout_false_alarms: false alarms on a cut-out turbine during one.
    """

    faults: int
    found: int
    classified_right: int
    detections: int
    false_alarms: int
    recall: float | None
    precision: float | None
    classified_right_fraction: float | None
    kinds: list[KindScore] = field(default_factory=list)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    no_effect: list[tuple[str, str, float]] = field(default_factory=list)
    cutouts: int = 0
    cutouts_recognised: int = 0
    cutout_false_alarms: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["no_effect"] = [list(x) for x in self.no_effect]
        return data


def merge_truth(truth: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per injected fault: a register fault's records of several channels
    merged (``affected_readings`` summed), in first-seen order."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for t in truth:
        key = (t["kind"], t["meter_id"], t["start_s"], t["end_s"])
        if key in merged:
            merged[key]["affected_readings"] += int(t.get("affected_readings", 0))
        else:
            merged[key] = dict(t) | {"affected_readings": int(t.get("affected_readings", 1))}
    return list(merged.values())


def _matches(d: DetectionRecord, t: dict[str, Any], tolerance_s: float) -> bool:
    return bool(
        d.series_id == t["meter_id"]
        and d.start_s <= t["end_s"] + tolerance_s
        and d.end_s >= t["start_s"] - tolerance_s
    )


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    return (float(np.median(values)), float(max(values))) if values else (None, None)


def score_analytics(
    truth: Sequence[dict[str, Any]],
    detections: Sequence[DetectionRecord],
    events: Sequence[DetectionRecord] = (),
    evidence_start: EvidenceStart | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> AnalyticsScores:
    """Score `detections` (alerts) and `events` against the ground truth (module
    docstring). Times are s after the scenario's start on both sides; `evidence_start`
    gives a fault's evidence start (default: its start)."""
    records = merge_truth(truth)
    cutouts = [t for t in records if t["kind"] in EVENT_FOR]
    faults = [t for t in records if t["kind"] not in EVENT_FOR and t["affected_readings"] > 0]
    no_effect = [
        (t["kind"], t["meter_id"], float(t["start_s"]))
        for t in records
        if t["kind"] not in EVENT_FOR and t["affected_readings"] == 0
    ]
    confusion: dict[str, dict[str, int]] = {}
    matched_any = [False] * len(detections)
    per_kind: dict[str, dict[str, list[float]]] = {}
    found = right = 0
    for fault in faults:
        kind = fault["kind"]
        want = DETECTOR_FOR.get(kind, kind)
        hits = [i for i, d in enumerate(detections) if _matches(d, fault, tolerance_s)]
        for i in hits:
            matched_any[i] = True
        stats = per_kind.setdefault(kind, {"n": [], "found": [], "right": [], "rep": [], "det": []})
        stats["n"].append(1)
        row = confusion.setdefault(kind, {})
        if not hits:
            row[MISSED] = row.get(MISSED, 0) + 1
            continue
        found += 1
        stats["found"].append(1)
        hit_kinds = [detections[i].kind for i in hits]
        first = min(hits, key=lambda i: detections[i].detected_s)
        label = want if want in hit_kinds else detections[first].kind
        row[label] = row.get(label, 0) + 1
        if label == want:
            right += 1
            stats["right"].append(1)
        start = float(fault["start_s"])
        if evidence_start is not None:
            start = evidence_start(kind, fault["meter_id"], start, float(fault["end_s"]))
        stats["rep"].append(min(detections[i].reported_s for i in hits) - start)
        stats["det"].append(min(detections[i].detected_s for i in hits) - start)
    false_rows = confusion.setdefault(FALSE_ALARM, {})
    on_cutout = 0
    for i, d in enumerate(detections):
        if matched_any[i]:
            continue
        false_rows[d.kind] = false_rows.get(d.kind, 0) + 1
        if any(_matches(d, c, 0.0) for c in cutouts):
            on_cutout += 1
    if not false_rows:
        del confusion[FALSE_ALARM]
    recognised = sum(
        any(e.kind == EVENT_FOR[c["kind"]] and _matches(e, c, tolerance_s) for e in events)
        for c in cutouts
    )
    kinds: list[KindScore] = []
    for kind in sorted(per_kind):
        st = per_kind[kind]
        n, f = len(st["n"]), len(st["found"])
        med, worst = _stats(st["rep"])
        kinds.append(
            KindScore(
                kind,
                DETECTOR_FOR.get(kind, kind),
                n,
                f,
                len(st["right"]),
                f / n,
                med,
                worst,
                _stats(st["det"])[1],
            )
        )
    n_false = sum(false_rows.values())
    return AnalyticsScores(
        faults=len(faults),
        found=found,
        classified_right=right,
        detections=len(detections),
        false_alarms=n_false,
        recall=found / len(faults) if faults else None,
        precision=(len(detections) - n_false) / len(detections) if detections else None,
        classified_right_fraction=right / found if found else None,
        kinds=kinds,
        confusion=confusion,
        no_effect=no_effect,
        cutouts=len(cutouts),
        cutouts_recognised=recognised,
        cutout_false_alarms=on_cutout,
    )


def daylight_start(
    positions: dict[str, tuple[float, float, str]], epoch_s: int, min_elevation_deg: float = 10.0
) -> EvidenceStart:
    """An `EvidenceStart` for a run: for a fault of `DAYLIGHT_KINDS` on a PV site
    (``positions``: meter id -> (latitude, longitude, fleet kind)), the first minute of
    its window with the sun at least `min_elevation_deg` above the horizon (NREL SPA via
    pvlib); else the fault's start."""
    import pandas as pd
    import pvlib

    def start(kind: str, meter_id: str, start_s: float, end_s: float) -> float:
        place = positions.get(meter_id)
        if place is None or place[2] != "pv" or kind not in DAYLIGHT_KINDS:
            return start_s
        t = np.arange(start_s, max(end_s, start_s + 60.0), 60.0)
        times = pd.to_datetime(epoch_s + t, unit="s", utc=True)
        elevation = pvlib.solarposition.get_solarposition(times, place[0], place[1])[
            "apparent_elevation"
        ].to_numpy()
        up = np.flatnonzero(elevation >= min_elevation_deg)
        return float(t[up[0]]) if up.size else start_s

    return start
