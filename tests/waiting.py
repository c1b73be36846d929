"""Waiting in a test for a child process to reach a point (a file written, a pipe opened),
bounded by a count of polls so that a test never hangs; not a measure of speed (speed is
measured in ``bench/``).

Import from a test: ``from tests.waiting import wait_until``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

#: Pause between two polls, s.
POLL_S = 0.05
#: Most polls before giving up (a generous bound for a loaded 2-core machine).
MAX_POLLS = 6000


def wait_until(
    ready: Callable[[], Any], process: subprocess.Popen[Any], what: str
) -> Any:
    """Poll ``ready()`` until it returns something other than None or False, and return
    that; fail the test naming ``what`` if ``process`` ends first or after
    :data:`MAX_POLLS` polls."""
    for _ in range(MAX_POLLS):
        result = ready()
        if result is not None and result is not False:
            return result
        if process.poll() is not None:
            pytest.fail(f"{what}: the process ended first ({process.communicate()})")
        time.sleep(POLL_S)
    pytest.fail(f"{what}: not after {MAX_POLLS} polls")
