"""The MDC pipeline service: fetch → process → store → analyze, one upload at a time.

`Pipeline.handle` takes the bytes of one upload and returns an `UploadOutcome`; it never
raises for bad input (DESIGN §3: a bad upload is rejected with a reason the ledger records,
and the run goes on). With a ``clock`` (``time.thread_time_ns``) it also reports each
stage's CPU cost, from which the twin's calibrator fits its per-stage cost model (DESIGN §4).

Stages:

- fetch: with a keyring, the per-meter envelope (`pipeline.auth`: header, key, HMAC, replay
  window); the hardened parse (`pipeline.fetch.parse_upload`); with a keyring, the check
  that the document's feed id is the envelope's (meter, sequence number);
- process: one `pipeline.process.ReadingBatch` per series of the upload
  (`pipeline.process.extract_batches`);
- store: all series of the upload in one unit of work (`pipeline.store.Store`);
- analyze: a `RobustZScoreDetector` per series (ReadingType), alerts stored.

Durability: by default every upload is committed before `handle` returns. With
``commit_every=N`` the accepted uploads share one transaction that is committed every N
accepted uploads (or by `Pipeline.flush`, or `Pipeline.close`): fewer commits, more uploads
per second, and up to N - 1 accepted uploads lost if the process dies before the commit
(`UploadOutcome.committed` says which uploads are durable).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from lxml import etree

from pipeline.analyze import Alert, RobustZScoreDetector
from pipeline.auth import DEFAULT_REPLAY_WINDOW, Authenticator, Keyring
from pipeline.fetch import Limits, RejectedUpload, parse_upload
from pipeline.process import ReadingBatch, ReadingType, extract_batches, upload_id
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
            when the document, or the envelope's header, got far enough to name it).
        sequence_no: the upload's sequence number from its feed id (or envelope header),
            when known.
        size_bytes: length of the upload body as received (envelope included), bytes.
        n_readings: interval readings in the document, summed over its series (0 if
            rejected).
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
            Authentication failures are rejected in ``fetch``.
        n_series: series (channels) in the upload (0 if rejected).
        committed: True when the upload's readings were committed to the database before
            `Pipeline.handle` returned (always for accepted uploads with the default
            ``commit_every=1``; with batched commits only for the upload that completed a
            group). False for rejected uploads.
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
    n_series: int = 0
    committed: bool = False

    @property
    def reason_code(self) -> str | None:
        """The machine-friendly part of `reason` (for example ``"auth_replay"``), None
        when accepted."""
        return None if self.reason is None else self.reason.partition(":")[0]


class Pipeline:
    """The pipeline of one MDC server: a store, ingest limits, analytics and, optionally,
    per-meter authentication.

    Args:
        db_path: SQLite database file (created if missing), see `Store`.
        limits: ingest limits, see `Limits` (the size limit applies to the document inside
            an envelope).
        detector: analytics parameters; each series (meter and ReadingType) is scored by a
            `RobustZScoreDetector` with these parameters, one detector per ReadingType so
            that a meter's channels never mix. Default: the detector's defaults.
        commit_every: accepted uploads per database transaction; 1 (default) commits every
            upload before `handle` returns (see the module docstring).
        keyring: per-meter HMAC keys. None (default): plain documents are accepted, as
            from a trusted link. Given: every upload must be a `pipeline.auth` envelope.
        replay_window: see `pipeline.auth.Authenticator` (used with a keyring).

    Attributes:
        rejections: count of rejected uploads per reason code (``"auth_replay"``,
            ``"malformed"``, ...), since the pipeline was created.

    Use from one thread at a time.
    """

    def __init__(
        self,
        db_path: str | Path,
        limits: Limits = _DEFAULT_LIMITS,
        detector: RobustZScoreDetector | None = None,
        *,
        commit_every: int = 1,
        keyring: Keyring | None = None,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
    ) -> None:
        if isinstance(commit_every, bool) or not isinstance(commit_every, int) or (
            commit_every < 1
        ):
            raise ValueError(f"commit_every must be an int >= 1, got {commit_every!r}")
        self.limits = limits
        self.detector = RobustZScoreDetector() if detector is None else detector
        self.commit_every = commit_every
        self.authenticator = None if keyring is None else Authenticator(keyring, replay_window)
        self.rejections: Counter[str] = Counter()
        self.store = Store(db_path)
        self._detectors: dict[ReadingType, RobustZScoreDetector] = {}
        self._pending = 0

    @property
    def pending_uploads(self) -> int:
        """Accepted uploads not committed yet (always 0 with ``commit_every=1``)."""
        return self._pending

    def flush(self) -> int:
        """Commit the accepted uploads of the open group; returns how many."""
        pending, self._pending = self._pending, 0
        self.store.commit()
        return pending

    def _detector_for(self, reading_type: ReadingType) -> RobustZScoreDetector:
        detector = self._detectors.get(reading_type)
        if detector is None:
            base = self.detector
            detector = RobustZScoreDetector(
                base.window, base.threshold, base.mad_floor, base.mad_floor_fraction
            )
            self._detectors[reading_type] = detector
        return detector

    def _analyze(self, batches: tuple[ReadingBatch, ...]) -> int:
        n_alerts = 0
        for batch in batches:
            rt = batch.reading_type
            alerts: list[Alert] = self._detector_for(rt).update(
                batch.meter_id, batch.start_s, batch.value
            )
            if alerts:
                self.store.add_alerts(alerts, reading_type=rt)
                n_alerts += len(alerts)
        return n_alerts

    def _fetch(
        self, body: bytes
    ) -> tuple[etree._Element, tuple[str | None, int | None] | None]:
        """The fetch stage: envelope (with a keyring) and parse. Returns the root and, with a
        keyring, the document's feed id (checked against the envelope), else None."""
        auth = self.authenticator
        if auth is None:
            return parse_upload(body, self.limits), None
        envelope = auth.verify(body, self.limits.max_size_bytes)
        root = parse_upload(envelope.body, self.limits)
        try:
            feed_id = upload_id(root)
        except RejectedUpload:
            feed_id = (None, None)
        auth.confirm(envelope, *feed_id)
        return root, feed_id

    def handle(self, body: bytes, clock: Callable[[], int] | None = None) -> UploadOutcome:
        """Run one upload through fetch, process, store and analyze.

        Args:
            body: the upload exactly as received.
            clock: a monotonic ns clock, normally `time.thread_time_ns` (CPU time of this
                thread); when given, `UploadOutcome.stage_ns` holds each stage's cost.

        Returns:
            The outcome. A rejected upload (`RejectedUpload` from any stage, or any other
            exception while fetching or processing the document, reason code
            ``processing_error``) has ``accepted=False`` and the reason, is counted in
            `rejections`, and nothing of it is stored. Errors that are not about the input
            (a full disk, a locked database) propagate.
        """
        timer = None if clock is None else _StageTimer(clock)
        stage = "fetch"
        batches: tuple[ReadingBatch, ...] = ()
        try:
            try:
                root, feed_id = self._fetch(body)
                if timer is not None:
                    timer.lap(stage)
                stage = "process"
                batches = extract_batches(root, feed_id)
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
            if self.commit_every > 1:
                self.store.begin()
            counts = self.store.upsert_batches(batches)
            if timer is not None:
                timer.lap(stage)
            stage = "analyze"
            n_alerts = self._analyze(batches)
            committed = False
            if self.commit_every > 1:
                self._pending += 1
                if self._pending >= self.commit_every:
                    self.flush()
                    committed = True
            else:
                committed = True
            if timer is not None:
                timer.lap(stage)
        except RejectedUpload as exc:
            if timer is not None:
                timer.lap(stage)
            self.rejections[exc.code] += 1
            first = batches[0] if batches else None
            return UploadOutcome(
                accepted=False,
                reason=exc.reason,
                meter_id=exc.meter_id if first is None else first.meter_id,
                sequence_no=exc.sequence_no if first is None else first.sequence_no,
                size_bytes=len(body),
                n_readings=0,
                inserted=0,
                duplicates=0,
                alerts=0,
                stage_ns=None if timer is None else timer.stage_ns,
                rejected_stage=stage,
            )
        first = batches[0]
        inserted = sum(c[0] for c in counts)
        duplicates = sum(c[1] for c in counts)
        return UploadOutcome(
            accepted=True,
            reason=None,
            meter_id=first.meter_id,
            sequence_no=first.sequence_no,
            size_bytes=len(body),
            n_readings=inserted + duplicates,
            inserted=inserted,
            duplicates=duplicates,
            alerts=n_alerts,
            stage_ns=None if timer is None else timer.stage_ns,
            n_series=len(batches),
            committed=committed,
        )

    def close(self) -> None:
        """Commit pending uploads (see `flush`) and close the store."""
        self._pending = 0
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
