"""The MDC pipeline service: fetch → process → store → analyze, one upload at a time.

`Pipeline.handle` takes the bytes of one upload and returns an `UploadOutcome`; it never
raises for bad input (DESIGN §3: a bad upload is rejected with a reason the ledger records,
and the run goes on). With a ``clock`` (``time.thread_time_ns``) it also reports each
stage's CPU cost, from which the twin's calibrator fits its per-stage cost model (DESIGN §4).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pipeline.analyze import Alert, RobustZScoreDetector
from pipeline.fetch import Limits, RejectedUpload, parse_upload
from pipeline.process import ReadingBatch, extract_readings
from pipeline.store import Store

__all__ = ["STAGES", "Pipeline", "UploadOutcome"]

#: The stages, in order, as keys of `UploadOutcome.stage_ns`.
STAGES: tuple[str, ...] = ("fetch", "process", "store", "analyze")

_DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class UploadOutcome:
    """What the pipeline did with one upload.

    Attributes:
        accepted: True when the upload was parsed and its readings stored.
        reason: the rejection reason (``"<code>: <text>"``) when not accepted, else None.
        meter_id: the meter, when known (always for accepted uploads; for rejected ones
            when the document got far enough to name it).
        sequence_no: the upload's sequence number from its feed id, when known.
        size_bytes: length of the upload body, bytes.
        n_readings: interval readings in the document (0 if rejected).
        inserted: readings newly stored.
        duplicates: readings already stored (re-deliveries, or repeated within the
            document); inserted + duplicates == n_readings.
        alerts: alerts raised by the analytics on this upload.
        stage_ns: per-stage CPU time, ns, measured with the ``clock`` given to
            `Pipeline.handle` (keys from `STAGES`; for a rejected upload only the stages
            that ran, the failing one included); None without a clock. The ``analyze``
            stage includes storing the alerts.
        rejected_stage: the stage (from `STAGES`) that rejected the upload, None when
            accepted: a rejected upload cost that stage and the ones before it.
    """

    accepted: bool
    reason: str | None
    meter_id: str | None
    sequence_no: int | None
    size_bytes: int
    n_readings: int
    inserted: int
    duplicates: int
    alerts: int
    stage_ns: dict[str, int] | None
    rejected_stage: str | None = None


class Pipeline:
    """The pipeline of one MDC server: a store, ingest limits and a detector.

    Args:
        db_path: SQLite database file (created if missing), see `Store`.
        limits: ingest limits, see `Limits`.
        detector: analytics for the forward (or undirected) series of each meter; default a
            `RobustZScoreDetector` with its defaults. Series of other flow directions (a
            net meter's received energy) get their own detector with the same parameters,
            so the two series of one meter never mix.

    Use from one thread at a time.
    """

    def __init__(
        self,
        db_path: str | Path,
        limits: Limits = _DEFAULT_LIMITS,
        detector: RobustZScoreDetector | None = None,
    ) -> None:
        self.limits = limits
        self.detector = RobustZScoreDetector() if detector is None else detector
        self.store = Store(db_path)
        self._detectors: dict[int, RobustZScoreDetector] = {}

    def _detector_for(self, flow_direction: int) -> RobustZScoreDetector:
        if flow_direction in (0, 1):  # ESPI FlowDirectionKind none / forward
            return self.detector
        detector = self._detectors.get(flow_direction)
        if detector is None:
            base = self.detector
            detector = RobustZScoreDetector(base.window, base.threshold, base.mad_floor)
            self._detectors[flow_direction] = detector
        return detector

    def _analyze(self, batch: ReadingBatch) -> list[Alert]:
        alerts = self._detector_for(batch.flow_direction).update(
            batch.meter_id, batch.start_s, batch.value
        )
        if alerts:
            self.store.add_alerts(alerts)
        return alerts

    def handle(self, body: bytes, clock: Callable[[], int] | None = None) -> UploadOutcome:
        """Run one upload through fetch, process, store and analyze.

        Args:
            body: the upload exactly as received.
            clock: a monotonic ns clock, normally `time.thread_time_ns` (CPU time of this
                thread); when given, `UploadOutcome.stage_ns` holds each stage's cost.

        Returns:
            The outcome. A rejected upload (`RejectedUpload` from any stage, or any other
            exception while fetching or processing the document, reason code
            ``processing_error``) has ``accepted=False`` and the reason, and nothing of it
            is stored. Errors that are not about the input (a full disk, a locked
            database) propagate.
        """
        timer = None if clock is None else _StageTimer(clock)
        stage = "fetch"
        batch: ReadingBatch | None = None
        try:
            try:
                root = parse_upload(body, self.limits)
                if timer is not None:
                    timer.lap(stage)
                stage = "process"
                batch = extract_readings(root)
                del root  # free the tree before the slower stages
                if timer is not None:
                    timer.lap(stage)
            except RejectedUpload:
                raise
            except Exception as exc:  # an input nobody foresaw must not stop the MDC
                raise RejectedUpload(
                    f"processing_error: {type(exc).__name__}: {str(exc)[:200]}"
                ) from exc
            stage = "store"
            inserted, duplicates = self.store.upsert_readings(batch)
            if timer is not None:
                timer.lap(stage)
            stage = "analyze"
            alerts = self._analyze(batch)
            if timer is not None:
                timer.lap(stage)
        except RejectedUpload as exc:
            if timer is not None:
                timer.lap(stage)
            return UploadOutcome(
                accepted=False,
                reason=exc.reason,
                meter_id=exc.meter_id if batch is None else batch.meter_id,
                sequence_no=exc.sequence_no if batch is None else batch.sequence_no,
                size_bytes=len(body),
                n_readings=0,
                inserted=0,
                duplicates=0,
                alerts=0,
                stage_ns=None if timer is None else timer.stage_ns,
                rejected_stage=stage,
            )
        return UploadOutcome(
            accepted=True,
            reason=None,
            meter_id=batch.meter_id,
            sequence_no=batch.sequence_no,
            size_bytes=len(body),
            n_readings=int(batch.start_s.shape[0]),
            inserted=inserted,
            duplicates=duplicates,
            alerts=len(alerts),
            stage_ns=None if timer is None else timer.stage_ns,
        )

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _StageTimer:
    """Per-stage cost with a ns clock: `lap` charges the time since the previous lap."""

    __slots__ = ("clock", "stage_ns", "t_ns")

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.stage_ns: dict[str, int] = {}
        self.t_ns = clock()

    def lap(self, stage: str) -> None:
        now_ns = self.clock()
        self.stage_ns[stage] = now_ns - self.t_ns
        self.t_ns = now_ns
