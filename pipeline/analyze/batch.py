"""The batch analysis of one MDC's store: the one orchestrator of VEE, detectors, forecasts
and recommendations over the stored history (`BatchAnalysis`), what the service runs on a
schedule.

`BatchAnalysis.analyze` (called on a schedule, e.g. hourly) does the work that needs
history and is cheap only in bulk (DESIGN §7: numpy on 15 values costs more in call
overhead than the work): for every series that got new readings since the previous call
it reads a window of history from the store (`history_s`, default 21 days: the reference
days of VEE's estimation), runs VEE and writes the validated values and quality codes
beside the raw ones (only rows whose result changed), then runs the detectors of the
series' channel role and site on the interval-energy series and stores each fault once (a
fault seen again by a later call extends the stored alert), and forecasts each generation
series (`pipeline.analyze.series_analysis` has the steps, `pipeline.analyze.channels` which
detectors run on which series and why). `BatchAnalysis.recommendations` turns the open
detections into sentences for a person.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.analyze.caches import ExpectedEnergyCache, WindowCache
from pipeline.analyze.channels import GENERATION, OTHER, channel_roles
from pipeline.analyze.clearsky import expected_energy_wh
from pipeline.analyze.detectors import DETECTORS
from pipeline.analyze.faults import SITE_DETECTORS, DetectorParams
from pipeline.analyze.forecast import ForecastRecord
from pipeline.analyze.recommendations import RECOMMENDERS, recommendations
from pipeline.analyze.series import SECONDS_PER_DAY, Series
from pipeline.analyze.series_analysis import (
    bounding_site,
    channel_context,
    detect_faults,
    evidence,
    forecast_generation,
    validate_series,
)
from pipeline.analyze.vee import VeeLimits, VeeResult, vee
from pipeline.espi.codes import QUALITY_QUESTIONABLE, REGISTER_ACCUMULATIONS, UOM_WH
from pipeline.espi.reading_type import ReadingType
from pipeline.process.batch import ReadingBatch
from pipeline.store.alerts import Detection
from pipeline.store.readings import SeriesRows, StoredCounts
from pipeline.store.sites import SiteMeta
from pipeline.store.store import Store

__all__ = [
    "ANALYSIS_STAGES",
    "DEFAULT_HISTORY_S",
    "DEFAULT_OPEN_FOR_S",
    "DEFAULT_WINDOW_CACHE_POINTS",
    "OPEN_FOR_S",
    "AnalysisOutcome",
    "BatchAnalysis",
]

#: Cost centres of `BatchAnalysis.analyze`, keys of `AnalysisOutcome.stage_ns`: reading the
#: history windows, VEE, writing validated values, detectors (clear sky and forecasts
#: included), and storing and sending detections.
ANALYSIS_STAGES: tuple[str, ...] = ("read", "vee", "write", "detect", "alert")

#: History read per series by `BatchAnalysis.analyze`, s: 21 days, the reference days of
#: VEE's estimation (`pipeline.analyze.vee.VeeLimits.reference_days`, the IMO workbook's
#: "previous three weeks"), which is also enough for the 14-day soiling window (slower
#: soiling needs the 30- and 60-day windows of
#: `pipeline.analyze.faults.DetectorParams.soiling_window_days`: pass a longer
#: ``history_s``).
DEFAULT_HISTORY_S = 21 * SECONDS_PER_DAY
#: Late readings (store and forward) older than the window are analysed with this much
#: context before them, s ...
_LATE_CONTEXT_S = SECONDS_PER_DAY
#: ... but never further back than this from ``now``, s (a year: bounds the work of one
#: call when old files are ingested).
_MAX_HISTORY_S = 366 * SECONDS_PER_DAY
#: Readings of analysis windows kept in memory (``window_cache_points``): about 35 bytes
#: each, so 70 MB; 66 series of three weeks of 1-minute readings, or 990 of 15-minute ones.
#: This project's choice.
DEFAULT_WINDOW_CACHE_POINTS = 2_000_000
#: `BatchAnalysis._new_since` entry of a series to analyse over the default window only.
_WHOLE_WINDOW = 2**62
_WHOLE_WINDOW_NEW = (_WHOLE_WINDOW, -1)

#: How long after the end of its evidence a detection stays open (actionable), s, per kind:
#: a day for faults whose evidence renews while they last (a trip shows again each morning,
#: a stuck register with every reading); 30 days for soiling, whose ``end_s`` is where the
#: decline stopped, not where the panels got clean. Kinds not listed: `DEFAULT_OPEN_FOR_S`.
OPEN_FOR_S: dict[str, int] = {
    "inverter_trip": SECONDS_PER_DAY,
    "stuck_meter": SECONDS_PER_DAY,
    "curtailment": SECONDS_PER_DAY,
    "anomaly": SECONDS_PER_DAY,
    "soiling": 30 * SECONDS_PER_DAY,
}
DEFAULT_OPEN_FOR_S = SECONDS_PER_DAY


@dataclass(frozen=True)
class AnalysisOutcome:
    """What one batch analysis did.

    Attributes:
        now_s: the call's ``now_epoch_s``.
        detections: the faults raised by this call (not seen by an earlier call), in
            start order; times epoch s (see `pipeline.store.alerts.Detection`).
        series_analysed: series run through VEE (those with new readings).
        points_analysed: stored readings read and validated (the windows' rows).
        validated_written: rows whose validated value or quality was written.
        vee_findings: VEE findings over the windows (`pipeline.analyze.vee.Finding`, all
            kinds, gaps included).
        alerts_stored: alert rows inserted (== len(detections)).
        alerts_updated: stored alerts extended by new evidence of the same fault.
        alerts_sent: detections accepted by the alert sink (0 without one; filled in by
            `pipeline.service.Pipeline.analyze`).
        stage_ns: CPU ns per `ANALYSIS_STAGES` key, measured with the ``clock`` given to
            `BatchAnalysis.analyze`; None without a clock (the forecasts count as
            ``detect``).
        forecasts: the short-term forecast of each generation series analysed by this
            call that has enough history (see `BatchAnalysis.analyze`), in series order.
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


class BatchAnalysis:
    """VEE, detectors, forecasts and recommendations over one store's history.

    Args:
        store: the MDC's store; the analysis reads its readings and sites and writes
            validated values and alerts.
        history_s: history `analyze` reads per series, s (default `DEFAULT_HISTORY_S`).
        detector_params: thresholds of the detectors (default `DetectorParams()`).
        window_cache_points: readings of the analysis windows kept in memory between
            `analyze` calls (default `DEFAULT_WINDOW_CACHE_POINTS`; 0: none): a series
            whose window is cached has only its new readings read from the database. This
            assumes the pipeline is the only writer of its database (as the new-data
            tracking does).

    Use from one thread at a time.
    """

    def __init__(
        self,
        store: Store,
        *,
        history_s: int = DEFAULT_HISTORY_S,
        detector_params: DetectorParams | None = None,
        window_cache_points: int = DEFAULT_WINDOW_CACHE_POINTS,
    ) -> None:
        if not 0 < history_s <= _MAX_HISTORY_S:
            raise ValueError(f"history_s must be in (0, {_MAX_HISTORY_S}], got {history_s!r}")
        self.store = store
        self.history_s = int(history_s)
        self.detector_params = DetectorParams() if detector_params is None else detector_params
        self._sites: dict[str, SiteMeta] = store.sites.all()
        #: series with readings stored since the last `analyze`: (earliest, latest) new
        #: interval start, epoch s (earliest `_WHOLE_WINDOW`: analyse the default window)
        self._new_since: dict[tuple[str, ReadingType], tuple[int, int]] = {}
        self._recovered = False  # has `analyze` looked at every stored series yet
        self._warm = False
        self._last_now_s: int | None = None
        self._expected = ExpectedEnergyCache()
        self._windows = WindowCache(window_cache_points)

    @property
    def sites(self) -> dict[str, SiteMeta]:
        """The registered sites, by site (meter) id."""
        return dict(self._sites)

    def register_site(self, site: SiteMeta) -> None:
        """Register (or replace) a site's metadata; ``site.site_id`` is the meter id in the
        store. Persisted in the store, so a restarted pipeline keeps it. The meter's stored
        series are analysed again over the whole window by the next `analyze` (the
        detectors that apply may have changed)."""
        self.store.sites.put(site)
        self._sites[site.site_id] = site
        self._expected.forget(site.site_id)
        for rt in self.store.readings.reading_types_of(site.site_id):
            self._new_since.setdefault((site.site_id, rt), _WHOLE_WINDOW_NEW)

    def mark_new(self, batches: Sequence[ReadingBatch], counts: Sequence[StoredCounts]) -> None:
        """Note the series that got new readings (``counts``: per batch, as the store
        returned them), for the next `analyze`."""
        new_since = self._new_since
        for batch, stored in zip(batches, counts, strict=True):
            if stored.inserted:
                key = (batch.meter_id, batch.reading_type)
                first, last = int(batch.start_s.min()), int(batch.start_s.max())
                known = new_since.get(key)
                new_since[key] = (
                    (first, last) if known is None else (min(first, known[0]), max(last, known[1]))
                )

    def analyze(self, now_epoch_s: int, clock: Callable[[], int] | None = None) -> AnalysisOutcome:
        """VEE and site detectors over the history of every series with new readings.

        For each series that got readings since the previous call (on the first call: every
        stored series, over the default window, so that readings stored before a restart
        are not missed):

        1. read its rows with ``now - history_s <= start_s <= now`` (earlier when late
           readings arrived: from a day before the oldest of them, at most a year back);
        2. run VEE (`pipeline.analyze.series_analysis.validate_series`) and write each
           row's validated value and ESPI quality code where they changed; raw values are
           never touched;
        3. for interval energy (Wh), run the detectors of the channel's role and the site
           (`pipeline.analyze.series_analysis.detect_faults`) on the validated series in
           Wh with its estimates left out (`pipeline.analyze.series_analysis.evidence`: a
           line drawn across hours without data is no evidence of a stuck register or a
           tripped inverter);
        4. store the detections, one alert per fault (a fault already stored is extended,
           not raised again);
        5. for a generation series (role ``generation``: a meter whose only energy flow is
           19, received from the site) with at least
           `pipeline.analyze.forecast.FORECAST_MIN_HISTORY_S` of whole hours in its
           window, on a grid whose step divides an hour: forecast the next
           `pipeline.analyze.forecast.FORECAST_HORIZON_S` in hourly energy and backtest
           the method on the window (`pipeline.analyze.series_analysis.forecast_generation`).
           Net-meter export is not forecast: it is generation minus the site's load.

        All database writes of a call are one transaction (or join the open one).

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
            for key in self.store.readings.series():
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
            stage_ns=meter.stage_ns,
            forecasts=forecasts,
        )

    def _roles(self, meter_id: str, cache: dict[str, dict[int, str]]) -> dict[int, str]:
        roles = cache.get(meter_id)
        if roles is None:
            flows = [
                t.flow_direction
                for t in self.store.readings.reading_types_of(meter_id)
                if t.uom == UOM_WH and t.accumulation_behaviour not in REGISTER_ACCUMULATIONS
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
        if rt.accumulation_behaviour in REGISTER_ACCUMULATIONS:
            return [], 0  # register readings, not interval values: nothing to validate
        lo = now - self.history_s
        if since < lo:
            lo = max(now - _MAX_HISTORY_S, since - _LATE_CONTEXT_S)
        lo = max(lo, 0)
        rows = self._windows.read(self.store.readings, meter_id, rt, lo, now, since)
        meter.charge("read")
        if rows.start_s.shape[0] == 0:
            self._windows.put(meter_id, rt, lo, now, rows)
            return [], 0
        role = (
            self._roles(meter_id, roles).get(rt.flow_direction, OTHER)
            if rt.uom == UOM_WH
            else OTHER
        )
        site = self._sites.get(meter_id)
        ctx = channel_context(meter_id, rt, role, site, self.detector_params, rows.raw_value)
        result = validate_series(ctx, rows)
        totals["series"] += 1
        totals["points"] += int(rows.start_s.shape[0])
        totals["findings"] += len(result.findings)
        meter.charge("vee")
        written, validated = self._write_validated(meter_id, rt, rows, result)
        totals["written"] += written
        self._windows.put(meter_id, rt, lo, now, validated)
        meter.charge("write")
        if not ctx.is_energy:
            return [], 0
        series = Series.from_vee(meter_id, result, int(rt.power_of_ten_multiplier))
        found = detect_faults(
            evidence(series, result),
            site,
            ctx.role,
            self.detector_params,
            flat_top_w=ctx.flat_top_w,
            expected=self._expected.get,
        )
        if ctx.role == GENERATION:
            record = forecast_generation(
                series, rt, bounding_site(site, ctx.role), self._expected.get
            )
            if record is not None:
                forecasts.append(record)
        meter.charge("detect")
        if not found:
            return [], 0
        inserted, extended = self.store.alerts.record_detections(found, now, reading_type=rt)
        meter.charge("alert")
        return inserted, extended

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
        written = self.store.readings.set_validated(
            meter_id, rt, rows.start_s[changed], value[changed], quality[changed]
        )
        return written, now_stored

    def open_detections(self, now_epoch_s: int | None = None) -> list[Detection]:
        """Stored detections still open at `now_epoch_s` (default: the last `analyze`'s
        ``now``, or the latest evidence stored): those whose evidence ended no longer
        than `OPEN_FOR_S` of their kind before it. In start order."""
        now = self._last_now_s if now_epoch_s is None else int(now_epoch_s)
        longest = max(DEFAULT_OPEN_FOR_S, *OPEN_FOR_S.values())
        if now is None:
            stored = self.store.alerts.detections()
            now = max((d.end_s for d in stored), default=0)
        else:
            stored = self.store.alerts.detections(now - longest)
        return [d for d in stored if d.end_s >= now - OPEN_FOR_S.get(d.kind, DEFAULT_OPEN_FOR_S)]

    def recommendations(
        self, now_epoch_s: int | None = None, min_confidence: float = 0.5
    ) -> list[str]:
        """What a person should do now: `pipeline.analyze.recommendations.recommendations`
        over the open detections (see `open_detections`), most confident first."""
        actionable = [d for d in self.open_detections(now_epoch_s) if d.kind in RECOMMENDERS]
        return recommendations(actionable, min_confidence)


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


def _warm_up(params: DetectorParams) -> None:
    """Compile (or load from numba's cache) the kernels that VEE and every detector use,
    on a tiny series, so that no `BatchAnalysis.analyze` cost includes JIT compilation."""
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
