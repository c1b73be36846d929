"""Headless Chromium for the page tests: Debian's ``chromium`` (Ubuntu names it
``chromium-browser``), driven by Playwright, and the flags for a headless run on a CI machine
(no sandbox, GPU or background work)."""

from __future__ import annotations

import shutil

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
