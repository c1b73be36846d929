"""The real-socket side of a live run (:mod:`twin.sil.live`): an HTTP client on its own
thread whose answers come back through a thread-safe queue (:class:`HttpBridge`), and the
MDC service as a child process the run starts, kills and restarts
(:class:`ServiceProcess`).

SimPy is not thread-safe, so nothing here touches the simulation: the bridge's threads (at
most ``concurrency``, each with its own keep-alive ``httpx.Client``) send each upload and
put a :class:`Completion` (status, JSON body, measured latency) on
:attr:`HttpBridge.completions`, which the run loop polls on the simulation's thread.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Completion", "HttpBridge", "ServiceProcess", "ServiceStartError"]

#: Longest wait for a spawned service to print its address and answer /healthz, s
#: (interpreter start, numpy/numba/lxml imports, opening the store).
START_TIMEOUT_S = 120.0
#: Longest wait for a service to stop after SIGTERM before it is killed, s (its graceful
#: shutdown waits up to 30 s for requests in progress, `pipeline.serve.server.GRACEFUL_S`).
STOP_TIMEOUT_S = 45.0


@dataclass(frozen=True, slots=True)
class Completion:
    """The end of one request: the ``ticket`` it was sent with, the HTTP ``status`` (None:
    no answer: refused, reset or timed out, see ``error``), the JSON ``body`` (None if the
    answer was not JSON) and the ``latency_s`` measured from sending to the answer, wall
    seconds."""

    ticket: int
    status: int | None
    body: dict[str, Any] | None
    latency_s: float
    error: str | None = None


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class HttpBridge:
    """HTTP from the simulation's thread: `post` queues an upload request (its
    :class:`Completion` arrives on `completions`), `call` makes a control request and
    waits for it (health, analysis, queries).

    Uploads go out on a pool of ``concurrency`` threads, each with its own keep-alive
    ``httpx.Client`` (one connection per thread: a pool of synchronous clients costs less
    CPU per request than one asynchronous client with as many connections).

    Args:
        concurrency: threads, hence uploads in flight, at most.
        timeout_s: an upload request's timeout, s (then its completion has no status).
        token: the service's bearer token, sent with every request (None: none).
    """

    def __init__(self, concurrency: int, timeout_s: float, token: str | None = None) -> None:
        self.timeout_s = timeout_s
        self.headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self.completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="twin-live-http")
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._clients_lock = threading.Lock()
        self._generation = 0
        self._control = self._new_client()

    def _new_client(self) -> httpx.Client:
        client = httpx.Client(headers=self.headers, timeout=self.timeout_s)
        with self._clients_lock:
            self._clients.append(client)
        return client

    def _client(self) -> httpx.Client:
        """This thread's client (a new one after `reconnect`)."""
        local = self._local
        if getattr(local, "generation", -1) != self._generation:
            local.client = self._new_client()
            local.generation = self._generation
        client: httpx.Client = local.client
        return client

    def post(self, ticket: int, url: str, body: bytes) -> None:
        """Send an upload (returns at once)."""
        self._pool.submit(self._post, ticket, url, body)

    def _post(self, ticket: int, url: str, body: bytes) -> None:
        t0 = time.perf_counter()
        try:
            response = self._client().post(url, content=body)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            self.completions.put(Completion(ticket, None, None, time.perf_counter() - t0, error))
            return
        latency_s = time.perf_counter() - t0
        self.completions.put(Completion(ticket, response.status_code, _json(response), latency_s))

    def reconnect(self) -> None:
        """Drop every pooled connection (after the service restarted: they are dead); the
        threads open new ones."""
        with self._clients_lock:
            old, self._clients = self._clients, []
            self._generation += 1
        for client in old:
            with contextlib.suppress(Exception):
                client.close()
        self._control = self._new_client()

    def call(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> tuple[int, dict[str, Any] | None, float]:
        """A control request, waited for: (status, JSON body, latency s).

        Raises:
            httpx.HTTPError: no answer.
        """
        t0 = time.perf_counter()
        response = self._control.request(
            method, url, params=params, timeout=timeout_s or self.timeout_s
        )
        return response.status_code, _json(response), time.perf_counter() - t0

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()


class ServiceStartError(RuntimeError):
    """The spawned MDC service did not start (its log says why)."""


class ServiceProcess:
    """One MDC service (``python -m pipeline serve``) as a child process on a loopback port.

    Args:
        name: the MDC's name (for messages).
        args: the serve options after ``--port`` (``--db``, ``--keyring``, ...).
        log_path: where the service's stderr goes.
    """

    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def start(self, bridge: HttpBridge) -> str:
        """Start it (on its previous port after a kill, so it comes back at its address)
        and wait until /healthz answers; returns its base URL.

        Raises:
            ServiceStartError: it exited, or did not answer within `START_TIMEOUT_S`.
        """
        cmd = [sys.executable, "-m", "pipeline", "serve", "--port", str(self.port), *self.args]
        with self.log_path.open("a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=os.environ.copy()
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        line = self._first_line(deadline)
        # "MDC service listening on http://HOST:PORT (...)"
        self.url = line.split()[4]
        self.port = int(self.url.rsplit(":", 1)[1])
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if bridge.call("GET", f"{self.url}/healthz", timeout_s=5.0)[0] == 200:
                    return self.url
            self._check_alive()
            time.sleep(0.05)
        self.kill()
        raise ServiceStartError(f"MDC {self.name}: no answer from {self.url}/healthz")

    def _first_line(self, deadline: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith("MDC service listening on "):
                    return line
                self._check_alive()
            self._check_alive()
        self.kill()
        raise ServiceStartError(f"MDC {self.name}: the service did not start (see {self.log_path})")

    def _check_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise ServiceStartError(
                f"MDC {self.name}: the service exited with code {code} (see {self.log_path})"
            )

    def _drain_stdout(self) -> None:
        process = self.process
        if process is not None and process.stdout is not None:
            for _ in process.stdout:
                pass

    def kill(self) -> None:
        """``kill -9``: the process dies at once, whatever it held in memory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10.0)

    def stop(self) -> int | None:
        """SIGTERM (a graceful stop: requests in progress answered, queue committed, store
        closed), then a kill after `STOP_TIMEOUT_S`; returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        return process.returncode
