"""The JSON the MDC service answers with, in one place for the service and its clients:
an upload's outcome (`UploadAnswer`), the HTTP status of each rejection reason
(`status_of`), and a batch analysis (`analysis_json`, `analysis_from_json`).

Only the standard library and the pipeline's own modules are imported here (DESIGN §2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.analyze.batch import AnalysisOutcome
from pipeline.analyze.digest import FleetDigest
from pipeline.analyze.forecast import ForecastRecord
from pipeline.analyze.recommendations import Recommendation
from pipeline.service import UploadOutcome
from pipeline.store.alerts import Detection

__all__ = [
    "REJECTION_STATUS",
    "UploadAnswer",
    "analysis_from_json",
    "analysis_json",
    "status_of",
]

#: HTTP status of a rejected upload by reason code (`pipeline.fetch.rejection`); codes not
#: listed are 422 (the document is understood as XML but not acceptable). A malformed
#: envelope is a bad request; a meter the keyring does not know, a MAC that does not verify
#: or an envelope for another document is forbidden; a replay conflicts with what was
#: received; a body over the size limit is too large.
REJECTION_STATUS: dict[str, int] = {
    "auth_bad_envelope": 400,
    "empty_body": 400,
    "auth_unknown_meter": 403,
    "auth_bad_signature": 403,
    "auth_mismatch": 403,
    "auth_replay": 409,
    "too_large": 413,
    "unsupported_encoding": 415,
}


def status_of(reason_code: str) -> int:
    """The HTTP status answering a rejection with `reason_code` (a 4xx)."""
    return REJECTION_STATUS.get(reason_code, 422)


@dataclass(frozen=True)
class UploadAnswer:
    """The service's answer to one upload.

    Attributes:
        outcome: what the pipeline did (`pipeline.service.UploadOutcome`; ``stage_ns`` is
            not sent).
        committed: the readings were committed to the database before this answer (always
            with ``--ack commit``; never with ``--ack receipt``; False for a rejection).
        receipt: the accepted upload's number in this service process (1, 2, ...: the
            order of the writes), 0 when rejected.
        committed_through: every accepted upload of this process up to this receipt number
            is committed (at the time of the answer).
        instance: the service process' id (new at every start): receipt numbers of
            different instances are unrelated.
    """

    outcome: UploadOutcome
    committed: bool
    receipt: int
    committed_through: int
    instance: str

    @property
    def status(self) -> int:
        """HTTP status: 200 accepted, else `status_of` the rejection."""
        code = self.outcome.reason_code
        return 200 if code is None else status_of(code)

    def to_json(self) -> dict[str, Any]:
        o = self.outcome
        return {
            "accepted": o.accepted,
            "reason": o.reason,
            "code": o.reason_code,
            "stage": o.rejected_stage,
            "meter_id": o.meter_id,
            "sequence_no": o.sequence_no,
            "size_bytes": o.size_bytes,
            "readings": o.n_readings,
            "stored": o.inserted,
            "duplicates": o.duplicates,
            "conflicts": o.conflicts,
            "series": o.n_series,
            "committed": self.committed,
            "receipt": self.receipt,
            "committed_through": self.committed_through,
            "instance": self.instance,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadAnswer:
        """The answer of `to_json` (raises KeyError or TypeError on another shape)."""
        outcome = UploadOutcome(
            accepted=bool(data["accepted"]),
            reason=data["reason"],
            meter_id=data["meter_id"],
            sequence_no=data["sequence_no"],
            size_bytes=int(data["size_bytes"]),
            n_readings=int(data["readings"]),
            inserted=int(data["stored"]),
            duplicates=int(data["duplicates"]),
            stage_ns=None,
            rejected_stage=data["stage"],
            n_series=int(data["series"]),
            committed=bool(data["committed"]),
            conflicts=int(data["conflicts"]),
        )
        return cls(
            outcome,
            bool(data["committed"]),
            int(data["receipt"]),
            int(data["committed_through"]),
            str(data["instance"]),
        )


def _json_value(value: Any) -> Any:
    """`value` with every non-finite float (JSON has none) as None, tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def analysis_json(outcome: AnalysisOutcome) -> dict[str, Any]:
    """A batch analysis as JSON (NaN and infinities as null)."""
    return {
        "now_s": outcome.now_s,
        "detections": [_json_record(d) for d in outcome.detections],
        "series_analysed": outcome.series_analysed,
        "points_analysed": outcome.points_analysed,
        "validated_written": outcome.validated_written,
        "vee_findings": outcome.vee_findings,
        "alerts_stored": outcome.alerts_stored,
        "alerts_updated": outcome.alerts_updated,
        "alerts_sent": outcome.alerts_sent,
        "forecasts": [_json_record(f) for f in outcome.forecasts],
        "events": [_json_record(e) for e in outcome.events],
        "recommendations": [r.to_json() for r in outcome.recommendations],
        "digest": None if outcome.digest is None else outcome.digest.to_json(),
    }


def _json_record(record: Any) -> dict[str, Any]:
    return {k: _json_value(v) for k, v in asdict(record).items()}


def analysis_from_json(data: dict[str, Any]) -> AnalysisOutcome:
    """The outcome of `analysis_json` (null numbers come back as NaN)."""

    def number(v: float | None) -> float:
        return math.nan if v is None else float(v)

    def detection(d: dict[str, Any]) -> Detection:
        return Detection(
            **{**d, "confidence": number(d["confidence"]), "magnitude": number(d["magnitude"])}
        )

    forecasts = [
        ForecastRecord(
            **{
                **f,
                "forecast_wh": tuple(number(x) for x in f["forecast_wh"]),
                "reference_wh": tuple(number(x) for x in f["reference_wh"]),
            }
        )
        for f in data["forecasts"]
    ]
    digest = data["digest"]
    return AnalysisOutcome(
        now_s=int(data["now_s"]),
        detections=[detection(d) for d in data["detections"]],
        series_analysed=int(data["series_analysed"]),
        points_analysed=int(data["points_analysed"]),
        validated_written=int(data["validated_written"]),
        vee_findings=int(data["vee_findings"]),
        alerts_stored=int(data["alerts_stored"]),
        alerts_updated=int(data["alerts_updated"]),
        alerts_sent=int(data["alerts_sent"]),
        forecasts=forecasts,
        events=[detection(e) for e in data["events"]],
        recommendations=[Recommendation.from_json(r) for r in data["recommendations"]],
        digest=None if digest is None else FleetDigest.from_json(digest),
    )
