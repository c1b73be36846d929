"""The writer thread on its own (no HTTP): what each ack mode answers and when, group
commits, the queue's bounds, a storage error's rollback, and the JSON of the answers."""

from __future__ import annotations

import json
import math
import queue
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import Detection, ForecastRecord, Keyring, Pipeline, Recommendation, Store
from pipeline.analyze.batch import AnalysisOutcome
from pipeline.analyze.digest import FleetDigest
from pipeline.serve.forecasts import ForecastBook
from pipeline.serve.metrics import ServiceMetrics
from pipeline.serve.wire import UploadAnswer, analysis_from_json, analysis_json
from pipeline.serve.writer import Writer
from tests.serve_process import sealed_upload

KEY = bytes(range(32))
#: Longest wait for one answer from the writer thread, s.
ANSWER_TIMEOUT_S = 60.0


class Harness:
    """A writer on a fresh store; `answers` collects what it answers."""

    def __init__(self, db: Path, ack: str, commit_wait_s: float = 0.0, **bounds: int) -> None:
        self.pipeline = Pipeline(db, commit_every=256, keyring=Keyring({"pv-1": KEY}))
        self.answers: queue.SimpleQueue[tuple[int, UploadAnswer | None]] = queue.SimpleQueue()
        self.metrics = ServiceMetrics(lambda: 0)
        self.writer = Writer(
            self.pipeline,
            ack=ack,
            commit_wait_s=commit_wait_s,
            metrics=self.metrics,
            forecasts=ForecastBook(),
            instance="test",
            queue_uploads=bounds.get("queue_uploads", 1000),
            queue_bytes=bounds.get("queue_bytes", 10**8),
        )

    def submit(self, seq: int) -> bool:
        return self.writer.submit_upload(
            sealed_upload("pv-1", seq, KEY), lambda a: self.answers.put((seq, a))
        )

    def answer(self) -> tuple[int, UploadAnswer | None]:
        return self.answers.get(timeout=ANSWER_TIMEOUT_S)

    def sample(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value(name)
        return 0.0 if value is None else value


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "mdc.sqlite"


def rows(db: Path) -> int:
    with Store(db, read_only=True) as store:
        return store.readings.count()


def test_commit_acks_come_after_one_group_commit(db: Path) -> None:
    h = Harness(db, "commit")
    for seq in range(50):  # queued before the thread starts: it takes them as one group
        assert h.submit(seq)
    h.writer.start()
    answers = dict(h.answer() for _ in range(50))
    assert all(a is not None and a.committed for a in answers.values())
    assert [answers[s].receipt for s in range(50)] == list(range(1, 51))  # type: ignore[union-attr]
    assert all(a.committed_through == 50 for a in answers.values())  # type: ignore[union-attr]
    assert h.sample("mdc_commits_total") == 1
    assert h.sample("mdc_commit_group_uploads_sum") == 50
    assert rows(db) == 50 * 15  # committed: another connection sees them
    h.writer.stop(ANSWER_TIMEOUT_S)


def test_receipt_acks_come_before_the_commit_and_the_stop_commits(db: Path) -> None:
    h = Harness(db, "receipt", commit_wait_s=3600.0)
    h.writer.start()
    for seq in range(5):
        h.submit(seq)
        _, answer = h.answer()
        assert answer is not None and answer.outcome.accepted and not answer.committed
        assert answer.committed_through == 0
    assert rows(db) == 0  # acknowledged, not yet committed
    assert h.sample("mdc_uncommitted_uploads") == 5
    done: queue.SimpleQueue[object] = queue.SimpleQueue()
    h.writer.submit_analysis(None, done.put)  # the open group is committed first
    assert isinstance(done.get(timeout=ANSWER_TIMEOUT_S), AnalysisOutcome)
    assert rows(db) == 5 * 15 and h.writer.committed_through == 5
    h.submit(5)
    h.answer()
    h.writer.stop(ANSWER_TIMEOUT_S)  # the stop commits what was acknowledged
    assert rows(db) == 6 * 15


def test_rejections_are_answered_at_once_and_commit_nothing(db: Path) -> None:
    h = Harness(db, "commit")
    h.writer.start()
    assert h.writer.submit_upload(b"not sealed", lambda a: h.answers.put((0, a)))
    _, answer = h.answer()
    assert answer is not None and answer.outcome.reason_code == "auth_bad_envelope"
    assert answer.receipt == 0 and answer.status == 400
    assert h.sample("mdc_commits_total") == 0
    h.writer.stop(ANSWER_TIMEOUT_S)


def test_the_queue_refuses_beyond_its_bounds(db: Path) -> None:
    h = Harness(db, "commit", queue_uploads=2)
    assert h.submit(0) and h.submit(1) and not h.submit(2)
    size = len(sealed_upload("pv-1", 0, KEY))
    small = Harness(db.with_name("b.sqlite"), "commit", queue_bytes=size + 10)
    assert small.submit(0) and not small.submit(1)
    for harness in (h, small):
        harness.writer.start()
        harness.writer.stop(ANSWER_TIMEOUT_S)
    assert not h.submit(3)  # stopped


@pytest.mark.parametrize("ack", ["commit", "receipt"])
def test_a_storage_error_rolls_the_group_back(
    db: Path, ack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(db, ack, commit_wait_s=3600.0)
    real = h.pipeline.handle
    calls = {"n": 0}

    def failing(body: bytes, clock: Any = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return real(body, clock)

    monkeypatch.setattr(h.pipeline, "handle", failing)
    h.submit(0)
    h.submit(1)
    h.writer.start()
    answers = dict(h.answer() for _ in range(2))
    assert answers[1] is None  # no answer: the meter sends it again
    if ack == "commit":
        assert answers[0] is None  # its group was rolled back before its commit
    else:
        assert answers[0] is not None and not answers[0].committed  # acknowledged, then lost
    assert h.sample("mdc_store_errors_total") == 1
    h.submit(2)  # the writer goes on
    assert h.answer()[1] is not None
    h.writer.stop(ANSWER_TIMEOUT_S)
    assert rows(db) == 15


def test_answers_round_trip_through_json(db: Path) -> None:
    with Pipeline(db, keyring=Keyring({"pv-1": KEY})) as pipeline:
        outcome = pipeline.handle(sealed_upload("pv-1", 3, KEY))
    answer = UploadAnswer(outcome, True, 7, 7, "abc")
    again = UploadAnswer.from_json(answer.to_json())
    assert again == UploadAnswer(outcome, True, 7, 7, "abc")
    detection = Detection("inverter_trip", "pv-1", 10, 20, 20, 0.9, math.nan, "tripped")
    forecast = ForecastRecord(
        "pv-1", 19, "blend", 3600, 3600, 2, (1.0, math.inf), "smart_persistence", (2.0, 3.0)
    )
    cutout = Detection("storm_cutout", "wt-1", 10, 20, 20, 1.0, 0.0, "cut out")
    advice = Recommendation(
        "inverter_trip", "pv-1", math.nan, -79.9, 10, 20, "reset", 1.5, True, 0.18, "high", "!"
    )
    digest = FleetDigest(0, 86400, {"pv": 1}, {"pv": 2.5}, {"inverter_trip": 1}, [advice], "d")
    outcome = AnalysisOutcome(
        now_s=99,
        detections=[detection],
        forecasts=[forecast],
        events=[cutout],
        recommendations=[advice],
        digest=digest,
    )
    analysed = analysis_from_json(json.loads(json.dumps(analysis_json(outcome))))
    assert analysed.now_s == 99 and analysed.detections[0].kind == "inverter_trip"
    assert math.isnan(analysed.detections[0].magnitude)  # JSON null for a NaN
    assert math.isnan(analysed.forecasts[0].forecast_wh[1])
    assert analysed.forecasts[0].reference_wh == (2.0, 3.0)
    assert analysed.events == [cutout]
    (back,) = analysed.recommendations
    assert math.isnan(back.latitude_deg)  # a site without a place: null, NaN again
    assert back.to_json() == advice.to_json()
    assert analysed.digest is not None and analysed.digest.to_json() == digest.to_json()


@pytest.fixture
def book() -> Iterator[ForecastBook]:
    yield ForecastBook(keep=2)


def test_the_forecast_book_keeps_the_latest_per_series(book: ForecastBook) -> None:
    def issued(site: str, at_s: int) -> ForecastRecord:
        return ForecastRecord(site, 19, "blend", at_s, 3600, 1, (1.0,), "persistence", (1.0,))

    book.add([issued("a", 1), issued("b", 1), issued("a", 2), issued("a", 3)])
    assert [f.issued_s for f in book.of_site("a")] == [2, 3]
    assert [(f.series_id, f.issued_s) for f in book.latest()] == [("a", 3), ("b", 1)]
