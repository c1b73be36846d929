"""The MDC pipeline service: fetch → process → store → analyze per upload, and batch
analysis (VEE, site detectors, alerts) over the stored history.

`Pipeline.handle` takes the bytes of one upload and returns an `UploadOutcome`; it never
raises for bad input (DESIGN §3: a bad upload is rejected with a reason the ledger records,
and the run goes on). With a ``clock`` (``time.thread_time_ns``) it also reports each
stage's CPU cost, from which the twin's calibrator fits its per-stage cost model (DESIGN §4).

`Pipeline.analyze` (called on a schedule, e.g. hourly) does the work that needs history and
is cheap only in bulk (DESIGN §7: numpy on 15 values costs more in call overhead than the
work): for every series that got new readings since the previous call it reads a window of
history from the store (`history_s`, default 21 days: the reference days of VEE's
estimation), runs VEE (`pipeline.vee.vee`) and writes the validated values and quality codes
beside the raw ones (only rows whose result changed), then runs the site detectors
(`pipeline.analytics`) on the interval-energy series and stores each fault once
(`pipeline.store.Store.record_detections`: a fault seen again by a later call extends the
stored alert), and hands the new ones to the alert sink (e.g. a `pipeline.sinks.WebhookSink`).
`Pipeline.recommendations` turns the open detections into sentences for a person.

Stages:

- fetch: with a keyring, the per-meter envelope (`pipeline.auth`: header, key, HMAC, replay
  window); the hardened parse (`pipeline.fetch.parse_upload`); with a keyring, the check
  that the document's feed id is the envelope's (meter, sequence number);
- process: one `pipeline.process.ReadingBatch` per series of the upload
  (`pipeline.process.extract_batches`);
- store: all series of the upload in one unit of work (`pipeline.store.Store`);
- analyze: records which series got new readings (for the next `Pipeline.analyze`); with
  an opt-in ``detector`` also the per-upload `RobustZScoreDetector` of each series
  (ReadingType), its alerts stored. No per-upload alerts by default: a z-score of 15 values
  against the last hour cannot tell a cloud or a net meter's switch between import and
  export from a fault, and fired thousands of false alerts on realistic data.

Which detectors run on which series (`Pipeline.analyze`):

- only interval-energy series (uom 72 Wh, not a bulk or cumulative register) are given to
  the detectors, converted to Wh with the ReadingType's powerOfTenMultiplier; VEE runs on
  every interval series (limits per unit from `VEE_LIMITS_BY_UOM`);
- each energy channel gets a *role* from the meter's energy flow directions
  (`channel_roles`): a meter with flowDirection 19 only is a generation meter (role
  ``generation``), with 1 only a consumption meter (``consumption``), with both a net meter
  (19 ``export``, 1 ``import``);
- with registered metadata (`Pipeline.register_site`), the site kind's detectors
  (`pipeline.analytics.SITE_DETECTORS`) run on the channel whose role measures the source
  (`ROLE_DETECTORS`: pv and wind on ``generation``, load on ``consumption``). On a net
  meter, PV and wind detectors do not run: export is generation minus the site's own
  consumption, so an overcast day with the clinic's HVAC running reads like an inverter
  trip, and a performance ratio or a curtailment ceiling of export measures the load as
  much as the source; only the metadata-free detector runs on both registers;
- every other energy series (no metadata, or a role the kind's detectors do not fit) gets
  the metadata-free detectors (`METADATA_FREE_DETECTORS`: the stuck register). Its
  flat-top exemption (clipping, rated power) then uses the highest reading of the window
  as the ceiling, when the series ramps up to it and back (`observed_flat_top_w`);
- on load-driven channels (``consumption``, ``import``) a stuck run must last
  `LOAD_STUCK_MIN_DURATION_S` (6 h), in VEE and in the detector: a facility's night load
  can sit on one register value for hours.

Durability: by default every upload is committed before `handle` returns. With
``commit_every=N`` the accepted uploads share one transaction that is committed every N
accepted uploads (or by `Pipeline.flush`, or `Pipeline.close`): fewer commits, more uploads
per second, and up to N - 1 accepted uploads lost if the process dies before the commit
(`UploadOutcome.committed` says which uploads are durable).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np
from lxml import etree

from pipeline.analytics import (
    DETECTORS,
    RECOMMENDERS,
    SITE_DETECTORS,
    Detection,
    DetectorParams,
    Series,
    SiteMeta,
    expected_energy_wh,
    recommendations,
)
from pipeline.analyze import Alert, RobustZScoreDetector
from pipeline.auth import DEFAULT_REPLAY_WINDOW, Authenticator, Keyring
from pipeline.channels import (
    _NAMEPLATE_ROLES,
    _REGISTER_ACCUMULATIONS,
    CONSUMPTION,
    EXPORT,
    FLOW_DELIVERED,
    FLOW_NET,
    FLOW_RECEIVED,
    GENERATION,
    IMPORT,
    LOAD_DRIVEN_ROLES,
    LOAD_STUCK_MIN_DURATION_S,
    METADATA_FREE_DETECTORS,
    OTHER,
    ROLE_DETECTORS,
    UOM_WH,
    VEE_LIMITS_BY_UOM,
    LimitContext,
    _signed_limits,
    channel_roles,
    observed_flat_top_w,
)
from pipeline.fetch import Limits, RejectedUpload, parse_upload
from pipeline.forecast import (
    DEFAULT_FORECAST_METHOD,
    FORECAST_HORIZON_S,
    FORECAST_METHOD_BY_KIND,
    FORECAST_MIN_HISTORY_S,
    FORECAST_STEP_S,
    ForecastRecord,
    forecast_series,
)
from pipeline.process import ReadingBatch, ReadingType, extract_batches, upload_id
from pipeline.store import SeriesRows, Store
from pipeline.vee import (
    QUALITY_ESTIMATED_LINEAR,
    QUALITY_ESTIMATED_REFERENCE_DAY,
    QUALITY_QUESTIONABLE,
    VeeLimits,
    VeeResult,
    vee,
)

__all__ = [
    "ANALYSIS_STAGES",
    "CONSUMPTION",
    "DEFAULT_HISTORY_S",
    "DEFAULT_WINDOW_CACHE_POINTS",
    "EXPORT",
    "FLOW_DELIVERED",
    "FLOW_NET",
    "FLOW_RECEIVED",
    "FORECAST_HORIZON_S",
    "FORECAST_METHOD_BY_KIND",
    "FORECAST_MIN_HISTORY_S",
    "FORECAST_STEP_S",
    "GENERATION",
    "IMPORT",
    "LOAD_DRIVEN_ROLES",
    "LOAD_STUCK_MIN_DURATION_S",
    "METADATA_FREE_DETECTORS",
    "OPEN_FOR_S",
    "OTHER",
    "ROLE_DETECTORS",
    "STAGES",
    "UOM_WH",
    "VEE_LIMITS_BY_UOM",
    "AlertSink",
    "AnalysisOutcome",
    "ForecastRecord",
    "LimitContext",
    "Pipeline",
    "UploadOutcome",
    "channel_roles",
    "forecast_series",
    "observed_flat_top_w",
]

#: The stages, in order, as keys of `UploadOutcome.stage_ns`.
STAGES: tuple[str, ...] = ("fetch", "process", "store", "analyze")

_DEFAULT_LIMITS = Limits()

#: Cost centres of `Pipeline.analyze`, keys of `AnalysisOutcome.stage_ns`: reading the
#: history windows, VEE, writing validated values, detectors (clear sky included), and
#: storing and sending detections.
ANALYSIS_STAGES: tuple[str, ...] = ("read", "vee", "write", "detect", "alert")

_SECONDS_PER_DAY = 86_400
#: History read per series by `Pipeline.analyze`, s: 21 days, the reference days of VEE's
#: estimation (`pipeline.vee.VeeLimits.reference_days`, the IMO workbook's "previous three
#: weeks"), which is also enough for the 14-day soiling window (slower soiling needs the
#: 30- and 60-day windows of `pipeline.analytics.DetectorParams.soiling_window_days`: pass a
#: longer ``history_s``).
DEFAULT_HISTORY_S = 21 * _SECONDS_PER_DAY
#: Late readings (store and forward) older than the window are analysed with this much
#: context before them, s ...
_LATE_CONTEXT_S = _SECONDS_PER_DAY
#: ... but never further back than this from ``now``, s (a year: bounds the work of one
#: call when old files are ingested).
_MAX_HISTORY_S = 366 * _SECONDS_PER_DAY
#: Readings of analysis windows kept in memory (`Pipeline` ``window_cache_points``): about
#: 35 bytes each, so 70 MB; 66 series of three weeks of 1-minute readings, or 990 of
#: 15-minute ones. This project's choice.
DEFAULT_WINDOW_CACHE_POINTS = 2_000_000
#: `Pipeline._new_since` entry of a series to analyse over the default window only.
_WHOLE_WINDOW = 2**62
_WHOLE_WINDOW_NEW = (_WHOLE_WINDOW, -1)

#: How long after the end of its evidence a detection stays open (actionable), s, per kind:
#: a day for faults whose evidence renews while they last (a trip shows again each morning,
#: a stuck register with every reading); 30 days for soiling, whose ``end_s`` is where the
#: decline stopped, not where the panels got clean. Kinds not listed: `DEFAULT_OPEN_FOR_S`.
OPEN_FOR_S: dict[str, int] = {
    "inverter_trip": _SECONDS_PER_DAY,
    "stuck_meter": _SECONDS_PER_DAY,
    "curtailment": _SECONDS_PER_DAY,
    "anomaly": _SECONDS_PER_DAY,
    "soiling": 30 * _SECONDS_PER_DAY,
}
DEFAULT_OPEN_FOR_S = _SECONDS_PER_DAY


_ESTIMATED_QUALITIES = np.array(
    [QUALITY_ESTIMATED_LINEAR, QUALITY_ESTIMATED_REFERENCE_DAY], dtype=np.uint16
)


def _evidence(series: Series, result: VeeResult) -> Series:
    """`series` with every VEE estimate set to NaN (unknown), for the detectors: they
    judge what the meter read. Estimates fill gaps for billing and forecasting, but a
    linear fill across a long gap (`pipeline.vee` interpolates a gap it has no reference
    day for) is a flat or near-zero line through daylight, which the stuck-meter and
    inverter-trip detectors would take for a fault."""
    estimated = np.isin(result.quality, _ESTIMATED_QUALITIES)
    if not estimated.any():
        return series
    return replace(series, energy_wh=np.where(estimated, np.nan, series.energy_wh))


class AlertSink(Protocol):
    """Where new detections go besides the database, e.g. `pipeline.sinks.WebhookSink`:
    ``submit`` must not block on the network."""

    def submit(self, alerts: Iterable[Detection]) -> int: ...


@dataclass(frozen=True)
class AnalysisOutcome:
    """What one `Pipeline.analyze` call did.

    Attributes:
        now_s: the call's ``now_epoch_s``.
        detections: the faults raised by this call (not seen by an earlier call), in
            start order; times epoch s (see `pipeline.analytics.Detection`).
        series_analysed: series run through VEE (those with new readings).
        points_analysed: stored readings read and validated (the windows' rows).
        validated_written: rows whose validated value or quality was written.
        vee_findings: VEE findings over the windows (`pipeline.vee.Finding`, all kinds,
            gaps included).
        alerts_stored: alert rows inserted (== len(detections)).
        alerts_updated: stored alerts extended by new evidence of the same fault.
        alerts_sent: detections accepted by the alert sink (0 without one).
        stage_ns: CPU ns per `ANALYSIS_STAGES` key, measured with the ``clock`` given to
            `Pipeline.analyze`; None without a clock (the forecasts count as ``detect``).
        forecasts: the short-term forecast of each generation series analysed by this
            call that has enough history (see `Pipeline.analyze`), in series order.
    """

    now_s: int
    detections: list[Detection] = field(default_factory=list)
    series_analysed: int = 0
    points_analysed: int = 0
    validated_written: int = 0
    vee_findings: int = 0
    alerts_stored: int = 0
    alerts_updated: int = 0
    alerts_sent: int = 0
    stage_ns: dict[str, int] | None = None
    forecasts: list[ForecastRecord] = field(default_factory=list)


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
        alerts: alerts raised on this upload by the opt-in per-upload ``detector`` (always
            0 without one: faults are found by `Pipeline.analyze`).
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
        detector: opt-in per-upload analytics (kept for backward compatibility): each
            series (meter and ReadingType) is scored by a `RobustZScoreDetector` with these
            parameters, one per ReadingType so that a meter's channels never mix, and its
            alerts are stored by `handle`. Default None: no per-upload alerts (faults are
            found by `analyze`).
        commit_every: accepted uploads per database transaction; 1 (default) commits every
            upload before `handle` returns (see the module docstring).
        keyring: per-meter HMAC keys. None (default): plain documents are accepted, as
            from a trusted link. Given: every upload must be a `pipeline.auth` envelope.
        replay_window: see `pipeline.auth.Authenticator` (used with a keyring).
        webhook: where `analyze` also sends new detections (a `pipeline.sinks.WebhookSink`
            or any `AlertSink`); None (default): the database only. Not closed by `close`.
        history_s: history `analyze` reads per series, s (default `DEFAULT_HISTORY_S`).
        detector_params: thresholds of the batch detectors (default
            `pipeline.analytics.DetectorParams()`).
        window_cache_points: readings of the analysis windows kept in memory between
            `analyze` calls (default `DEFAULT_WINDOW_CACHE_POINTS`; 0: none): a series
            whose window is cached has only its new readings read from the database. This
            assumes the pipeline is the only writer of its database (as the new-data
            tracking does).

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
        webhook: AlertSink | None = None,
        history_s: int = DEFAULT_HISTORY_S,
        detector_params: DetectorParams | None = None,
        window_cache_points: int = DEFAULT_WINDOW_CACHE_POINTS,
    ) -> None:
        if (
            isinstance(commit_every, bool)
            or not isinstance(commit_every, int)
            or (commit_every < 1)
        ):
            raise ValueError(f"commit_every must be an int >= 1, got {commit_every!r}")
        if not 0 < history_s <= _MAX_HISTORY_S:
            raise ValueError(f"history_s must be in (0, {_MAX_HISTORY_S}], got {history_s!r}")
        self.limits = limits
        self.detector = detector
        self.commit_every = commit_every
        self.authenticator = None if keyring is None else Authenticator(keyring, replay_window)
        self.webhook = webhook
        self.history_s = int(history_s)
        self.detector_params = DetectorParams() if detector_params is None else detector_params
        self.rejections: Counter[str] = Counter()
        self.store = Store(db_path)
        self._detectors: dict[ReadingType, RobustZScoreDetector] = {}
        self._pending = 0
        self._sites: dict[str, SiteMeta] = self.store.sites()
        #: series with readings stored since the last `analyze`: (earliest, latest) new
        #: interval start, epoch s (earliest `_WHOLE_WINDOW`: analyse the default window)
        self._new_since: dict[tuple[str, ReadingType], tuple[int, int]] = {}
        self._recovered = False  # has `analyze` looked at every stored series yet
        self._warm = False
        self._last_now_s: int | None = None
        self._expected = _ExpectedEnergyCache()
        self._windows = _WindowCache(window_cache_points)

    @property
    def pending_uploads(self) -> int:
        """Accepted uploads not committed yet (always 0 with ``commit_every=1``)."""
        return self._pending

    @property
    def sites(self) -> dict[str, SiteMeta]:
        """The registered sites, by site (meter) id."""
        return dict(self._sites)

    def flush(self) -> int:
        """Commit the accepted uploads of the open group; returns how many."""
        pending, self._pending = self._pending, 0
        self.store.commit()
        return pending

    def _detector_for(self, reading_type: ReadingType) -> RobustZScoreDetector:
        detector = self._detectors.get(reading_type)
        if detector is None:
            base = self.detector
            assert base is not None
            detector = RobustZScoreDetector(
                base.window, base.threshold, base.mad_floor, base.mad_floor_fraction
            )
            self._detectors[reading_type] = detector
        return detector

    def _analyze(self, batches: tuple[ReadingBatch, ...], counts: list[tuple[int, int]]) -> int:
        """The per-upload analyze stage: note the series that got new readings; with a
        ``detector``, score them and store the alerts. Returns the alerts raised."""
        new_since = self._new_since
        for batch, (inserted, _) in zip(batches, counts, strict=True):
            if inserted:
                key = (batch.meter_id, batch.reading_type)
                first, last = int(batch.start_s.min()), int(batch.start_s.max())
                known = new_since.get(key)
                new_since[key] = (
                    (first, last) if known is None else (min(first, known[0]), max(last, known[1]))
                )
        if self.detector is None:
            return 0
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
    ) -> tuple[etree._Element, tuple[str | None, int | None] | None, bytes]:
        """The fetch stage: envelope (with a keyring) and parse. Returns the root, with a
        keyring the document's feed id (checked against the envelope) else None, and the
        document's bytes (the body inside the envelope)."""
        auth = self.authenticator
        if auth is None:
            return parse_upload(body, self.limits), None, body
        envelope = auth.verify(body, self.limits.max_size_bytes)
        document = envelope.body
        root = parse_upload(document, self.limits)
        try:
            feed_id = upload_id(root)
        except RejectedUpload:
            feed_id = (None, None)
        auth.confirm(envelope, *feed_id)
        return root, feed_id, document

    def fetch_process(self, body: bytes) -> tuple[ReadingBatch, ...]:
        """The fetch and process stages of `handle` alone (nothing is stored): envelope
        (with a keyring), hardened parse, feed-id check, one batch per series. What the
        DESIGN §7 budget (at most 2x a bare ``lxml.etree.fromstring`` of the document)
        is measured on.

        Raises:
            RejectedUpload: as `handle` would reject the upload in these stages.
        """
        root, feed_id, document = self._fetch(body)
        return extract_batches(root, feed_id, source=document)

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
                root, feed_id, document = self._fetch(body)
                if timer is not None:
                    timer.lap(stage)
                stage = "process"
                batches = extract_batches(root, feed_id, source=document)
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
            n_alerts = self._analyze(batches, counts)
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

    # --- asset registry ---------------------------------------------------------------------

    def register_site(self, site: SiteMeta) -> None:
        """Register (or replace) a site's metadata; ``site.site_id`` is the meter id in the
        store. Persisted in the store (table ``sites``), so a restarted pipeline keeps it.
        The meter's stored series are analysed again over the whole window by the next
        `analyze` (the detectors that apply may have changed)."""
        self.store.put_site(site)
        self._sites[site.site_id] = site
        self._expected.forget(site.site_id)
        for rt in self.store.reading_types_of(site.site_id):
            self._new_since.setdefault((site.site_id, rt), _WHOLE_WINDOW_NEW)

    # --- batch analysis -----------------------------------------------------------------------

    def analyze(self, now_epoch_s: int, clock: Callable[[], int] | None = None) -> AnalysisOutcome:
        """VEE and site detectors over the history of every series with new readings.

        For each series that got readings since the previous call (on the first call of a
        pipeline: every stored series, over the default window, so that readings stored
        before a restart are not missed):

        1. read its rows with ``now - history_s <= start_s <= now`` (earlier when late
           readings arrived: from a day before the oldest of them, at most a year back);
        2. run VEE (`pipeline.vee.vee`, limits from `VEE_LIMITS_BY_UOM` and the site's
           nameplate) and write each row's validated value and ESPI quality code
           (`Store.set_validated`) where they changed; raw values are never touched;
        3. for interval energy (Wh), run the detectors of the channel's role and the site
           (see the module docstring) on the validated series in Wh with its estimates
           left out (`_evidence`: a line drawn across hours without data is no evidence of
           a stuck register or a tripped inverter);
        4. store the detections, one alert per fault (`Store.record_detections`: a fault
           already stored is extended, not raised again), then hand the new ones to the
           ``webhook`` sink;
        5. for a generation series (role ``generation``: a meter whose only energy flow is
           19, received from the site) with at least `FORECAST_MIN_HISTORY_S` of whole
           hours in its window, on a grid whose step divides an hour: forecast the next
           `FORECAST_HORIZON_S` in hourly energy (`forecast_series`; method from
           `FORECAST_METHOD_BY_KIND` for a registered site, clear-sky index persistence
           for PV, else seasonal naive with today's anomaly, ``blend``) and backtest the
           method on the window (MAE, RMSE and skill against persistence). Net-meter
           export is not forecast: it is generation minus the site's load.

        All database writes of a call are one transaction (or join the open group of
        ``commit_every``).

        Args:
            now_epoch_s: the analysis time, epoch s (the twin passes simulated time):
                readings starting after it are left for later, and new alert rows get it
                as ``created``.
            clock: a monotonic ns clock (normally `time.thread_time_ns`); when given,
                `AnalysisOutcome.stage_ns` holds the cost per `ANALYSIS_STAGES`.

        Returns:
            What was done, with the detections new in this call.
        """
        now = int(now_epoch_s)
        if not self._warm:  # before the clock starts: JIT compilation is not analysis
            _warm_up(self.detector_params)
            self._warm = True
        meter = _CostMeter(clock)
        if not self._recovered:
            for key in self.store.series():
                self._new_since.setdefault(key, _WHOLE_WINDOW_NEW)
            self._recovered = True
        todo = sorted(self._new_since.items(), key=lambda kv: (kv[0][0], kv[0][1].values()))
        self._new_since = {}
        totals = Counter[str]()
        new: list[Detection] = []
        forecasts: list[ForecastRecord] = []
        roles: dict[str, dict[int, str]] = {}
        store = self.store
        own = not store.in_transaction
        try:
            if own:
                store.begin()
            for (meter_id, rt), (since, last) in todo:
                found, extended = self._analyse_series(
                    meter_id, rt, since, now, roles, meter, totals, forecasts
                )
                new += found
                totals["alerts_updated"] += extended
                if last > now:  # readings after `now` (a fast meter clock): for a later call
                    self._new_since[(meter_id, rt)] = (now + 1, last)
            if own:
                store.commit()
        except BaseException:
            if own:
                store.rollback()
            self._windows.clear()  # it may hold validated values that were rolled back
            for key, (since, last) in todo:  # analyse them again next time
                known = self._new_since.get(key, _WHOLE_WINDOW_NEW)
                self._new_since[key] = (min(since, known[0]), max(last, known[1]))
            raise
        new.sort(key=lambda d: (d.start_s, d.series_id, d.kind))
        sent = 0
        if new and self.webhook is not None:
            sent = self.webhook.submit(new)
        meter.charge("alert")
        self._last_now_s = now
        return AnalysisOutcome(
            now_s=now,
            detections=new,
            series_analysed=totals["series"],
            points_analysed=totals["points"],
            validated_written=totals["written"],
            vee_findings=totals["findings"],
            alerts_stored=len(new),
            alerts_updated=totals["alerts_updated"],
            alerts_sent=sent,
            stage_ns=meter.stage_ns,
            forecasts=forecasts,
        )

    def _roles(self, meter_id: str, cache: dict[str, dict[int, str]]) -> dict[int, str]:
        roles = cache.get(meter_id)
        if roles is None:
            flows = [
                t.flow_direction
                for t in self.store.reading_types_of(meter_id)
                if t.uom == UOM_WH and t.accumulation_behaviour not in _REGISTER_ACCUMULATIONS
            ]
            roles = cache[meter_id] = channel_roles(flows)
        return roles

    def _analyse_series(
        self,
        meter_id: str,
        rt: ReadingType,
        since: int,
        now: int,
        roles: dict[str, dict[int, str]],
        meter: _CostMeter,
        totals: Counter[str],
        forecasts: list[ForecastRecord],
    ) -> tuple[list[Detection], int]:
        """Steps 1-5 of `analyze` for one series: (new detections, alerts extended); its
        forecast, if any, is appended to `forecasts`."""
        if rt.accumulation_behaviour in _REGISTER_ACCUMULATIONS:
            return [], 0  # register readings, not interval values: nothing to validate
        lo = now - self.history_s
        if since < lo:
            lo = max(now - _MAX_HISTORY_S, since - _LATE_CONTEXT_S)
        lo = max(lo, 0)
        rows = self._windows.read(self.store, meter_id, rt, lo, now, since)
        meter.charge("read")
        if rows.start_s.shape[0] == 0:
            self._windows.put(meter_id, rt, lo, now, rows)
            return [], 0
        step = int(rt.interval_length_s)
        scale = 10.0 ** int(rt.power_of_ten_multiplier)
        energy = rt.uom == UOM_WH
        role = self._roles(meter_id, roles).get(rt.flow_direction, OTHER) if energy else OTHER
        site = self._sites.get(meter_id)
        nameplate_w = (
            site.nameplate_w
            if site is not None and role in _NAMEPLATE_ROLES.get(site.kind, frozenset())
            else None
        )
        flat_top_w = nameplate_w
        if energy and nameplate_w is None:
            flat_top_w = observed_flat_top_w(rows.raw_value * scale, step)
        params = self.detector_params
        if role in LOAD_DRIVEN_ROLES:
            params = replace(
                params,
                stuck_min_duration_s=max(params.stuck_min_duration_s, LOAD_STUCK_MIN_DURATION_S),
            )
        limits = VEE_LIMITS_BY_UOM.get(rt.uom, _signed_limits)(
            LimitContext(
                rt,
                nameplate_w,
                flat_top_w,
                params.stuck_exempt_fraction,
                params.stuck_min_duration_s,
            )
        )
        result = vee(rows.start_s, rows.raw_value, step, limits, duration_s=rows.duration_s)
        totals["series"] += 1
        totals["points"] += int(rows.start_s.shape[0])
        totals["findings"] += len(result.findings)
        meter.charge("vee")
        written, validated = self._write_validated(meter_id, rt, rows, result)
        totals["written"] += written
        self._windows.put(meter_id, rt, lo, now, validated)
        meter.charge("write")
        if not energy:
            return [], 0
        series = Series.from_vee(meter_id, result, int(rt.power_of_ten_multiplier))
        if site is not None and nameplate_w is not None:
            det_site = site
            names = ROLE_DETECTORS.get((site.kind, role), METADATA_FREE_DETECTORS)
        else:  # metadata-free: a stand-in whose ceiling is the observed flat top, if any
            ceiling_w = _NO_CEILING_W if flat_top_w is None else flat_top_w
            det_site = SiteMeta(meter_id, "load", ceiling_w)
            names = METADATA_FREE_DETECTORS
        expected = (
            self._expected.get(det_site, series.start_s, step) if det_site.kind == "pv" else None
        )
        evidence = _evidence(series, result)
        found: list[Detection] = []
        for name in names:
            found += DETECTORS[name](det_site, evidence, expected, params)
        if role == GENERATION:
            record = self._forecast(series, rt, site if det_site is site else None)
            if record is not None:
                forecasts.append(record)
        meter.charge("detect")
        if not found:
            return [], 0
        inserted, extended = self.store.record_detections(found, now, reading_type=rt)
        meter.charge("alert")
        return inserted, extended

    def _forecast(
        self, series: Series, rt: ReadingType, site: SiteMeta | None
    ) -> ForecastRecord | None:
        """Step 5 of `analyze` (see `forecast_series`); `site` is the registered site whose
        nameplate bounds this channel, None without one."""
        kind = None if site is None else site.kind
        method = FORECAST_METHOD_BY_KIND.get(kind or "", DEFAULT_FORECAST_METHOD)
        expected = None
        if method == "clear_sky_persistence" and site is not None and series.n:
            step = series.interval_length_s
            grid = series.start_s[0] + step * np.arange(
                series.n + FORECAST_HORIZON_S // step + FORECAST_STEP_S // step,
                dtype=np.int64,
            )
            expected = self._expected.get(site, grid, step)
        return forecast_series(series, rt.flow_direction, method, expected)

    def _write_validated(
        self, meter_id: str, rt: ReadingType, rows: SeriesRows, result: VeeResult
    ) -> tuple[int, SeriesRows]:
        """Write each stored row's VEE value and quality where they differ from what is
        stored; rows left off the grid (clock beyond tolerance, or a second reading in one
        slot) are questionable with no value. Returns (rows written, the rows as they are
        now stored)."""
        n = rows.start_s.shape[0]
        quality = np.full(n, QUALITY_QUESTIONABLE, dtype=np.int64)
        value = np.full(n, np.nan)
        slots = np.flatnonzero(result.source_index >= 0)
        source = result.source_index[slots]
        quality[source] = result.quality[slots]
        value[source] = result.value[slots]
        old = rows.validated_value
        same_value = (old == value) | (np.isnan(old) & np.isnan(value))
        changed = (quality != rows.validated_quality) | ~same_value
        now_stored = replace(rows, validated_value=value, validated_quality=quality)
        if not changed.any():
            return 0, now_stored
        written = self.store.set_validated(
            meter_id, rt, rows.start_s[changed], value[changed], quality[changed]
        )
        return written, now_stored

    # --- detections and recommendations -------------------------------------------------------

    def open_detections(self, now_epoch_s: int | None = None) -> list[Detection]:
        """Stored detections still open at `now_epoch_s` (default: the last `analyze`'s
        ``now``, or the latest evidence stored): those whose evidence ended no longer
        than `OPEN_FOR_S` of their kind before it. In start order."""
        now = self._last_now_s if now_epoch_s is None else int(now_epoch_s)
        longest = max(DEFAULT_OPEN_FOR_S, *OPEN_FOR_S.values())
        if now is None:
            stored = self.store.detections()
            now = max((d.end_s for d in stored), default=0)
        else:
            stored = self.store.detections(now - longest)
        return [d for d in stored if d.end_s >= now - OPEN_FOR_S.get(d.kind, DEFAULT_OPEN_FOR_S)]

    def recommendations(
        self, now_epoch_s: int | None = None, min_confidence: float = 0.5
    ) -> list[str]:
        """What a person should do now: `pipeline.analytics.recommendations` over the open
        detections (see `open_detections`), most confident first."""
        actionable = [d for d in self.open_detections(now_epoch_s) if d.kind in RECOMMENDERS]
        return recommendations(actionable, min_confidence)

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


class _CostMeter:
    """CPU ns per `ANALYSIS_STAGES` key: `charge` adds the time since the previous charge
    to a stage. Without a clock it does nothing (`stage_ns` None)."""

    __slots__ = ("clock", "stage_ns", "t_ns")

    def __init__(self, clock: Callable[[], int] | None) -> None:
        self.clock = clock
        self.stage_ns = None if clock is None else dict.fromkeys(ANALYSIS_STAGES, 0)
        self.t_ns = 0 if clock is None else clock()

    def charge(self, stage: str) -> None:
        if self.clock is None or self.stage_ns is None:
            return
        now_ns = self.clock()
        self.stage_ns[stage] += now_ns - self.t_ns
        self.t_ns = now_ns


class _WindowCache:
    """The rows of each series' latest analysis window, least recently used first, at most
    `max_points` rows in all (see `Pipeline` ``window_cache_points``)."""

    def __init__(self, max_points: int) -> None:
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 0:
            raise ValueError(f"window_cache_points must be an int >= 0, got {max_points!r}")
        self.max_points = max_points
        self._entries: dict[tuple[str, ReadingType], tuple[int, int, SeriesRows]] = {}
        self._points = 0

    def clear(self) -> None:
        self._entries.clear()
        self._points = 0

    def read(
        self, store: Store, meter_id: str, rt: ReadingType, lo_s: int, hi_s: int, since_s: int
    ) -> SeriesRows:
        """The stored rows with lo_s <= start_s <= hi_s. From the cached window when it
        covers lo_s: then only rows from the earliest new reading (`since_s`) or the end
        of the cached window on are read."""
        key = (meter_id, rt)
        entry = self._entries.pop(key, None)
        if entry is None:
            return store.read_series(meter_id, rt, lo_s, hi_s)
        cached_lo, cached_hi, cached = entry
        self._points -= cached.start_s.shape[0]
        if cached_lo > lo_s or cached_hi > hi_s:
            return store.read_series(meter_id, rt, lo_s, hi_s)
        fresh_from = max(lo_s, min(since_s, cached_hi + 1))
        keep = (cached.start_s >= lo_s) & (cached.start_s < fresh_from)
        old = _take_rows(cached, keep)
        if fresh_from > hi_s:
            return old
        return _concat_rows(old, store.read_series(meter_id, rt, fresh_from, hi_s))

    def put(self, meter_id: str, rt: ReadingType, lo_s: int, hi_s: int, rows: SeriesRows) -> None:
        """Keep `rows`, all the stored rows of [lo_s, hi_s], as the series' window."""
        n = int(rows.start_s.shape[0])
        if n > self.max_points:
            return
        key = (meter_id, rt)
        old = self._entries.pop(key, None)
        if old is not None:
            self._points -= old[2].start_s.shape[0]
        self._entries[key] = (lo_s, hi_s, rows)
        self._points += n
        while self._points > self.max_points:  # evict the least recently used
            victim = next(iter(self._entries))
            self._points -= self._entries.pop(victim)[2].start_s.shape[0]


def _take_rows(rows: SeriesRows, mask: np.ndarray) -> SeriesRows:
    return SeriesRows(*(getattr(rows, f.name)[mask] for f in fields(SeriesRows)))


def _concat_rows(a: SeriesRows, b: SeriesRows) -> SeriesRows:
    return SeriesRows(
        *(np.concatenate((getattr(a, f.name), getattr(b, f.name))) for f in fields(SeriesRows))
    )


#: Capacity of the stand-in site of a series without a ceiling, W: no run is a flat top.
_NO_CEILING_W = 1e18


class _ExpectedEnergyCache:
    """Clear-sky expected energy of each PV site over its latest analysis window, and a day
    ahead of it.

    `Pipeline.analyze` slides each window forward by the time between calls; the part
    already computed is reused, and the clear sky is computed a day ahead
    (`_AHEAD_S`) whenever the window outgrows the cache, so that hourly calls compute it
    once a day per site instead of paying the chain's fixed cost (about 180 µs) each time
    (`pipeline.analytics.expected_energy_wh` is a function of each interval alone). Holds
    one window per site (8 bytes per interval: 250 kB for three weeks of 1-minute data).
    """

    def __init__(self) -> None:
        self._by_site: dict[str, tuple[SiteMeta, int, int, np.ndarray]] = {}

    def forget(self, site_id: str) -> None:
        self._by_site.pop(site_id, None)

    def get(self, site: SiteMeta, start_s: np.ndarray, interval_length_s: int) -> np.ndarray:
        """Expected Wh of the intervals `start_s` (a regular grid of `interval_length_s`)."""
        step = int(interval_length_s)
        n = int(start_s.shape[0])
        if n == 0:
            return np.zeros(0)
        first = int(start_s[0])
        entry = self._by_site.get(site.site_id)
        cached_first, cached = first, np.zeros(0)
        if entry is not None and entry[0] == site and entry[1] == step:
            cached_first, cached = entry[2], entry[3]
        off, rem = divmod(first - cached_first, step)
        if rem == 0 and off >= 0 and off + n <= cached.shape[0]:
            if off:  # drop what the window left behind
                self._by_site[site.site_id] = (site, step, first, cached[off:])
            return cached[off : off + n]
        total = n + max(1, _AHEAD_S // step)
        grid = first + step * np.arange(total, dtype=np.int64)
        out = np.empty(total)
        lo, hi = (max(off, 0), min(off + total, cached.shape[0])) if rem == 0 else (0, 0)
        if lo < hi:
            out[lo - off : hi - off] = cached[lo:hi]
            if lo - off > 0:
                out[: lo - off] = expected_energy_wh(site, grid[: lo - off], step)
            if hi - off < total:
                out[hi - off :] = expected_energy_wh(site, grid[hi - off :], step)
        else:
            out = expected_energy_wh(site, grid, step)
        self._by_site[site.site_id] = (site, step, first, out)
        return out[:n]


#: How far ahead of the window `_ExpectedEnergyCache` computes the clear sky, s.
_AHEAD_S = _SECONDS_PER_DAY


def _warm_up(params: DetectorParams) -> None:
    """Compile (or load from numba's cache) the kernels that VEE and every detector use,
    on a tiny series, so that no `Pipeline.analyze` cost includes JIT compilation."""
    step = 3600
    n = 96
    start_s = np.arange(n, dtype=np.int64) * step
    values = np.round(500.0 + 400.0 * np.sin(np.arange(n) * 2.0 * np.pi / 24.0)).astype(np.int64)
    values[10:16] = 7
    result = vee(
        start_s, values, step, VeeLimits(max_value=5000.0, stuck_exempt_at_or_above=4000.0)
    )
    series = Series.from_vee("warm-up", result)
    for kind, names in SITE_DETECTORS.items():
        site = SiteMeta("warm-up", kind, 1000.0)
        expected = expected_energy_wh(site, series.start_s, step) if kind == "pv" else None
        for name in names:
            DETECTORS[name](site, series, expected, params)
