"""The MDC service over real sockets (a child process on a loopback port the OS picks):
uploads stored and deduplicated, every rejection a 4xx naming its reason, the size limit
before and while reading, metrics that move, the bounded API, the token, the refusal to
listen in the open without one."""

from __future__ import annotations

import contextlib
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from pipeline import seal
from pipeline.fetch.auth import MAX_HEADER_BYTES
from pipeline.fetch.limits import Limits
from pipeline.serve.wire import REJECTION_STATUS
from tests.espi_feeds import BILLION_LAUGHS, feed
from tests.serve_process import (
    T0,
    RunningService,
    energy_upload,
    running_service,
    sealed_upload,
    write_keyring,
)

KEYS = {"pv-1": bytes(range(32)), "pv-2": bytes(range(100, 132)), "pv-3": bytes(range(50, 82))}
#: Largest body the service reads: the document limit plus an envelope header line.
MAX_BODY = Limits().max_size_bytes + MAX_HEADER_BYTES + 1


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    folder = tmp_path_factory.mktemp("serve")
    keyring = write_keyring(folder / "keys.json", KEYS)
    with running_service(folder / "mdc.sqlite", keyring) as running:
        yield running


@pytest.fixture
def client(service: RunningService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=60.0) as opened:
        yield opened


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text `text` (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_an_upload_is_stored_once_and_answered_after_its_commit(client: httpx.Client) -> None:
    body = sealed_upload("pv-1", 1, KEYS["pv-1"])
    first = client.post("/v1/uploads", content=body)
    assert first.status_code == 200
    answer = first.json()
    assert answer["accepted"] and answer["committed"]
    assert (answer["readings"], answer["stored"], answer["duplicates"]) == (15, 15, 0)
    assert answer["committed_through"] >= answer["receipt"] > 0
    again = client.post("/v1/uploads", content=body).json()  # a retransmission
    assert (again["stored"], again["duplicates"]) == (0, 15)
    rows = client.get("/api/meters").json()["rows"]
    assert rows["pv-1"] >= 15
    starts = client.get(
        "/api/readings", params={"meter": "pv-1", "start": 1_782_000_900, "end": 1_782_001_740}
    ).json()["series"][0]["start_s"]
    assert starts == [1_782_000_900 + 60 * i for i in range(15)]


def test_other_values_for_stored_intervals_are_answered_as_conflicts_and_kept_aside(
    service: RunningService, client: httpx.Client
) -> None:
    key = KEYS["pv-3"]
    first = client.post("/v1/uploads", content=sealed_upload("pv-3", 80, key, first=1200))
    assert first.json()["stored"] == 15
    before = client.get("/metrics").text
    # upload 81 re-reports the same 15 intervals with other values (a meter's correction)
    other = seal("pv-3", 81, energy_upload("pv-3", 81, 1200, range(500, 515)), key)
    answer = client.post("/v1/uploads", content=other)
    assert answer.status_code == 200
    data = answer.json()
    assert data["accepted"] and data["committed"]
    assert (data["readings"], data["stored"], data["duplicates"], data["conflicts"]) == (
        15,
        0,
        0,
        15,
    )
    after = client.get("/metrics").text
    for name, labels, delta in [
        ("mdc_uploads_total", {"outcome": "conflicting"}, 1),
        ("mdc_readings_conflicting_total", {}, 15),
        ("mdc_readings_stored_total", {}, 0),
    ]:
        assert metric(after, name, **labels) - metric(before, name, **labels) == delta, name
    # the stored values are the first ones; the others are recorded with their upload
    db = service.log.with_suffix(".sqlite")
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT value, stored_value, sequence_no FROM revisions WHERE meter_id = 'pv-3' "
            "AND start_s >= ? AND start_s < ? ORDER BY start_s",
            (T0 + 60 * 1200, T0 + 60 * 1215),
        ).fetchall()
    assert rows == [(500 + i, 100 + i, 81) for i in range(15)]


def _rejections() -> list[tuple[str, bytes]]:
    key, other = KEYS["pv-1"], KEYS["pv-2"]
    good = energy_upload("pv-1", 40, 600, range(15))
    return [
        ("auth_bad_envelope", good),  # a plain document: the service holds a keyring
        ("auth_unknown_meter", seal("pv-9", 1, energy_upload("pv-9", 1, 0, range(15)), key)),
        ("auth_bad_signature", seal("pv-1", 40, good, other)),
        ("auth_bad_signature", seal("pv-1", 40, good, key).replace(b"<value>3<", b"<value>4<")),
        ("auth_mismatch", seal("pv-1", 41, good, key)),  # the document is upload 40
        ("malformed", seal("pv-1", 42, b"<feed><entry></feed>", key)),
        ("unsupported_encoding", seal("pv-1", 44, b"\xff\xfe<\x00f\x00", key)),
        ("no_reading_type", seal("pv-1", 45, feed(feed_id="urn:imdc:upload:pv-1:45"), key)),
        # the document inside the envelope over its limit (the envelope itself fits)
        ("too_large", seal("pv-1", 46, b"x" * (Limits().max_size_bytes + 1), key)),
        ("dtd_forbidden", seal("pv-1", 43, BILLION_LAUGHS, key)),
        ("auth_bad_envelope", b""),  # empty
        ("auth_bad_envelope", b"IMDC-HMAC1 pv-1 x zz\n<feed/>"),
    ]


@pytest.mark.parametrize(("code", "body"), _rejections())
def test_every_rejection_is_a_4xx_naming_its_reason(
    client: httpx.Client, code: str, body: bytes
) -> None:
    answer = client.post("/v1/uploads", content=body)
    assert 400 <= answer.status_code < 500
    assert answer.status_code == REJECTION_STATUS.get(code, 422)
    data = answer.json()
    assert not data["accepted"] and data["code"] == code and data["reason"].startswith(code)
    # the service goes on: the next good upload is stored
    assert client.post("/v1/uploads", content=sealed_upload("pv-2", 3, KEYS["pv-2"])).is_success


def test_a_replay_is_refused_with_409(client: httpx.Client) -> None:
    key = KEYS["pv-2"]
    assert client.post("/v1/uploads", content=sealed_upload("pv-2", 20, key)).status_code == 200
    forged = seal("pv-2", 20, energy_upload("pv-2", 20, 300, range(7, 22)), key)
    answer = client.post("/v1/uploads", content=forged)
    assert answer.status_code == 409 and answer.json()["code"] == "auth_replay"


def _raw_http(url: str, head: bytes, chunks: Iterator[bytes] | None = None) -> tuple[int, bytes]:
    """Send `head` then `chunks` on a socket (stopping when the server closes it), and
    read the answer: (status, body)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30.0) as sock:
        sock.sendall(head)
        for chunk in chunks or ():
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: stop sending
                break
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4:
            part = sock.recv(65536)
            if not part:
                break
            data += part
        head_end = data.index(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", data[:head_end].lower()).group(1))  # type: ignore[union-attr]
        body = data[head_end + 4 :]
        while len(body) < length:
            part = sock.recv(65536)
            if not part:
                break
            body += part
    return int(data.split(b" ", 2)[1]), body


def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    service: RunningService,
) -> None:
    head = (
        b"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    )
    status, body = _raw_http(service.url, head)  # no body sent at all
    assert status == 413 and b'"code":"too_large"' in body


def test_a_streamed_body_over_the_limit_is_refused_while_reading(
    service: RunningService,
) -> None:
    head = b"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    size = 256 * 1024
    n = MAX_BODY // size + 2  # just past the limit, then the terminating chunk

    def chunks() -> Iterator[bytes]:
        for _ in range(n):
            yield b"%x\r\n%s\r\n" % (size, b"x" * size)
        yield b"0\r\n\r\n"

    status, body = _raw_http(service.url, head, chunks())
    assert status == 413 and b'"code":"too_large"' in body


def test_metrics_move(client: httpx.Client) -> None:
    before = client.get("/metrics").text
    assert client.post("/v1/uploads", content=sealed_upload("pv-1", 60, KEYS["pv-1"])).is_success
    client.post("/v1/uploads", content=sealed_upload("pv-1", 60, KEYS["pv-1"]))  # duplicate
    client.post("/v1/uploads", content=seal("pv-1", 61, b"<feed>", KEYS["pv-1"]))  # malformed
    analysis = client.post("/v1/analyze")
    assert analysis.status_code == 200 and analysis.json()["analysed"]
    after = client.get("/metrics").text
    for name, labels, delta in [
        ("mdc_uploads_total", {"outcome": "stored"}, 1),
        ("mdc_uploads_total", {"outcome": "duplicate"}, 1),
        ("mdc_uploads_total", {"outcome": "rejected"}, 1),
        ("mdc_upload_rejections_total", {"reason": "malformed"}, 1),
        ("mdc_readings_stored_total", {}, 15),
        ("mdc_readings_duplicate_total", {}, 15),
        ("mdc_analysis_duration_seconds_count", {}, 1),
        ("mdc_http_request_duration_seconds_count", {"route": "/v1/uploads"}, 3),
    ]:
        assert metric(after, name, **labels) - metric(before, name, **labels) == delta, name
    assert metric(after, "mdc_ingest_queue_depth") == 0
    assert "mdc_alerts_raised_total" in after and "mdc_uncommitted_uploads 0.0" in after


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("/api/series", {"fleet": "all", "start": 0, "end": 40 * 86400}, "more than the 31 days"),
        ("/api/series", {"fleet": "all", "start": 0, "end": 86400, "step": 1}, "more than 5000"),
        ("/api/series", {"site": "pv-1", "fleet": "all"}, "give one of site"),
        ("/api/series", {"site": "pv-1", "start": "yesterday"}, "expected epoch seconds"),
        ("/api/alerts", {"limit": 10_000}, "limit=10000: expected 1..500"),
        ("/api/alerts", {"status": "new"}, "expected all, open or closed"),
        ("/api/sites", {"limit": "many"}, "expected an integer"),
        ("/api/readings", {"meter": "pv-1"}, "give start and end"),
        ("/api/forecasts", {"site": "pv-1", "limit": 100}, "expected 1..48"),
    ],
)
def test_queries_beyond_their_bounds_get_400_with_the_reason(
    client: httpx.Client, path: str, params: dict[str, object], reason: str
) -> None:
    answer = client.get(path, params=params)  # type: ignore[arg-type]
    assert answer.status_code == 400 and reason in answer.json()["reason"]


def test_the_dashboard_and_its_assets_are_served_locally(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/plotly.min.js"' in page.text
    assert "http" not in re.sub(r"<!--.*?-->", "", page.text).replace("http-equiv", "")
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and b"plotly" in plotly.content[:2000].lower()
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_with_a_token_everything_but_health_and_uploads_needs_it(tmp_path: Path) -> None:
    token = "t0ken-" + "7" * 26
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    with running_service(tmp_path / "mdc.sqlite", keyring, "--token", token) as running:
        with httpx.Client(base_url=running.url, timeout=30.0) as c:
            for path in ("/", "/api/sites", "/metrics", "/static/plotly.min.js"):
                refused = c.get(path)
                assert refused.status_code == 401, path
                assert refused.headers["www-authenticate"].startswith("Bearer")
            wrong = c.get("/api/sites", headers={"Authorization": "Bearer " + "x" * 32})
            assert wrong.status_code == 401
            assert c.post("/v1/analyze").status_code == 401
            ok = c.get("/api/sites", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
            assert c.get("/healthz").status_code == 200
            upload = sealed_upload("pv-1", 1, KEYS["pv-1"])
            assert c.post("/v1/uploads", content=upload).status_code == 200  # HMAC instead
            assert c.get("/", params={"token": "nope" * 8}).status_code == 401
        # the dashboard: ?token= once sets a cookie (not the token itself) for the rest
        with httpx.Client(base_url=running.url, timeout=30.0) as browser:
            login = browser.get("/", params={"token": token}, follow_redirects=False)
            assert login.status_code == 303
            assert token not in login.cookies["mdc_session"]
            assert browser.get("/api/sites").status_code == 200
            assert browser.get("/").status_code == 200


def _serve(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "serve", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "mdc.example"])
def test_a_non_loopback_address_without_a_token_refuses_to_start(tmp_path: Path, host: str) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    done = _serve("--db", str(tmp_path / "a.sqlite"), "--keyring", str(keyring), "--host", host)
    assert done.returncode == 2
    assert done.stdout == ""  # never listened
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--token" in lines[0] and host in lines[0]
    assert not (tmp_path / "a.sqlite").exists()


def test_bad_settings_get_one_line_and_exit_code_2(tmp_path: Path) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    not_a_db = tmp_path / "notes.sqlite"
    not_a_db.write_text("not a database")
    cases = [
        ("--db", str(tmp_path / "x.sqlite"), "--keyring", str(tmp_path / "none.json")),
        ("--db", str(not_a_db), "--keyring", str(keyring)),
        ("--db", str(tmp_path / "x.sqlite"), "--keyring", str(keyring), "--analyze-every", "1y"),
        ("--db", str(tmp_path / "x.sqlite"), "--keyring", str(keyring), "--workers", "2"),
    ]
    for args in cases:
        done = _serve(*args)
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
