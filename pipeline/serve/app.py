"""The MDC service as an ASGI app (Starlette): the routes, the access gate and the
lifespan that opens and closes the pipeline (see `pipeline.serve` for the whole).

Routes:

- ``POST /v1/uploads``: one sealed upload (``docs/upload-format.md``) as the body; 200
  with the outcome (`pipeline.serve.wire.UploadAnswer`), a 4xx naming the rejection
  (`pipeline.serve.wire.status_of`), 413 beyond the size limit (checked on
  Content-Length before reading, and while streaming), 503 with ``Retry-After`` when the
  ingest queue is full, the service is stopping or a storage error rolled the upload back;
- ``POST /v1/analyze[?now=EPOCH_S]``: a batch analysis now (default: at the data clock),
  answered with its outcome (`pipeline.serve.wire.analysis_json`);
- ``GET /healthz``: status, ack mode, instance, receipts committed, queue depth;
- ``GET /metrics``: Prometheus text format (`pipeline.serve.metrics`);
- ``GET /``: the operators' dashboard (``static/``, plotly.js served from the ``plotly``
  package at ``/static/plotly.min.js``: nothing from a CDN);
- ``GET /api/sites|series|alerts|forecasts|readings|meters``: the JSON API
  (`pipeline.serve.queries`), each query bounded (400 with the reason beyond).

Access: with a token, every route but ``/healthz`` and ``/v1/uploads`` (whose uploads are
authenticated per meter by their HMAC envelope) needs ``Authorization: Bearer TOKEN``, or
the dashboard's cookie, set by opening ``/?token=TOKEN`` once (an HMAC of the token, not
the token); anything else is refused with 401. Tokens are compared in constant time
(`hmac.compare_digest`).

Only the standard library, the pipeline's own modules and its web stack (Starlette,
uvicorn, prometheus_client, the plotly.js file) are imported here (DESIGN §2).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.analyze.batch import AnalysisOutcome
from pipeline.fetch.auth import MAX_HEADER_BYTES, Keyring
from pipeline.serve import queries
from pipeline.serve.config import CONFIG_ENV, ServeConfig, load_sites
from pipeline.serve.forecasts import ForecastBook
from pipeline.serve.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from pipeline.serve.wire import UploadAnswer, analysis_json
from pipeline.serve.writer import Writer
from pipeline.service import Pipeline, UploadOutcome

__all__ = ["Service", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The dashboard's own files, by the name they are served under ``/static/``.
_STATIC_FILES = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
_COOKIE = "mdc_session"
#: Paths open without the token: liveness, and uploads (authenticated per meter).
_OPEN_PATHS = frozenset({"/healthz", "/v1/uploads"})
#: Seconds a refused client is told to wait (``Retry-After``).
_RETRY_AFTER_S = "1"


def plotly_js_path() -> Path | None:
    """plotly.min.js as shipped in the ``plotly`` package (found without importing it), or
    None when the package is not installed."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@dataclass
class Service:
    """What the app runs on while it is up: the writer thread, the read pool, the metrics,
    the forecast book and this process' instance id."""

    config: ServeConfig
    writer: Writer
    reads: queries.ReadPool
    metrics: ServiceMetrics
    forecasts: ForecastBook
    instance: str

    @classmethod
    def open(cls, config: ServeConfig, metrics: ServiceMetrics) -> Service:
        """Open the store read-write (and its read-only pool), load the keyring and the
        site registry, start the writer thread.

        Raises:
            ValueError: a bad keyring, site registry or database (the message names it).
        """
        keyring = Keyring.load(config.keyring_path)
        sites = load_sites(config.sites_path) if config.sites_path is not None else []
        pipeline = Pipeline(
            config.db_path, config.limits, commit_every=config.commit_every, keyring=keyring
        )
        try:
            for site in sites:
                pipeline.register_site(site)
            reads = queries.ReadPool(config.db_path, config.read_connections)
        except BaseException:
            pipeline.close()
            raise
        forecasts = ForecastBook()
        instance = uuid.uuid4().hex[:12]
        writer = Writer(
            pipeline,
            ack=config.ack,
            commit_wait_s=config.commit_wait_s,
            metrics=metrics,
            forecasts=forecasts,
            instance=instance,
            queue_uploads=config.queue_uploads,
            queue_bytes=config.queue_bytes,
        )
        writer.start()
        return cls(config, writer, reads, metrics, forecasts, instance)

    def close(self) -> None:
        """Close the read pool, then finish the queued jobs, commit and close the store (the
        writer's connection last: SQLite then folds the WAL into the database file)."""
        try:
            self.reads.close()
        finally:
            self.writer.stop()


def _resolver(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
) -> Callable[[Any], None]:
    """A callback for another thread that resolves `future` on `loop` (never twice, and
    not at all once the loop is closed)."""

    def resolve(value: Any) -> None:
        def set_result() -> None:
            if not future.done():
                future.set_result(value)

        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            loop.call_soon_threadsafe(set_result)

    return resolve


def _upload_kind(outcome: UploadOutcome) -> str:
    """The ``outcome`` label of an answered upload in ``mdc_uploads_total`` (`ServiceMetrics`)."""
    if not outcome.accepted:
        return "rejected"
    if outcome.inserted:
        return "stored"
    return "conflicting" if outcome.conflicts else "duplicate"


def _error(status: int, reason: str, **headers: str) -> JSONResponse:
    return JSONResponse({"reason": reason}, status_code=status, headers=headers or None)


def create_app(config: ServeConfig) -> Starlette:
    """The service's ASGI app for `config` (the pipeline opens when the app starts and
    closes when it stops: its lifespan)."""
    holder: dict[str, Service] = {}
    metrics = ServiceMetrics(lambda: holder["service"].writer.queue_depth if holder else 0)
    max_body = config.limits.max_size_bytes + MAX_HEADER_BYTES + 1

    def service() -> Service:
        return holder["service"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        holder["service"] = await run_in_threadpool(Service.open, config, metrics)
        timer = None
        if config.analyze_every_s is not None:
            timer = asyncio.create_task(_analysis_timer(service(), config.analyze_every_s))
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
            await run_in_threadpool(service().close)

    def too_large(size: int | None) -> Response:
        text = f"{size} bytes" if size is not None else "the body"
        outcome = UploadOutcome(
            accepted=False,
            reason=f"too_large: {text} exceeds the limit of {max_body} bytes of an envelope",
            meter_id=None,
            sequence_no=None,
            size_bytes=size or max_body + 1,
            n_readings=0,
            inserted=0,
            duplicates=0,
            stage_ns=None,
            rejected_stage="fetch",
        )
        metrics.rejections.labels("too_large").inc()
        metrics.uploads.labels("rejected").inc()
        answer = UploadAnswer(outcome, False, 0, service().writer.committed_through, "")
        # the rest of the body is not read: the connection cannot be reused
        return JSONResponse(answer.to_json(), 413, headers={"Connection": "close"})

    async def upload(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return _error(400, f"bad Content-Length {declared!r:.40}")
            if int(declared) > max_body:
                return too_large(int(declared))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return too_large(None)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[UploadAnswer | None] = loop.create_future()
        if not service().writer.submit_upload(bytes(body), _resolver(loop, future)):
            metrics.uploads.labels("refused").inc()
            return _error(503, "busy: the ingest queue is full", **{"Retry-After": _RETRY_AFTER_S})
        answer = await future
        if answer is None:
            metrics.uploads.labels("refused").inc()
            return _error(
                503, "storage_error: not stored, send again", **{"Retry-After": _RETRY_AFTER_S}
            )
        outcome = answer.outcome
        metrics.uploads.labels(_upload_kind(outcome)).inc()
        return JSONResponse(answer.to_json(), answer.status)

    async def analyze(request: Request) -> Response:
        try:
            now = queries.parse_time_s(request.query_params.get("now"), "now")
        except queries.QueryError as exc:
            return _error(400, str(exc))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AnalysisOutcome | BaseException | None] = loop.create_future()
        if not service().writer.submit_analysis(now, _resolver(loop, future)):
            return _error(503, "stopping", **{"Retry-After": _RETRY_AFTER_S})
        result = await future
        if isinstance(result, BaseException):
            return _error(500, f"analysis_failed: {type(result).__name__}: {result}"[:300])
        if result is None:
            return JSONResponse({"analysed": False, "reason": "nothing stored yet"})
        return JSONResponse({"analysed": True, **analysis_json(result)})

    async def healthz(request: Request) -> Response:
        s = service()
        return JSONResponse(
            {
                "status": "ok",
                "ack": config.ack,
                "instance": s.instance,
                "committed_through": s.writer.committed_through,
                "queue_depth": s.writer.queue_depth,
            }
        )

    async def metrics_page(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def api(query: Callable[..., dict[str, Any]]) -> Callable[[Request], Any]:
        """A JSON API route: `query` runs on a worker thread with a read-only store."""

        async def route(request: Request) -> Response:
            def run() -> dict[str, Any]:
                with service().reads.borrow() as store:
                    return query(store, request.query_params)

            try:
                return JSONResponse(await run_in_threadpool(run))
            except queries.QueryError as exc:
                return _error(400, str(exc))

        return route

    async def dashboard(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            path = plotly_js_path()
            if path is None:
                return _error(404, "the plotly package is not installed")
            return FileResponse(
                path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
            )
        if name not in _STATIC_FILES:
            return _error(404, f"no static file {name!r:.60}")
        return FileResponse(STATIC_DIR / name, media_type=_STATIC_FILES[name])

    routes = [
        Route("/v1/uploads", upload, methods=["POST"]),
        Route("/v1/analyze", analyze, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/metrics", metrics_page),
        Route("/", dashboard),
        Route("/static/{name}", static),
        Route("/api/sites", api(_sites)),
        Route("/api/series", api(_series)),
        Route("/api/alerts", api(_alerts)),
        Route("/api/forecasts", api(lambda store, q: _forecasts(store, q, service()))),
        Route("/api/readings", api(_readings)),
        Route("/api/meters", api(lambda store, q: queries.meters(store))),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    paths = frozenset(r.path for r in routes if "{" not in r.path)
    gated: ASGIApp = _TokenGate(app, config.token) if config.token else app
    return _Timing(gated, metrics, paths)  # type: ignore[return-value]


# -- the API's parameter parsing ---------------------------------------------------------
def _int(q: Any, name: str) -> int | None:
    text = q.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise queries.QueryError(f"{name}={text!r:.40}: expected an integer") from None


def _sites(store: Any, q: Any) -> dict[str, Any]:
    return queries.sites(store, _int(q, "limit"), _int(q, "offset"))


def _series(store: Any, q: Any) -> dict[str, Any]:
    return queries.series(
        store,
        site=q.get("site"),
        fleet=q.get("fleet"),
        start_s=queries.parse_time_s(q.get("start"), "start"),
        end_s=queries.parse_time_s(q.get("end"), "end"),
        step_s=_int(q, "step"),
    )


def _alerts(store: Any, q: Any) -> dict[str, Any]:
    return queries.alerts(store, status=q.get("status", "all"), limit=_int(q, "limit"))


def _forecasts(store: Any, q: Any, service: Service) -> dict[str, Any]:
    return queries.forecasts(store, service.forecasts, site=q.get("site"), limit=_int(q, "limit"))


def _readings(store: Any, q: Any) -> dict[str, Any]:
    meter = q.get("meter")
    if not meter:
        raise queries.QueryError("give meter=ID")
    return queries.readings(
        store,
        meter,
        queries.parse_time_s(q.get("start"), "start"),
        queries.parse_time_s(q.get("end"), "end"),
    )


async def _analysis_timer(service: Service, every_s: float) -> None:
    """Queue a batch analysis at the data clock every `every_s` of wall time."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every_s)
        done: asyncio.Future[Any] = loop.create_future()
        if service.writer.submit_analysis(None, _resolver(loop, done)):
            await done


# -- middleware --------------------------------------------------------------------------
def _cookie_value(token: str) -> str:
    """The dashboard's session cookie: an HMAC of the token (the token itself never sits in
    a cookie)."""
    return hmac.new(token.encode(), b"mdc-dashboard-session", hashlib.sha256).hexdigest()


class _TokenGate:
    """Refuses (401) every request without the bearer token or the session cookie, except on
    `_OPEN_PATHS`; ``GET /?token=TOKEN`` sets the cookie and redirects to ``/``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()
        self.cookie = _cookie_value(token).encode()

    def _allowed(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        cookies = SimpleCookie()
        with contextlib.suppress(Exception):
            cookies.load(headers.get(b"cookie", b"").decode("latin-1"))
        morsel = cookies.get(_COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.cookie)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if scope["path"] == "/" and given and hmac.compare_digest(given.encode(), self.token):
            response: Response = RedirectResponse("/", status_code=303)
            response.set_cookie(
                _COOKIE, self.cookie.decode(), httponly=True, samesite="strict", path="/"
            )
        else:
            response = JSONResponse(
                {"reason": "unauthorized: this service needs its bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="mdc"'},
            )
        await response(scope, receive, send)


class _Timing:
    """Observes every HTTP request's latency (start to the end of the answer) in
    ``mdc_http_request_duration_seconds`` by route (unknown paths as ``other``)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path = scope["path"]
        route = path if path in self.paths else "other"
        if path.startswith("/static/"):
            route = "/static"

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.metrics.request_latency.labels(route).observe(time.perf_counter() - t0)

        await self.app(scope, receive, timed_send)


def app_from_environment() -> ASGIApp:
    """The app of a worker process of a multi-worker service: its settings come as JSON in
    the environment variable `pipeline.serve.config.CONFIG_ENV` (uvicorn ``factory``)."""
    return create_app(ServeConfig.from_json(json.loads(os.environ[CONFIG_ENV])))
