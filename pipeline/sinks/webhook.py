"""Alert sinks: where new detections go besides the store. `AlertSink` is what the service
hands them to; `WebhookSink` is a rate-limited JSON webhook.

**Webhook.** `WebhookSink` POSTs detections as JSON (`webhook_payload`, one `alert_record`
per detection) to one http(s) URL from a background thread, so the pipeline never waits on
the network: `WebhookSink.submit` only appends to a bounded queue (O(1), under a lock) and
returns.

- Rate limit: a token bucket (`TokenBucket`; capacity ``burst`` requests, refilled at
  ``rate_per_s``); every request, retries included, takes a token. Alerts wait in the queue
  for their token, up to ``max_batch`` alerts per request.
- Queue full (``max_queue`` alerts waiting): newly submitted alerts are *dropped* and
  counted (`WebhookStats.dropped_alerts`); the pipeline is never slowed by a slow receiver.
- Sent means accepted: only an HTTP 2xx answer counts the request's alerts as sent
  (`WebhookStats.sent_alerts`).
- Redirects are never followed (DESIGN §9): a 3xx answer is a final failure, logged with
  its ``Location``; the payload and the headers (an ``Authorization`` token included) go to
  the configured URL only.
- Each request is bounded as a whole by ``timeout_s`` (`pipeline.sinks.endpoint`):
  connecting, sending and reading the answer; a receiver trickling its answer byte by byte
  cannot hold the worker longer. Connection errors,
  timeouts, HTTP 5xx and 429 are retried up to ``max_retries`` times with exponential
  backoff (``backoff_s``, doubling, at most ``max_backoff_s``; a 429's ``Retry-After``
  seconds are honoured up to that cap); other answers are final. Alerts of a request that
  finally failed are counted in `WebhookStats.failed_alerts`.
- The receiver is reached directly: no proxy (environment proxy variables are ignored).

Only the standard library (and the pipeline's own modules) are imported here (DESIGN §2).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pipeline.sinks.endpoint import Endpoint
from pipeline.store.alerts import Detection

__all__ = [
    "AlertSink",
    "TokenBucket",
    "WebhookSink",
    "WebhookStats",
    "alert_record",
    "webhook_payload",
]


_log = logging.getLogger(__name__)


class AlertSink(Protocol):
    """Where new detections go besides the store, e.g. `WebhookSink`: ``submit`` must not
    block on the network; it returns how many detections it accepted."""

    def submit(self, alerts: Iterable[Detection]) -> int: ...


def _iso(t_s: int | None) -> str | None:
    if t_s is None:
        return None
    return datetime.fromtimestamp(int(t_s), tz=UTC).isoformat().replace("+00:00", "Z")


def _finite(x: float) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def alert_record(alert: Detection) -> dict[str, Any]:
    """One detection as a flat JSON-ready dict (the webhook's per-alert object): ``meter_id,
    kind, start_s, start_utc, end_s, end_utc, detected_s, score, value, message`` (score and
    value are the detection's confidence and magnitude, None when not finite)."""
    return {
        "meter_id": alert.series_id,
        "kind": alert.kind,
        "start_s": int(alert.start_s),
        "start_utc": _iso(alert.start_s),
        "end_s": int(alert.end_s),
        "end_utc": _iso(alert.end_s),
        "detected_s": int(alert.detected_s),
        "score": _finite(alert.confidence),
        "value": _finite(alert.magnitude),
        "message": alert.message,
    }


# --------------------------------------------------------------------------------------
# webhook
# --------------------------------------------------------------------------------------


class TokenBucket:
    """Token bucket rate limiter: at most `capacity` tokens, refilled at `rate_per_s`
    (the classic traffic-shaping algorithm, e.g. A. S. Tanenbaum, *Computer Networks*,
    §5.4). Not thread-safe by itself: `WebhookSink` uses it from its worker only.

    Args:
        rate_per_s: refill rate, tokens per second (> 0).
        capacity: bucket size, tokens (>= 1): the largest burst.
        clock: monotonic time source, seconds (default `time.monotonic`).
    """

    def __init__(
        self, rate_per_s: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate_per_s > 0 or not capacity >= 1:
            raise ValueError(
                f"rate_per_s must be > 0 and capacity >= 1, got {rate_per_s!r}, {capacity!r}"
            )
        self.rate_per_s = float(rate_per_s)
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = float(capacity)
        self._t = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._t) * self.rate_per_s)
        self._t = now

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    def try_take(self, n: float = 1.0) -> bool:
        """Take `n` tokens if available now; True if taken."""
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def wait_s(self, n: float = 1.0) -> float:
        """Seconds until `n` tokens are available (0 if they are now)."""
        self._refill()
        return max(0.0, (n - self._tokens) / self.rate_per_s)


@dataclass(frozen=True)
class WebhookStats:
    """Counters of a `WebhookSink` (since it was created).

    Attributes:
        submitted_alerts: alerts handed to `WebhookSink.submit`.
        dropped_alerts: alerts refused because the queue was full.
        sent_alerts: alerts in requests the receiver accepted (HTTP 2xx).
        failed_alerts: alerts in requests that failed for good.
        requests: HTTP requests made (retries included).
        retries: requests that were retries.
        queued_alerts: alerts waiting now.
    """

    submitted_alerts: int = 0
    dropped_alerts: int = 0
    sent_alerts: int = 0
    failed_alerts: int = 0
    requests: int = 0
    retries: int = 0
    queued_alerts: int = 0


def webhook_payload(alerts: Sequence[Detection], sent_at_s: float | None = None) -> bytes:
    """The JSON body of one webhook request, UTF-8:
    ``{"source": "imdc-pipeline", "sent_at": ISO-8601 UTC, "alerts": [alert_record, ...]}``."""
    sent = time.time() if sent_at_s is None else sent_at_s
    body = {
        "source": "imdc-pipeline",
        "sent_at": _iso(int(sent)),
        "alerts": [alert_record(a) for a in alerts],
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


class WebhookSink:
    """POSTs alerts as JSON to a webhook from a background thread, rate-limited, with
    timeouts and retries (see the module docstring for the policy).

    Args:
        url: the receiver, ``http://`` or ``https://``.
        rate_per_s: requests per second allowed on average (default 1.0).
        burst: requests allowed at once after a quiet spell (default 5).
        timeout_s: longest time one request may take as a whole (connect, send, answer),
            s (default 2.0).
        max_retries: retries of a failed request (default 3).
        backoff_s: first retry delay, s, doubling per retry (default 0.5).
        max_backoff_s: longest retry delay, s (default 8.0).
        max_queue: alerts that may wait; beyond, submissions are dropped (default 1000).
        max_batch: alerts per request (default 50).
        headers: extra HTTP headers (for example an authorization token); sent to `url`
            only (redirects are not followed).
        clock: monotonic clock, s (tests pass a fake one).
        sleep: ``sleep(seconds)`` for rate-limit and backoff waits (default: an
            interruptible wait that `close` cuts short; tests pass a fake one).
        autostart: start the worker now (default); else call `start`.
    """

    def __init__(
        self,
        url: str,
        *,
        rate_per_s: float = 1.0,
        burst: int = 5,
        timeout_s: float = 2.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_queue: int = 1000,
        max_batch: int = 50,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        autostart: bool = True,
    ) -> None:
        self._endpoint = Endpoint.parse(url)
        if not timeout_s > 0 or max_retries < 0 or max_queue < 1 or max_batch < 1:
            raise ValueError("timeout_s must be > 0, max_retries >= 0, max_queue/max_batch >= 1")
        if not backoff_s >= 0 or not max_backoff_s >= 0:
            raise ValueError("backoff_s and max_backoff_s must be >= 0")
        self.url = url
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_queue = int(max_queue)
        self.max_batch = int(max_batch)
        self.headers = {"Content-Type": "application/json", **dict(headers or {})}
        self._clock = clock
        self._bucket = TokenBucket(rate_per_s, burst, clock)
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._interruptible_sleep
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[Detection] = deque()
        self._busy = False
        self._stats = WebhookStats()
        #: (clock s, alerts in the request, HTTP status or 0 for no response) of the last
        #: 1000 requests, for diagnostics.
        self.request_log: deque[tuple[float, int, int]] = deque(maxlen=1000)
        self._thread: threading.Thread | None = None
        if autostart:
            self.start()

    # -- public ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="webhook-sink", daemon=True)
            self._thread.start()

    def submit(self, alerts: Iterable[Detection]) -> int:
        """Queue alerts for sending; never blocks on the network. Returns how many were
        accepted; the rest were dropped because the queue was full."""
        items = list(alerts)
        with self._lock:
            room = max(0, self.max_queue - len(self._queue))
            accepted = items[:room]
            self._queue.extend(accepted)
            self._bump(submitted_alerts=len(items), dropped_alerts=len(items) - len(accepted))
            if accepted:
                self._wake.notify_all()
        return len(accepted)

    @property
    def stats(self) -> WebhookStats:
        """A snapshot of the counters."""
        with self._lock:
            return replace(self._stats, queued_alerts=len(self._queue))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait (real time) until the queue is empty and no request is in flight; True if
        that happened within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Try to send what is queued within `timeout_s`, then stop the worker; alerts
        still queued are counted as dropped."""
        if self._thread is not None:
            self.flush(timeout_s)
        self._stop.set()
        with self._lock:
            self._bump(dropped_alerts=len(self._queue))
            self._queue.clear()
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- worker ---------------------------------------------------------------------

    def _bump(self, **deltas: int) -> None:
        """Add to counters (caller holds the lock)."""
        self._stats = replace(
            self._stats, **{k: getattr(self._stats, k) + v for k, v in deltas.items()}
        )

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stop.is_set():
                    self._wake.wait(0.5)
                if self._stop.is_set():
                    return
                n = min(self.max_batch, len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
                self._busy = True
            try:
                ok = self._send(batch)
            except Exception:  # never let the worker die: count the batch as failed
                ok = False
            with self._lock:
                self._bump(**({"sent_alerts": n} if ok else {"failed_alerts": n}))
                self._busy = False
                self._wake.notify_all()

    def _send(self, batch: list[Detection]) -> bool:
        body = webhook_payload(batch)
        for attempt in range(self.max_retries + 1):
            wait = self._bucket.wait_s()
            while wait > 0:
                if self._stop.is_set():
                    return False
                self._sleep(wait)
                wait = self._bucket.wait_s()
            self._bucket.try_take()
            with self._lock:
                self._bump(requests=1, retries=1 if attempt else 0)
            answer = self._endpoint.post(body, self.headers, self.timeout_s)
            status = answer.status
            self.request_log.append((self._clock(), len(batch), status))
            if 200 <= status < 300:
                return True
            if 300 <= status < 400:
                _log.warning(
                    "webhook %s answered %d redirecting to %r: redirects are not followed; "
                    "%d alerts not sent",
                    self.url,
                    status,
                    answer.location,
                    len(batch),
                )
            retryable = status == 0 or status == 429 or status >= 500
            if not retryable or attempt == self.max_retries or self._stop.is_set():
                return False
            delay = min(self.max_backoff_s, self.backoff_s * 2.0**attempt)
            if answer.retry_after_s is not None:
                delay = min(self.max_backoff_s, max(delay, answer.retry_after_s))
            if delay > 0:
                self._sleep(delay)
        return False
