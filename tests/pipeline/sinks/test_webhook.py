"""The webhook alert sink against a real HTTP server on 127.0.0.1 (ephemeral port):
payloads, batching, token-bucket rate limiting (timed with a fake clock, so no wall-clock
assertions), queue-full drops, retries with backoff, Retry-After, timeouts and refused
connections; redirects never followed, only 2xx counted as sent, and a receiver trickling
its answer cut at the request's deadline (judged by the bytes it got out, not by a clock)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipeline.sinks.webhook import TokenBucket, WebhookSink, alert_record, webhook_payload
from pipeline.store.alerts import Detection

T0 = 1_782_000_000


def detection(i: int = 0, kind: str = "inverter_trip") -> Detection:
    return Detection(
        kind=kind,
        series_id=f"pv-{i}",
        start_s=T0 + 900 * i,
        end_s=T0 + 900 * i + 3600,
        detected_s=T0 + 900 * i + 1800,
        confidence=0.9,
        magnitude=1234.5,
        message=f"no output at site pv-{i}",
    )


def test_records_and_payload_are_plain_json() -> None:
    rec = alert_record(detection(2))
    assert rec["meter_id"] == "pv-2" and rec["start_utc"] == "2026-06-21T00:30:00Z"
    nan_detection = dataclasses.replace(detection(1), confidence=float("nan"))
    body = json.loads(webhook_payload([detection(), nan_detection], sent_at_s=T0))
    assert body["source"] == "imdc-pipeline" and body["sent_at"] == "2026-06-21T00:00:00Z"
    assert body["alerts"][1]["score"] is None and body["alerts"][1]["end_s"] == T0 + 900 + 3600


# --------------------------------------------------------------------------------------
# token bucket
# --------------------------------------------------------------------------------------


class FakeClock:
    """Monotonic time that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=2.0, capacity=3, clock=clock)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_s() == pytest.approx(0.5)
    clock.now = 0.5
    assert bucket.try_take() and not bucket.try_take()
    clock.now = 100.0
    assert bucket.tokens == 3.0  # never above the capacity
    with pytest.raises(ValueError):
        TokenBucket(0.0, 1)


# --------------------------------------------------------------------------------------
# webhook against a loopback server
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def on_loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server with `handler` on 127.0.0.1 (ephemeral port) while in the block: its
    ``/alerts`` URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records every request; answers with `statuses` in
    turn (then 200), sleeping `delays_s` in turn first."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)
    retry_after: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [a for b in self.bodies for a in b["alerts"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with rec.lock:
                delay = rec.delays_s.pop(0) if rec.delays_s else 0.0
                status = rec.statuses.pop(0) if rec.statuses else 200
                rec.bodies.append(json.loads(body))
                rec.headers.append(dict(self.headers))
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                if status == 429 and rec.retry_after is not None:
                    self.send_header("Retry-After", rec.retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

    with on_loopback(Handler) as url:
        rec.url = url
        yield rec


def test_alerts_are_posted_as_json_in_batches(receiver: Receiver) -> None:
    clock = FakeClock()
    sink = WebhookSink(
        receiver.url,
        max_batch=2,
        headers={"Authorization": "Bearer t0ken"},
        clock=clock,
        sleep=clock.sleep,
        autostart=False,
    )
    assert sink.submit([detection(i) for i in range(5)]) == 5
    sink.start()
    assert sink.flush(10)
    sink.close()
    assert [len(b["alerts"]) for b in receiver.bodies] == [2, 2, 1]
    assert [a["meter_id"] for a in receiver.alerts] == [f"pv-{i}" for i in range(5)]
    assert receiver.alerts[0] == json.loads(json.dumps(alert_record(detection(0))))
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert receiver.headers[0]["Authorization"] == "Bearer t0ken"
    stats = sink.stats
    assert (stats.submitted_alerts, stats.sent_alerts, stats.requests) == (5, 5, 3)
    assert (stats.failed_alerts, stats.dropped_alerts, stats.retries) == (0, 0, 0)


def test_requests_are_rate_limited_by_the_token_bucket(receiver: Receiver) -> None:
    clock = FakeClock()
    sink = WebhookSink(
        receiver.url,
        rate_per_s=2.0,
        burst=3,
        max_batch=1,
        clock=clock,
        sleep=clock.sleep,
        autostart=False,
    )
    sink.submit([detection(i) for i in range(7)])
    sink.start()
    assert sink.flush(10)
    sink.close()
    times = [t for t, _, _ in sink.request_log]
    # a burst of 3 at once, then one every 1/rate = 0.5 s (fake seconds)
    assert times == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0])
    assert len(receiver.bodies) == 7 and sink.stats.sent_alerts == 7


def test_a_full_queue_drops_new_alerts_and_counts_them(receiver: Receiver) -> None:
    sink = WebhookSink(receiver.url, max_queue=4, autostart=False)
    assert sink.submit([detection(i) for i in range(7)]) == 4
    assert sink.submit([detection(9)]) == 0
    stats = sink.stats
    assert (stats.submitted_alerts, stats.dropped_alerts, stats.queued_alerts) == (8, 4, 4)
    sink.start()
    assert sink.flush(10)
    sink.close()
    assert [a["meter_id"] for a in receiver.alerts] == ["pv-0", "pv-1", "pv-2", "pv-3"]


def test_server_errors_are_retried_with_exponential_backoff(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    clock = FakeClock()
    sink = WebhookSink(
        receiver.url, backoff_s=0.25, burst=10, clock=clock, sleep=clock.sleep, autostart=False
    )
    sink.submit([detection()])
    sink.start()
    assert sink.flush(10)
    sink.close()
    assert len(receiver.bodies) == 3 and receiver.bodies[0] == receiver.bodies[2]
    assert clock.sleeps == [0.25, 0.5]  # backoff doubles
    stats = sink.stats
    assert (stats.sent_alerts, stats.failed_alerts, stats.requests, stats.retries) == (1, 0, 3, 2)
    assert [s for _, _, s in sink.request_log] == [500, 503, 200]


def test_client_errors_are_final(receiver: Receiver) -> None:
    receiver.statuses = [400]
    clock = FakeClock()
    sink = WebhookSink(receiver.url, burst=10, clock=clock, sleep=clock.sleep, autostart=False)
    sink.submit([detection(0), detection(1)])  # one batch
    sink.start()
    assert sink.flush(10)
    sink.close()
    stats = sink.stats
    assert (stats.requests, stats.retries, stats.failed_alerts, stats.sent_alerts) == (1, 0, 2, 0)
    assert clock.sleeps == []


def test_retry_after_is_honoured_up_to_the_cap(receiver: Receiver) -> None:
    receiver.statuses = [429, 429]
    receiver.retry_after = "3"
    clock = FakeClock()
    sink = WebhookSink(
        receiver.url,
        backoff_s=0.1,
        max_backoff_s=2.0,
        burst=10,
        clock=clock,
        sleep=clock.sleep,
        autostart=False,
    )
    sink.submit([detection()])
    sink.start()
    assert sink.flush(10)
    sink.close()
    assert clock.sleeps == [2.0, 2.0]  # Retry-After 3 s, capped at max_backoff_s
    assert sink.stats.sent_alerts == 1


def test_a_slow_receiver_times_out_and_is_retried(receiver: Receiver) -> None:
    receiver.delays_s = [1.0]  # the first request hangs longer than the timeout
    clock = FakeClock()
    sink = WebhookSink(
        receiver.url,
        timeout_s=0.2,
        backoff_s=0.0,
        clock=clock,
        sleep=clock.sleep,
        autostart=False,
    )
    sink.submit([detection()])
    sink.start()
    assert sink.flush(10)
    sink.close()
    assert [s for _, _, s in sink.request_log] == [0, 200]  # 0: no response in time
    assert sink.stats.sent_alerts == 1 and sink.stats.retries == 1


def test_a_refused_connection_is_counted_as_failed() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = FakeClock()
    sink = WebhookSink(
        f"http://127.0.0.1:{port}/",
        max_retries=2,
        backoff_s=0.1,
        burst=10,
        clock=clock,
        sleep=clock.sleep,
        autostart=False,
    )
    assert sink.submit([detection(i) for i in range(3)]) == 3
    sink.start()
    assert sink.flush(10)
    sink.close()
    stats = sink.stats
    assert (stats.failed_alerts, stats.sent_alerts, stats.requests) == (3, 0, 3)
    assert clock.sleeps == pytest.approx([0.1, 0.2])


def test_submit_does_not_wait_for_the_network_and_close_drops_the_rest() -> None:
    """With the worker stuck on a receiver that never answers, submit still returns at
    once (it only queues) and close gives up after its timeout, counting the rest."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections, never answers
    try:
        sink = WebhookSink(
            f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout_s=5.0, max_batch=1
        )
        accepted = sum(sink.submit([detection(i)]) for i in range(100))
        assert accepted == 100
        sink.close(timeout_s=0.2)
        stats = sink.stats
        assert stats.sent_alerts == 0
        assert stats.dropped_alerts >= 99 and stats.queued_alerts == 0
    finally:
        listener.close()


def test_only_http_urls_are_accepted() -> None:
    for url in ("file:///etc/passwd", "ftp://example.org/", "127.0.0.1:80", "http:///x"):
        with pytest.raises(ValueError, match="http"):
            WebhookSink(url, autostart=False)


# --------------------------------------------------------------------------------------
# redirects, failures and the request's deadline
# --------------------------------------------------------------------------------------


@dataclass
class Server:
    """A loopback HTTP server that records every request (method, path, headers), whatever
    the method, and answers each with `status` and `location`."""

    status: int = 200
    location: str | None = None
    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@contextlib.contextmanager
def serving(server: Server) -> Iterator[Server]:
    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            server.requests.append((self.command, self.path, dict(self.headers)))
            self.send_response(server.status)
            if server.location is not None:
                self.send_header("Location", server.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_HEAD = answer  # noqa: N815 (http.server's naming)

        def log_message(self, *args: object) -> None:
            pass

    with on_loopback(Handler) as url:
        server.url = url
        yield server


def send_once(url: str, n_alerts: int, **options: Any) -> WebhookSink:
    """A sink that sent `n_alerts` in one request (with its retries) to `url`, closed."""
    clock = FakeClock()
    sink = WebhookSink(
        url,
        max_batch=n_alerts,
        burst=10,
        clock=clock,
        sleep=clock.sleep,
        autostart=False,
        **options,
    )
    sink.submit([detection(i) for i in range(n_alerts)])
    sink.start()
    assert sink.flush(30)
    sink.close()
    return sink


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_is_not_followed(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A redirect to another port: nothing reaches it (no payload, no Authorization), the
    alerts count as failed, not sent, without retries, and the Location is logged."""
    with (
        serving(Server()) as elsewhere,
        serving(Server(status=status, location=elsewhere.url + "?stolen")) as receiver,
        caplog.at_level(logging.WARNING, logger="pipeline.sinks.webhook"),
    ):
        sink = send_once(receiver.url, 2, headers={"Authorization": "Bearer t0ken"}, max_retries=3)
    assert elsewhere.requests == []
    [(method, _, headers)] = receiver.requests
    assert method == "POST" and headers["Authorization"] == "Bearer t0ken"
    stats = sink.stats
    assert (stats.sent_alerts, stats.failed_alerts, stats.requests) == (0, 2, 1)
    assert [s for _, _, s in sink.request_log] == [status]
    assert elsewhere.url + "?stolen" in caplog.text and "not followed" in caplog.text


def test_a_server_error_is_not_counted_as_sent() -> None:
    with serving(Server(status=500)) as receiver:
        sink = send_once(receiver.url, 3, max_retries=0)
    assert len(receiver.requests) == 1
    assert (sink.stats.sent_alerts, sink.stats.failed_alerts) == (0, 3)


@dataclass
class Trickler:
    """A raw loopback server that reads one request and answers `answer` one byte every
    `every_s`, counting the bytes it got out before the client left (`sent`)."""

    answer: bytes
    every_s: float
    port: int = 0
    sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def serve(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            for byte in self.answer:
                try:
                    conn.sendall(bytes([byte]))
                except OSError:  # the client left
                    break
                self.sent += 1
                time.sleep(self.every_s)
        self.done.set()


def test_a_trickling_receiver_is_cut_at_the_request_deadline() -> None:
    """Each header byte arrives well within any per-read timeout (one every 0.5 s), but the
    whole answer would take over a minute: the request gives up at its deadline
    (timeout_s), counted as failed, with the receiver a few bytes into its answer."""
    answer = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"x" * 100 + b"\r\nContent-Length: 0\r\n\r\n"
    trickler = Trickler(answer, every_s=0.5)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        thread = threading.Thread(target=trickler.serve, args=(listener,), daemon=True)
        thread.start()
        sink = WebhookSink(
            f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout_s=1.0, max_retries=0
        )
        sink.submit([detection()])
        assert sink.flush(30), "the request was not cut at its deadline"
        sink.close()
        assert trickler.done.wait(30)
    assert (sink.stats.sent_alerts, sink.stats.failed_alerts) == (0, 1)
    assert [s for _, _, s in sink.request_log] == [0]
    # at the deadline the receiver had sent about timeout_s / every_s bytes; 40 (20 s of
    # trickling) leaves room for a loaded machine, and the whole answer is 145 bytes
    assert trickler.sent < 40 < len(answer)
