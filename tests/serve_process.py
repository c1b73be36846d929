"""The MDC service as a child process for tests, on a loopback port the OS picks, always
killed at the end; and sealed uploads to send it.

Import from a test: ``from tests.serve_process import running_service, sealed_upload``.
"""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from pipeline import seal
from tests.espi_feeds import Channel, meter_upload

__all__ = [
    "START_TIMEOUT_S",
    "T0",
    "RunningService",
    "energy_upload",
    "running_service",
    "sealed_upload",
    "write_keyring",
]

#: Longest wait for a service to print its address and answer /healthz, s.
START_TIMEOUT_S = 120.0
#: First interval start of the test uploads, epoch s (2026-06-21T00:00:00Z).
T0 = 1_782_000_000
_FIELDS = {"flowDirection": 19, "intervalLength": 60, "powerOfTenMultiplier": 0, "uom": 72}


@dataclass
class RunningService:
    """A started service: its base URL, its process and where its stderr goes."""

    url: str
    process: subprocess.Popen[str]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def write_keyring(path: Path, keys: dict[str, bytes]) -> Path:
    path.write_text(json.dumps({"keys": {m: k.hex() for m, k in keys.items()}}), "utf-8")
    return path


def energy_upload(meter_id: str, seq: int, first: int, values: Sequence[int]) -> bytes:
    """A generation meter's upload (1-minute Wh readings from interval `first` on)."""
    starts = [T0 + 60 * (first + i) for i in range(len(values))]
    return meter_upload(meter_id, seq, starts, [Channel(_FIELDS, [int(v) for v in values])])


def sealed_upload(
    meter_id: str, seq: int, key: bytes, first: int | None = None, n: int = 15
) -> bytes:
    """Upload `seq` of a meter, sealed with `key`: readings [first, first + n) (default
    first = seq * n), values 100, 101, ..."""
    first = seq * n if first is None else first
    return seal(meter_id, seq, energy_upload(meter_id, seq, first, range(100, 100 + n)), key)


def _first_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            return process.stdout.readline()
    raise AssertionError("the service did not print its address in time")


@contextlib.contextmanager
def running_service(
    db: Path, keyring: Path, *args: str, log: Path | None = None
) -> Iterator[RunningService]:
    """``python -m pipeline serve --db DB --keyring KEYRING --port 0 --analyze-every off
    ARGS...``, started and answering /healthz; killed (SIGKILL) when the block ends if it
    still runs."""
    log = log or db.with_suffix(".log")
    cmd = [sys.executable, "-m", "pipeline", "serve", "--db", str(db), "--keyring", str(keyring)]
    cmd += ["--port", "0", "--analyze-every", "off", *args]
    with log.open("a", encoding="utf-8") as err:
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        line = _first_line(process, deadline)
        assert line.startswith("MDC service listening on http://127.0.0.1:"), line
        url = line.split()[4]
        for _ in range(int(START_TIMEOUT_S / 0.05)):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=5.0).status_code == 200:
                    break
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        else:
            raise AssertionError("the service did not answer /healthz in time")
        yield RunningService(url, process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
