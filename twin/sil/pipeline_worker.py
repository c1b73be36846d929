"""The run's real pipeline in a worker process, beside the simulation (``twin run
--pipeline-workers 1``), with results identical to the in-process run.

The worker owns the run's :class:`pipeline.Pipeline` (its store, replay window and batch
analysis) and runs every call in the order the simulation makes it, so the store sees the
same uploads in the same order as in-process. The simulation waits for the worker only
where it needs an answer it cannot know in advance:

- A genuine meter upload in the cost model's modes (``calibrated``; ``model``, where only
  the uploads of its sample reach the pipeline) with no upload fault on it, and no copy
  of a later upload of its meter handed to the pipeline before it, is not waited for. Its
  outcome is known: accepted, with the readings the meter sent, inserting the rows new to the
  ledger (the in-process run checks exactly this and stops on a
  :class:`~twin.accounting.ledger.LedgerError` otherwise), at the cost model's service time
  of its size and readings (:meth:`twin.sil.service_time.CostModel.upload_s`). The
  simulation goes on with that outcome; the worker runs the upload later, in order, and
  checks its real outcome against it (:meth:`PipelineWorker.submit`). A genuine body (7
  elements deep, docs/upload-format.md) can be rejected only as a replay
  (``auth_replay``: a sequence number far below its meter's newest, so an older copy
  arriving after a newer one) or for its size (the size and element limits,
  :class:`pipeline.Limits`): such uploads, and any too large to be always admitted
  (:meth:`pipeline.Limits.size_always_admitted`), are waited for.
- A batch analysis is waited for until it has read its windows: the points it analyses
  set its work in simulated time (:meth:`PipelineWorker.analyze_later`); nothing else of
  it acts on the simulation (its detections, forecasts and recommendations are recorded,
  with the time the simulation gave them, when the worker sends them).
- Everything else is waited for (:meth:`PipelineWorker.handle`): uploads that carry an
  upload fault and the met stations' uploads; and the store's row count and
  recommendations at the end of the run (:meth:`PipelineWorker.finish`).

A wait first lets the worker run everything handed to it before, so its answer is the
in-process answer.

A prediction the worker finds wrong, or a worker that dies, stops the run with a
:class:`PipelineWorkerError` naming the upload; nothing is dropped silently. Uploads go to
the worker in batches (one pipe message per :data:`BATCH_UPLOADS` uploads, or at a wait),
committed to the store once per batch (group commit).
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pipeline import (
    AnalysisOutcome,
    Keyring,
    Limits,
    Pipeline,
    Recommendation,
    SiteMeta,
    UploadOutcome,
)
from twin.errors import PipelineWorkerError

#: Uploads handed to the worker in one message and committed in one transaction.
BATCH_UPLOADS = 32
#: Seconds the worker may take to open the store and register the sites.
START_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Expected:
    """The outcome the simulation went on with for an upload the worker runs later:
    accepted, ``n_readings`` readings read (all channels), ``inserted`` rows new (None for
    a met station's upload: only its counts depend on the store, and they come back)."""

    meter_id: str
    sequence_no: int
    n_readings: int
    inserted: int | None

    def matches(self, outcome: UploadOutcome) -> bool:
        return (
            outcome.accepted
            and outcome.n_readings == self.n_readings
            and (self.inserted is None or outcome.inserted == self.inserted)
        )

    def describe(self) -> str:
        sender = "meter" if self.inserted is not None else "station"
        return f"{sender} {self.meter_id} upload {self.sequence_no}"


class PipelineWorker:
    """A :class:`pipeline.Pipeline` on ``store_path`` in a forked worker process (module
    docstring), with ``keys`` as its keyring (None: plain uploads) and ``sites``
    registered. Use from one thread; :meth:`finish` or :meth:`close` ends it."""

    def __init__(
        self,
        store_path: str | Path,
        keys: dict[str, bytes] | None,
        sites: Iterable[SiteMeta],
        batch_uploads: int = BATCH_UPLOADS,
    ) -> None:
        if batch_uploads < 1:
            raise ValueError(f"batch_uploads must be >= 1, got {batch_uploads!r}")
        self.batch_uploads = batch_uploads
        #: The ingest limits of the worker's pipeline (the default, as in-process).
        self.limits = Limits()
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(child, str(store_path), keys, list(sites), self.limits),
            name="pipeline-worker",
            daemon=True,
        )
        gc.freeze()  # the child inherits the heap: its collector neither scans nor copies it
        try:
            self._process.start()
        finally:
            gc.unfreeze()
        child.close()
        self._batch: list[tuple[bytes, Expected]] = []
        self._in_flight: deque[Expected] = deque()  # handed on, not confirmed yet
        #: what to tell each upload's outcome to, for the uploads in flight that have one
        self._on_outcome: deque[Callable[[UploadOutcome], None]] = deque()
        self._analyses: deque[Callable[[AnalysisOutcome], None]] = deque()  # outcomes due
        self._waiting_for = "its start"
        # Every message of the worker is read at once by this thread, so that the worker
        # never blocks sending (an analysis outcome can be larger than the socket's
        # buffer) while the simulation blocks sending it uploads: no deadlock.
        self._inbox: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._reader = threading.Thread(
            target=self._read_all, name="pipeline-worker-reader", daemon=True
        )
        self._reader.start()
        self._reply("ready", timeout_s=START_TIMEOUT_S)

    @property
    def in_flight(self) -> int:
        """Uploads handed on whose outcome the worker has not confirmed yet."""
        return len(self._in_flight) + len(self._batch)

    def submit(
        self,
        body: bytes,
        expected: Expected,
        on_outcome: Callable[[UploadOutcome], None] | None = None,
    ) -> None:
        """Hand an upload on; the simulation goes on with ``expected`` as its outcome, and
        the worker checks it when it runs the upload. An upload whose ``expected`` leaves
        its rows open (``inserted`` None) needs ``on_outcome``: its real outcome is told to
        it when the worker confirms the upload (in order, at the latest in
        :meth:`finish`)."""
        if (expected.inserted is None) != (on_outcome is not None):
            raise ValueError("on_outcome is for the uploads whose inserted rows are open")
        self._batch.append((body, expected))
        self._in_flight.append(expected)
        if on_outcome is not None:
            self._on_outcome.append(on_outcome)
        if len(self._batch) >= self.batch_uploads:
            self._send_batch()
            while not self._inbox.empty():  # what the worker said so far, without waiting
                self._reply("confirmed")

    def handle(self, body: bytes) -> UploadOutcome:
        """Run one upload after everything handed on before it, and wait for its outcome."""
        outcome: UploadOutcome = self._call("handle", body, what="an upload")
        return outcome

    def analyze_later(self, now_epoch_s: int, apply: Callable[[AnalysisOutcome], None]) -> int:
        """The batch analysis at ``now_epoch_s`` over everything handed on before it: waits
        for the points it analyses (known once it has read its windows) and returns them;
        its outcome is given to ``apply`` when the worker has it (in order, at the latest
        in :meth:`finish`)."""
        self._analyses.append(apply)
        points: int = self._call("analyze", now_epoch_s, what="a batch analysis", answer="points")
        return points

    def finish(self, end_epoch_s: int) -> tuple[int, list[Recommendation]]:
        """After everything handed on: the store's reading rows and the recommendations at
        ``end_epoch_s``; then the worker commits, closes the store and exits."""
        rows, recommendations = self._call("finish", end_epoch_s, what="the run's end")
        self._process.join(START_TIMEOUT_S)
        self.close()
        return rows, recommendations

    def close(self) -> None:
        """Stop the worker (at once if it still runs) and release its pipe."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join(START_TIMEOUT_S)
        self._reader.join(START_TIMEOUT_S)  # the worker's end is closed: the reader ends
        self._conn.close()

    def __enter__(self) -> PipelineWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the pipe ------------------------------------------------------------------------
    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        self._send(("uploads", batch))

    def _call(self, kind: str, argument: Any, what: str, answer: str | None = None) -> Any:
        """Send a request of ``kind`` after the open batch; wait for its answer (of kind
        ``answer``, default ``kind``)."""
        if self._batch:
            self._send_batch()
        self._send((kind, argument))
        self._waiting_for = what
        while True:
            answered, value = self._reply(answer or kind)
            if answered:
                return value

    def _send(self, message: tuple[str, Any]) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise self._died() from None

    def _read_all(self) -> None:
        """The reader thread: every message into the inbox, then None when the pipe ends."""
        try:
            while True:
                self._inbox.put(self._conn.recv())
        except (EOFError, OSError):
            self._inbox.put(None)

    def _reply(self, wanted: str, timeout_s: float | None = None) -> tuple[bool, Any]:
        """Take one message (waiting at most ``timeout_s``): confirmations are checked off
        (``(False, None)``); the answer of kind ``wanted`` is returned as ``(True,
        answer)``; an error or a mismatch raises."""
        try:
            message = self._inbox.get(timeout=timeout_s)
        except queue.Empty:
            self.close()
            raise PipelineWorkerError(
                f"pipeline worker: no answer in {timeout_s:g} s while waiting for "
                f"{self._waiting_for}"
            ) from None
        if message is None:
            raise self._died()
        kind, value = message
        if kind == "confirmed":
            n_confirmed, outcomes = value
            for _ in range(n_confirmed):
                self._in_flight.popleft()
            for outcome in outcomes:  # of the uploads with open rows, in order
                self._on_outcome.popleft()(outcome)
            return False, None
        if kind == "analysis":
            self._analyses.popleft()(value)
            return False, None
        if kind == "mismatch":
            index, outcome = value
            for _ in range(index):
                self._in_flight.popleft()
            expected = self._in_flight[0]
            got = (
                f"accepted, {outcome.n_readings} readings, {outcome.inserted} rows inserted"
                if outcome.accepted
                else f"rejected ({outcome.reason})"
            )
            rows = "" if expected.inserted is None else f", {expected.inserted} rows inserted"
            self.close()
            raise PipelineWorkerError(
                f"pipeline worker: {expected.describe()}: the simulation went on with it "
                f"accepted, {expected.n_readings} readings{rows}; "
                f"the pipeline answered {got} (rerun with --pipeline-workers 0 to run it "
                "in-process)"
            )
        if kind == "error":
            self.close()
            raise PipelineWorkerError(
                f"pipeline worker failed while running {self._first_in_flight()}: {value}"
            )
        if kind != wanted:
            self.close()
            raise PipelineWorkerError(f"pipeline worker: answered {kind!r}, expected {wanted!r}")
        return True, value

    def _first_in_flight(self) -> str:
        if self._in_flight:
            return f"{self._in_flight[0].describe()} (of {self.in_flight} in flight)"
        return self._waiting_for

    def _died(self) -> PipelineWorkerError:
        self._process.join(5.0)
        code = self._process.exitcode
        how = (
            f"killed by {signal.Signals(-code).name}"
            if code is not None and code < 0
            else f"exit code {code}"
        )
        message = (
            f"pipeline worker (pid {self._process.pid}) died ({how}) while running "
            f"{self._first_in_flight()}; the run stops: its results would be incomplete"
        )
        self.close()
        return PipelineWorkerError(message)


def _serve(conn: Connection, store_path: str, keys: dict[str, bytes] | None,
           sites: list[SiteMeta], limits: Limits) -> None:  # fmt: skip
    """The worker's loop: one message at a time, in order, until ``finish``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        # commits once per batch (flush below): the group commit
        pipeline = Pipeline(
            store_path,
            limits,
            keyring=None if keys is None else Keyring(keys),
            commit_every=2**62,
        )
        for site in sites:
            pipeline.register_site(site)
    except Exception as exc:
        conn.send(("error", _one_line(exc)))
        return
    conn.send(("ready", None))
    try:
        while True:
            kind, value = conn.recv()
            if kind == "uploads":
                if not _run_batch(conn, pipeline, value):
                    return  # the parent stops the run
            elif kind == "handle":
                outcome = pipeline.handle(value)
                pipeline.uploads.flush()
                conn.send(("handle", outcome))
            elif kind == "analyze":
                analysis = pipeline.analyze(value, on_points=lambda n: conn.send(("points", n)))
                conn.send(("analysis", analysis))
            elif kind == "finish":
                rows = pipeline.store.readings.count()
                recommendations = pipeline.recommendations(value)
                pipeline.close()
                conn.send(("finish", (rows, recommendations)))
                return
    except EOFError:
        return  # the parent is gone
    except Exception as exc:
        conn.send(("error", _one_line(exc)))


def _one_line(exc: Exception) -> str:
    """``exc`` as one line: its type, message and where it was raised."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text} ({Path(frame.filename).name}:{frame.lineno})"


def _run_batch(conn: Connection, pipeline: Pipeline, batch: list[tuple[bytes, Expected]]) -> bool:
    """Run a batch of predicted uploads and commit it; False at the first outcome that is
    not the one predicted (reported to the parent). The confirmation carries the outcomes
    of the uploads whose rows were left open."""
    open_outcomes = []
    for index, (body, expected) in enumerate(batch):
        outcome = pipeline.handle(body)
        if not expected.matches(outcome):
            conn.send(("mismatch", (index, outcome)))
            return False
        if expected.inserted is None:
            open_outcomes.append(outcome)
    pipeline.uploads.flush()
    conn.send(("confirmed", (len(batch), open_outcomes)))
    return True
