"""A graceful stop in the middle of ingest (SIGTERM while meters send): every upload the
service acknowledged is committed, nothing is half-written, and it exits with 0; the
dashboard's read-only connections answer while the writer writes."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.serve_process import running_service, sealed_upload, write_keyring

METERS = {f"m-{i}": bytes([i + 1]) * 32 for i in range(6)}
#: Uploads each sending thread makes at most.
MAX_UPLOADS = 300


def _sender(
    url: str, meter: str, acknowledged: list[tuple[str, int]], stop: threading.Event
) -> None:
    with httpx.Client(base_url=url, timeout=60.0) as client:
        for seq in range(MAX_UPLOADS):
            if stop.is_set():
                return
            try:
                answer = client.post(
                    "/v1/uploads", content=sealed_upload(meter, seq, METERS[meter])
                )
            except httpx.HTTPError:  # the service stopped listening
                return
            assert answer.status_code in (200, 503), answer.text  # never a 500
            if answer.status_code != 200:
                return
            acknowledged.append((meter, seq))


def _stored_uploads(db: Path) -> dict[str, list[int]]:
    """Per meter, the rows of each upload (by its first interval) found in the store."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute(
            "SELECT meter_id, (start_s - 1782000000) / 900, count(*) FROM readings "
            "GROUP BY meter_id, (start_s - 1782000000) / 900"
        ).fetchall()
    found: dict[str, list[int]] = {}
    for meter, seq, n in rows:
        assert n == 15, f"{meter} upload {seq}: {n} of its 15 readings stored"
        found.setdefault(meter, []).append(int(seq))
    return found


@pytest.mark.parametrize("ack", ["commit", "receipt"])
def test_sigterm_mid_ingest_commits_every_acknowledged_upload(tmp_path: Path, ack: str) -> None:
    db = tmp_path / "mdc.sqlite"
    keyring = write_keyring(tmp_path / "keys.json", METERS)
    acknowledged: list[tuple[str, int]] = []
    stop = threading.Event()
    # receipt acks with a long commit wait: what was acknowledged is in the open
    # transaction when the signal comes, so only the shutdown's commit keeps it
    extra = ["--ack", ack, "--commit-wait", "60s"]
    with running_service(db, keyring, *extra) as service:
        threads = [
            threading.Thread(target=_sender, args=(service.url, m, acknowledged, stop))
            for m in METERS
        ]
        for thread in threads:
            thread.start()
        try:
            for _ in range(600):  # at most 60 s for the first uploads to be acknowledged
                if len(acknowledged) >= 60:
                    break
                time.sleep(0.1)
            assert len(acknowledged) >= 60
            service.process.send_signal(signal.SIGTERM)
            code = service.process.wait(60)
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        assert code == 0, service.log_text()
    stored = _stored_uploads(db)
    for meter, seq in acknowledged:
        assert seq in stored.get(meter, []), f"{meter} upload {seq} acknowledged, not stored"
    assert sum(map(len, stored.values())) >= len(acknowledged)


def test_the_read_only_api_answers_while_ingest_writes(tmp_path: Path) -> None:
    db = tmp_path / "mdc.sqlite"
    keyring = write_keyring(tmp_path / "keys.json", METERS)
    acknowledged: list[tuple[str, int]] = []
    stop = threading.Event()
    with running_service(db, keyring) as service:
        writer = threading.Thread(target=_sender, args=(service.url, "m-0", acknowledged, stop))
        writer.start()
        seen = []
        try:
            with httpx.Client(base_url=service.url, timeout=60.0) as client:
                for _ in range(200):  # bounded: until the writer is done or 200 reads
                    if not writer.is_alive():
                        break
                    sites = client.get("/api/sites")
                    assert sites.status_code == 200
                    series = client.get("/api/series", params={"site": "m-0"})
                    assert series.status_code == 200
                    seen.append(sites.json()["now_s"])
        finally:
            stop.set()
            writer.join(60)
        # the readers saw the data clock move on while the writer committed
        moving = [t for t in seen if t is not None]
        assert len(set(moving)) > 1 and moving == sorted(moving)
