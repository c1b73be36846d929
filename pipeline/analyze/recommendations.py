"""Recommendations: detections turned into sentences a person can act on ("clean panels
at site X: performance ratio down 12% over 10 days"), one template per detection kind
(`RECOMMENDERS`).

Only the standard library and the pipeline's own modules are imported here (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.analyze.detectors import hours_text, utc_text
from pipeline.analyze.faults import ANOMALY, CURTAILMENT, INVERTER_TRIP, SOILING, STUCK_METER
from pipeline.analyze.series import SECONDS_PER_DAY
from pipeline.store.alerts import Detection

__all__ = ["RECOMMENDERS", "recommendations"]


def _recommend_soiling(d: Detection) -> str:
    days = max(1, round((d.end_s - d.start_s) / SECONDS_PER_DAY))
    return (
        f"clean panels at site {d.series_id}: performance ratio down {d.magnitude:.0%} "
        f"over {days} days"
    )


def _recommend_trip(d: Detection) -> str:
    return (
        f"inspect and reset the inverter at site {d.series_id}: no output since "
        f"{utc_text(d.start_s)} in good sun (about {d.magnitude / 1000.0:.0f} kWh lost so far)"
    )


def _recommend_stuck(d: Detection) -> str:
    return (
        f"check meter {d.series_id}: the same reading ({d.magnitude:g} Wh) for "
        f"{hours_text(d.end_s - d.start_s)} since {utc_text(d.start_s)}; data since then are "
        "not real (estimate them and repair or replace the meter)"
    )


def _recommend_curtailment(d: Detection) -> str:
    return (
        f"review curtailment at {d.series_id}: output held at {d.magnitude:.0%} of rated "
        f"from {utc_text(d.start_s)} to {utc_text(d.end_s)}; if the grid operator did not order "
        "it, check the turbine controller's power limit"
    )


def _recommend_anomaly(d: Detection) -> str:
    return f"look at {d.series_id} around {utc_text(d.start_s)}: {d.message}"


#: Recommendation templates: detection kind -> f(detection) -> sentence.
RECOMMENDERS: dict[str, Callable[[Detection], str]] = {
    SOILING: _recommend_soiling,
    INVERTER_TRIP: _recommend_trip,
    STUCK_METER: _recommend_stuck,
    CURTAILMENT: _recommend_curtailment,
    ANOMALY: _recommend_anomaly,
}


def recommendations(detections: Sequence[Detection], min_confidence: float = 0.5) -> list[str]:
    """Sentences a person can act on, one per detection at or above `min_confidence`,
    most confident first."""
    ranked = sorted(
        (d for d in detections if d.confidence >= min_confidence),
        key=lambda d: (-d.confidence, d.start_s),
    )
    return [RECOMMENDERS[d.kind](d) for d in ranked]
