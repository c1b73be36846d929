"""`Endpoint`: one http(s) URL that a sink POSTs to, each request bounded as a whole by a
timeout and never redirected (DESIGN §9: outgoing webhooks never follow redirects with
credentials).

`Endpoint.post` connects straight to the URL's host (no proxy), sends the body with the
given headers, and reads the status line, headers and up to 64 KiB of the body. A 3xx is
returned as it is, with its ``Location``: nothing is sent anywhere else. The whole
exchange is bounded by ``timeout_s`` (`_Deadline`): connecting has that timeout, a socket
connected after the deadline is refused, and when the deadline passes a timer thread shuts
the socket down, which ends any send or read blocked on it, so a receiver that trickles its
answer a byte at a time (each read well within a per-read timeout) cannot hold the caller
longer either.

Only the standard library is imported here (DESIGN §2).
"""

from __future__ import annotations

import contextlib
import http.client
import math
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["Answer", "Endpoint"]

#: Most bytes of a response body read (the body is not used; reading it lets a receiver
#: that sends one finish cleanly).
_MAX_RESPONSE_BYTES = 65536


class Answer(NamedTuple):
    """What a receiver answered: HTTP status (0: no answer), Retry-After seconds, Location."""

    status: int
    retry_after_s: float | None
    location: str | None


def _retry_after_s(value: str | None) -> float | None:
    """A Retry-After header's delay in seconds; None when absent, a date, or not finite."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


class _Deadline:
    """A bound on one request as a whole: when `timeout_s` has passed (a timer thread), the
    request's socket is shut down, which ends any send or read blocked on it in the caller's
    thread (they then fail with an OSError or an incomplete answer); a socket attached after
    that is refused. Cancel it when the request is over."""

    def __init__(self, timeout_s: float) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._expired = False
        self._timer = threading.Timer(timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def attach(self, sock: socket.socket) -> None:
        """Watch `sock`; TimeoutError (and `sock` closed) when the deadline has passed."""
        with self._lock:
            if self._expired:
                sock.close()
                raise TimeoutError("the request's deadline passed while connecting")
            self._sock = sock

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            if self._sock is not None:
                with contextlib.suppress(OSError):  # already closed
                    self._sock.shutdown(socket.SHUT_RDWR)


class _Connection(http.client.HTTPConnection):
    """An HTTP(S) connection straight to the receiver (no proxy) whose socket a `_Deadline`
    watches from the moment it connects (before the TLS handshake, so a slow handshake is
    bounded too)."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout_s: float,
        deadline: _Deadline,
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(host, port, timeout=timeout_s)
        self._deadline = deadline
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self._deadline.attach(sock)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: host, port, request target (path and query) and, for https, the
    TLS context (the system's trusted CAs, hostname checked)."""

    host: str
    port: int
    target: str
    tls: ssl.SSLContext | None

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """The endpoint of an ``http://`` or ``https://`` URL; ValueError for anything else."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url must be http(s)://host/..., got {url!r}")
        https = parts.scheme == "https"
        return cls(
            host=parts.hostname,
            port=parts.port or (443 if https else 80),
            target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            tls=ssl.create_default_context() if https else None,
        )

    def post(self, body: bytes, headers: Mapping[str, str], timeout_s: float) -> Answer:
        """One POST of `body`, within `timeout_s` as a whole; status 0 when no complete
        answer came in time (refused, reset, timed out)."""
        deadline = _Deadline(timeout_s)
        conn = _Connection(self.host, self.port, timeout_s, deadline, self.tls)
        try:
            conn.request("POST", self.target, body=body, headers=dict(headers))
            response = conn.getresponse()
            response.read(_MAX_RESPONSE_BYTES)
            return Answer(
                response.status,
                _retry_after_s(response.getheader("Retry-After")),
                response.getheader("Location"),
            )
        except (OSError, http.client.HTTPException):
            return Answer(0, None, None)
        finally:
            deadline.cancel()
            conn.close()
