"""The writer thread of the MDC service: the one thread that holds the read-write `Pipeline`
(store, per-upload service, batch analysis), fed by a bounded queue.

The event loop never touches the database for writing: a request hands its body to
`Writer.submit_upload` with a callback and awaits the answer; the thread takes jobs in
order and answers through the callback (the app bridges it back to the loop).

Group commit: the accepted uploads the thread takes share one transaction
(`pipeline.service.UploadService` with ``commit_every``), committed when

- ``commit`` acks: the queue is momentarily empty, or the group holds ``commit_every``
  uploads; each upload of the group is answered after the COMMIT;
- ``receipt`` acks: the group holds ``commit_every`` uploads, or its first upload has
  waited ``commit_wait_s``; each upload is answered as soon as it is written into the open
  transaction, before the COMMIT.

A rejected upload is answered at once in both modes (nothing of it is written). A batch
analysis is a job like an upload: the open group is committed first, then the analysis
runs on this thread (uploads queue meanwhile). A storage error (a full disk, a lock held
too long by another process) rolls the open group back: its uploads still waiting for
their commit get no answer (the app sends 503, the meter retries); those already answered
on receipt are lost, counted in ``mdc_store_errors_total``.

Only the standard library and the pipeline's own modules are imported here (DESIGN §2).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.analyze.batch import AnalysisOutcome
from pipeline.serve.forecasts import ForecastBook
from pipeline.serve.metrics import ServiceMetrics
from pipeline.serve.queries import data_clock_s
from pipeline.serve.wire import UploadAnswer
from pipeline.service import Pipeline, UploadOutcome

__all__ = ["Writer"]

_log = logging.getLogger("pipeline.serve")

#: Called on the writer thread with the answer, or None when the upload got none (its
#: group was rolled back, or the service stopped before taking it).
AnswerCallback = Callable[[UploadAnswer | None], None]
#: Called on the writer thread with the analysis' outcome, or the exception it raised.
AnalysisCallback = Callable[[AnalysisOutcome | BaseException | None], None]


@dataclass(frozen=True, slots=True)
class _Upload:
    body: bytes
    answer: AnswerCallback


@dataclass(frozen=True, slots=True)
class _Analysis:
    now_epoch_s: int | None
    done: AnalysisCallback


_STOP = object()


class Writer:
    """The writer thread and its queue (module docstring).

    Args:
        pipeline: the read-write pipeline, used by this thread only from `start` on (its
            ``commit_every`` is the group size).
        ack: ``"commit"`` or ``"receipt"``.
        commit_wait_s: with ``receipt``, the longest an answered upload waits for its
            commit, s.
        metrics: where to count.
        forecasts: where the analyses' forecasts go.
        instance: this process' id, sent with every answer.
        queue_uploads, queue_bytes: bounds of the queue (uploads, bytes of bodies).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        ack: str,
        commit_wait_s: float,
        metrics: ServiceMetrics,
        forecasts: ForecastBook,
        instance: str,
        queue_uploads: int,
        queue_bytes: int,
    ) -> None:
        self.pipeline = pipeline
        self.ack_on_commit = ack == "commit"
        self.commit_wait_s = commit_wait_s
        self.metrics = metrics
        self.forecasts = forecasts
        self.instance = instance
        self.queue_uploads = queue_uploads
        self.queue_bytes = queue_bytes
        self._jobs: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._budget_lock = threading.Lock()
        self._queued_uploads = 0
        self._queued_bytes = 0
        self._closing = False
        # writer-thread state
        self._receipts = 0
        self._committed_through = 0
        self._group: list[tuple[_Upload, UploadOutcome, int]] = []
        self._group_started_s = 0.0
        self._thread = threading.Thread(target=self._run, name="mdc-writer", daemon=True)

    # -- the event loop's side ---------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        """Jobs waiting for the thread."""
        return self._jobs.qsize()

    @property
    def committed_through(self) -> int:
        """Every accepted upload up to this receipt number is committed."""
        return self._committed_through

    def start(self) -> None:
        self._thread.start()

    def submit_upload(self, body: bytes, answer: AnswerCallback) -> bool:
        """Queue an upload; False (nothing queued) when the queue is full or the service is
        stopping."""
        with self._budget_lock:
            if (
                self._closing
                or self._queued_uploads >= self.queue_uploads
                or self._queued_bytes + len(body) > self.queue_bytes
            ):
                return False
            self._queued_uploads += 1
            self._queued_bytes += len(body)
            self._jobs.put(_Upload(body, answer))
        return True

    def submit_analysis(self, now_epoch_s: int | None, done: AnalysisCallback) -> bool:
        """Queue a batch analysis at `now_epoch_s` (None: the data clock,
        `pipeline.serve.queries.data_clock_s`); False when stopping."""
        with self._budget_lock:
            if self._closing:
                return False
            self._jobs.put(_Analysis(now_epoch_s, done))
        return True

    def stop(self, timeout_s: float | None = None) -> None:
        """Take no more jobs, finish the queued ones, commit, close the store; wait for the
        thread up to `timeout_s`."""
        with self._budget_lock:
            self._closing = True
            self._jobs.put(_STOP)
        self._thread.join(timeout_s)

    # -- the thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                job = self._next_job()
                if job is None:
                    self._commit()
                elif job is _STOP:
                    break
                elif isinstance(job, _Upload):
                    self._ingest(job)
                elif isinstance(job, _Analysis):
                    self._analyse(job)
        finally:
            try:
                self._commit()
            finally:
                self.pipeline.close()

    def _next_job(self) -> object | None:
        """The next job; None when the open group is due for its commit first."""
        if not self._group:
            return self._jobs.get()
        try:
            if self.ack_on_commit:
                return self._jobs.get_nowait()
            wait_s = self._group_started_s + self.commit_wait_s - time.monotonic()
            return self._jobs.get(timeout=wait_s) if wait_s > 0 else None
        except queue.Empty:
            return None

    def _ingest(self, job: _Upload) -> None:
        with self._budget_lock:
            self._queued_uploads -= 1
            self._queued_bytes -= len(job.body)
        try:
            outcome = self.pipeline.handle(job.body)
        except Exception:  # not about the input: the store failed
            _log.exception("storage error while storing an upload; the open group rolls back")
            self._roll_back()
            job.answer(None)
            return
        m = self.metrics
        if not outcome.accepted:
            m.rejections.labels(outcome.reason_code or "unknown").inc()
            job.answer(UploadAnswer(outcome, False, 0, self._committed_through, self.instance))
            return
        self._receipts += 1
        if not self._group:
            self._group_started_s = time.monotonic()
        self._group.append((job, outcome, self._receipts))
        m.uncommitted.set(len(self._group))
        if not self.ack_on_commit:
            job.answer(
                UploadAnswer(outcome, False, self._receipts, self._committed_through, self.instance)
            )
        if outcome.committed:  # the service committed the group (commit_every reached)
            self._committed()

    def _commit(self) -> None:
        """Commit the open group, then answer it (``commit`` acks)."""
        if not self._group:
            return
        try:
            self.pipeline.uploads.flush()
        except Exception:
            _log.exception("storage error at commit; the open group rolls back")
            self._roll_back()
            return
        self._committed()

    def _committed(self) -> None:
        group, self._group = self._group, []
        m = self.metrics
        self._committed_through = group[-1][2]
        m.commits.inc()
        m.commit_group.observe(len(group))
        m.uncommitted.set(0)
        for job, outcome, receipt in group:
            m.readings_stored.inc(outcome.inserted)
            m.readings_duplicate.inc(outcome.duplicates)
            m.readings_conflicting.inc(outcome.conflicts)
            if self.ack_on_commit:
                job.answer(
                    UploadAnswer(outcome, True, receipt, self._committed_through, self.instance)
                )

    def _roll_back(self) -> None:
        group, self._group = self._group, []
        self.metrics.uncommitted.set(0)
        if group:
            self.metrics.store_errors.inc()
        try:
            self.pipeline.store.rollback()
            self.pipeline.uploads.flush()  # forgets the rolled-back group
        except Exception:
            _log.exception("rollback failed")
        if self.ack_on_commit:
            for job, _, _ in group:
                job.answer(None)

    def _analyse(self, job: _Analysis) -> None:
        self._commit()
        m = self.metrics
        t0 = time.perf_counter()
        try:
            now = job.now_epoch_s
            if now is None:
                now = data_clock_s(self.pipeline.store.readings.latest())
            if now is None:
                job.done(None)  # nothing stored yet: nothing to analyse
                return
            outcome = self.pipeline.analyze(now)
        except Exception as exc:
            _log.exception("batch analysis failed")
            m.analysis_failures.inc()
            job.done(exc)
            return
        m.analysis_duration.observe(time.perf_counter() - t0)
        m.alerts_raised.inc(len(outcome.detections))
        self.forecasts.add(outcome.forecasts)
        job.done(outcome)
