"""Batch analysis wired into the pipeline: uploads of clean and faulty PV meters go through
`Pipeline.handle`, then `Pipeline.analyze` validates the stored history
(validated values and quality codes beside untouched raw values), finds the injected faults on
the right meter at the right times, raises each fault once however often it runs, keeps the
asset registry across restarts, and sends new detections to a webhook."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pvlib
import pytest

from pipeline import (
    ANALYSIS_STAGES,
    AnalysisOutcome,
    Pipeline,
    ReadingType,
    SiteMeta,
    WebhookSink,
)
from pipeline.analyze.caches import ExpectedEnergyCache
from pipeline.analyze.channels import (
    CONSUMPTION,
    EXPORT,
    GENERATION,
    IMPORT,
    OTHER,
    channel_roles,
    observed_flat_top_w,
)
from pipeline.analyze.clearsky import expected_energy_wh
from pipeline.analyze.faults import INVERTER_TRIP, STUCK_METER
from pipeline.espi.codes import QUALITY_ESTIMATED_LINEAR, QUALITY_QUESTIONABLE, QUALITY_VALID
from tests.espi_feeds import Channel, meter_upload

pytestmark = pytest.mark.filterwarnings("ignore:.*dayofyear.*")

STEP_S = 900
PER_DAY = 86_400 // STEP_S
N_DAYS = 5
T0 = int(pd.Timestamp("2026-06-01", tz="UTC").timestamp())
NOW = T0 + N_DAYS * 86_400  # end of the last interval
LAT, LON = 40.0, -105.0  # local solar noon near 19:00 UTC
DC_W, AC_W = 10_000.0, 8_000.0

#: Injected faults, as interval indices from T0 (UTC 15-minute slots).
TRIP = (1 * PER_DAY + 16 * 4, 1 * PER_DAY + 20 * 4)  # day 1, 16:00-20:00 UTC (late morning)
STUCK = (3 * PER_DAY + 15 * 4, 3 * PER_DAY + 20 * 4)  # day 3, 15:00-20:00 UTC (from 08:00 local)
SPIKE = 0 * PER_DAY + 18 * 4  # day 0, 18:00 UTC: an impossible reading on the clean meter


def site(meter_id: str) -> SiteMeta:
    return SiteMeta(meter_id, "pv", DC_W, LAT, LON, 1600.0, 30.0, 180.0, ac_nameplate_w=AC_W)


def true_pv_wh(seed: int = 11) -> np.ndarray:
    """15-minute AC energy of the PV site, Wh, built with pvlib (independent of the
    pipeline's own clear sky): Ineichen clear sky (Linke turbidity 3.5, not the pipeline's
    3.0), isotropic POA, DC derate 0.85, AC clipped at 8 kW; day 2 broken cloud (25-105 %
    of clear sky per interval), day 4 overcast (15-35 %), the others clear."""
    rng = np.random.default_rng(seed)
    t = T0 + STEP_S * np.arange(N_DAYS * PER_DAY, dtype=np.int64)
    times = pd.to_datetime(t + STEP_S // 2, unit="s", utc=True)
    loc = pvlib.location.Location(LAT, LON, altitude=1600.0)
    sun = loc.get_solarposition(times)
    cs = loc.get_clearsky(times, model="ineichen", linke_turbidity=3.5)
    poa = pvlib.irradiance.get_total_irradiance(
        30, 180, sun.apparent_zenith, sun.azimuth, cs.dni, cs.ghi, cs.dhi
    ).poa_global.to_numpy()
    factor = np.ones(t.size)
    day = (t - T0) // 86_400
    factor[day == 2] = rng.uniform(0.25, 1.05, PER_DAY)
    factor[day == 4] = rng.uniform(0.15, 0.35, PER_DAY)
    power_w = np.minimum(DC_W * poa / 1000.0 * 0.85 * factor, AC_W)
    return power_w * STEP_S / 3600.0


def metered(energy_wh: np.ndarray, seed: int) -> np.ndarray:
    """An IEC 62053 class 0.5S meter's register: 0.1 % per-reading error, whole Wh."""
    rng = np.random.default_rng(seed)
    return np.round(energy_wh * (1 + 0.001 * rng.standard_normal(energy_wh.size))).astype(np.int64)


@dataclass
class Fleet:
    """Register values (Wh, flowDirection 19) of the test meters over N_DAYS."""

    channels: dict[str, np.ndarray]

    @classmethod
    def build(cls) -> Fleet:
        truth = true_pv_wh()
        clean = metered(truth, 1)
        clean[SPIKE] = 3 * clean[SPIKE]  # above the 8 kW nameplate: range_high
        trip = metered(truth, 2)
        trip[TRIP[0] : TRIP[1]] = 0
        stuck = metered(truth, 3)
        stuck[STUCK[0] : STUCK[1]] = stuck[STUCK[0]]
        bare_stuck = metered(truth, 4)
        bare_stuck[STUCK[0] : STUCK[1]] = bare_stuck[STUCK[0]]
        clipped = np.round(np.minimum(truth, 0.8 * AC_W * STEP_S / 3600)).astype(np.int64)
        return cls(
            {
                "pv-clean": clean,
                "pv-trip": trip,
                "pv-stuck": stuck,
                "bare-stuck": bare_stuck,  # no metadata
                "bare-clipped": clipped,  # no metadata, noiseless flat tops for hours
            }
        )


def espi_upload(meter_id: str, seq: int, first: int, channels: dict[int, np.ndarray]) -> bytes:
    """A meter upload (``docs/upload-format.md``) of intervals first.. of each channel,
    keyed by flowDirection (uom 72 Wh, multiplier 0, 15-minute intervals)."""
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
    for meter_id in ("pv-clean", "pv-trip", "pv-stuck"):
        pipe.register_site(site(meter_id))


def faults(detections: list[Any]) -> list[tuple[str, str, int, int]]:
    return sorted((d.series_id, d.kind, d.start_s, d.end_s) for d in detections)


def expected_faults() -> list[tuple[str, str, int, int]]:
    trip = (T0 + STEP_S * TRIP[0], T0 + STEP_S * TRIP[1])
    stuck = (T0 + STEP_S * STUCK[0], T0 + STEP_S * STUCK[1])
    return sorted(
        [
            ("pv-trip", INVERTER_TRIP, *trip),
            ("pv-stuck", STUCK_METER, *stuck),
            ("bare-stuck", STUCK_METER, *stuck),
        ]
    )


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
        deliver(pipe, fleet, 0, N_DAYS * PER_DAY)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
        outcome = pipe.analyze(NOW)
        assert isinstance(outcome, AnalysisOutcome)
        assert faults(outcome.detections) == expected_faults()
        assert outcome.series_analysed == 5
        assert outcome.points_analysed == 5 * N_DAYS * PER_DAY
        assert outcome.validated_written == outcome.points_analysed  # first pass: every row
        assert outcome.alerts_stored == 3 and outcome.alerts_updated == 0
        assert outcome.stage_ns is None and outcome.now_s == NOW
        trip = next(d for d in outcome.detections if d.kind == INVERTER_TRIP)
        # two 15-minute intervals of evidence (DetectorParams.trip_min_duration_s = 30 min)
        assert trip.detected_s == trip.start_s + 1800
        # the trip lost what the clear sky allowed: within 15 % of the pvlib truth's energy
        lost_wh = float(true_pv_wh()[TRIP[0] : TRIP[1]].sum())
        assert trip.magnitude == pytest.approx(lost_wh, rel=0.15)
        stuck = [d for d in outcome.detections if d.kind == STUCK_METER]
        assert {d.magnitude for d in stuck} == {
            float(fleet.channels["pv-stuck"][STUCK[0]]),
            float(fleet.channels["bare-stuck"][STUCK[0]]),
        }
        # stored once each, with the sinks' columns filled
        rows = alert_rows(db)
        assert [(r[0], r[1], r[2], r[3]) for r in rows] == expected_faults()
        assert all(r[4] is not None and r[5] for r in rows)
        # running again finds nothing new and changes nothing
        again = pipe.analyze(NOW)
        assert again.detections == [] and again.alerts_stored == 0
        assert again.alerts_updated == 0 and again.validated_written == 0
        assert alert_rows(db) == rows


def test_validated_values_and_quality_beside_untouched_raw(db: Path, fleet: Fleet) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * PER_DAY)
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
    clean = by_meter["pv-clean"]
    raw = fleet.channels["pv-clean"]
    # the impossible reading: estimated between its neighbours (linear, ESPI 9)
    assert clean[SPIKE][3] == QUALITY_ESTIMATED_LINEAR
    assert clean[SPIKE][2] == pytest.approx((raw[SPIKE - 1] + raw[SPIKE + 1]) / 2)
    others = [r for i, r in enumerate(clean) if i != SPIKE]
    assert {r[3] for r in others} == {QUALITY_VALID}
    assert all(r[2] == r[1] for r in others)
    # the stuck run: flagged questionable, value kept as read (it is not impossible)
    stuck = by_meter["pv-stuck"]
    run = stuck[STUCK[0] : STUCK[1]]
    assert {r[3] for r in run} == {QUALITY_QUESTIONABLE}
    assert all(r[2] == r[1] for r in run)
    # the noiseless flat tops of the meter without metadata are not stuck (observed ceiling)
    assert {r[3] for r in by_meter["bare-clipped"]} == {QUALITY_VALID}


# --------------------------------------------------------------------------------------
# hourly: the production rhythm
# --------------------------------------------------------------------------------------


def test_hourly_analysis_raises_each_fault_once_and_extends_it(db: Path, fleet: Fleet) -> None:
    raised: list[Any] = []
    with Pipeline(db) as pipe:
        register(pipe)
        for hour in range(N_DAYS * 24):
            deliver(pipe, fleet, 4 * hour, 4 * hour + 4)
            outcome = pipe.analyze(T0 + 3600 * (hour + 1))
            assert outcome.series_analysed == 5
            assert outcome.points_analysed == 5 * 4 * (hour + 1)
            for d in outcome.detections:  # raised as soon as the evidence sufficed
                assert d.detected_s <= T0 + 3600 * (hour + 1)
            raised += outcome.detections
        assert sorted((d.series_id, d.kind, d.start_s) for d in raised) == [
            f[:3] for f in expected_faults()
        ]
        # detection delay: the trip after its 30 minutes, the stuck register after 2 hours
        delays = {(d.series_id, d.kind): d.detected_s - d.start_s for d in raised}
        assert delays[("pv-trip", INVERTER_TRIP)] == 1800
        assert delays[("pv-stuck", STUCK_METER)] == 7200
        # each stored alert grew to the fault's full extent as evidence came in
        rows = alert_rows(db)
        assert [(r[0], r[1], r[2], r[3]) for r in rows] == expected_faults()


def test_recommendations_over_open_detections(db: Path, fleet: Fleet) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        assert pipe.recommendations() == []
        deliver(pipe, fleet, 0, 2 * PER_DAY)  # days 0-1: the trip, not yet the stuck meter
        pipe.analyze(T0 + 2 * 86_400)
        texts = pipe.recommendations()
        assert len(texts) == 1
        assert texts[0].startswith("inspect and reset the inverter at site pv-trip")
        deliver(pipe, fleet, 2 * PER_DAY, N_DAYS * PER_DAY)
        pipe.analyze(NOW)
        # by day 5 the trip (day 1) is over; the stuck meters (day 3) were last seen > 1 day ago
        assert pipe.recommendations() == []
        at_stuck = pipe.recommendations(T0 + STUCK[1] * STEP_S + 3600)
        assert sorted(t.split(":")[0] for t in at_stuck) == [
            "check meter bare-stuck",
            "check meter pv-stuck",
        ]
        assert len(pipe.analysis.open_detections(T0 + STUCK[1] * STEP_S)) == 2


# --------------------------------------------------------------------------------------
# restarts and the asset registry
# --------------------------------------------------------------------------------------


def test_sites_and_pending_analysis_survive_a_restart(db: Path, fleet: Fleet) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * PER_DAY)
        assert pipe.analysis.sites == {m: site(m) for m in ("pv-clean", "pv-trip", "pv-stuck")}
    # a new process: the registry is read back, and the stored series not analysed yet are
    with Pipeline(db) as pipe:
        assert pipe.analysis.sites == {m: site(m) for m in ("pv-clean", "pv-trip", "pv-stuck")}
        outcome = pipe.analyze(NOW)
        assert faults(outcome.detections) == expected_faults()
    # and once more: everything was raised already
    with Pipeline(db) as pipe:
        outcome = pipe.analyze(NOW)
        assert outcome.series_analysed == 5 and outcome.detections == []
        assert outcome.validated_written == 0


def test_metadata_decides_the_detectors(db: Path, fleet: Fleet) -> None:
    """Without metadata only the stuck register is looked for: the trip meter raises
    nothing; registering its site re-analyses it and the trip is found."""
    with Pipeline(db) as pipe:
        deliver(pipe, fleet, 0, N_DAYS * PER_DAY)
        outcome = pipe.analyze(NOW)
        assert sorted((d.series_id, d.kind) for d in outcome.detections) == [
            ("bare-stuck", STUCK_METER),
            ("pv-stuck", STUCK_METER),
        ]
        pipe.register_site(site("pv-trip"))
        outcome = pipe.analyze(NOW)
        assert outcome.series_analysed == 1
        assert [(d.series_id, d.kind) for d in outcome.detections] == [("pv-trip", INVERTER_TRIP)]


# --------------------------------------------------------------------------------------
# net meters
# --------------------------------------------------------------------------------------


def test_channel_roles() -> None:
    assert channel_roles([19]) == {19: GENERATION}
    assert channel_roles([1]) == {1: CONSUMPTION}
    assert channel_roles([1, 19]) == {1: IMPORT, 19: EXPORT}
    assert channel_roles([19, 0]) == {19: GENERATION, 0: OTHER}


def test_net_meter_export_is_not_generation(db: Path, fleet: Fleet) -> None:
    """A clinic behind a net meter imports on the overcast day (load above generation): its
    export register reads 0 through daylight. On a generation meter those zeros would be an
    inverter trip; on the net meter no PV detector runs on export."""
    gen = true_pv_wh()
    rng = np.random.default_rng(5)
    load = (4_000.0 + 300.0 * rng.standard_normal(gen.size)) * STEP_S / 3600  # 4 kW
    export = np.round(np.maximum(gen - load, 0.0)).astype(np.int64)
    imported = np.round(np.maximum(load - gen, 0.0)).astype(np.int64)
    overcast = slice(4 * PER_DAY, 5 * PER_DAY)
    assert np.all(export[overcast] == 0)
    with Pipeline(db) as pipe:
        pipe.register_site(site("net-1"))
        pipe.register_site(site("gen-ctl"))
        for first in range(0, N_DAYS * PER_DAY, 4):
            part = slice(first, first + 4)
            pipe.handle(espi_upload("net-1", first, first, {1: imported[part], 19: export[part]}))
            pipe.handle(espi_upload("gen-ctl", first, first, {19: export[part]}))
        outcome = pipe.analyze(NOW)
    kinds = {(d.series_id, d.kind) for d in outcome.detections}
    assert ("gen-ctl", INVERTER_TRIP) in kinds  # the control: read as generation, it trips
    assert not any(series_id == "net-1" for series_id, _ in kinds)
    assert outcome.series_analysed == 3


def test_the_signed_net_register_is_not_range_checked_at_zero(db: Path) -> None:
    """flowDirection 4 (net: import minus export in one register) reads negative while the
    site exports: no range_low there, the validated values are the raw ones. The same
    readings on a one-direction register (1, delivered) are impossible below 0: range_low,
    estimated. The spike check applies to both: one reading 30x the others is estimated."""
    gen = true_pv_wh()
    load = 600.0 + 40.0 * np.random.default_rng(9).standard_normal(gen.size)  # ~2.4 kW
    net = np.round(load - gen).astype(np.int64)  # behind 10 kW of PV
    assert (net < 0).sum() > 100 and (net > 0).sum() > 100
    net[2 * PER_DAY + 4] = 18_000  # 72 kW for 15 minutes, at night: a spike
    with Pipeline(db) as pipe:
        for first in range(0, N_DAYS * PER_DAY, 4):
            part = net[first : first + 4]
            assert pipe.handle(espi_upload("net-4", first, first, {4: part})).accepted
            assert pipe.handle(espi_upload("imp-1", first, first, {1: part})).accepted
        pipe.analyze(NOW)
        signed = pipe.store.readings.read_series("net-4", ReadingType(72, 0, STEP_S, 4, 12))
        delivered = pipe.store.readings.read_series("imp-1", ReadingType(72, 0, STEP_S, 1, 12))
    spike = 2 * PER_DAY + 4
    ok = np.ones(net.size, dtype=bool)
    ok[spike] = False
    assert np.array_equal(signed.validated_value[ok], net[ok].astype(float))
    assert set(signed.validated_quality[ok].tolist()) == {QUALITY_VALID}
    assert signed.validated_quality[spike] != QUALITY_VALID
    assert signed.validated_value[spike] < 1000  # estimated from its neighbours
    negative = net < 0
    assert not np.any(delivered.validated_quality[negative] == QUALITY_VALID)
    assert np.all(delivered.validated_value[negative] >= 0)  # estimated, not kept


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


def test_webhook_receives_the_new_detections(
    db: Path, fleet: Fleet, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = receiver
    with WebhookSink(url, rate_per_s=100.0, burst=10) as sink, Pipeline(db, webhook=sink) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * PER_DAY)
        outcome = pipe.analyze(NOW)
        assert outcome.alerts_sent == 3
        assert sink.flush(10.0)
        pipe.analyze(NOW)  # nothing new: nothing sent
        assert sink.flush(10.0)
        assert sink.stats.sent_alerts == 3 and sink.stats.failed_alerts == 0
    received = [a for body in bodies for a in body["alerts"]]
    assert sorted((a["meter_id"], a["kind"], a["start_s"], a["end_s"]) for a in received) == (
        expected_faults()
    )
    assert all(a["detected_s"] and a["message"] for a in received)


# --------------------------------------------------------------------------------------
# pieces
# --------------------------------------------------------------------------------------


def test_stage_costs_with_a_clock(db: Path, fleet: Fleet) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, PER_DAY)
        ticks = iter(range(0, 10**9, 10))
        outcome = pipe.analyze(T0 + 86_400, clock=lambda: next(ticks))
    assert outcome.stage_ns is not None
    assert tuple(outcome.stage_ns) == ANALYSIS_STAGES
    assert all(ns >= 0 for ns in outcome.stage_ns.values())
    # per series: one tick each for read, vee, write and detect; at the end one for alert
    assert outcome.stage_ns["read"] == outcome.stage_ns["vee"] == 10 * 5
    assert outcome.stage_ns["detect"] == 10 * 5


def test_history_window_bounds_the_reads(db: Path, fleet: Fleet) -> None:
    with Pipeline(db, history_s=86_400) as pipe:
        deliver(pipe, fleet, 0, (N_DAYS - 1) * PER_DAY)
        first = pipe.analyze(NOW - 86_400)
        # new readings older than the window are analysed with the window: all of them here
        assert first.points_analysed == 5 * (N_DAYS - 1) * PER_DAY
        deliver(pipe, fleet, (N_DAYS - 1) * PER_DAY, N_DAYS * PER_DAY)
        outcome = pipe.analyze(NOW)
        # readings with NOW - 1 day <= start_s <= NOW: the last day's, per series
        assert outcome.points_analysed == 5 * PER_DAY
        # a late upload of day 0 (already stored) changes nothing; a new reading of day 0
        # of a new meter is analysed with its context although it is older than the window
        body = espi_upload("late-1", 0, 10, {19: fleet.channels["pv-clean"][10:14]})
        assert pipe.handle(body).inserted == 4
        late = pipe.analyze(NOW)
        assert (late.series_analysed, late.points_analysed) == (1, 4)
    with pytest.raises(ValueError, match="history_s"):
        Pipeline(db, history_s=0)


def test_observed_flat_top() -> None:
    day = np.maximum(0.0, np.sin(np.linspace(-np.pi / 2, 3 * np.pi / 2, 96))) * 2000.0
    clipped = np.minimum(day, 1500.0)
    assert observed_flat_top_w(clipped, 900) == pytest.approx(1500.0 * 4)
    assert observed_flat_top_w(np.full(50, 700.0), 900) is None  # frozen all along
    assert observed_flat_top_w(np.zeros(10), 900) is None
    assert observed_flat_top_w(np.full(3, np.nan), 900) is None


def test_expected_energy_cache_equals_direct_computation() -> None:
    cache = ExpectedEnergyCache()
    pv = site("pv-x")
    grid = T0 + STEP_S * np.arange(3 * PER_DAY, dtype=np.int64)
    for lo, hi in ((0, PER_DAY), (10, PER_DAY + 40), (PER_DAY, 3 * PER_DAY), (5, 20)):
        got = cache.get(pv, grid[lo:hi], STEP_S)
        np.testing.assert_allclose(
            got, expected_energy_wh(pv, grid[lo:hi], STEP_S), rtol=1e-12, atol=1e-9
        )
    moved = SiteMeta("pv-x", "pv", DC_W, LAT, LON + 10.0, 1600.0, 30.0, 180.0)
    np.testing.assert_allclose(
        cache.get(moved, grid[:50], STEP_S), expected_energy_wh(moved, grid[:50], STEP_S)
    )


def test_analysis_joins_an_open_commit_group(db: Path, fleet: Fleet) -> None:
    with Pipeline(db, commit_every=10_000) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * PER_DAY)
        assert faults(pipe.analyze(NOW).detections) == expected_faults()
        with sqlite3.connect(db) as other:  # nothing committed yet: uploads nor alerts
            assert other.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
        pipe.uploads.flush()
        with sqlite3.connect(db) as other:
            assert other.execute("SELECT count(*) FROM alerts").fetchone()[0] == 3


def test_a_failed_analysis_is_rolled_back_and_retried(
    db: Path, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Pipeline(db) as pipe:
        register(pipe)
        deliver(pipe, fleet, 0, N_DAYS * PER_DAY)

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
        assert faults(outcome.detections) == expected_faults()
        assert outcome.validated_written == 5 * N_DAYS * PER_DAY


def test_a_flat_night_load_is_not_a_stuck_register(db: Path) -> None:
    """On a load-driven channel (net meter import) identical readings for 3 h are a quiet
    night; a register frozen for 8 h is stuck (LOAD_STUCK_MIN_DURATION_S = 6 h)."""
    rng = np.random.default_rng(9)
    n = 2 * PER_DAY
    imported = np.round(500 + 40 * rng.standard_normal(n)).astype(np.int64)
    imported[8:20] = 480  # 3 h of the same reading on the first night
    frozen = slice(PER_DAY + 4, PER_DAY + 36)  # 8 h frozen the next day
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


@pytest.mark.parametrize(
    ("gap", "ends_wh"),
    [
        ((14 * 4, 22 * 4), None),  # a morning and noon missing, equal readings around them
        ((6 * 4, 17 * 4), 0),  # night into late morning missing, zero readings around it
    ],
    ids=["equal-ends", "zero-ends"],
)
def test_a_gap_is_no_evidence_of_a_fault(
    db: Path, fleet: Fleet, gap: tuple[int, int], ends_wh: int | None
) -> None:
    """One day of a healthy meter with hours of daylight missing and no other day to take
    a reference from: VEE interpolates the gap linearly (a flat line between equal
    readings, zero between zeros), and the quality codes say so; the detectors must not
    read that line as a stuck register or a tripped inverter."""
    values = fleet.channels["pv-clean"][:PER_DAY].copy()
    values[SPIKE] = values[SPIKE - 1]  # no spike here: this test is about the gap
    if ends_wh is None:
        values[gap[1]] = values[gap[0] - 1]
    else:
        values[gap[0] - 1] = values[gap[1]] = ends_wh
    with Pipeline(db) as pipe:
        pipe.register_site(site("pv-clean"))
        for first in range(0, PER_DAY, 4):
            if not gap[0] <= first < gap[1]:
                body = espi_upload("pv-clean", first, first, {19: values[first : first + 4]})
                assert pipe.handle(body).accepted
        outcome = pipe.analyze(T0 + 86_400)
        assert outcome.detections == []
        assert outcome.vee_findings >= 1  # the gap
    with sqlite3.connect(db) as conn:
        estimated = conn.execute(
            "SELECT count(*) FROM readings WHERE validated_quality = ?", (QUALITY_ESTIMATED_LINEAR,)
        ).fetchone()[0]
    assert estimated == 0  # estimates of missing slots have no row: nothing was invented
