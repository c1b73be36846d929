"""The operators' dashboard in headless Chromium, on a service the twin drove live (a PV
fleet whose site pv-00004 had an inverter trip): it loads with no console error and no
request off this machine, its charts draw the store's data and the issued forecasts, the
trip's alert is listed with its recommendation, a click selects a site, the period can be
changed, and a screenshot is taken (copied to the path in ``IMDC_DASHBOARD_SCREENSHOT``
when set, as for the README's ``docs/dashboard.png``)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM
from tests.serve_process import RunningService, running_service
from twin.runner import STORE_NAME, site_records, upload_keys
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import load_scenario
from twin.sil.live import LiveOptions
from twin.sil.live_run import run_live, write_keyring, write_sites
from twin.world.fleet import build_fleets

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"
#: Longest wait for the page to fill, ms.
PAGE_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A service the twin drove live through 62 hours of six PV sites (two days of history,
    then hourly forecasts), pv-00004's inverter tripped on the second afternoon."""
    folder = tmp_path_factory.mktemp("dashboard")
    scenario = load_scenario(
        BASELINE, ['scenario.duration="62h"', "fleet.wind.count=0", "fleet.pv.count=6"]
    )
    trip = FaultSpec(
        kind="inverter_trip", at_s=37 * 3600.0, duration_s=3 * 3600.0, meter="pv-00004"
    )
    scenario = dataclasses.replace(scenario, faults=(trip,))
    fleets = build_fleets(scenario)
    keyring, sites = folder / "keyring.json", folder / "sites.json"
    write_keyring(keyring, upload_keys(scenario, fleets))
    write_sites(sites, site_records(fleets))
    with running_service(folder / STORE_NAME, keyring, "--sites", str(sites)) as running:
        results, _ = run_live(scenario, LiveOptions(running.url, concurrency=8))
        trips = [d.series_id for d in results.detections if d.kind == "inverter_trip"]
        assert trips == ["pv-00004"] and results.forecasts["pv"].issued > 0
        # the met station's uploads went to the service too, and its analysis used them
        (feed,) = results.weather_feed
        assert feed.uploads_acknowledged > 0 and feed.values_stored > 0
        assert feed.uploads_rejected == 0
        yield running


def test_the_dashboard_shows_the_stores_data_and_the_trip(
    service: RunningService, tmp_path: Path
) -> None:
    from playwright.sync_api import Route, sync_playwright

    fleet = httpx.get(f"{service.url}/api/series", params={"fleet": "all"}, timeout=60).json()
    errors: list[str] = []
    external: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1250})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", only_loopback)
            page.goto(f"{service.url}/", wait_until="load", timeout=PAGE_TIMEOUT_MS)
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('updated')",
                timeout=PAGE_TIMEOUT_MS,
            )
            # the fleet chart holds the API's series, drawn
            drawn = page.evaluate(
                "document.getElementById('fleet-chart').data.map("
                "t => t.y.reduce((a, v) => a + (v === null ? 0 : v), 0))"
            )
            expected_kw = sum(v for v in fleet["generation_w"] if v is not None) / 1000
            assert expected_kw > 0 and drawn[0] == pytest.approx(expected_kw)
            assert page.locator("#fleet-chart .main-svg .scatterlayer .trace").count() == 2
            assert page.locator("#sites tbody tr").count() == 6
            # the trip's alert, open, with its recommendation; its site in state "alert"
            row = page.locator('#alerts tbody tr[data-kind="inverter_trip"][data-site="pv-00004"]')
            assert row.count() == 1
            assert "inspect and reset the inverter" in row.inner_text()
            assert row.locator(".status-open").count() == 1
            assert page.locator('#sites tr[data-site="pv-00004"] .state-alert').count() == 1
            # the selected site's issued forecasts beside the energy that came in
            forecast = page.evaluate(
                "document.getElementById('forecast-chart').data.map("
                "t => t.y.filter(v => v !== null).length)"
            )
            assert len(forecast) == 3 and forecast[0] > 6 and forecast[1] > 6
            # and set against what was metered (the forecasts of the hours that came in)
            note = page.inner_text("#forecast-note")
            assert re.match(r"\d+ forecasts against what was metered: MAE [\d.]+ kWh", note)
            # a click on the alert selects its site
            row.click()
            page.wait_for_function(
                "document.getElementById('site-name').textContent === 'pv-00004'",
                timeout=PAGE_TIMEOUT_MS,
            )
            page.select_option("#period", "259200")  # three days: the trip in view
            page.wait_for_function(
                "(x => x[x.length - 1] - x[0] > 2 * 86400e3)"
                "(document.getElementById('fleet-chart').data[0].x)",
                timeout=PAGE_TIMEOUT_MS,
            )
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == [] and external == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    copy_to = os.environ.get("IMDC_DASHBOARD_SCREENSHOT")
    if copy_to:
        shutil.copyfile(shot, copy_to)
