"""Batch analysis wired into the pipeline: uploads of a small PV fleet (healthy and faulty
meters, ``fleet_data``) go through `Pipeline.handle`, then `Pipeline.analyze` validates
the new readings (validated values and quality codes beside untouched raw values), finds
the injected faults on the right meter at the right time with their kind, raises each
fault once however often it runs, costs the same per hour whatever the history, keeps
the asset registry across restarts, recommends what to do, and sends the detections and
the day's digest to a webhook."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from meters.weather_station import StationSpec, encode_observations
from pipeline import (
    ANALYSIS_STAGES,
    AnalysisOutcome,
    Pipeline,
    ReadingType,
    WebhookSink,
)
from pipeline.analyze.channels import (
    CONSUMPTION,
    EXPORT,
    GENERATION,
    IMPORT,
    OTHER,
    channel_roles,
    observed_flat_top_w,
)
from pipeline.analyze.faults import INVERTER_TRIP, SPIKE, STORM_CUTOUT, STUCK_METER
from pipeline.analyze.fleet import FLEET_WINDOW_DAYS
from pipeline.espi.codes import QUALITY_ESTIMATED_LINEAR, QUALITY_QUESTIONABLE, QUALITY_VALID
from pipeline.sinks.digest import DIGEST_KIND
from tests.espi_feeds import Channel, meter_upload
from tests.pipeline.analyze.fleet_data import (
    DAY,
    STEP_S,
    T0,
    metered,
    pv_energy_wh,
    pv_sites,
    sky_index,
    wind_energy_wh,
    wind_sites,
)

N_DAYS = 3
NOW = T0 + N_DAYS * 86_400
SITES = pv_sites(8)
#: Injected faults, as interval indices from T0 (UTC 15-minute slots; solar noon ~17:20).
TRIP = (1 * DAY + 15 * 4, 1 * DAY + 19 * 4)  # day 1, 15:00-19:00 UTC
STUCK = (2 * DAY + 14 * 4, 2 * DAY + 19 * 4)  # day 2, 14:00-19:00 UTC
SPIKE_AT = 0 * DAY + 18 * 4  # day 0, 18:00 UTC: ten times the reading


def faults(detections: list[Any]) -> list[tuple[str, str]]:
    return sorted((d.series_id, d.kind) for d in detections)


EXPECTED = [
    ("bare-stuck", STUCK_METER),
    ("pv-00", INVERTER_TRIP),
    ("pv-01", STUCK_METER),
    ("pv-02", SPIKE),
]


@dataclass
class Fleet:
    """Register values (Wh, flowDirection 19) of the test meters over N_DAYS."""

    channels: dict[str, np.ndarray]

    @classmethod
    def build(cls) -> Fleet:
        energy = pv_energy_wh(SITES, sky_index(N_DAYS, seed=3))
        values = metered(energy, 1)
        values[0, TRIP[0] : TRIP[1]] = 0
        values[1, STUCK[0] : STUCK[1]] = values[1, STUCK[0]]
        values[2, SPIKE_AT] *= 10
        bare = metered(energy[3], 2)
        bare[STUCK[0] : STUCK[1]] = bare[STUCK[0]]
        channels = {s.site_id: values[i] for i, s in enumerate(SITES)}
        return cls(channels | {"bare-stuck": bare})  # no metadata


def espi_upload(meter_id: str, seq: int, first: int, channels: dict[int, np.ndarray]) -> bytes:
    """A meter upload of intervals first.. of each channel, keyed by flowDirection (uom 72
    Wh, multiplier 0, 15-minute intervals)."""
    n = len(next(iter(channels.values())))
    fields = {"intervalLength": STEP_S, "kind": 12, "powerOfTenMultiplier": 0, "uom": 72}
    return meter_upload(
        meter_id,
        seq,
        [T0 + STEP_S * (first + i) for i in range(n)],
        [
            Channel({"flowDirection": flow, **fields}, [int(v) for v in values])
            for flow, values in channels.items()
        ],
    )


def deliver(pipe: Pipeline, fleet: Fleet, lo: int, hi: int, per_upload: int = 4) -> None:
    """Upload intervals [lo, hi) of every meter, `per_upload` readings per upload (hourly)."""
    for first in range(lo, hi, per_upload):
        for meter_id, values in fleet.channels.items():
            body = espi_upload(meter_id, first, first, {19: values[first : first + per_upload]})
            outcome = pipe.handle(body)
            assert outcome.accepted, outcome.reason


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return Fleet.build()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "mdc.sqlite"


def register(pipe: Pipeline) -> None:
    for site in SITES:
        pipe.register_site(site)


def alert_rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT meter_id, kind, start_s, end_s, detected_s, message FROM alerts "
            "ORDER BY meter_id, kind, start_s"
        ).fetchall()


# --------------------------------------------------------------------------------------
# one batch over the whole history
# --------------------------------------------------------------------------------------


def test_analyze_finds_the_faults_and_only_them(db: Path, fleet: Fleet) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * DAY)
        outcome = pipe.analyze(NOW)
        assert isinstance(outcome, AnalysisOutcome)
        assert faults(outcome.detections) == EXPECTED
        assert outcome.series_analysed == 9
        assert outcome.points_analysed == 9 * N_DAYS * DAY
        assert outcome.validated_written == outcome.points_analysed  # first pass: every row
        assert outcome.alerts_stored == 4 and outcome.stage_ns is None and outcome.now_s == NOW
        trip = next(d for d in outcome.detections if d.kind == INVERTER_TRIP)
        assert (trip.start_s, trip.end_s) == (T0 + STEP_S * TRIP[0], T0 + STEP_S * TRIP[1])
        assert trip.detected_s == trip.start_s + 1800  # two bins of evidence
        lost_wh = float(
            pv_energy_wh(SITES[:1], sky_index(N_DAYS, seed=3))[0, TRIP[0] : TRIP[1]].sum()
        )
        assert trip.magnitude == pytest.approx(lost_wh, rel=0.1)
        stuck = next(d for d in outcome.detections if d.series_id == "pv-01")
        assert stuck.start_s == T0 + STEP_S * (STUCK[0] + 1)  # the first repeated reading
        assert stuck.end_s == T0 + STEP_S * STUCK[1]
        spike = next(d for d in outcome.detections if d.kind == SPIKE)
        assert spike.start_s == T0 + STEP_S * SPIKE_AT and spike.magnitude >= 5
        rows = alert_rows(db)
        assert sorted((r[0], r[1]) for r in rows) == EXPECTED
        assert all(r[4] is not None and r[5] for r in rows)
        # running again finds nothing new and changes nothing
        again = pipe.analyze(NOW)
        assert again.detections == [] and again.alerts_stored == 0
        assert again.validated_written == 0
        assert alert_rows(db) == rows


def test_validated_values_and_quality_beside_untouched_raw(db: Path, fleet: Fleet) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * DAY)
        pipe.analyze(NOW)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT meter_id, start_s, value, validated_value, validated_quality FROM readings "
            "ORDER BY meter_id, start_s"
        ).fetchall()
    by_meter: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        by_meter.setdefault(r[0], []).append(r[1:])
    for meter_id, values in fleet.channels.items():
        stored = by_meter[meter_id]
        assert [r[1] for r in stored] == values.tolist()  # raw exactly as uploaded
        assert all(r[3] is not None for r in stored)  # every row validated
    spiked = by_meter["pv-02"]
    raw = fleet.channels["pv-02"]
    assert spiked[SPIKE_AT][3] == QUALITY_ESTIMATED_LINEAR  # the spike: estimated
    assert spiked[SPIKE_AT][2] == pytest.approx((raw[SPIKE_AT - 1] + raw[SPIKE_AT + 1]) / 2)
    stuck = by_meter["pv-01"]
    assert {r[3] for r in stuck[STUCK[0] : STUCK[1]]} == {QUALITY_QUESTIONABLE}
    assert all(r[2] == r[1] for r in stuck[STUCK[0] : STUCK[1]])  # kept as read
    assert {r[3] for r in by_meter["pv-05"]} == {QUALITY_VALID}


# --------------------------------------------------------------------------------------
# hourly: the production rhythm
# --------------------------------------------------------------------------------------


def test_hourly_analysis_raises_each_fault_once_soon_and_costs_the_same_each_hour(
    db: Path, fleet: Fleet
) -> None:
    raised: list[Any] = []
    points: list[int] = []
    with Pipeline(db) as pipe:
        register(pipe)
        for hour in range(N_DAYS * 24):
            deliver(pipe, fleet, 4 * hour, 4 * hour + 4)
            now = T0 + 3600 * (hour + 1)
            outcome = pipe.analyze(now)
            assert all(d.detected_s <= now for d in outcome.detections)
            raised += outcome.detections
            points.append(outcome.points_analysed)
        assert faults(raised) == EXPECTED
        delays = {d.series_id: d.detected_s - d.start_s for d in raised}
        assert delays["pv-00"] == 1800  # the trip after two bins
        assert delays["pv-01"] <= 3600  # the stuck register within the hour
        # each fault one alert, grown to the fault's extent as evidence came in
        rows = {(r[0], r[1]): r for r in alert_rows(db)}
        assert len(rows) == 4
        assert rows[("pv-00", INVERTER_TRIP)][3] == T0 + STEP_S * TRIP[1]
        # the new hour and its context each time: the same work on day 3 as on day 1
        assert points[-1] == points[30] == 9 * (4 + 8)


def test_the_work_per_hour_stays_flat_past_the_grid_window(db: Path) -> None:
    """Hourly analyses of four PV meters for two days past the fleet grid's window: each
    call reads and validates only the new hour and its context (the same count on the
    last day as on the second), and the grid keeps its size while its start moves on a
    day at a time, so neither the work of a call nor the memory grows with the history
    (DESIGN §7: cost per hour flat; ``bench/test_analytics_bench.py`` times it)."""
    n_days = FLEET_WINDOW_DAYS + 2
    sites = pv_sites(4, seed=9)
    values = metered(pv_energy_wh(sites, sky_index(n_days, seed=9)), 4)
    points: list[int] = []
    with Pipeline(db) as pipe:
        for site in sites:
            pipe.register_site(site)
        shapes, starts = set(), []
        for hour in range(n_days * 24):
            first = 4 * hour
            for i, site in enumerate(sites):
                body = espi_upload(site.site_id, hour, first, {19: values[i, first : first + 4]})
                assert pipe.handle(body).accepted
            outcome = pipe.analyze(T0 + 3600 * (hour + 1))
            assert outcome.detections == []  # nothing is wrong with them
            points.append(outcome.points_analysed)
            grid = pipe.analysis.fleet
            shapes.add(grid.gen.shape)
            starts.append(grid.t0_s)
    per_hour = 4 * (4 + 8)  # four meters: the new hour and two hours of context
    assert points[24:] == [per_hour] * (len(points) - 24)
    assert shapes == {(4, (FLEET_WINDOW_DAYS + 1) * DAY)}
    assert starts[-1] - starts[0] >= 2 * 86_400  # the window moved with the history


def test_recommendations_and_the_daily_digest(db: Path, fleet: Fleet) -> None:
    digests = []
    with Pipeline(db) as pipe:
        register(pipe)
        assert pipe.recommendations() == []
        for day in range(N_DAYS):
            for hour in range(24):
                first = day * DAY + 4 * hour
                deliver(pipe, fleet, first, first + 4)
                outcome = pipe.analyze(T0 + 3600 * (day * 24 + hour + 1))
                assert len(outcome.recommendations) == len(outcome.detections)
                if outcome.digest is not None:
                    digests.append(outcome.digest)
            if day == 1:
                recs = pipe.recommendations()
                trip = next(r for r in recs if r.kind == INVERTER_TRIP)
                assert trip.site_id == "pv-00" and trip.urgency == "high"
                assert trip.lost_at_source and trip.energy_kwh > 10
                assert trip.cost == pytest.approx(trip.energy_kwh * 0.12)
                assert "inspect and reset the inverter" in trip.text
    # once a day, of the day before: the last at the end of day 2
    assert [d.day_start_s for d in digests] == [T0, T0 + 86_400, T0 + 2 * 86_400]
    assert digests[1].open_alerts.get(INVERTER_TRIP) == 1
    assert "pv-00" in digests[1].text and digests[1].sites_reporting["pv"] == 8


# --------------------------------------------------------------------------------------
# restarts and the asset registry
# --------------------------------------------------------------------------------------


def test_sites_and_pending_analysis_survive_a_restart(db: Path, fleet: Fleet) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * DAY)
        assert pipe.analysis.sites == {s.site_id: s for s in SITES}
    # a new process: the registry is read back, and the stored series not analysed yet are
    with Pipeline(db) as pipe:
        assert pipe.analysis.sites == {s.site_id: s for s in SITES}
        assert faults(pipe.analyze(NOW).detections) == EXPECTED
    # and once more: everything was raised already
    with Pipeline(db) as pipe:
        outcome = pipe.analyze(NOW)
        assert outcome.series_analysed == 9 and outcome.detections == []
        assert outcome.validated_written == 0


def test_metadata_decides_the_detectors(db: Path, fleet: Fleet) -> None:
    """Without metadata only the stuck registers are found (a register repeating one value
    for hours is a fault whatever the source); registering the sites puts them on the fleet
    grid, re-analysed over the window, and the trip and the spike are found."""
    with Pipeline(db) as pipe:
        deliver(pipe, fleet, 0, N_DAYS * DAY)
        outcome = pipe.analyze(NOW)
        assert faults(outcome.detections) == [("bare-stuck", STUCK_METER), ("pv-01", STUCK_METER)]
        register(pipe)
        outcome = pipe.analyze(NOW)
        assert outcome.series_analysed == 8
        assert faults(outcome.detections) == [("pv-00", INVERTER_TRIP), ("pv-02", SPIKE)]


# --------------------------------------------------------------------------------------
# net meters, storms, the weather feed
# --------------------------------------------------------------------------------------


def test_channel_roles() -> None:
    assert channel_roles([19]) == {19: GENERATION}
    assert channel_roles([1]) == {1: CONSUMPTION}
    assert channel_roles([1, 19]) == {1: IMPORT, 19: EXPORT}
    assert channel_roles([19, 0]) == {19: GENERATION, 0: OTHER}


def test_a_net_meter_exporting_nothing_under_overcast_is_not_a_trip(db: Path) -> None:
    """A clinic behind a net meter imports on the overcast day (load above generation): its
    export register reads 0 through daylight. On a generation meter those zeros are a trip;
    on the net meter they are the load."""
    sites = pv_sites(7)
    energy = metered(pv_energy_wh(sites, sky_index(3, seed=6, overcast_days=(2,))), 3)
    rng = np.random.default_rng(5)
    load = np.round(6_000 + 300 * rng.standard_normal(energy.shape[1]))  # ~24 kW
    export = np.maximum(energy[0] - load, 0).astype(np.int64)
    imported = np.maximum(load - energy[0], 0).astype(np.int64)
    assert np.all(export[2 * DAY : 3 * DAY] == 0)
    with Pipeline(db) as pipe:
        for s in sites:
            pipe.register_site(s)
        pipe.register_site(replace(sites[0], site_id="gen-ctl"))
        for first in range(0, 3 * DAY, 4):
            part = slice(first, first + 4)
            pipe.handle(espi_upload("pv-00", first, first, {1: imported[part], 19: export[part]}))
            pipe.handle(espi_upload("gen-ctl", first, first, {19: export[part]}))
            for i, s in enumerate(sites[1:], start=1):
                pipe.handle(espi_upload(s.site_id, first, first, {19: energy[i, part]}))
        outcome = pipe.analyze(T0 + 3 * 86_400)
    kinds = faults(outcome.detections)
    assert ("gen-ctl", INVERTER_TRIP) in kinds  # the control: read as generation, it trips
    assert not any(series_id == "pv-00" for series_id, _ in kinds)


def test_the_signed_net_register_is_not_range_checked_at_zero(db: Path) -> None:
    """flowDirection 4 (net: import minus export in one register) reads negative while the
    site exports: no range_low there, the validated values are the raw ones. The same
    readings on a one-direction register (1, delivered) are impossible below 0: range_low,
    estimated. The spike check applies to both: one reading 30x the others is estimated."""
    gen = pv_energy_wh(SITES[:1], np.full(3 * DAY, 0.99))[0]
    load = 1500.0 + 40.0 * np.random.default_rng(9).standard_normal(gen.size)  # ~6 kW
    net = np.round(load - gen).astype(np.int64)
    assert (net < 0).sum() > 50 and (net > 0).sum() > 50
    net[DAY + 4] = 45_000  # 180 kW for 15 minutes, at night: a spike
    with Pipeline(db) as pipe:
        for first in range(0, 3 * DAY, 4):
            part = net[first : first + 4]
            assert pipe.handle(espi_upload("net-4", first, first, {4: part})).accepted
            assert pipe.handle(espi_upload("imp-1", first, first, {1: part})).accepted
        pipe.analyze(T0 + 3 * 86_400)
        signed = pipe.store.readings.read_series("net-4", ReadingType(72, 0, STEP_S, 4, 12))
        delivered = pipe.store.readings.read_series("imp-1", ReadingType(72, 0, STEP_S, 1, 12))
    spike = DAY + 4
    ok = np.ones(net.size, dtype=bool)
    ok[spike] = False
    assert np.array_equal(signed.validated_value[ok], net[ok].astype(float))
    assert set(signed.validated_quality[ok].tolist()) == {QUALITY_VALID}
    assert signed.validated_quality[spike] != QUALITY_VALID
    assert signed.validated_value[spike] < 5000  # estimated from its neighbours
    negative = net < 0
    assert not np.any(delivered.validated_quality[negative] == QUALITY_VALID)
    assert np.all(delivered.validated_value[negative] >= 0)  # estimated, not kept


def test_a_storm_cut_out_is_an_event_not_an_alert(db: Path) -> None:
    """Turbines stop in a storm the station measures: events, no alert; the feed's
    observations go through the same path as the meters'."""
    turbines = wind_sites(6)
    energy = metered(wind_energy_wh(turbines, 2, seed=9, mean_m_s=11.0), 4)
    storm = slice(DAY, DAY + 20)
    energy[:, storm] = 0
    station = StationSpec("met-1", 36.1, -79.9, 270.0)
    wind = np.where(
        (np.arange(2 * DAY) >= storm.start) & (np.arange(2 * DAY) < storm.stop), 20.0, 6.0
    )
    events = []
    with Pipeline(db) as pipe:
        for s in turbines:
            pipe.register_site(s)
        for hour in range(48):
            first = 4 * hour
            for i, s in enumerate(turbines):
                pipe.handle(
                    espi_upload(s.site_id, first, first, {19: energy[i, first : first + 4]})
                )
            minutes = np.repeat(wind[first : first + 4], 15)
            doc = encode_observations(
                station, hour, T0 + first * STEP_S, 60,
                {"ghi": np.zeros(60), "temp_air": np.full(60, 5.0), "wind_speed": minutes},
                T0 + (first + 4) * STEP_S,
            )  # fmt: skip
            assert pipe.handle(doc).accepted
            outcome = pipe.analyze(T0 + 3600 * (hour + 1))
            assert outcome.detections == []
            events += outcome.events
    assert sorted(e.series_id for e in events) == [s.site_id for s in turbines]
    assert {e.kind for e in events} == {STORM_CUTOUT}


# --------------------------------------------------------------------------------------
# the webhook sink
# --------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on 127.0.0.1 (any free port): (its url, the JSON bodies it got)."""
    bodies: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_webhook_receives_the_new_detections_and_the_digest(
    db: Path, fleet: Fleet, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = receiver
    with WebhookSink(url, rate_per_s=100.0, burst=10) as sink, Pipeline(db, webhook=sink) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * DAY)
        before = pipe.analyze(NOW - 86_400)  # the first call starts the days
        outcome = pipe.analyze(NOW)
        assert before.alerts_sent + outcome.alerts_sent == 4 and outcome.digest is not None
        assert sink.flush(10.0)
        pipe.analyze(NOW)  # nothing new: nothing sent
        assert sink.flush(10.0)
        assert sink.stats.failed_alerts == 0
    received = [a for body in bodies for a in body["alerts"]]
    assert sorted((a["meter_id"], a["kind"]) for a in received if a["kind"] != DIGEST_KIND) == (
        EXPECTED
    )
    (digest,) = [a for a in received if a["kind"] == DIGEST_KIND]
    assert digest["meter_id"] == "fleet" and "Fleet digest" in digest["message"]


# --------------------------------------------------------------------------------------
# pieces
# --------------------------------------------------------------------------------------


def test_stage_costs_with_a_clock(db: Path, fleet: Fleet) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, DAY)
        ticks = iter(range(0, 10**9, 10))
        outcome = pipe.analyze(T0 + 86_400, clock=lambda: next(ticks))
    assert outcome.stage_ns is not None
    assert tuple(outcome.stage_ns) == ANALYSIS_STAGES
    assert all(ns >= 0 for ns in outcome.stage_ns.values())
    # every window read at once (one tick); per series one tick each for vee and write;
    # the detectors once, the alerts once
    assert outcome.stage_ns["read"] == 10
    assert outcome.stage_ns["vee"] == outcome.stage_ns["write"] == 10 * 9
    assert outcome.stage_ns["detect"] == 10


def test_the_points_analysed_are_told_before_any_is_validated(db: Path, fleet: Fleet) -> None:
    told: list[tuple[int, int]] = []
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, DAY)

        def on_points(points: int) -> None:
            (validated,) = pipe.store.connection.execute(
                "SELECT COUNT(*) FROM readings WHERE validated_quality IS NOT NULL"
            ).fetchone()
            told.append((points, validated))

        outcome = pipe.analyze(T0 + 86_400, on_points=on_points)
    assert told == [(outcome.points_analysed, 0)]
    assert outcome.points_analysed == 9 * DAY and outcome.validated_written == 9 * DAY


def test_new_readings_are_all_analysed_and_a_restart_reads_back_the_history(
    db: Path, fleet: Fleet
) -> None:
    with Pipeline(db, history_s=2 * 86_400) as pipe:
        deliver(pipe, fleet, 0, N_DAYS * DAY)
        # new readings are analysed however old: every reading of the three days
        assert pipe.analyze(NOW).points_analysed == 9 * N_DAYS * DAY
        # a late upload of day 0 (already stored) changes nothing; a new reading of day 0
        # of a new meter is analysed with what context there is
        body = espi_upload("late-1", 0, 10, {19: fleet.channels["pv-05"][10:14]})
        assert pipe.handle(body).inserted == 4
        late = pipe.analyze(NOW)
        assert (late.series_analysed, late.points_analysed) == (1, 4)
    # a restarted pipeline reads back history_s of every series: the last two days
    with Pipeline(db, history_s=2 * 86_400) as pipe:
        assert pipe.analyze(NOW).points_analysed == 9 * 2 * DAY
    with pytest.raises(ValueError, match="history_s"):
        Pipeline(db, history_s=0)


def test_observed_flat_top() -> None:
    day = np.maximum(0.0, np.sin(np.linspace(-np.pi / 2, 3 * np.pi / 2, 96))) * 2000.0
    clipped = np.minimum(day, 1500.0)
    assert observed_flat_top_w(clipped, 900) == pytest.approx(1500.0 * 4)
    assert observed_flat_top_w(np.full(50, 700.0), 900) is None  # frozen all along
    assert observed_flat_top_w(np.zeros(10), 900) is None
    assert observed_flat_top_w(np.full(3, np.nan), 900) is None


def test_analysis_joins_an_open_commit_group(db: Path, fleet: Fleet) -> None:
    with Pipeline(db, commit_every=10_000) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * DAY)
        assert faults(pipe.analyze(NOW).detections) == EXPECTED
        with sqlite3.connect(db) as other:  # nothing committed yet: uploads nor alerts
            assert other.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
        pipe.uploads.flush()
        with sqlite3.connect(db) as other:
            assert other.execute("SELECT count(*) FROM alerts").fetchone()[0] == 4


def test_a_failed_analysis_is_rolled_back_and_retried(
    db: Path, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * DAY)

        def broken(*args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        with monkeypatch.context() as patch:
            patch.setattr(pipe.store.alerts, "record_detections", broken)
            with pytest.raises(OSError, match="disk full"):
                pipe.analyze(NOW)
        with sqlite3.connect(db) as other:
            validated = other.execute(
                "SELECT count(*) FROM interval_readings WHERE validated_quality IS NOT NULL"
            ).fetchone()[0]
        assert validated == 0  # the whole call was one transaction
        outcome = pipe.analyze(NOW)  # the series are still pending
        assert faults(outcome.detections) == EXPECTED
        assert outcome.validated_written == 9 * N_DAYS * DAY


def test_a_flat_night_load_is_not_a_stuck_register(db: Path) -> None:
    """On a load-driven channel (a net meter's import) identical readings for 3 h are a
    quiet night; a register frozen for 8 h is stuck (LOAD_STUCK_MIN_DURATION_S = 6 h)."""
    rng = np.random.default_rng(9)
    n = 2 * DAY
    imported = np.round(500 + 40 * rng.standard_normal(n)).astype(np.int64)
    imported[8:20] = 480  # 3 h of the same reading on the first night
    frozen = slice(DAY + 4, DAY + 36)  # 8 h frozen the next day
    imported[frozen] = imported[frozen.start]
    export = np.zeros(n, dtype=np.int64)
    with Pipeline(db) as pipe:
        for first in range(0, n, 4):
            part = slice(first, first + 4)
            body = espi_upload("net-2", first, first, {1: imported[part], 19: export[part]})
            assert pipe.handle(body).accepted
        outcome = pipe.analyze(T0 + n * STEP_S)
    assert [(d.series_id, d.kind, d.start_s, d.end_s) for d in outcome.detections] == [
        ("net-2", STUCK_METER, T0 + STEP_S * frozen.start, T0 + STEP_S * frozen.stop)
    ]


@pytest.mark.parametrize("gap", [(14 * 4, 22 * 4), (6 * 4, 17 * 4)], ids=["midday", "morning"])
def test_a_gap_is_no_evidence_of_a_fault(db: Path, fleet: Fleet, gap: tuple[int, int]) -> None:
    """A day of a healthy fleet with hours of one meter missing: VEE interpolates the gap,
    the quality codes say so, and the detectors must not read that line as a stuck
    register or a tripped inverter."""
    with Pipeline(db) as pipe:
        register(pipe)
        for first in range(0, DAY, 4):
            for site in SITES[3:]:
                values = fleet.channels[site.site_id]
                if site.site_id == "pv-03" and gap[0] <= first < gap[1]:
                    continue
                body = espi_upload(site.site_id, first, first, {19: values[first : first + 4]})
                assert pipe.handle(body).accepted
        outcome = pipe.analyze(T0 + 86_400)
        assert outcome.detections == []
        assert outcome.vee_findings >= 1  # the gap
