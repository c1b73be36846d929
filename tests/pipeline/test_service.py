"""The pipeline service end to end: stored, deduplicated, rejected, alerted, timed."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.service as service
from pipeline.analyze import RobustZScoreDetector
from pipeline.fetch import Limits
from pipeline.service import STAGES, Pipeline

ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"
T0 = 1_782_000_000
STEP_S = 60


def upload(
    values: np.ndarray | list[int],
    first: int = 0,
    *,
    meter_id: str = "pv-1",
    seq: int | None = None,
    flow_direction: int = 1,
    uom: int = 72,
) -> bytes:
    """A twin-style upload of `values` for intervals first, first+1, ... (60 s each)."""
    seq = first if seq is None else seq
    readings = "".join(
        f"<IntervalReading><timePeriod><duration>{STEP_S}</duration>"
        f"<start>{T0 + STEP_S * (first + i)}</start></timePeriod><value>{int(v)}</value>"
        "</IntervalReading>"
        for i, v in enumerate(values)
    )
    up = f"/espi/1_1/resource/UsagePoint/{meter_id}"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="{ATOM_NS}">'
        f"<id>urn:imdc:upload:{meter_id}:{seq}</id><title>upload</title>"
        f'<entry><id>urn:x:1</id><link rel="self" href="{up}"/><content>'
        f'<UsagePoint xmlns="{ESPI_NS}"><ServiceCategory><kind>0</kind></ServiceCategory>'
        "</UsagePoint></content></entry>"
        f'<entry><id>urn:x:2</id><link rel="self" href="/espi/1_1/resource/ReadingType/1"/>'
        f'<content><ReadingType xmlns="{ESPI_NS}"><flowDirection>{flow_direction}'
        f"</flowDirection><intervalLength>{STEP_S}</intervalLength>"
        f"<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>{uom}</uom></ReadingType>"
        "</content></entry>"
        f'<entry><id>urn:x:3</id><link rel="self" href="{up}/MeterReading/1/IntervalBlock/1"/>'
        f'<content><IntervalBlock xmlns="{ESPI_NS}">{readings}</IntervalBlock></content>'
        "</entry></feed>"
    ).encode()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + ("" if i == 1 else str(i - 1)) + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + f']><feed xmlns="{ATOM_NS}"><id>&lol9;</id></feed>'.encode()
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
    assert (outcome.inserted, outcome.duplicates, outcome.alerts) == (15, 0, 0)
    assert (outcome.stage_ns, outcome.rejected_stage) == (None, None)
    assert pipe.store.count_readings() == 15
    with sqlite3.connect(db) as conn:
        values = [v for (v,) in conn.execute("SELECT value FROM readings ORDER BY start_s")]
    assert values == quiet(15).tolist()


def test_same_upload_again_is_all_duplicates(pipe: Pipeline) -> None:
    body = upload(quiet(15))
    pipe.handle(body)
    again = pipe.handle(body)
    assert again.accepted
    assert (again.n_readings, again.inserted, again.duplicates) == (15, 0, 15)
    assert pipe.store.count_readings() == 15


def test_billion_laughs_is_rejected_and_the_pipeline_goes_on(pipe: Pipeline) -> None:
    outcome = pipe.handle(BILLION_LAUGHS, time.thread_time_ns)
    assert not outcome.accepted
    assert outcome.reason is not None and outcome.reason.startswith("dtd_forbidden:")
    assert (outcome.n_readings, outcome.inserted, outcome.meter_id) == (0, 0, None)
    assert outcome.size_bytes == len(BILLION_LAUGHS)
    assert outcome.stage_ns is not None and set(outcome.stage_ns) == {"fetch"}
    assert outcome.rejected_stage == "fetch"
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
    assert pipe.store.count_readings() == 0


def test_rejection_in_store_keeps_nothing(pipe: Pipeline) -> None:
    pipe.handle(upload(quiet(5)))
    outcome = pipe.handle(upload(quiet(5), 5, uom=38))  # same meter, other unit
    assert not outcome.accepted
    assert outcome.reason is not None and outcome.reason.startswith("reading_type_conflict:")
    assert (outcome.meter_id, outcome.rejected_stage) == ("pv-1", "store")
    assert pipe.store.count_readings() == 5


def test_stage_costs_with_a_clock(pipe: Pipeline) -> None:
    outcome = pipe.handle(upload(quiet(15)), time.thread_time_ns)
    assert outcome.stage_ns is not None
    assert tuple(outcome.stage_ns) == STAGES == ("fetch", "process", "store", "analyze")
    assert all(isinstance(ns, int) and ns >= 0 for ns in outcome.stage_ns.values())
    # a fake clock that ticks 10 ns per call: each stage costs exactly one tick
    ticks = iter(range(0, 10_000, 10))
    outcome = pipe.handle(upload(quiet(15), 15), lambda: next(ticks))
    assert outcome.stage_ns == dict.fromkeys(STAGES, 10)


def test_spike_alert_is_stored(pipe: Pipeline, db: Path) -> None:
    values = quiet(120)
    values[100] += 500
    outcomes = [pipe.handle(upload(values[i : i + 15], i)) for i in range(0, 120, 15)]
    assert [o.alerts for o in outcomes] == [0] * 6 + [1, 0]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT meter_id, start_s, kind, value FROM alerts").fetchall()
    assert rows == [("pv-1", T0 + STEP_S * 100, "robust_z_spike", float(values[100]))]
    # a re-delivered upload stores nothing and alerts nothing
    again = pipe.handle(upload(values[90:105], 90))
    assert (again.inserted, again.alerts) == (0, 0)


def test_flow_directions_get_their_own_detector(db: Path) -> None:
    detector = RobustZScoreDetector(window=20)
    with Pipeline(db, Limits(), detector) as pipe:
        delivered, received = quiet(60, seed=1), quiet(60, seed=2) + 4000
        received[40] += 1500  # a spike well past the 2 % relative MAD floor
        alerts = []
        for i in range(0, 60, 15):
            a = pipe.handle(upload(delivered[i : i + 15], i, flow_direction=1))
            b = pipe.handle(upload(received[i : i + 15], i, flow_direction=19))
            alerts.append((a.alerts, b.alerts))
        # one shared series would have jumped by 4000 at every upload, or ignored the
        # received readings as not newer than the delivered ones
        assert alerts == [(0, 0), (0, 0), (0, 1), (0, 0)]
        assert pipe.store.count_readings() == 120
        assert pipe.detector is detector


def test_unforeseen_error_while_processing_is_a_rejection(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(root: object) -> object:
        raise TypeError("surprise")

    monkeypatch.setattr(service, "extract_readings", broken)
    outcome = pipe.handle(upload(quiet(3)))
    assert not outcome.accepted
    assert outcome.reason == "processing_error: TypeError: surprise"


def test_real_green_button_file(pipe: Pipeline, greenbutton_dir: Path) -> None:
    outcome = pipe.handle((greenbutton_dir / "nist_15minLP_15Days.xml").read_bytes())
    assert outcome.accepted
    assert (outcome.meter_id, outcome.sequence_no, outcome.inserted) == ("01", None, 1340)


def test_reads_the_twin_encoder_output(pipe: Pipeline) -> None:
    espi = pytest.importorskip("meters.espi")
    spec = espi.ReadingTypeSpec(interval_length_s=900, flow_direction=19)
    starts = T0 + 900 * np.arange(15, dtype=np.int64)
    values = quiet(15)
    body = espi.encode_upload("pv-site_01.m", 12, spec, starts, values, T0 + 7200)
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
                assert outcome.inserted + outcome.duplicates == outcome.n_readings
                stored += outcome.inserted
            else:
                assert outcome.reason and ": " in outcome.reason
                assert (outcome.n_readings, outcome.inserted) == (0, 0)
            assert pipe.store.count_readings() == stored
        # and a good upload still goes through afterwards
        good = pipe.handle(upload(quiet(15), 100, meter_id="fresh-meter"))
        assert good.accepted and good.inserted == 15
