"""report.html and compare.html in a real headless Chromium (Debian's ``chromium``, driven
by Playwright), with every request that is not a local file or loopback aborted: no
console error, every chart drawn, the KPIs shown are those of results.json, the fault's
window is on the time axis; a screenshot of each page is saved in the test's tmp dir."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM, NO_CHROMIUM, headless_chromium, open_offline
from twin.accounting.kpi_names import kpi_values
from twin.cli import main

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)

#: What each plot div holds once Plotly has drawn it: its traces (lines, bars, Sankey).
_DRAWN = """() => Array.from(document.querySelectorAll('div.plot')).map(d => ({
  id: d.id,
  svg: d.querySelectorAll('svg.main-svg *').length,
  traces: d.querySelectorAll('g.trace, g.sankey, canvas').length,
}))"""


class Browser:
    """One page at a time in headless Chromium, offline."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser

    def open(self, path: Path) -> tuple[Any, list[str], list[str]]:
        """The page loaded and drawn; the console errors and the requests it tried that
        were aborted (anything but a local file or loopback)."""
        return open_offline(self.browser, path, "body[data-plotted]")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with headless_chromium() as browser:
        yield Browser(browser)


def _assert_drawn(page: Any) -> list[str]:
    plots = page.evaluate(_DRAWN)
    assert plots and int(page.evaluate("document.body.dataset.plotted")) == len(plots)
    for plot in plots:
        assert plot["svg"] > 0 and plot["traces"] > 0, plot
    return [p["id"] for p in plots]


def _shown(text: str) -> float:
    return float(text.replace(",", ""))


def test_report_in_a_browser(outage_run: Path, chromium: Browser, tmp_path: Path) -> None:
    page, errors, aborted = chromium.open(outage_run / "report.html")
    assert errors == [] and aborted == []
    ids = _assert_drawn(page)
    assert {"ledger-flow", "latency-e2e", "latency-hops", "timeseries"} <= set(ids)

    results = json.loads((outage_run / "results.json").read_text("utf-8"))
    kpis = kpi_values(results)
    page.locator("summary", has_text="Every KPI").click()  # the full table unfolds
    cells = page.eval_on_selector_all(
        "td[data-kpi]", "cs => cs.map(c => [c.dataset.kpi, c.dataset.value, c.innerText])"
    )
    assert {name for name, _, _ in cells} == set(kpis)
    for name, value, text in cells:
        assert float(value) == kpis[name]
        assert _shown(text) == pytest.approx(kpis[name], rel=5e-6), name
    verdict = page.inner_text("td[data-slo='latency_s.p99']")
    assert verdict == "MISSED" and results["kpis"]["latency_s"]["p99"] > 1800

    # the outage (10 h to 12 h) is shaded on the time axis, its label drawn above it
    shapes = page.evaluate("document.getElementById('timeseries').layout.shapes")
    assert [(s["x0"], s["x1"]) for s in shapes] == [(10, 12)]
    assert page.locator("#timeseries .shapelayer path").count() >= 1
    labels = page.locator("#timeseries .annotation-text").all_text_contents()
    assert "cell_outage north cell 0" in labels

    # interactive: a click on a legend entry hides its curve (after Plotly's double-click
    # window)
    page.locator("#latency-hops .legendtoggle").first.click()
    page.wait_for_function(
        "document.getElementById('latency-hops').data[0].visible === 'legendonly'"
    )
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()


def test_report_analytics_in_a_browser(
    field_faults_run: Path, chromium: Browser, tmp_path: Path
) -> None:
    page, errors, aborted = chromium.open(field_faults_run / "report.html")
    assert errors == [] and aborted == []
    assert "forecast-skill" in _assert_drawn(page)
    results = json.loads((field_faults_run / "results.json").read_text("utf-8"))
    # the skill bars drawn are the realised skill per horizon step of each kind of site
    drawn = page.evaluate("document.getElementById('forecast-skill').data.map(t => [t.name, t.y])")
    assert drawn == [
        [kind, [e["skill"] for e in f["by_step"]]] for kind, f in results["forecasts"].items()
    ]
    # the confusion matrix as shown: its non-empty cells are results.json's counts
    cells = page.eval_on_selector_all(
        "#confusion-table td[data-injected]",
        "cs => cs.filter(c => c.innerText).map("
        "c => [c.dataset.injected, c.dataset.detected, Number(c.innerText)])",
    )
    confusion = results["analytics"]["confusion"]
    assert sorted(map(tuple, cells)) == sorted(
        (i, d, n) for i, row in confusion.items() for d, n in row.items()
    )
    assert page.locator("#confusion-table").is_visible()
    urgencies = page.eval_on_selector_all(
        "#recommendations-table td[data-urgency]", "cs => cs.map(c => c.innerText)"
    )
    assert urgencies == [r["urgency"] for r in results["recommendations"]]
    page.locator("#analytics").scroll_into_view_if_needed()
    shot = tmp_path / "report-analytics.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()


def test_compare_in_a_browser(
    outage_run: Path, longer_outage_run: Path, chromium: Browser, tmp_path: Path
) -> None:
    html = tmp_path / "compare.html"
    code = main(
        [
            "compare",
            str(outage_run),
            str(longer_outage_run),
            "--html",
            str(html),
            "--fail-on",
            "latency_s.p99>+10%",
        ]
    )
    assert code == 1  # an hour more outage: p99 up by far more than 10 %
    page, errors, aborted = chromium.open(html)
    assert errors == [] and aborted == []
    assert {"latency-e2e", "latency-hops", "timeseries"} <= set(_assert_drawn(page))
    a, b = (
        kpi_values(json.loads((p / "results.json").read_text("utf-8")))
        for p in (outage_run, longer_outage_run)
    )
    rows = page.eval_on_selector_all(
        "#kpi-table tbody tr", "rs => rs.map(r => Array.from(r.cells).map(c => c.innerText))"
    )
    shown = {row[0]: row for row in rows}
    assert set(shown) == set(a) | set(b)
    for name in ("latency_s.p99", "readings_stored", "uploads_started"):
        assert _shown(shown[name][1]) == pytest.approx(a[name], rel=5e-6)
        assert _shown(shown[name][2]) == pytest.approx(b[name], rel=5e-6)
    assert "BROKEN" in page.inner_text("td[data-gate='latency_s.p99>+10%']")
    labels = page.locator("#timeseries .annotation-text").all_text_contents()
    assert "outage3h: cell_outage north cell 0" in labels
    shot = tmp_path / "compare.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()
