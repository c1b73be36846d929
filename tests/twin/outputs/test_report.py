"""report.html: written by every run, rebuilt identically from the folder, holding what
the run measured, and of bounded size however long the run."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from twin.accounting.series import QUANTILE_LEVELS
from twin.cli import main
from twin.outputs.charts import MAX_POINTS_PER_TRACE, decimate
from twin.outputs.report import REPORT_NAME, windows_of, write_report
from twin.outputs.run_folder import LATENCY_NAME, TIMESERIES_NAME, load_run


def _figures(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="figures">(.*?)</script>', page, re.S)
    assert block is not None
    return json.loads(block.group(1).replace("<\\/", "</"))


def test_run_writes_the_report_and_twin_report_rebuilds_it_byte_for_byte(
    outage_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = outage_run / REPORT_NAME
    first = page.read_bytes()
    page.unlink()
    assert main(["report", str(outage_run)]) == 0
    assert capsys.readouterr().out.strip() == str(page)
    assert page.read_bytes() == first


def test_report_of_a_folder_that_is_not_a_run_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "expected a run folder (it has no results.json)" in err


def test_the_page_is_self_contained_and_shows_the_kpis_and_verdicts(outage_run: Path) -> None:
    page = (outage_run / REPORT_NAME).read_text("utf-8")
    results = json.loads((outage_run / "results.json").read_text("utf-8"))
    assert get_plotlyjs() in page  # inlined: no script or stylesheet from elsewhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.replace(get_plotlyjs(), ""))
    shown = dict(re.findall(r'data-kpi="([^"]+)" data-value="([^"]+)"', page))
    kpis = results["kpis"]
    assert float(shown["readings_generated"]) == kpis["readings_generated"]
    assert float(shown["latency_s.p99"]) == kpis["latency_s"]["p99"]
    assert float(shown["hop_latency_s.cellular.p95"]) == kpis["hop_latency_s"]["cellular"]["p95"]
    # the scenario's question and the verdicts of its [slo] table (p99 30 min is missed:
    # readings held through the 2 h outage are stored hours late)
    assert results["scenario"]["question"] in page
    verdicts = dict(re.findall(r'data-slo="([^"]+)">([^<]+)<', page))
    assert verdicts == {
        "drain_s_max": "met",
        "latency_s.p99": "MISSED",
        "readings_lost_total": "met",
    }
    assert kpis["latency_s"]["p99"] > 1800 and kpis["readings_lost_total"] == 0
    figures = _figures(page)
    assert {"ledger-flow", "latency-e2e", "latency-hops", "timeseries"} <= set(figures)
    sankey = figures["ledger-flow"]["data"][0]
    assert sankey["link"]["value"][0] == results["ledger"]["stored"]
    assert sum(sankey["link"]["value"]) == results["ledger"]["generated"]


def test_the_outage_is_shaded_where_the_scenario_put_it(outage_run: Path) -> None:
    results = json.loads((outage_run / "results.json").read_text("utf-8"))
    (window,) = windows_of(results)
    assert (window.label, window.start_h, window.end_h) == ("cell_outage north cell 0", 10, 12)
    layout = _figures((outage_run / REPORT_NAME).read_text("utf-8"))["timeseries"]["layout"]
    (shape,) = layout["shapes"]
    assert (shape["type"], shape["x0"], shape["x1"]) == ("rect", 10, 12)
    assert any(a["text"] == window.label and a["x"] == 10 for a in layout["annotations"])


def test_latency_json_holds_the_distributions_the_kpis_summarise(outage_run: Path) -> None:
    run = load_run(outage_run)
    k = run.results["kpis"]
    assert run.latency is not None
    np.testing.assert_array_equal(run.latency.levels, QUANTILE_LEVELS)
    assert run.latency.n == k["readings_stored"] + run.results["ledger"]["committing_at_end"]
    at = {p: int(np.argmin(np.abs(QUANTILE_LEVELS - p / 100))) for p in (50, 95, 99)}
    for p, i in at.items():
        assert run.latency.quantiles_s[i] == pytest.approx(k["latency_s"][f"p{p}"], rel=1e-8)
    for hop, dist in run.hop_latency.items():
        stats = k["hop_latency_s"][hop]
        assert dist.n == stats["n"]
        if dist.n:
            assert dist.quantiles_s[at[99]] == pytest.approx(stats["p99"], rel=1e-8, abs=1e-12)
            assert dist.quantiles_s[-1] == pytest.approx(stats["max"], rel=1e-8)
            assert np.all(np.diff(dist.quantiles_s) >= 0)


def _stretched(source: Path, out: Path, times: int) -> int:
    """A copy of ``source`` whose time series is ``times`` as long (the rows repeated, as a
    longer run would give); returns the size of its rebuilt report minus plotly.js."""
    shutil.copytree(source, out)
    run = load_run(source)
    assert run.timeseries is not None
    rows = np.tile(run.timeseries.rows, (times, 1))
    rows[:, 0] = np.arange(len(rows)) * 300.0
    header = ",".join(run.timeseries.columns)
    np.savetxt(out / TIMESERIES_NAME, rows, delimiter=",", header=header, comments="")
    return len(write_report(out).read_text("utf-8")) - len(get_plotlyjs())


def test_a_ten_times_longer_run_does_not_make_a_ten_times_larger_page(
    outage_run: Path, tmp_path: Path
) -> None:
    rows = len(load_run(outage_run).timeseries.rows)  # type: ignore[union-attr]
    assert rows * 10 > MAX_POINTS_PER_TRACE  # the 10x copy needs decimating
    short = _stretched(outage_run, tmp_path / "x10", 10)
    long = _stretched(outage_run, tmp_path / "x100", 100)
    assert long < 1.25 * short  # the same points; only the times have more digits
    # the peaks survive: the largest 5-min commit count is still on the page
    figure = _figures((tmp_path / "x100" / REPORT_NAME).read_text("utf-8"))["timeseries"]
    (stored,) = [t for t in figure["data"] if t["name"] == "readings_stored"]
    assert len(stored["y"]) <= MAX_POINTS_PER_TRACE
    run = load_run(outage_run)
    column = run.timeseries.rows[:, run.timeseries.columns.index("readings_stored")]  # type: ignore[union-attr]
    assert max(stored["y"]) == column.max() and min(stored["y"]) == column.min()


def test_decimation_keeps_each_buckets_extremes_in_time_order() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=10_000)
    y[1234], y[8765] = 50.0, -50.0
    y[4000:4100] = np.nan
    keep = decimate(y, 200)
    assert len(keep) <= 200 and np.all(np.diff(keep) > 0)
    assert {1234, 8765} <= set(keep.tolist())
    buckets = np.array_split(np.arange(10_000), 100)
    for b in buckets[:3]:
        assert b[np.argmax(y[b])] in keep and b[np.argmin(y[b])] in keep
    np.testing.assert_array_equal(decimate(y[:150], 200), np.arange(150))


def test_a_folder_without_latency_json_still_gets_a_page(outage_run: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(outage_run, tmp_path / "old")
    (copy / LATENCY_NAME).unlink()
    page = write_report(copy).read_text("utf-8")
    assert "no latency.json" in page
    assert "latency-e2e" not in _figures(page)


def _cells(page: str, table_id: str) -> list[list[str]]:
    """The body rows of one table of the page, cell texts unescaped."""
    table = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert table is not None, table_id
    return [
        [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    ]


def test_the_analytics_section_shows_the_scores_events_forecasts_and_recommendations(
    field_faults_run: Path,
) -> None:
    results = json.loads((field_faults_run / "results.json").read_text("utf-8"))
    page = (field_faults_run / REPORT_NAME).read_text("utf-8")
    scores = results["analytics"]
    # the totals, then the confusion matrix: one cell per (injected, detected) pair, the
    # fault counts of results.json, and every injected kind a row
    (totals,) = _cells(page, "analytics-totals")
    assert [int(totals[0]), int(totals[1]), int(totals[3]), int(totals[4])] == [
        scores["faults"],
        scores["found"],
        scores["detections"],
        scores["false_alarms"],
    ]
    shown = {
        (injected, detected): int(n)
        for injected, detected, n in re.findall(
            r'<td class="num" data-injected="([^"]+)" data-detected="([^"]+)">(\d+)</td>', page
        )
    }
    want = {(i, d): n for i, row in scores["confusion"].items() for d, n in row.items()}
    assert shown == want and sum(shown.values()) == scores["faults"] + scores["false_alarms"]
    # a degradation called soiling is shown found with the wrong kind, not as a false alarm
    assert shown.get(("degradation", "soiling")) == 1 and scores["false_alarms"] == 0
    kinds = _cells(page, "analytics-table")
    assert [k[0] for k in kinds] == [k["fault_kind"] for k in scores["kinds"]]
    for shown_kind, kind in zip(kinds, scores["kinds"], strict=True):
        delay_s = kind["delay_reported_s_median"]
        assert float(shown_kind[6]) == pytest.approx(delay_s / 3600, abs=0.005)
    # the storm's cut-outs, as events
    events = _cells(page, "events-table")
    assert len(events) == len(results["events"]) == scores["cutouts_recognised"] > 0
    assert {e[0] for e in events} == {"storm_cutout"}
    # the forecasts' skill per horizon step, in a table and a chart
    skill = _figures(page)["forecast-skill"]["data"]
    assert [t["name"] for t in skill] == list(results["forecasts"])
    pv = next(t for t in skill if t["name"] == "pv")
    assert pv["y"] == [e["skill"] for e in results["forecasts"]["pv"]["by_step"]]
    rows = {r[0]: r[1:] for r in _cells(page, "forecast-skill-table")}
    assert float(rows["pv"][0]) == pytest.approx(pv["y"][0], rel=1e-5)
    # the recommendations open at the end: what to do, where, the energy so far
    recommendations = _cells(page, "recommendations-table")
    assert [(r[0], r[1], r[2], r[3]) for r in recommendations] == [
        (x["urgency"], x["kind"], x["site_id"], x["action"]) for x in results["recommendations"]
    ]
    (station,) = _cells(page, "weather-feed-table")
    assert station[0] == "met-north" and int(station[1].replace(",", "")) > 0
