"""The MDC pipeline service: the stages chained per upload (`UploadService`: fetch →
process → store → analyze) and the batch analysis beside them, in one object the caller
holds (`Pipeline`).

`UploadService.handle` takes the bytes of one upload and returns an `UploadOutcome`; it
never raises for bad input (DESIGN §3: a bad upload is rejected with a reason the ledger
records, and the run goes on). With a ``clock`` (``time.thread_time_ns``) it also reports
each stage's CPU cost, from which the twin's calibrator fits its per-stage cost model
(DESIGN §4). Stages (`STAGES`):

- fetch: with a keyring, the per-meter envelope (`pipeline.fetch.auth`: header, key, HMAC,
  replay window); the hardened parse (`pipeline.fetch.parse.parse_upload`); with a keyring,
  the check that the document's feed id is the envelope's (meter, sequence number);
- process: one `pipeline.process.batch.ReadingBatch` per series of the upload
  (`pipeline.process.upload.extract_batches`), or for a document of the regional weather
  feed (``docs/upload-format.md`` §6) its values (`pipeline.process.weather.read_weather`);
- store: all series of the upload in one unit of work (`pipeline.store.readings`; weather
  in `pipeline.store.weather`);
- analyze: the series that got new readings are handed to the batch analysis
  (`pipeline.analyze.batch.BatchAnalysis.mark_new`), which analyses them with their
  history on its next run; with batched commits, the group's commit.

`Pipeline.analyze` (called on a schedule, e.g. hourly) runs the batch analysis
(`pipeline.analyze.batch.BatchAnalysis.analyze`: VEE, detectors, alerts, forecasts over the
stored history) and hands the new detections to the alert sink (`pipeline.sinks.webhook`).

Durability: by default every upload is committed before `handle` returns. With
``commit_every=N`` the accepted uploads share one transaction that is committed every N
accepted uploads (or by `UploadService.flush`, or `Pipeline.close`): fewer commits, more
uploads per second, and up to N - 1 accepted uploads lost if the process dies before the
commit (`UploadOutcome.committed` says which uploads are durable).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from lxml import etree

from pipeline.analyze.batch import (
    DEFAULT_HISTORY_S,
    DEFAULT_WINDOW_CACHE_POINTS,
    AnalysisOutcome,
    BatchAnalysis,
)
from pipeline.analyze.faults import DetectorParams
from pipeline.analyze.recommendations import Recommendation
from pipeline.fetch.auth import DEFAULT_REPLAY_WINDOW, Authenticator, Keyring
from pipeline.fetch.limits import Limits
from pipeline.fetch.parse import parse_upload
from pipeline.fetch.rejection import RejectedUpload
from pipeline.process.batch import ReadingBatch
from pipeline.process.scanner import ScannedFeed, scan_source, unscanned
from pipeline.process.upload import extract_batches, upload_id
from pipeline.process.weather import WeatherUpload, read_weather
from pipeline.sinks.digest import send_digest
from pipeline.sinks.webhook import AlertSink
from pipeline.store.readings import StoredCounts
from pipeline.store.sites import SiteMeta
from pipeline.store.store import Store

__all__ = ["STAGES", "Pipeline", "StoredListener", "UploadOutcome", "UploadService"]

#: The stages of an upload, in order, as keys of `UploadOutcome.stage_ns`.
STAGES: tuple[str, ...] = ("fetch", "process", "store", "analyze")

_DEFAULT_LIMITS = Limits()

#: Told of every stored upload: its batches and what the store did with each.
StoredListener = Callable[[Sequence[ReadingBatch], Sequence[StoredCounts]], None]


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
        duplicates: readings already stored with the same duration, value and quality
            (re-deliveries, or repeated within the document): stored once.
        conflicts: readings whose interval was already stored (or came earlier in the
            document) with another duration, value or quality: the stored reading is kept
            and this version recorded in the store's ``reading_revisions``
            (`pipeline.store.readings`); inserted + duplicates + conflicts == n_readings.
        stage_ns: per-stage CPU time, ns, measured with the ``clock`` given to
            `UploadService.handle` (keys from `STAGES`; for a rejected upload only the stages
            that ran, the failing one included); None without a clock. The ``analyze``
            stage includes storing the alerts.
        rejected_stage: the stage (from `STAGES`) that rejected the upload, None when
            accepted: a rejected upload cost that stage and the ones before it.
            Authentication failures are rejected in ``fetch``.
        n_series: series (channels) in the upload (0 if rejected).
        committed: True when the upload's readings were committed to the database before
            `UploadService.handle` returned (always for accepted uploads with the default
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
    stage_ns: dict[str, int] | None
    rejected_stage: str | None = None
    n_series: int = 0
    committed: bool = False
    conflicts: int = 0

    @property
    def reason_code(self) -> str | None:
        """The machine-friendly part of `reason` (for example ``"auth_replay"``), None
        when accepted."""
        return None if self.reason is None else self.reason.partition(":")[0]


class UploadService:
    """The per-upload chain of one MDC server: fetch, process, store, and the hand-off to
    the analysis.

    Args:
        store: the MDC's store.
        limits: ingest limits, see `pipeline.fetch.limits.Limits` (the size limit applies
            to the document inside an envelope).
        commit_every: accepted uploads per database transaction; 1 (default) commits every
            upload before `handle` returns (see the module docstring).
        keyring: per-meter HMAC keys. None (default): plain documents are accepted, as
            from a trusted link. Given: every upload must be a `pipeline.fetch.auth`
            envelope.
        replay_window: see `pipeline.fetch.auth.Authenticator` (used with a keyring).
        on_stored: told of the series of every stored upload (the analyze stage), e.g.
            `pipeline.analyze.batch.BatchAnalysis.mark_new`; None: nobody.

    Attributes:
        rejections: count of rejected uploads per reason code (``"auth_replay"``,
            ``"malformed"``, ...), since the service was created.

    Use from one thread at a time.
    """

    def __init__(
        self,
        store: Store,
        limits: Limits = _DEFAULT_LIMITS,
        *,
        commit_every: int = 1,
        keyring: Keyring | None = None,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
        on_stored: StoredListener | None = None,
    ) -> None:
        if (
            isinstance(commit_every, bool)
            or not isinstance(commit_every, int)
            or (commit_every < 1)
        ):
            raise ValueError(f"commit_every must be an int >= 1, got {commit_every!r}")
        self.store = store
        self.limits = limits
        self.commit_every = commit_every
        self.authenticator = None if keyring is None else Authenticator(keyring, replay_window)
        self.rejections: Counter[str] = Counter()
        self._on_stored = on_stored
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

    def _fetch(
        self, body: bytes
    ) -> tuple[etree._Element, tuple[str | None, int | None] | None, ScannedFeed]:
        """The fetch stage: envelope (with a keyring) and parse. Returns the root, with a
        keyring the document's feed id (checked against the envelope) else None, and what
        the process stage's scanner read in the document's bytes (the body inside the
        envelope); a body whose size alone could break a limit is not scanned
        (`Limits.size_always_admitted`: the parse checks it first, without paying for a
        scan of a hostile flood), and takes the tree's paths if it passes.

        The scan comes first: it also counts the document's nesting, which the parse then
        checks against `Limits.max_depth` without walking the tree (see
        `pipeline.fetch.parse.parse_upload`); what it read counts only once the parse has
        shown the document well-formed."""
        auth = self.authenticator
        envelope = None if auth is None else auth.verify(body, self.limits.max_size_bytes)
        document = body if envelope is None else envelope.body
        if self.limits.size_always_admitted(len(document)):
            scanned = scan_source(document)
        else:
            scanned = unscanned(document)
        root = parse_upload(document, self.limits, nesting=scanned.nesting)
        if auth is None or envelope is None:
            return root, None, scanned
        try:
            feed_id = upload_id(root)
        except RejectedUpload:
            feed_id = (None, None)
        auth.confirm(envelope, *feed_id)
        return root, feed_id, scanned

    def fetch_process(self, body: bytes) -> tuple[ReadingBatch, ...]:
        """The fetch and process stages of `handle` alone (nothing is stored): envelope
        (with a keyring), hardened parse, feed-id check, one batch per series. What the
        DESIGN §7 budget (at most 2x a bare ``lxml.etree.fromstring`` of the document)
        is measured on.

        Raises:
            RejectedUpload: as `handle` would reject the upload in these stages.
        """
        root, feed_id, scanned = self._fetch(body)
        return extract_batches(root, feed_id, scanned=scanned)

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
        weather: WeatherUpload | None = None
        try:
            try:
                root, feed_id, scanned = self._fetch(body)
                if timer is not None:
                    timer.lap(stage)
                stage = "process"
                weather = read_weather(root, feed_id)
                if weather is None:
                    batches = extract_batches(root, feed_id, scanned=scanned)
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
            if weather is None:
                counts = self.store.readings.upsert_batches(batches)
            else:
                counts = [self.store.weather.upsert(weather)]
            if timer is not None:
                timer.lap(stage)
            stage = "analyze"
            if self._on_stored is not None and weather is None:
                self._on_stored(batches, counts)
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
                stage_ns=None if timer is None else timer.stage_ns,
                rejected_stage=stage,
            )
        inserted = sum(c.inserted for c in counts)
        duplicates = sum(c.duplicates for c in counts)
        conflicts = sum(c.conflicts for c in counts)
        sender, sequence_no = (
            (batches[0].meter_id, batches[0].sequence_no)
            if weather is None
            else (weather.station.station_id, weather.sequence_no)
        )
        return UploadOutcome(
            accepted=True,
            reason=None,
            meter_id=sender,
            sequence_no=sequence_no,
            size_bytes=len(body),
            n_readings=inserted + duplicates + conflicts,
            inserted=inserted,
            duplicates=duplicates,
            stage_ns=None if timer is None else timer.stage_ns,
            n_series=len(batches) if weather is None else 1,
            committed=committed,
            conflicts=conflicts,
        )


class Pipeline:
    """The pipeline of one MDC server: its store, the per-upload service and the batch
    analysis over the store, and where new detections go.

    Args:
        db_path: SQLite database file (created if missing), see `pipeline.store.store.Store`.
        limits, commit_every, keyring, replay_window: of the per-upload service (see
            `UploadService`).
        webhook: where `analyze` also sends new detections (a
            `pipeline.sinks.webhook.WebhookSink` or any `pipeline.sinks.webhook.AlertSink`);
            None (default): the database only. Not closed by `close`.
        history_s, detector_params, window_cache_points: of the batch analysis (see
            `pipeline.analyze.batch.BatchAnalysis`).

    Attributes:
        store: the store (`pipeline.store.store.Store`).
        uploads: the per-upload service (`UploadService`).
        analysis: the batch analysis (`pipeline.analyze.batch.BatchAnalysis`).

    Use from one thread at a time.
    """

    def __init__(
        self,
        db_path: str | Path,
        limits: Limits = _DEFAULT_LIMITS,
        *,
        commit_every: int = 1,
        keyring: Keyring | None = None,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
        webhook: AlertSink | None = None,
        history_s: int = DEFAULT_HISTORY_S,
        detector_params: DetectorParams | None = None,
        window_cache_points: int = DEFAULT_WINDOW_CACHE_POINTS,
    ) -> None:
        self.store = Store(db_path)
        try:
            self.analysis = BatchAnalysis(
                self.store,
                history_s=history_s,
                detector_params=detector_params,
                window_cache_points=window_cache_points,
            )
            self.uploads = UploadService(
                self.store,
                limits,
                commit_every=commit_every,
                keyring=keyring,
                replay_window=replay_window,
                on_stored=self.analysis.mark_new,
            )
        except BaseException:
            self.store.close()
            raise
        self.webhook = webhook

    def handle(self, body: bytes, clock: Callable[[], int] | None = None) -> UploadOutcome:
        """One upload through fetch, process, store and analyze (`UploadService.handle`)."""
        return self.uploads.handle(body, clock)

    def register_site(self, site: SiteMeta) -> None:
        """Register (or replace) a site's metadata
        (`pipeline.analyze.batch.BatchAnalysis.register_site`)."""
        self.analysis.register_site(site)

    def analyze(
        self,
        now_epoch_s: int,
        clock: Callable[[], int] | None = None,
        on_points: Callable[[int], None] | None = None,
    ) -> AnalysisOutcome:
        """The batch analysis at `now_epoch_s` (`pipeline.analyze.batch.BatchAnalysis.analyze`,
        which tells ``on_points`` the points it analyses as soon as they are known), then
        the new detections and the day's digest (`pipeline.sinks.digest`) to the
        ``webhook`` sink (`AnalysisOutcome.alerts_sent` counts the detections; the cost
        counts as ``alert`` in `AnalysisOutcome.stage_ns`)."""
        outcome = self.analysis.analyze(now_epoch_s, clock, on_points)
        if self.webhook is None or not (outcome.detections or outcome.digest):
            return outcome
        t_ns = None if clock is None or outcome.stage_ns is None else clock()
        sent = self.webhook.submit(outcome.detections) if outcome.detections else 0
        if outcome.digest is not None:
            send_digest(self.webhook, outcome.digest)
        stage_ns = outcome.stage_ns
        if t_ns is not None and clock is not None and stage_ns is not None:
            stage_ns = {**stage_ns, "alert": stage_ns["alert"] + clock() - t_ns}
        return replace(outcome, alerts_sent=sent, stage_ns=stage_ns)

    def recommendations(
        self, now_epoch_s: int | None = None, min_confidence: float = 0.5
    ) -> list[Recommendation]:
        """What a person should do now
        (`pipeline.analyze.batch.BatchAnalysis.recommendations`)."""
        return self.analysis.recommendations(now_epoch_s, min_confidence)

    def close(self) -> None:
        """Commit pending uploads and close the store."""
        self.uploads.flush()
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
