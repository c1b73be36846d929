"""Each region's weather feed in a run: the station's observations and forecast issues go
through the network to the MDC, authenticated with the station's key, and are stored by
the real pipeline; the station's outages leave gaps; and the meters' ledger does not see
the station (accounted apart)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twin.runner import STORE_NAME, run
from twin.scenario.loader import load_scenario

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"
SMALL = ["fleet.pv.count=6", "fleet.wind.count=2", 'scenario.duration="12h"']


def test_the_feed_is_stored_through_the_network_and_accounted_apart(tmp_path: Path) -> None:
    with_feed = run(load_scenario(BASELINE, SMALL), store_dir=tmp_path)
    (record,) = with_feed.weather_feed
    assert (record.station_id, record.region) == ("met-north", "north")
    assert record.observations == 12 * 60 and record.observations_missing == 0
    assert record.forecast_issues == 2  # every 6 h
    assert record.uploads_started == record.uploads_acknowledged > 12 * 4
    assert record.uploads_rejected == 0 and record.uploads_failed == 0
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        observations = db.execute("SELECT count(*) FROM weather_observations").fetchone()[0]
        issues = db.execute("SELECT count(DISTINCT issued_s) FROM weather_forecasts").fetchone()[0]
    assert issues == 2
    # the last upload's readings arrive after the end: everything else is stored, once
    assert 12 * 60 - 30 <= observations <= record.values_stored
    without = run(load_scenario(BASELINE, [*SMALL, "weather.feed.enabled=false"]))
    assert without.weather_feed == []
    assert without.ledger == with_feed.ledger  # the meters' readings: all the same


def test_the_stations_outages_leave_gaps(tmp_path: Path) -> None:
    scenario = load_scenario(
        BASELINE, [*SMALL, 'weather.feed.outage_mtbf="2h"', 'weather.feed.outage_mttr="1h"']
    )
    (record,) = run(scenario, store_dir=tmp_path).weather_feed
    assert record.outages and record.observations_missing > 30
    assert sum(b - a for a, b in record.outages) == record.observations_missing * 60
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        nulls = db.execute(
            "SELECT count(*) FROM weather_observations WHERE ghi IS NULL"
        ).fetchone()[0]
    assert nulls > 0
