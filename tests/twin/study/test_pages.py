"""sweep.html and size.html in headless Chromium: they open offline (plotly.js inlined, every
non-loopback request blocked), draw their charts without a console error, and the sweep's
selector redraws any KPI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from twin.study.files import write_sizing, write_sweep
from twin.study.kpi_names import HEADLINE_KPIS
from twin.study.pages import pareto_frontier
from twin.study.points import Axis, Point
from twin.study.sizing import SizingResult
from twin.study.sweep import PointResult, SweepResult

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def test_pareto_frontier_keeps_what_nothing_beats_on_cost_and_latency() -> None:
    points = [("a", 10.0, 50.0), ("b", 12.0, 40.0), ("c", 13.0, 45.0), ("d", 9.0, 80.0),
              ("e", 20.0, 10.0), ("f", 5.0, float("nan"))]  # fmt: skip
    assert pareto_frontier(points) == ["d", "a", "b", "e"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium executable at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    """The page at ``path``, its console errors and the requests it tried to make outside."""
    page = browser.new_page()
    errors: list[str] = []
    blocked: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r: Any) -> None:
        url = urlparse(r.request.url)
        if url.scheme == "file" or url.hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
    return page, errors, blocked


def _as_counts(result: SweepResult) -> SweepResult:
    """The same runs relabelled as points of a numeric axis (fleet.pv.count = 6, 12)."""
    axis = Axis("fleet.pv.count", ("6", "12"))
    points = [
        PointResult(Point(p.point.id, ((axis.key, v),), p.point.scenario), p.runs, p.estimates)
        for p, v in zip(result.points, axis.values, strict=True)
    ]
    return replace(result, spec=replace(result.spec, axes=(axis,)), points=points)


def test_sweep_page_draws_every_headline_kpi_and_any_other(
    browser: Any, serial_sweep: SweepResult, tmp_path: Path
) -> None:
    write_sweep(serial_sweep, tmp_path)
    page, errors, blocked = _open(browser, tmp_path / "sweep.html")
    shown = [k for k in HEADLINE_KPIS if k in serial_sweep.points[0].estimates]
    assert page.locator(".js-plotly-plot").count() == len(shown) + 1
    title = "document.querySelector('#kpi-0 .gtitle').textContent"
    assert page.evaluate(title) == shown[0]
    # SKUs are categories: the means with asymmetric error bars to the CI bounds
    trace = page.evaluate("document.getElementById('kpi-0').data[0]")
    estimates = [p.estimates[shown[0]] for p in serial_sweep.points]
    assert trace["x"] == ["edge-1u-4c", "edge-1u-8c"]
    assert trace["y"] == [e.mean for e in estimates]
    assert trace["error_y"]["array"] == pytest.approx([e.ci_high - e.mean for e in estimates])
    page.select_option("#any-kpi", "uploads_started")
    assert page.evaluate("document.querySelector('#kpi-any .gtitle').textContent") == (
        "uploads_started"
    )
    assert errors == [] and blocked == []


def test_a_numeric_axis_gets_a_confidence_band(
    browser: Any, serial_sweep: SweepResult, tmp_path: Path
) -> None:
    write_sweep(_as_counts(serial_sweep), tmp_path)
    page, errors, blocked = _open(browser, tmp_path / "sweep.html")
    upper, lower, mean = page.evaluate("document.getElementById('kpi-0').data")
    estimates = [p.estimates[HEADLINE_KPIS[0]] for p in serial_sweep.points]
    assert mean["x"] == [6, 12] and lower["fill"] == "tonexty"
    assert upper["y"] == [e.ci_high for e in estimates]
    assert lower["y"] == [e.ci_low for e in estimates]
    assert errors == [] and blocked == []


def test_size_page_marks_the_frontier_and_the_answer(
    browser: Any, cheapest_sizing: SizingResult, tmp_path: Path
) -> None:
    write_sizing(cheapest_sizing, tmp_path)
    page, errors, blocked = _open(browser, tmp_path / "size.html")
    names = page.evaluate("document.getElementById('cost-latency').data.map(t => t.name)")
    assert names == ["meets", "Pareto frontier", "answer"]
    frontier_x = page.evaluate("document.getElementById('cost-latency').data[1].x")
    answer = cheapest_sizing.answer
    assert answer is not None and frontier_x[0] == pytest.approx(answer.cost.total_usd)
    assert page.locator("tbody tr").count() == len(cheapest_sizing.candidates)
    assert errors == [] and blocked == []
