"""What the world counts as a run goes: uploads and their fates, and each rejection."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Rejection:
    """An upload the pipeline rejected: whose (``meter_id``, ``sequence_no``), when (``t_s``,
    s after the scenario's start, when a core took it), how many ``readings`` it carried,
    the pipeline's ``reason`` and the ``stage`` that rejected it."""

    meter_id: str
    sequence_no: int
    t_s: float
    readings: int
    reason: str | None
    stage: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Counters:
    """Upload-level counts over the run."""

    uploads_started: int = 0
    uploads_delivered: int = 0  # copies that reached the MDC (retries and duplicates included)
    uploads_acknowledged: int = 0
    uploads_failed: int = 0  # retry budget exhausted; the readings stay in the meter
    windows_skipped_busy: int = 0
    uploads_rejected: int = 0
    uploads_lost_at_mdc: int = 0  # in an MDC's memory when its server or power went
    attempts_unroutable: int = 0  # no MDC could take the upload
    upload_bytes_max: int = 0  # largest upload body sent, bytes
    analyses: int = 0  # batch analytics runs
    points_analysed: int = 0
    #: Rows counted as stored for uploads the model mode costed without a pipeline call.
    rows_modelled: int = 0
    rejections: list[Rejection] = field(default_factory=list)
