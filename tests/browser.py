"""Headless Chromium for the page tests: Debian's ``chromium`` (Ubuntu names it
``chromium-browser``), driven by Playwright, and the flags for a headless run on a CI machine
(no sandbox, GPU or background work)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Why a page test skips.
NO_CHROMIUM = "no chromium executable (Debian: apt-get install -y chromium; .ci/run installs it)"

#: Hosts a page under test may reach: loopback only.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@contextlib.contextmanager
def headless_chromium() -> Iterator[Any]:
    """Playwright's Chromium on :data:`CHROMIUM` with :data:`CHROMIUM_ARGS`; the test skips
    (:data:`NO_CHROMIUM`) where there is none."""
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_offline(
    browser: Any, path: Path, ready: str, viewport: dict[str, int] | None = None
) -> tuple[Any, list[str], list[str]]:
    """The page of the file at ``path`` once the selector ``ready`` is in it, with every
    request that is not a local file or loopback aborted; its console errors and the
    requests aborted."""
    page = browser.new_page(viewport=viewport or {"width": 1300, "height": 900})
    errors: list[str] = []
    aborted: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r: Any) -> None:
        url = urlparse(r.request.url)
        if url.scheme == "file" or url.hostname in LOOPBACK:
            r.continue_()
        else:
            aborted.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_selector(ready, timeout=60_000)
    return page, errors, aborted
