"""The pipeline service end to end: stored, deduplicated, rejected, timed; uploads of
several channels; batched commits."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.service as service
from pipeline import STAGES, Keyring, Limits, Pipeline, ReadingType, RejectedUpload, seal
from pipeline.fetch.parse import parse_upload
from pipeline.process.scanner import scan_source
from tests.espi_feeds import BILLION_LAUGHS, Channel, meter_upload

T0 = 1_782_000_000
STEP_S = 60
#: The series of `upload`.
ENERGY = ReadingType(uom=72, power_of_ten_multiplier=0, interval_length_s=STEP_S, flow_direction=1)


def upload(
    values: np.ndarray | list[int],
    first: int = 0,
    *,
    meter_id: str = "pv-1",
    seq: int | None = None,
    flow_direction: int = 1,
    uom: int = 72,
    duration_s: int = STEP_S,
) -> bytes:
    """A single-channel meter upload of `values` for intervals first, first+1, ... (60 s
    each)."""
    fields = {
        "flowDirection": flow_direction,
        "intervalLength": STEP_S,
        "powerOfTenMultiplier": 0,
        "uom": uom,
    }
    starts = [T0 + STEP_S * (first + i) for i in range(len(values))]
    channel = Channel(fields, [int(v) for v in values])
    return meter_upload(
        meter_id, first if seq is None else seq, starts, [channel], duration_s=duration_s
    )


def quiet(n: int, seed: int = 5) -> np.ndarray:
    return 1000 + np.random.default_rng(seed).integers(-3, 4, n)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "mdc.sqlite"


@pytest.fixture
def pipe(db: Path) -> Iterator[Pipeline]:
    with Pipeline(db) as opened:
        yield opened


def test_good_upload_is_stored_and_counted(pipe: Pipeline, db: Path) -> None:
    body = upload(quiet(15), seq=41)
    outcome = pipe.handle(body)
    assert outcome.accepted
    assert outcome.reason is None
    assert (outcome.meter_id, outcome.sequence_no) == ("pv-1", 41)
    assert (outcome.size_bytes, outcome.n_readings) == (len(body), 15)
    assert (outcome.inserted, outcome.duplicates) == (15, 0)
    assert (outcome.stage_ns, outcome.rejected_stage) == (None, None)
    assert (outcome.n_series, outcome.committed, outcome.reason_code) == (1, True, None)
    assert pipe.store.readings.count() == 15
    with sqlite3.connect(db) as conn:
        values = [v for (v,) in conn.execute("SELECT value FROM readings ORDER BY start_s")]
    assert values == quiet(15).tolist()


def test_same_upload_again_is_all_duplicates(pipe: Pipeline) -> None:
    body = upload(quiet(15))
    pipe.handle(body)
    again = pipe.handle(body)
    assert again.accepted
    assert (again.n_readings, again.inserted, again.duplicates) == (15, 0, 15)
    assert pipe.store.readings.count() == 15


def test_a_resend_with_other_values_is_recorded_not_stored(pipe: Pipeline, db: Path) -> None:
    """A meter that sends other values for stored intervals (a relabelled reading after a
    clock jump): accepted, the stored values kept, each other value counted as a conflict
    and recorded with the upload's sequence number; identical readings stay duplicates."""
    values = quiet(15)
    pipe.handle(upload(values))
    changed = values.copy()
    changed[[2, 7, 11]] += 100
    outcome = pipe.handle(upload(changed, seq=1))
    assert outcome.accepted and outcome.reason is None
    assert (outcome.n_readings, outcome.inserted, outcome.duplicates) == (15, 0, 12)
    assert outcome.conflicts == 3
    assert pipe.store.readings.read_series("pv-1", ENERGY).raw_value.tolist() == values.tolist()
    with sqlite3.connect(db) as conn:
        recorded = conn.execute(
            "SELECT start_s, value, stored_value, sequence_no FROM revisions ORDER BY start_s"
        ).fetchall()
    assert recorded == [(T0 + STEP_S * i, int(changed[i]), int(values[i]), 1) for i in (2, 7, 11)]
    again = pipe.handle(upload(values, seq=2))  # the original again: all duplicates
    assert (again.inserted, again.duplicates, again.conflicts) == (0, 15, 0)


def test_billion_laughs_is_rejected_and_the_pipeline_goes_on(pipe: Pipeline) -> None:
    outcome = pipe.handle(BILLION_LAUGHS, time.thread_time_ns)
    assert not outcome.accepted
    assert outcome.reason is not None and outcome.reason.startswith("dtd_forbidden:")
    assert (outcome.n_readings, outcome.inserted, outcome.meter_id) == (0, 0, None)
    assert outcome.size_bytes == len(BILLION_LAUGHS)
    assert outcome.stage_ns is not None and set(outcome.stage_ns) == {"fetch"}
    assert outcome.rejected_stage == "fetch"
    assert (outcome.reason_code, outcome.committed) == ("dtd_forbidden", False)
    assert pipe.uploads.rejections == {"dtd_forbidden": 1}
    after = pipe.handle(upload(quiet(15)))
    assert after.accepted and after.inserted == 15


def test_rejection_in_process_names_the_upload(pipe: Pipeline) -> None:
    body = upload(quiet(3), seq=9).replace(b"<value>", b"<value>x", 1)
    outcome = pipe.handle(body, time.thread_time_ns)
    assert not outcome.accepted
    assert outcome.reason is not None and outcome.reason.startswith("non_integer:")
    assert (outcome.meter_id, outcome.sequence_no) == ("pv-1", 9)
    assert outcome.stage_ns is not None and list(outcome.stage_ns) == ["fetch", "process"]
    assert outcome.rejected_stage == "process"
    assert pipe.store.readings.count() == 0


@pytest.mark.parametrize("sealed", [False, True])
def test_the_nesting_limit_holds_where_the_scanner_counts_it(db: Path, sealed: bool) -> None:
    """An upload the scanner reads has its nesting counted in the bytes, not walked by the
    fetch stage's XPath: the limit is the same, and so is the reason (the feed's title,
    at depth 2, holding elements 6 deep puts the deepest at 8)."""
    body = upload(quiet(3)).replace(b"<title>", b"<title>" + b"<x>" * 6 + b"</x>" * 6, 1)
    scanned = scan_source(body)
    assert scanned.channels and scanned.nesting == 8  # the scanner reads and counts it
    key = bytes(range(32))
    for max_depth, accepted in ((7, False), (8, True)):
        limits = Limits(max_depth=max_depth)
        keyring = Keyring({"pv-1": key}) if sealed else None
        with Pipeline(
            db.with_suffix(f".{max_depth}.sqlite"), limits=limits, keyring=keyring
        ) as pipe:
            outcome = pipe.handle(seal("pv-1", 0, body, key) if sealed else body)
        assert outcome.accepted == accepted
        if not accepted:
            with pytest.raises(RejectedUpload) as by_xpath:
                parse_upload(body, limits)
            assert outcome.reason == by_xpath.value.reason
            assert outcome.rejected_stage == "fetch"


def test_an_upload_too_large_to_scan_first_is_read_alike(pipe: Pipeline) -> None:
    """A body that could hold more elements than the limit (over 800 kB by default) is
    parsed before anything reads it: a meter's upload of 8,000 buffered readings is stored
    whole all the same."""
    values = quiet(8_000)
    body = upload(values)
    assert not pipe.uploads.limits.size_always_admitted(len(body))
    outcome = pipe.handle(body)
    assert outcome.accepted and outcome.inserted == 8_000
    stored = pipe.store.readings.read_series("pv-1", ENERGY, T0, T0 + STEP_S * 8_000)
    assert stored.raw_value.tolist() == values.tolist()


def test_bytes_that_are_not_utf8_in_a_scanned_upload_are_rejected_as_such(pipe: Pipeline) -> None:
    """The scan comes before the parse and reads the feed id; the parse still decides."""
    body = upload(quiet(3)).replace(b"pv-1:", b"pv-\xff1:", 1)
    outcome = pipe.handle(body)
    assert outcome.reason_code == "unsupported_encoding"


def test_rejection_in_store_keeps_nothing(pipe: Pipeline) -> None:
    pipe.handle(upload(quiet(5)))
    outcome = pipe.handle(upload(quiet(5), 5, duration_s=0))  # breaks CHECK (duration_s > 0)
    assert not outcome.accepted
    assert outcome.reason is not None and outcome.reason.startswith("invalid_reading:")
    assert (outcome.meter_id, outcome.rejected_stage) == ("pv-1", "store")
    assert pipe.store.readings.count() == 5
    assert pipe.uploads.rejections == {"invalid_reading": 1}


def test_another_unit_of_one_meter_is_another_series(pipe: Pipeline) -> None:
    pipe.handle(upload(quiet(5)))
    outcome = pipe.handle(upload(quiet(5), uom=38))  # same meter and starts, W instead of Wh
    assert outcome.accepted and (outcome.inserted, outcome.duplicates) == (5, 0)
    assert pipe.store.readings.count() == 10


def test_stage_costs_with_a_clock(pipe: Pipeline) -> None:
    outcome = pipe.handle(upload(quiet(15)), time.thread_time_ns)
    assert outcome.stage_ns is not None
    assert tuple(outcome.stage_ns) == STAGES == ("fetch", "process", "store", "analyze")
    assert all(isinstance(ns, int) and ns >= 0 for ns in outcome.stage_ns.values())
    # a fake clock that ticks 10 ns per call: each stage costs exactly one tick
    ticks = iter(range(0, 10_000, 10))
    outcome = pipe.handle(upload(quiet(15), 15), lambda: next(ticks))
    assert outcome.stage_ns == dict.fromkeys(STAGES, 10)


def test_uploads_raise_no_alerts(pipe: Pipeline, db: Path) -> None:
    """Faults are found by the batch analysis (`Pipeline.analyze`) over the stored history,
    never by `handle`, even on a spike."""
    values = quiet(120)
    values[100] += 500
    outcomes = [pipe.handle(upload(values[i : i + 15], i)) for i in range(0, 120, 15)]
    assert all(o.accepted and o.inserted == 15 for o in outcomes)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0


def test_flow_directions_are_separate_series(pipe: Pipeline) -> None:
    delivered, received = quiet(60, seed=1), quiet(60, seed=2) + 4000
    for i in range(0, 60, 15):
        a = pipe.handle(upload(delivered[i : i + 15], i, flow_direction=1))
        b = pipe.handle(upload(received[i : i + 15], i, flow_direction=19))
        assert (a.inserted, b.inserted) == (15, 15)
    assert pipe.store.readings.count() == 120


def test_unforeseen_error_while_processing_is_a_rejection(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(root: object, feed_id: object = None, *, scanned: object = None) -> object:
        raise TypeError("surprise")

    monkeypatch.setattr(service, "extract_batches", broken)
    outcome = pipe.handle(upload(quiet(3)))
    assert not outcome.accepted
    assert outcome.reason == "processing_error: TypeError: surprise"
    assert outcome.reason_code == "processing_error"
    assert pipe.uploads.rejections == {"processing_error": 1}


def test_real_green_button_file(pipe: Pipeline, greenbutton_dir: Path) -> None:
    outcome = pipe.handle((greenbutton_dir / "nist_15minLP_15Days.xml").read_bytes())
    assert outcome.accepted
    assert (outcome.meter_id, outcome.sequence_no, outcome.inserted) == ("01", None, 1340)


def test_reads_the_twin_encoder_output(pipe: Pipeline) -> None:
    espi = pytest.importorskip("meters.espi")
    espi_upload = pytest.importorskip("meters.espi_upload")
    spec = espi.ReadingTypeSpec(interval_length_s=900, flow_direction=19)
    starts = T0 + 900 * np.arange(15, dtype=np.int64)
    values = quiet(15)
    body = espi_upload.encode_upload("pv-site_01.m", 12, spec, starts, values, T0 + 7200)
    outcome = pipe.handle(body)
    assert outcome.accepted, outcome.reason
    assert (outcome.meter_id, outcome.sequence_no, outcome.inserted) == ("pv-site_01.m", 12, 15)


NUMBER_TEXT = re.compile(rb">(-?\d+)<")
ODD_NUMBERS = [b"", b"-5", b"0", b"3.5", b"99999999999999999999", b" 7 ", b"x", b"1e3", b"&#55;"]


@st.composite
def damaged_uploads(draw: st.DrawFn) -> bytes:
    """A good upload with 1-3 faults: cut, overwritten, bytes or markup inserted, or a
    number (a start, duration, value or ReadingType field) replaced by an odd one."""
    body = bytearray(upload(quiet(15), draw(st.integers(0, 3)) * 15))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["cut", "overwrite", "insert", "markup"] + ["number"] * 4))
        if action == "cut":
            del body[at:]
        elif action == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=12))
            body[at : at + len(chunk)] = chunk
        elif action == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif action == "markup":
            markup = [b"<!DOCTYPE x>", b"<a>", b"</value>", b"&x;", b"<value>1</value>"]
            body[at:at] = draw(st.sampled_from(markup))
        else:
            numbers = list(NUMBER_TEXT.finditer(body))
            if numbers:
                match = draw(st.sampled_from(numbers))
                body[match.start(1) : match.end(1)] = draw(st.sampled_from(ODD_NUMBERS))
    return bytes(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(damaged_uploads(), min_size=1, max_size=4))
def test_damaged_uploads_never_raise(
    tmp_path_factory: pytest.TempPathFactory, bodies: list[bytes]
) -> None:
    with Pipeline(tmp_path_factory.mktemp("fuzz") / "mdc.sqlite") as pipe:
        stored = 0
        for body in bodies:
            outcome = pipe.handle(body, time.thread_time_ns)
            if outcome.accepted:
                assert (
                    outcome.inserted + outcome.duplicates + outcome.conflicts == outcome.n_readings
                )
                stored += outcome.inserted
            else:
                assert outcome.reason and ": " in outcome.reason
                assert (outcome.n_readings, outcome.inserted) == (0, 0)
            assert pipe.store.readings.count() == stored
        # and a good upload still goes through afterwards
        good = pipe.handle(upload(quiet(15), 100, meter_id="fresh-meter"))
        assert good.accepted and good.inserted == 15


# --- uploads of several channels (docs/upload-format.md) -------------------------------------

#: (uom, flowDirection, kind, powerOfTenMultiplier) of a net meter's channels: energy
#: delivered and received (Wh), voltage (V), current (A), power factor (cosTheta).
NET_METER = [(72, 1, 12, 0), (72, 19, 12, 0), (29, 0, 54, -3), (5, 0, 4, -3), (65, 0, 38, -3)]


def channels_upload(
    columns: dict[int, list[int]], first: int, *, meter_id: str = "net-1", seq: int | None = None
) -> bytes:
    """A meter upload with channel k (index into `NET_METER`) carrying `columns[k]` at
    intervals first, first+1, ... (60 s each)."""
    n = len(next(iter(columns.values())))
    channels = []
    for k, values in columns.items():
        uom, flow, kind, p10 = NET_METER[k]
        fields = {
            "flowDirection": flow,
            "intervalLength": STEP_S,
            "kind": kind,
            "powerOfTenMultiplier": p10,
            "uom": uom,
        }
        channels.append(Channel(fields, values))
    starts = [T0 + STEP_S * (first + i) for i in range(n)]
    return meter_upload(meter_id, first if seq is None else seq, starts, channels)


def net_meter_columns(n: int, seed: int = 3) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        0: 500 + rng.integers(-3, 4, n),
        1: 200 + rng.integers(-3, 4, n),
        2: 230_000 + rng.integers(-500, 500, n),
        3: 12_000 + rng.integers(-100, 100, n),
        4: 980 + rng.integers(-5, 5, n),
    }


def window(
    columns: dict[int, np.ndarray], lo: int, hi: int, keep: tuple[int, ...]
) -> dict[int, list[int]]:
    return {k: columns[k][lo:hi].tolist() for k in keep}


def stored_series(db: Path) -> dict[tuple[int, int, int], list[tuple[int, int]]]:
    """(uom, flow_direction, kind) -> [(start_s, value)] as committed in the database."""
    out: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    with sqlite3.connect(db) as conn:
        for uom, flow, kind, start_s, value in conn.execute(
            "SELECT uom, flow_direction, kind, start_s, value FROM readings ORDER BY start_s"
        ):
            out.setdefault((uom, flow, kind), []).append((start_s, value))
    return out


def test_multi_channel_round_trip(pipe: Pipeline, db: Path) -> None:
    columns = net_meter_columns(30)
    everything = (0, 1, 2, 3, 4)
    outcomes = [
        pipe.handle(channels_upload(window(columns, lo, lo + 15, everything), lo)) for lo in (0, 15)
    ]
    for outcome in outcomes:
        assert outcome.accepted, outcome.reason
        assert (outcome.n_series, outcome.n_readings, outcome.inserted) == (5, 75, 75)
        assert outcome.duplicates == 0
    assert pipe.store.readings.count() == 150
    series = stored_series(db)
    assert len(series) == 5
    for k, (uom, flow, kind, _) in enumerate(NET_METER):
        assert series[(uom, flow, kind)] == [
            (T0 + STEP_S * i, int(v)) for i, v in enumerate(columns[k])
        ]


def test_mixed_channel_duplicates(pipe: Pipeline) -> None:
    """A re-delivery that overlaps in time and brings a channel the first delivery did not
    have: only the new readings are stored, per series."""
    columns = net_meter_columns(20)
    first = pipe.handle(channels_upload(window(columns, 0, 10, (0, 2)), 0, seq=1))
    assert (first.n_readings, first.inserted, first.duplicates) == (20, 20, 0)
    # intervals 5..14 of energy (5 known), voltage (5 known) and current (all new)
    second = pipe.handle(channels_upload(window(columns, 5, 15, (0, 2, 3)), 5, seq=2))
    assert second.accepted, second.reason
    assert (second.n_series, second.n_readings) == (3, 30)
    assert (second.inserted, second.duplicates) == (5 + 5 + 10, 5 + 5)
    again = pipe.handle(channels_upload(window(columns, 5, 15, (0, 2, 3)), 5, seq=2))
    assert (again.inserted, again.duplicates) == (0, 30)
    assert pipe.store.readings.count() == 15 + 15 + 10


# --- batched commits ------------------------------------------------------------------------


def mixed_workload() -> list[bytes]:
    """Net-meter and single-channel uploads with re-deliveries and rejections."""
    columns = net_meter_columns(120)
    bodies: list[bytes] = []
    for lo in range(0, 120, 15):
        body = channels_upload(window(columns, lo, lo + 15, (0, 1, 2)), lo)
        bodies += [body, upload(quiet(15, lo), lo, meter_id=f"pv-{lo % 4}")]
        if lo % 30 == 0:
            bodies.append(body)  # re-delivery
        if lo == 45:
            bodies += [BILLION_LAUGHS, upload(quiet(5), 3, duration_s=0)]  # fetch, store
    return bodies


def database_content(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM readings ORDER BY 1, 2, 3, 4, 5, 11").fetchall()


def test_batched_commit_stores_exactly_what_per_upload_commit_stores(tmp_path: Path) -> None:
    bodies = mixed_workload()
    runs = []
    for every in (1, 4):
        db = tmp_path / f"every-{every}.sqlite"
        with Pipeline(db, commit_every=every) as pipe:
            outcomes = [pipe.handle(body) for body in bodies]
            rejections = dict(pipe.uploads.rejections)
        runs.append((outcomes, rejections, database_content(db)))
    (per_upload, rejections_1, content_1), (batched, rejections_4, content_4) = runs
    assert content_4 == content_1
    assert len(content_1) > 0
    assert rejections_4 == rejections_1 == {"dtd_forbidden": 1, "invalid_reading": 1}
    assert [replace(o, committed=False) for o in batched] == [
        replace(o, committed=False) for o in per_upload
    ]
    accepted = [o for o in batched if o.accepted]
    assert [o.committed for o in accepted] == [(i + 1) % 4 == 0 for i in range(len(accepted))]
    assert all(o.committed for o in per_upload if o.accepted)


def test_batched_uploads_are_durable_only_after_the_commit(db: Path) -> None:
    with Pipeline(db, commit_every=3) as pipe:
        for i in range(2):
            outcome = pipe.handle(upload(quiet(15), 15 * i))
            assert outcome.accepted and not outcome.committed
        assert pipe.uploads.pending_uploads == 2
        assert pipe.store.readings.count() == 30  # the pipeline's own connection sees them
        with sqlite3.connect(db) as other:
            assert other.execute("SELECT count(*) FROM readings").fetchone()[0] == 0
        assert pipe.uploads.flush() == 2
        assert pipe.uploads.pending_uploads == 0
        with sqlite3.connect(db) as other:
            assert other.execute("SELECT count(*) FROM readings").fetchone()[0] == 30
        pipe.handle(upload(quiet(15), 30))
    with sqlite3.connect(db) as other:  # close commits the rest
        assert other.execute("SELECT count(*) FROM readings").fetchone()[0] == 45


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_commit_every_must_be_a_positive_int(db: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="commit_every"):
        Pipeline(db, commit_every=bad)  # type: ignore[arg-type]
