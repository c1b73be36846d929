"""The batch analysis of one MDC's store: the one orchestrator of VEE, detectors, forecasts
and recommendations (`BatchAnalysis`), what the service runs on a schedule.

`BatchAnalysis.analyze` (called on a schedule, e.g. hourly) works incrementally: it reads
the readings stored since the previous call with a short context before them (no more
than `pipeline.analyze.channels.LOAD_STUCK_MIN_DURATION_S`), validates them (VEE, written
beside the raw values), and adds the registered PV and wind sites' energy to the fleet
grid (`pipeline.analyze.fleet.FleetGrid`: 15-minute bins over the last days, with each
site's clear sky computed once per bin). The detectors then compare each site with its
neighbours, the region's weather feed and the clear sky on that grid
(`pipeline.analyze.register_detectors`, `pipeline.analyze.wind_detectors`,
`pipeline.analyze.pv_detectors`); the other series (a site's load, meters without a
registered site) get the per-series detectors (`pipeline.analyze.series_analysis`). So the
cost of a call grows with the readings that arrived and the fleet's size, not with the
history (DESIGN §7; ``bench/test_analytics_bench.py`` measures it).

Each fault is stored once (a fault seen again extends its alert; a detection of another
kind of the same family, `pipeline.analyze.faults.FAMILIES`, extends the first: the first
classification stands). Normal events (storm cut-outs) are reported, not alerted. New
alerts get their recommendation (`pipeline.analyze.recommendations`), PV generation meters
their forecast (`pipeline.analyze.fleet_forecast`), and once a day the fleet its digest
(`pipeline.sinks.digest`, sent by `pipeline.service.Pipeline.analyze`).

Only numpy, numba, lxml, pvlib and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.analyze.caches import WindowCache
from pipeline.analyze.channels import (
    EXPORT,
    GENERATION,
    IMPORT,
    LOAD_DRIVEN_ROLES,
    LOAD_STUCK_MIN_DURATION_S,
    OTHER,
    channel_roles,
)
from pipeline.analyze.digest import FleetDigest, fleet_digest
from pipeline.analyze.faults import EVENT_KINDS, FAMILIES, DetectorParams
from pipeline.analyze.fleet import FLEET_STEP_S, FLEET_WINDOW_DAYS, GEN, IMP, FleetGrid
from pipeline.analyze.fleet_forecast import FORECAST_AHEAD_S, fleet_forecasts
from pipeline.analyze.forecast import ForecastRecord
from pipeline.analyze.pv_detectors import (
    detect_clock_offset,
    detect_gradual_loss,
    detect_shading,
)
from pipeline.analyze.recommendations import (
    DEFAULT_PRICE_PER_KWH,
    Recommendation,
    recommend,
)
from pipeline.analyze.register_detectors import (
    detect_frozen,
    detect_net_zero,
    detect_no_output,
    detect_spikes,
    spike_bound_wh,
)
from pipeline.analyze.series import SECONDS_PER_DAY, Series
from pipeline.analyze.series_analysis import (
    channel_context,
    detect_faults,
    evidence,
    validate_series,
)
from pipeline.analyze.vee import VeeResult
from pipeline.analyze.wind_detectors import detect_wind_below_neighbours
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

#: Cost centres of `BatchAnalysis.analyze`, keys of `AnalysisOutcome.stage_ns`: reading
#: the new readings and their context, VEE, writing validated values, detectors and
#: forecasts (the fleet's grid and references included), and storing and sending
#: detections.
ANALYSIS_STAGES: tuple[str, ...] = ("read", "vee", "write", "detect", "alert")

#: History read back per series when the analysis starts (a restart, or a site
#: registered anew), s: the fleet grid's days, what the detectors look back over.
DEFAULT_HISTORY_S = FLEET_WINDOW_DAYS * SECONDS_PER_DAY
#: Context read before a series' new readings, s: two hours for generation channels (the
#: stuck check's shortest run, and the spike check's window many times over), the load
#: rule's six hours for load-driven channels.
_CONTEXT_S = 7200
#: Never further back than this from ``now``, s (a year: bounds the work of one call when
#: old files are ingested).
_MAX_HISTORY_S = 366 * SECONDS_PER_DAY
#: Readings of analysis windows kept in memory (``window_cache_points``), about 35 bytes
#: each: the last hours of every series, so that a call reads only the new readings.
DEFAULT_WINDOW_CACHE_POINTS = 2_000_000
#: `BatchAnalysis._new_since` entry of a series to analyse over the default window only.
_WHOLE_WINDOW = 2**62
_WHOLE_WINDOW_NEW = (_WHOLE_WINDOW, -1)
#: Bins of the fleet grid the fast detectors (no output, registers, wind) look back over:
#: a day and a half, so that a fault through a night is one run.
_FAST_BINS = 36 * 3600 // FLEET_STEP_S
#: The slow PV detectors (gradual loss, shading) run once per this many seconds of
#: analysis time (their evidence builds over days).
_SLOW_EVERY_S = 3 * 3600

#: How long after the end of its evidence a detection stays open (actionable), s, per
#: kind: a day for faults whose evidence renews while they last; 30 days for gradual
#: losses, whose ``end_s`` is where the evidence stopped, not where the loss was fixed.
#: Kinds not listed: `DEFAULT_OPEN_FOR_S`.
OPEN_FOR_S: dict[str, int] = {
    "soiling": 30 * SECONDS_PER_DAY,
    "degradation": 30 * SECONDS_PER_DAY,
    "partial_shading": 7 * SECONDS_PER_DAY,
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
        points_analysed: stored readings read and validated (new ones and their context).
        validated_written: rows whose validated value or quality was written.
        vee_findings: VEE findings over the windows (`pipeline.analyze.vee.Finding`).
        alerts_stored: alert rows inserted (== len(detections)).
        alerts_updated: stored alerts extended by new evidence of the same fault.
        alerts_sent: detections accepted by the alert sink (0 without one; filled in by
            `pipeline.service.Pipeline.analyze`).
        stage_ns: CPU ns per `ANALYSIS_STAGES` key, measured with the ``clock`` given to
            `BatchAnalysis.analyze`; None without a clock.
        forecasts: the short-term forecasts issued by this call, in series order.
        events: normal events first seen by this call (kinds
            `pipeline.analyze.faults.EVENT_KINDS`: a turbine's storm cut-out).
        recommendations: what to do about each detection of this call.
        digest: the fleet's digest of the day that ended before ``now``, once a day.
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
    events: list[Detection] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    digest: FleetDigest | None = None


@dataclass
class _Pending:
    """What the per-series pass leaves for the fleet pass: spike candidates to confirm."""

    spikes: list[tuple[str, str, VeeResult, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Window:
    """One series' analysis window: its rows from ``lo`` (epoch s) to now, read for the
    readings new since ``since``; the channel's ``role``."""

    meter_id: str
    rt: ReadingType
    since: int
    lo: int
    role: str
    rows: SeriesRows


class BatchAnalysis:
    """VEE, detectors, forecasts and recommendations over one store's history.

    Args:
        store: the MDC's store; the analysis reads its readings, sites and weather feed,
            and writes validated values and alerts.
        history_s: history read back per series when the analysis starts, s (default
            `DEFAULT_HISTORY_S`).
        detector_params: thresholds of the detectors (default `DetectorParams()`).
        window_cache_points: readings of the series' recent windows kept in memory between
            `analyze` calls (default `DEFAULT_WINDOW_CACHE_POINTS`; 0: none): a series whose
            window is cached has only its new readings read from the database. This assumes
            the pipeline is the only writer of its database.
        price_per_kwh: value of a kWh for the recommendations' cost of a fault (default
            `pipeline.analyze.recommendations.DEFAULT_PRICE_PER_KWH`).

    Use from one thread at a time.
    """

    def __init__(
        self,
        store: Store,
        *,
        history_s: int = DEFAULT_HISTORY_S,
        detector_params: DetectorParams | None = None,
        window_cache_points: int = DEFAULT_WINDOW_CACHE_POINTS,
        price_per_kwh: float = DEFAULT_PRICE_PER_KWH,
    ) -> None:
        if not 0 < history_s <= _MAX_HISTORY_S:
            raise ValueError(f"history_s must be in (0, {_MAX_HISTORY_S}], got {history_s!r}")
        self.store = store
        self.history_s = int(history_s)
        self.detector_params = DetectorParams() if detector_params is None else detector_params
        self.price_per_kwh = float(price_per_kwh)
        self._sites: dict[str, SiteMeta] = store.sites.all()
        #: series with readings stored since the last `analyze`: (earliest, latest) new
        #: interval start, epoch s (earliest `_WHOLE_WINDOW`: analyse the default window)
        self._new_since: dict[tuple[str, ReadingType], tuple[int, int]] = {}
        self._recovered = False  # has `analyze` looked at every stored series yet
        self._last_now_s: int | None = None
        self._windows = WindowCache(window_cache_points)
        self._fleet = FleetGrid(max(2, self.history_s // SECONDS_PER_DAY))
        self._weather_upto: dict[str, int] = {}
        self._slow_done: int | None = None
        self._events: list[Detection] = []
        self._digest_day: int | None = None

    @property
    def sites(self) -> dict[str, SiteMeta]:
        """The registered sites, by site (meter) id."""
        return dict(self._sites)

    @property
    def fleet(self) -> FleetGrid:
        """The fleet grid the detectors read (`pipeline.analyze.fleet.FleetGrid`)."""
        return self._fleet

    def register_site(self, site: SiteMeta) -> None:
        """Register (or replace) a site's metadata; ``site.site_id`` is the meter id in the
        store. Persisted in the store, so a restarted pipeline keeps it. The meter's stored
        series are analysed again over the whole window by the next `analyze`."""
        self.store.sites.put(site)
        self._sites[site.site_id] = site
        if self._fleet.t0_s is not None:
            self._fleet.set_sites([site])
        for rt in self.store.readings.reading_types_of(site.site_id):
            self._new_since[(site.site_id, rt)] = _WHOLE_WINDOW_NEW

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

    def analyze(
        self,
        now_epoch_s: int,
        clock: Callable[[], int] | None = None,
        on_points: Callable[[int], None] | None = None,
    ) -> AnalysisOutcome:
        """VEE of the new readings, then the detectors, forecasts and recommendations.

        For each series that got readings since the previous call (on the first call:
        every stored series, over `history_s`, so that readings stored before a restart
        are not missed): read its rows from `_CONTEXT_S` before the earliest new one
        (longer on load-driven channels; from a day before when late readings arrive, at
        most a year back) to ``now``, run VEE and write each row's validated value and ESPI
        quality code where they changed (raw values are never touched); add a registered
        PV or wind site's energy to the fleet grid, or run the per-series detectors on
        any other interval-energy series. Then the fleet's detectors, the weather feed
        read first; new alerts are stored (one per fault), forecasts issued for PV
        generation meters and other generation series, and the day's digest made once a
        day. All database writes of a call are one transaction (or join the open one).

        Args:
            now_epoch_s: the analysis time, epoch s (the twin passes simulated time):
                readings starting after it are left for later, and new alert rows get it
                as ``created``.
            clock: a monotonic ns clock (normally `time.thread_time_ns`); when given,
                `AnalysisOutcome.stage_ns` holds the cost per `ANALYSIS_STAGES`.
            on_points: told `AnalysisOutcome.points_analysed` as soon as it is known: every
                series' window is read first, before VEE and the detectors.
        """
        now = int(now_epoch_s)
        meter = _CostMeter(clock)
        if not self._recovered:
            for key in self.store.readings.series():
                self._new_since.setdefault(key, _WHOLE_WINDOW_NEW)
            self._recovered = True
        todo = sorted(self._new_since.items(), key=lambda kv: (kv[0][0], kv[0][1].values()))
        self._new_since = {}
        totals = Counter[str]()
        found: list[Detection] = []
        roles: dict[str, dict[int, str]] = {}
        pending = _Pending()
        store = self.store
        own = not store.in_transaction
        try:
            if own:
                store.begin()
            windows = []
            for (meter_id, rt), (since, last) in todo:
                window = self._read_window(meter_id, rt, since, now, roles)
                if window is not None:
                    windows.append(window)
                    totals["points"] += int(window.rows.start_s.shape[0])
                if last > now:  # readings after `now` (a fast meter clock): for a later call
                    self._new_since[(meter_id, rt)] = (now + 1, last)
            meter.charge("read")
            if on_points is not None:
                on_points(totals["points"])
            if self._fleet.t0_s is None:
                self._fleet.start(now - self.history_s, self._sites.values())
            self._fleet.advance(now, FORECAST_AHEAD_S)
            self._read_weather(now)
            for window in windows:
                found += self._analyse_series(window, now, meter, totals, pending)
            fleet_found, events = self._fleet_detections(now, pending, bool(todo))
            found += fleet_found
            forecasts = fleet_forecasts(self._fleet, store.weather, now)
            meter.charge("detect")
            new, extended = self._record(found, now)
            recs = [recommend(d, self._fleet, self.price_per_kwh, now) for d in new]
            digest = self._digest(now)
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
            alerts_updated=extended,
            stage_ns=meter.stage_ns,
            forecasts=forecasts,
            events=events,
            recommendations=recs,
            digest=digest,
        )

    # -- the per-series pass -----------------------------------------------------------
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

    def _fleet_channel(self, meter_id: str, rt: ReadingType, role: str) -> str | None:
        """`GEN` or `IMP` when the series belongs on the fleet grid, else None."""
        site = self._sites.get(meter_id)
        if site is None or site.kind not in ("pv", "wind") or rt.uom != UOM_WH:
            return None
        if FLEET_STEP_S % int(rt.interval_length_s):
            return None
        if role in (GENERATION, EXPORT):
            return GEN
        return IMP if role == IMPORT else None

    def _window_start(self, since: int, now: int, role: str) -> int:
        if since == _WHOLE_WINDOW:
            return max(0, now - self.history_s)
        context = LOAD_STUCK_MIN_DURATION_S if role in LOAD_DRIVEN_ROLES else _CONTEXT_S
        lo = since - context
        if since < now - 2 * SECONDS_PER_DAY:  # late readings: a day of context
            lo = max(now - _MAX_HISTORY_S, since - SECONDS_PER_DAY)
        return max(0, lo)

    def _read_window(
        self,
        meter_id: str,
        rt: ReadingType,
        since: int,
        now: int,
        roles: dict[str, dict[int, str]],
    ) -> _Window | None:
        """The rows one series' analysis reads: its new readings with their context; None
        when there is nothing to validate (register readings, or no rows)."""
        if rt.accumulation_behaviour in REGISTER_ACCUMULATIONS:
            return None  # register readings, not interval values: nothing to validate
        role = (
            self._roles(meter_id, roles).get(rt.flow_direction, OTHER)
            if rt.uom == UOM_WH
            else OTHER
        )
        lo = self._window_start(since, now, role)
        rows = self._windows.read(self.store.readings, meter_id, rt, lo, now, since)
        if rows.start_s.shape[0] == 0:
            self._windows.put(meter_id, rt, lo, now, rows)
            return None
        return _Window(meter_id, rt, since, lo, role, rows)

    def _analyse_series(
        self,
        window: _Window,
        now: int,
        meter: _CostMeter,
        totals: Counter[str],
        pending: _Pending,
    ) -> list[Detection]:
        """VEE of one series' window (`_read_window`), written back; the series' energy to
        the fleet grid, or its per-series detections."""
        meter_id, rt, since, lo, role, rows = (
            window.meter_id, window.rt, window.since, window.lo, window.role, window.rows
        )  # fmt: skip
        site = self._sites.get(meter_id)
        ctx = channel_context(meter_id, rt, role, site, self.detector_params, rows.raw_value)
        result = validate_series(ctx, rows)
        totals["series"] += 1
        totals["findings"] += len(result.findings)
        meter.charge("vee")
        written, now_stored = self._write_validated(meter_id, rt, rows, result)
        totals["written"] += written
        self._windows.put(meter_id, rt, lo, now, now_stored)
        meter.charge("write")
        if not ctx.is_energy:
            return []
        scale = 10.0 ** int(rt.power_of_ten_multiplier)
        series = Series.from_vee(meter_id, result, int(rt.power_of_ten_multiplier))
        channel = self._fleet_channel(meter_id, rt, ctx.role)
        if channel is not None:
            if ctx.role == EXPORT or channel == IMP:
                self._fleet.mark_net(meter_id)
            self._fleet.put(
                meter_id, channel, result.start_s, result.interval_length_s,
                evidence(series, result).energy_wh, result.raw_value * scale,
                None if since == _WHOLE_WINDOW else since,
            )  # fmt: skip
            pending.spikes.append((meter_id, channel, result, scale))
            return []
        return detect_faults(
            evidence(series, result), site, ctx.role, self.detector_params,
            flat_top_w=ctx.flat_top_w,
        )  # fmt: skip

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

    # -- the fleet pass ----------------------------------------------------------------
    def _read_weather(self, now: int) -> None:
        """Add the stations' observations stored since the last call to the grid."""
        grid = self._fleet
        assert grid.t0_s is not None
        for station in self.store.weather.stations().values():
            lo = self._weather_upto.get(station.station_id, grid.t0_s)
            obs = self.store.weather.observations(station.station_id, lo - FLEET_STEP_S, now)
            grid.put_weather(station, obs)
            if obs.n:
                self._weather_upto[station.station_id] = int(obs.start_s[-1]) + 1

    def _fleet_detections(
        self, now: int, pending: _Pending, anything_new: bool
    ) -> tuple[list[Detection], list[Detection]]:
        """The fleet's detectors (module docstring): (alerts, new events)."""
        grid = self._fleet
        if not grid.sites or not anything_new:
            return [], []
        params = self.detector_params
        end = grid.bin_of(now)
        fast = grid.view(end - _FAST_BINS, end)
        alerts, events = detect_no_output(fast, params)
        alerts += detect_net_zero(fast, params)
        alerts += detect_frozen(fast, params)
        alerts += detect_wind_below_neighbours(fast, params)
        alerts += detect_clock_offset(fast, params)
        slot = now // _SLOW_EVERY_S
        if self._slow_done != slot:
            self._slow_done = slot
            whole = grid.view(0, end)
            alerts += detect_gradual_loss(whole, params)
            alerts += detect_shading(whole, params)
        for site_id, channel, result, scale in pending.spikes:
            per_slot = FLEET_STEP_S // result.interval_length_s
            plate = grid.sites[grid.row[site_id]].nameplate_w * FLEET_STEP_S / 3600.0
            bound = (  # a net meter's import: judged against its own readings
                spike_bound_wh(grid, site_id, result.start_s, per_slot, params)
                if channel == GEN
                else None
            )
            alerts += detect_spikes(site_id, result, scale, bound, plate / per_slot, params)
        alerts = [d for d in alerts if d.confidence >= params.min_confidence]
        return alerts, self._new_events(events)

    def _new_events(self, events: list[Detection]) -> list[Detection]:
        """Events not seen before (one per site and overlapping span)."""
        new = []
        for e in events:
            if any(
                k.series_id == e.series_id and k.start_s <= e.end_s and k.end_s >= e.start_s
                for k in self._events
            ):
                continue
            new.append(e)
            self._events.append(e)
        horizon = max((e.end_s for e in self._events), default=0) - 2 * SECONDS_PER_DAY
        self._events = [e for e in self._events if e.end_s >= horizon]
        return new

    def _record(self, found: list[Detection], now: int) -> tuple[list[Detection], int]:
        """Store detections, one alert per fault (family members extend the first)."""
        if not found:
            return [], 0
        stored = self.store.alerts.detections(min(d.start_s for d in found))
        family = {k: f for f in FAMILIES for k in f}
        kept = []
        for d in found:
            same = family.get(d.kind, frozenset({d.kind}))
            first = next(
                (
                    s for s in stored
                    if s.series_id == d.series_id and s.kind in same and s.kind != d.kind
                    and s.start_s <= d.end_s and s.end_s >= d.start_s
                ),
                None,
            )  # fmt: skip
            kept.append(d if first is None else replace(d, kind=first.kind))
        return self.store.alerts.record_detections(kept, now)

    def _digest(self, now: int) -> FleetDigest | None:
        """The digest of the UTC day that ended before `now`, once per day."""
        day = now // SECONDS_PER_DAY
        if self._digest_day is None:
            self._digest_day = day
            return None
        if day == self._digest_day:
            return None
        self._digest_day = day
        day_end = day * SECONDS_PER_DAY
        return fleet_digest(
            self._fleet,
            self.open_detections(day_end),
            day_end - SECONDS_PER_DAY,
            day_end,
            self.price_per_kwh,
        )

    # -- reading the results -----------------------------------------------------------
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
        return [
            d for d in stored
            if d.kind not in EVENT_KINDS and d.start_s <= now
            and d.end_s >= now - OPEN_FOR_S.get(d.kind, DEFAULT_OPEN_FOR_S)
        ]  # fmt: skip

    def recommendations(
        self, now_epoch_s: int | None = None, min_confidence: float = 0.5
    ) -> list[Recommendation]:
        """What a person should do now: one recommendation per open detection at or above
        `min_confidence` (see `open_detections`), most urgent first, then most costly."""
        now = self._last_now_s if now_epoch_s is None else int(now_epoch_s)
        recs = [
            recommend(d, self._fleet, self.price_per_kwh, now)
            for d in self.open_detections(now_epoch_s)
            if d.confidence >= min_confidence
        ]
        return sorted(recs, key=lambda r: (r.urgency_rank, -r.cost, r.start_s))


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
