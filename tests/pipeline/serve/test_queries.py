"""The dashboard's queries on a store written by the pipeline and read read-only: energy
conserved through the buckets, sites' states, alerts with their recommendation and status,
the forecasts beside what came in, and the bounds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline import Detection, ForecastRecord, Pipeline, SiteMeta, Store
from pipeline.serve import queries
from pipeline.serve.forecasts import ForecastBook
from tests.espi_feeds import Channel, meter_upload
from tests.serve_process import T0

STEP_S = 60
N = 240  # four hours of 1-minute readings


def channel(flow: int, values: np.ndarray) -> Channel:
    fields = {"flowDirection": flow, "intervalLength": STEP_S, "powerOfTenMultiplier": 0, "uom": 72}
    return Channel(fields, [int(v) for v in values])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """pv-1 and pv-2 generate (flow 19) for four hours, load-1 consumes (flow 1) and stops
    90 minutes before the others (silent); pv-3 is registered and never reported."""
    db = tmp_path_factory.mktemp("queries") / "mdc.sqlite"
    rng = np.random.default_rng(4)
    values = {m: rng.integers(0, 900, N) for m in ("pv-1", "pv-2", "load-1")}
    with Pipeline(db) as pipeline:
        for site, kind in [("pv-1", "pv"), ("pv-2", "pv"), ("load-1", "load"), ("pv-3", "pv")]:
            pipeline.register_site(SiteMeta(site, kind, 10_000.0, 36.0, -79.9))
        for m, v in values.items():
            n = N - 90 if m == "load-1" else N
            flow = 1 if m == "load-1" else 19
            for seq, lo in enumerate(range(0, n, 15)):
                starts = [T0 + STEP_S * i for i in range(lo, lo + 15)]
                outcome = pipeline.handle(
                    meter_upload(m, seq, starts, [channel(flow, v[lo : lo + 15])])
                )
                assert outcome.accepted
        day = 86_400
        trip = Detection("inverter_trip", "pv-2", T0 + 3600, T0 + N * 60, T0 + 7200, 0.9, 5e3, "")
        old = Detection("stuck_meter", "pv-1", T0 - 5 * day, T0 - 4 * day, T0 - 4 * day, 0.8, 7, "")
        pipeline.store.alerts.record_detections([trip, old])
    return db, values


@pytest.fixture
def store(data: tuple[Path, dict[str, np.ndarray]]) -> Iterator[Store]:
    with Store(data[0], read_only=True) as opened:
        yield opened


def test_series_conserve_energy_per_site_and_fleet(
    store: Store, data: tuple[Path, dict[str, np.ndarray]]
) -> None:
    values = data[1]
    end = T0 + N * STEP_S
    one = queries.series(store, site="pv-1", start_s=T0, end_s=end, step_s=900)
    assert one["t_s"][0] == T0 and len(one["t_s"]) == N * STEP_S // 900
    assert sum(one["generation_wh"]) == pytest.approx(values["pv-1"].sum())
    # each bucket holds its 15 readings; average power = energy per hour of bucket
    assert one["generation_wh"][0] == values["pv-1"][:15].sum()
    assert one["generation_w"][0] == pytest.approx(values["pv-1"][:15].sum() * 4)
    assert all(v is None for v in one["consumption_wh"])  # no such flow: gaps, not zeros
    fleet = queries.series(store, fleet="pv", start_s=T0, end_s=end, step_s=900)
    assert fleet["sites"] == 2
    assert sum(fleet["generation_wh"]) == pytest.approx(values["pv-1"].sum() + values["pv-2"].sum())
    everything = queries.series(store, fleet="all", start_s=T0, end_s=end, step_s=900)
    assert sum(v for v in everything["consumption_wh"] if v) == values["load-1"][: N - 90].sum()
    assert everything["consumption_wh"][-1] is None  # load-1 stopped reporting


def test_sites_report_state_and_latest_power(store: Store) -> None:
    answer = queries.sites(store)
    by_id = {s["site_id"]: s for s in answer["sites"]}
    assert answer["now_s"] == T0 + N * STEP_S and answer["total"] == 4
    assert by_id["pv-2"]["state"] == "alert" and by_id["pv-2"]["open_alerts"] == 1
    assert by_id["pv-1"]["state"] == "ok"  # its old alert is closed
    assert by_id["load-1"]["state"] == "silent" and by_id["pv-3"]["state"] == "no_data"
    latest = store.readings.read_series("pv-1", store.readings.reading_types_of("pv-1")[0])
    assert by_id["pv-1"]["generation_w"] == latest.raw_value[-1] * 3600 / STEP_S
    assert by_id["load-1"]["consumption_w"] is not None and by_id["load-1"]["generation_w"] is None
    assert [s["site_id"] for s in queries.sites(store, limit=2, offset=1)["sites"]] == [
        "pv-1",
        "pv-2",
    ]


def test_alerts_carry_recommendation_and_status(store: Store) -> None:
    answer = queries.alerts(store)
    assert [(a["kind"], a["status"]) for a in answer["alerts"]] == [
        ("inverter_trip", "open"),
        ("stuck_meter", "closed"),
    ]
    trip = answer["alerts"][0]
    assert trip["recommendation"].startswith("inspect and reset the inverter")
    assert trip["urgency"] == "high"
    # the open trip's recommendation in full: what, where, urgency, the energy lost so far
    (rec,) = answer["recommendations"]
    assert (rec["kind"], rec["site_id"], rec["action"]) == (
        "inverter_trip",
        "pv-2",
        trip["recommendation"],
    )
    assert rec["urgency"] == "high" and "pv-2" in rec["text"] and rec["energy_kwh"] >= 0
    assert [a["kind"] for a in queries.alerts(store, status="closed")["alerts"]] == ["stuck_meter"]


def test_forecasts_are_set_against_what_came_in(store: Store) -> None:
    book = ForecastBook()
    issued = T0 + 3600
    # the three hours of the forecast are the last three of the readings: all complete
    forecast, reference = (1.0, 2.0, 3.0), (5.0, 6.0, 7.0)
    book.add([ForecastRecord("pv-1", 19, "blend", issued, 3600, 3, forecast, "smart", reference)])
    answer = queries.forecasts(store, book, site="pv-1")
    actual = answer["actual"]["19"]
    assert actual["t_s"] == [issued, issued + 3600, issued + 7200]
    values = store.readings.read_series("pv-1", store.readings.reading_types_of("pv-1")[0])
    came_in = [values.raw_value[60:120].sum(), values.raw_value[120:180].sum()]
    assert actual["energy_wh"][0] == came_in[0]
    assert actual["energy_wh"][2] == values.raw_value[180:240].sum()
    (f,) = answer["forecasts"]
    assert f["forecast_wh"] == list(forecast) and f["reference_wh"] == list(reference)
    assert f["metered_wh"] == [*came_in, actual["energy_wh"][2]]
    assert f["steps_metered"] == 3
    err = np.array(forecast) - np.array(f["metered_wh"])
    err_ref = np.array(reference) - np.array(f["metered_wh"])
    assert f["mae_wh"] == pytest.approx(np.mean(np.abs(err)))
    assert f["reference_mae_wh"] == pytest.approx(np.mean(np.abs(err_ref)))
    skill = 1.0 - np.sqrt(np.mean(err**2)) / np.sqrt(np.mean(err_ref**2))
    assert f["skill"] == pytest.approx(skill)
    # issued later than the readings reach: nothing metered yet, nothing scored
    book.add(
        [
            ForecastRecord(
                "pv-1", 19, "blend", T0 + 4 * 3600, 3600, 2, (1.0, 1.0), "smart", (2.0, 2.0)
            )
        ]
    )
    late = queries.forecasts(store, book, site="pv-1")["forecasts"][-1]
    assert late["metered_wh"] == [None, None] and late["steps_metered"] == 0
    assert late["mae_wh"] is None and late["skill"] is None
    latest = queries.forecasts(store, book)["forecasts"][0]
    assert latest["next_hour_wh"] == 1.0 and latest["reference_method"] == "smart"
    assert queries.forecasts(store, book, site="pv-2")["actual"] is None


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"site": "pv-1", "start_s": T0, "end_s": T0}, "must be after start"),
        ({"site": "pv-1", "start_s": T0, "end_s": T0 + 32 * 86400}, "more than the 31 days"),
        ({"site": "pv-1", "start_s": T0, "end_s": T0 + 86400, "step_s": 10}, "more than 5000"),
        ({"fleet": "hydro"}, "no registered site of that kind"),
        ({}, "give one of site"),
    ],
)
def test_series_bounds(store: Store, kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(queries.QueryError, match=reason):
        queries.series(store, **kwargs)  # type: ignore[arg-type]


def test_parse_time_reads_epoch_and_iso() -> None:
    assert queries.parse_time_s("2026-06-21T00:00:00Z", "t") == T0
    assert queries.parse_time_s(str(T0), "t") == T0
    assert queries.parse_time_s(None, "t") is None
    with pytest.raises(queries.QueryError, match="time zone"):
        queries.parse_time_s("2026-06-21T00:00:00", "t")
