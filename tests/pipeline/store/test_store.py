"""SQLite store: schema, idempotent upserts per series, raw values kept apart from validated
ones, all-or-nothing units, grouped transactions, alerts once per fault, the site registry
and local times, and durability when the writer process is killed mid-transaction."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline import Pipeline, ReadingBatch, ReadingType, RejectedUpload, SiteMeta, Store
from pipeline.espi.localtime import LocalTime
from pipeline.process.batch import QUALITY_NONE
from pipeline.store.alerts import Detection
from pipeline.store.schema import SCHEMA_VERSION, SITE_COLUMNS
from tests.espi_feeds import Channel, meter_upload

T0 = 1_782_000_000
PROJECT_ROOT = Path(__file__).resolve().parents[3]
ENERGY = ReadingType(uom=72, power_of_ten_multiplier=0, interval_length_s=900, flow_direction=1)
VOLTAGE = ReadingType(29, -3, 900, 0, kind=54, accumulation_behaviour=12)
#: `ENERGY` as an upload writes it.
ENERGY_FIELDS = {"flowDirection": 1, "intervalLength": 900, "uom": 72}


def batch(
    first: int,
    n: int,
    *,
    meter_id: str = "m-1",
    reading_type: ReadingType = ENERGY,
    duration_s: np.ndarray | None = None,
    quality: np.ndarray | None = None,
) -> ReadingBatch:
    """Readings first..first+n-1 of a series: start T0 + 900 i, value 1000 + i."""
    i = np.arange(first, first + n, dtype=np.int64)
    return ReadingBatch.of(
        meter_id,
        first,
        reading_type,
        T0 + 900 * i,
        np.full(n, 900, dtype=np.int64) if duration_s is None else duration_s,
        1000 + i,
        quality,
    )


def stored(path: Path) -> list[tuple[object, ...]]:
    """All readings with their series, read through a separate connection (so only
    committed data shows)."""
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT meter_id, uom, flow_direction, kind, start_s, duration_s, value, raw_quality,"
            " validated_value, validated_quality FROM readings"
            " ORDER BY meter_id, uom, flow_direction, start_s"
        ).fetchall()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "mdc.sqlite"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with Store(db) as opened:
        yield opened


def test_schema_and_journal(store: Store, db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {
            table: [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            for table in ("meters", "reading_types", "interval_readings", "alerts")
        }
        readings_sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'interval_readings'"
        ).fetchone()[0]
    assert columns == {
        "meters": ["meter_key", "meter_id"],
        "reading_types": [
            "reading_type_key",
            "uom",
            "power_of_ten_multiplier",
            "interval_length_s",
            "flow_direction",
            "kind",
            "accumulation_behaviour",
            "commodity",
            "phase",
            "data_qualifier",
        ],
        "interval_readings": [
            "meter_key",
            "reading_type_key",
            "start_s",
            "duration_s",
            "raw_value",
            "raw_quality",
            "validated_value",
            "validated_quality",
        ],
        "alerts": [
            "meter_id",
            "start_s",
            "kind",
            "score",
            "value",
            "created",
            "end_s",
            "detected_s",
            "message",
            "reading_type_key",
        ],
    }
    assert "WITHOUT ROWID" in readings_sql
    assert "PRIMARY KEY (meter_key, reading_type_key, start_s)" in readings_sql


def test_same_batch_twice_is_stored_once(store: Store, db: Path) -> None:
    assert store.readings.upsert_batch(batch(0, 15)) == (15, 0, 0)
    assert store.readings.upsert_batch(batch(0, 15)) == (0, 15, 0)
    assert store.readings.count() == 15
    assert len(stored(db)) == 15


def test_partial_overlap(store: Store) -> None:
    assert store.readings.upsert_batch(batch(0, 10)) == (10, 0, 0)
    assert store.readings.upsert_batch(batch(6, 10)) == (6, 4, 0)  # 6..9 known, 10..15 new
    assert store.readings.upsert_batch(batch(20, 3)) == (3, 0, 0)
    assert store.readings.count() == 19


def test_values_read_back(store: Store, db: Path) -> None:
    b = batch(3, 5, meter_id="pv-9", quality=np.array([0, QUALITY_NONE, 10, 14, 14]))
    store.readings.upsert_batch(b)
    assert stored(db) == [
        ("pv-9", 72, 1, 0, int(s), 900, int(v), q, None, None)
        for s, v, q in zip(b.start_s, b.value, [0, None, 10, 14, 14], strict=True)
    ]
    rows = store.readings.read_series("pv-9", ENERGY)
    assert rows.start_s.tolist() == b.start_s.tolist()
    assert rows.raw_value.tolist() == b.value.tolist()
    assert rows.raw_quality.tolist() == [0, QUALITY_NONE, 10, 14, 14]
    assert np.isnan(rows.validated_value).all()
    assert store.readings.series() == [("pv-9", ENERGY)]
    assert store.readings.read_series("pv-9", VOLTAGE).start_s.shape == (0,)


def test_repeats_within_a_batch_count_as_duplicates(store: Store) -> None:
    b = batch(0, 4)
    twice = replace(
        b,
        start_s=np.tile(b.start_s, 2),
        duration_s=np.tile(b.duration_s, 2),
        value=np.tile(b.value, 2),
    )
    assert store.readings.upsert_batch(twice) == (4, 4, 0)


@pytest.mark.parametrize(
    "other",
    [
        replace(ENERGY, flow_direction=19),  # received energy of a net meter
        VOLTAGE,
        replace(ENERGY, interval_length_s=60),
        replace(ENERGY, power_of_ten_multiplier=-3),
    ],
)
def test_reading_types_are_separate_series(store: Store, other: ReadingType) -> None:
    assert store.readings.upsert_batch(batch(0, 5)) == (5, 0, 0)
    assert store.readings.upsert_batch(batch(0, 5, reading_type=other)) == (5, 0, 0)
    assert store.readings.upsert_batch(batch(0, 5, reading_type=other)) == (0, 5, 0)
    assert store.readings.count() == 10
    assert sorted(rt == ENERGY for _, rt in store.readings.series()) == [False, True]


def test_one_upload_of_several_series_is_one_unit(store: Store, db: Path) -> None:
    store.readings.upsert_batch(batch(0, 2))
    durations = np.full(3, 900, dtype=np.int64)
    durations[1] = 0  # breaks CHECK (duration_s > 0) in the second series
    with pytest.raises(RejectedUpload) as info:
        store.readings.upsert_batches(
            [batch(0, 4), batch(0, 3, reading_type=VOLTAGE, duration_s=durations)]
        )
    assert info.value.code == "invalid_reading"
    assert store.readings.count() == 2 and len(stored(db)) == 2
    assert store.readings.upsert_batches([batch(0, 4), batch(0, 3, reading_type=VOLTAGE)]) == [
        (2, 2, 0),
        (3, 0, 0),
    ]


def test_batch_breaking_a_constraint_is_all_or_nothing(store: Store, db: Path) -> None:
    store.readings.upsert_batch(batch(0, 3))
    durations = np.full(10, 900, dtype=np.int64)
    durations[-1] = 0  # the last row breaks CHECK (duration_s > 0)
    with pytest.raises(RejectedUpload) as info:
        store.readings.upsert_batch(batch(3, 10, duration_s=durations))
    assert info.value.code == "invalid_reading"
    assert (info.value.meter_id, info.value.sequence_no) == ("m-1", 3)
    assert store.readings.count() == 3
    assert len(stored(db)) == 3
    # the store goes on, and the good part of that batch was never stored
    assert store.readings.upsert_batch(batch(3, 9)) == (9, 0, 0)


def test_failure_mid_batch_stores_nothing(store: Store, db: Path) -> None:
    """A value sqlite cannot bind in row 7 of 8: rows 0..6 were inserted, then rolled back."""
    b = batch(0, 8, meter_id="new-meter")
    values = b.value.astype(object)
    values[6] = {"not": "a number"}
    with pytest.raises(sqlite3.Error):
        store.readings.upsert_batch(replace(b, value=values))
    assert store.readings.count() == 0
    assert stored(db) == []
    # the meter row created inside the rolled-back unit is gone, and is created again
    assert store.readings.upsert_batch(b) == (8, 0, 0)
    assert stored(db)[0][0] == "new-meter"


def test_raw_values_are_never_overwritten(store: Store, db: Path) -> None:
    b = batch(0, 4)
    store.readings.upsert_batch(b)
    estimated = np.array([1000.0, np.nan, 1002.5, 7.0])
    quality = np.array([17, 17, 9, 10])
    updated = store.readings.set_validated("m-1", ENERGY, b.start_s, estimated, quality)
    assert updated == 4
    rows = store.readings.read_series("m-1", ENERGY)
    assert rows.raw_value.tolist() == [1000, 1001, 1002, 1003]
    assert rows.validated_value[[0, 2, 3]].tolist() == [1000.0, 1002.5, 7.0]
    assert np.isnan(rows.validated_value[1])
    assert rows.validated_quality.tolist() == [17, 17, 9, 10]
    # a re-delivery with other values touches neither: its values are conflicts
    assert store.readings.upsert_batch(replace(b, value=b.value + 50)) == (0, 0, 4)
    assert store.readings.read_series("m-1", ENERGY).raw_value.tolist() == [1000, 1001, 1002, 1003]
    # and the database itself refuses to change raw columns
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute("UPDATE interval_readings SET raw_value = 0")
    assert store.readings.read_series("m-1", ENERGY).raw_value.tolist() == [1000, 1001, 1002, 1003]
    # unknown series or starts update nothing
    assert store.readings.set_validated("m-2", ENERGY, b.start_s, estimated, 17) == 0
    assert store.readings.set_validated("m-1", ENERGY, b.start_s + 1, estimated, 17) == 0


def revisions(path: Path) -> list[tuple[object, ...]]:
    """Every recorded revision with the stored value beside it, read through a separate
    connection."""
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT meter_id, start_s, duration_s, value, raw_quality, stored_value, "
            "sequence_no, source FROM revisions ORDER BY start_s, value"
        ).fetchall()


def test_conflicting_versions_are_recorded_once_and_never_applied(
    store: Store, db: Path
) -> None:
    """The first version of a reading stays; every other version (value, duration or
    quality) is counted as a conflict and recorded, each distinct one once."""
    b = batch(0, 4)  # values 1000..1003, no quality
    assert store.readings.upsert_batch(b) == (4, 0, 0)
    value = b.value.copy()
    value[1] += 7
    duration = b.duration_s.copy()
    duration[2] = 600
    quality = np.array([QUALITY_NONE, QUALITY_NONE, QUALITY_NONE, 9])
    changed = replace(b, sequence_no=8, value=value, duration_s=duration, quality=quality)
    assert store.readings.upsert_batch(changed, source="fix.xml") == (0, 1, 3)
    assert store.readings.read_series("m-1", ENERGY).raw_value.tolist() == [1000, 1001, 1002, 1003]
    assert stored(db)[1:] == [
        ("m-1", 72, 1, 0, T0 + 900 * i, 900, 1000 + i, None, None, None) for i in (1, 2, 3)
    ]
    expected = [
        ("m-1", T0 + 900, 900, 1008, None, 1001, 8, "fix.xml"),
        ("m-1", T0 + 1800, 600, 1002, None, 1002, 8, "fix.xml"),
        ("m-1", T0 + 2700, 900, 1003, 9, 1003, 8, "fix.xml"),
    ]
    assert revisions(db) == expected
    # the same versions again: still conflicts, recorded already
    assert store.readings.upsert_batch(replace(changed, sequence_no=9)) == (0, 1, 3)
    assert revisions(db) == expected
    # recorded versions are never changed either
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute("UPDATE reading_revisions SET raw_value = 0")


def test_versions_within_one_batch_keep_the_first(store: Store, db: Path) -> None:
    b = batch(0, 2)
    repeated = replace(
        b,
        start_s=np.repeat(b.start_s, 3),
        duration_s=np.repeat(b.duration_s, 3),
        value=np.array([5, 6, 5, 7, 7, 7]),
    )
    assert store.readings.upsert_batch(repeated) == (2, 3, 1)
    assert store.readings.read_series("m-1", ENERGY).raw_value.tolist() == [5, 7]
    assert revisions(db) == [("m-1", T0, 900, 6, None, 5, 0, None)]


def test_grouped_units_share_one_transaction(store: Store, db: Path) -> None:
    store.begin()
    assert store.in_transaction
    assert store.readings.upsert_batch(batch(0, 5)) == (5, 0, 0)
    durations = np.zeros(3, dtype=np.int64)
    with pytest.raises(RejectedUpload):  # a rejected unit inside the group ...
        store.readings.upsert_batch(batch(5, 3, meter_id="m-2", duration_s=durations))
    assert store.readings.upsert_batch(batch(5, 5, meter_id="m-2")) == (5, 0, 0)
    assert store.readings.count() == 10  # this connection sees its open transaction
    assert stored(db) == []  # other connections do not
    store.commit()
    assert not store.in_transaction
    assert len(stored(db)) == 10  # ... cost nothing of the others
    store.begin()
    store.readings.upsert_batch(batch(20, 5, meter_id="m-3"))
    store.rollback()
    assert store.readings.count() == 10
    assert store.readings.upsert_batch(batch(20, 5, meter_id="m-3")) == (5, 0, 0)


def test_close_commits_an_open_group(db: Path) -> None:
    with Store(db) as first:
        first.begin()
        first.readings.upsert_batch(batch(0, 6))
    with Store(db) as second:
        assert second.readings.count() == 6


def test_data_survives_close_and_reopen(db: Path) -> None:
    with Store(db) as first:
        first.readings.upsert_batch(batch(0, 6))
        first.readings.upsert_batch(batch(0, 6, reading_type=VOLTAGE))
    with Store(db) as second:
        assert second.readings.count() == 12
        assert second.readings.upsert_batch(batch(0, 6)) == (0, 6, 0)
        assert second.readings.upsert_batch(batch(0, 7, reading_type=VOLTAGE)) == (1, 6, 0)


def test_database_of_the_old_schema_is_refused(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE readings (meter_id TEXT, start_s INTEGER)")
    with pytest.raises(ValueError, match="schema version 0"):
        Store(db)


def test_detections_name_their_series(store: Store, db: Path) -> None:
    def det(start: int, kind: str) -> Detection:
        end = T0 + start + 900
        return Detection(kind, "m-1", T0 + start, end, end, 0.5, 1.0, "")

    store.alerts.record_detections([], reading_type=VOLTAGE)
    store.alerts.record_detections([det(0, "stuck_meter")], T0 + 60.0, reading_type=VOLTAGE)
    store.alerts.record_detections(
        [det(0, "stuck_meter"), det(3600, "anomaly")], T0, reading_type=ENERGY
    )
    store.alerts.record_detections([det(7200, "soiling")], T0)  # not about one series
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT a.meter_id, t.uom, a.start_s, a.kind, a.created "
            "FROM alerts AS a LEFT JOIN reading_types AS t USING (reading_type_key) "
            "ORDER BY a.start_s"
        ).fetchall()
    assert rows == [
        ("m-1", 29, T0, "stuck_meter", T0 + 60.0),
        ("m-1", 72, T0 + 3600, "anomaly", float(T0)),
        ("m-1", None, T0 + 7200, "soiling", float(T0)),
    ]


# --- a writer process killed in the middle of a transaction -----------------------------------

WRITER = """
import os, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {here!r})
from test_store import batch, xml_upload
from pipeline import Pipeline, Store

group, per_upload, mode = {group}, {per_upload}, {mode!r}
if mode == "hold":  # the store's own grouping; stop inside the fourth group
    store = Store({db!r})
    upload = 0
    while True:
        store.begin()
        for _ in range(group):
            meter = f"m-{{upload % 3}}"
            store.readings.upsert_batch(batch(upload * per_upload, per_upload, meter_id=meter))
            upload += 1
        if upload > 3 * group:
            # mid-transaction: the group is written (and spilled to the WAL), not committed
            print("open", upload, flush=True)
            sys.stdin.read()
        store.commit()
        print("committed", upload, flush=True)
else:  # the pipeline on XML uploads, commit_every=group, until killed
    pipeline = Pipeline({db!r}, commit_every=group)
    upload = 0
    while True:
        outcome = pipeline.handle(xml_upload(upload, per_upload))
        assert outcome.accepted, outcome.reason
        upload += 1
        if outcome.committed:
            print("committed", upload, flush=True)
"""


def xml_upload(upload: int, per_upload: int) -> bytes:
    """Upload number `upload` of meter m-{upload % 3}: readings upload * per_upload + i at
    start T0 + 900 (upload * per_upload + i), value 1000 + that index (as `batch`)."""
    first = upload * per_upload
    index = range(first, first + per_upload)
    return meter_upload(
        f"m-{upload % 3}",
        upload,
        [T0 + 900 * i for i in index],
        [Channel(ENERGY_FIELDS, [1000 + i for i in index])],
    )


def start_writer(db: Path, group: int, per_upload: int, mode: str) -> subprocess.Popen[str]:
    script = textwrap.dedent(
        WRITER.format(
            root=str(PROJECT_ROOT),
            here=str(Path(__file__).parent),
            db=str(db),
            group=group,
            per_upload=per_upload,
            mode=mode,
        )
    )
    return subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def readings_per_meter(n_uploads: int, per_upload: int) -> dict[str, int]:
    counts = {f"m-{k}": 0 for k in range(3)}
    for upload in range(n_uploads):
        counts[f"m-{upload % 3}"] += per_upload
    return counts


def check_after_restart(db: Path, committed_uploads: int, per_upload: int) -> None:
    """Exactly the committed uploads are stored, each reading once with its value; then a
    re-delivery of everything and 20 more uploads (at-least-once) through the pipeline
    stores the rest and doubles nothing."""
    with sqlite3.connect(db) as conn:
        per_meter = dict(conn.execute("SELECT meter_id, count(*) FROM readings GROUP BY 1"))
        wrong_values = conn.execute(
            "SELECT count(*) FROM readings WHERE value != 1000 + (start_s - ?) / 900", (T0,)
        ).fetchone()[0]
    expected = readings_per_meter(committed_uploads, per_upload)
    assert per_meter == {k: v for k, v in expected.items() if v}
    assert wrong_values == 0
    with Pipeline(db) as pipeline:
        assert pipeline.store.readings.count() == committed_uploads * per_upload
        total_uploads = committed_uploads + 20
        outcomes = [pipeline.handle(xml_upload(u, per_upload)) for u in range(total_uploads)]
        assert all(o.accepted for o in outcomes)
        assert sum(o.duplicates for o in outcomes) == committed_uploads * per_upload
        assert sum(o.inserted for o in outcomes) == 20 * per_upload
        assert pipeline.store.readings.count() == total_uploads * per_upload


def kill(writer: subprocess.Popen[str]) -> None:
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL, writer.stderr.read() if writer.stderr else ""


def test_writer_killed_while_holding_an_open_transaction(db: Path) -> None:
    """SIGKILL while a group of uploads is written but not committed (the child says so and
    waits): after restart the committed groups are all there and nothing of the open one."""
    group, per_upload = 5, 400  # 2,000 rows in the open group: more than the page cache
    writer = start_writer(db, group, per_upload, "hold")
    committed = 0
    assert writer.stdout is not None
    for line in writer.stdout:
        word, count = line.split()
        if word == "open":
            assert int(count) == committed + group
            break
        committed = int(count)
    assert db.with_name(db.name + "-wal").stat().st_size > 0
    kill(writer)
    assert committed == 3 * group
    check_after_restart(db, committed, per_upload)


def test_pipeline_killed_at_an_arbitrary_moment(db: Path) -> None:
    """SIGKILL while the pipeline (commit_every=4) stores upload after upload: the database
    holds a whole number of groups, at least as many uploads as the pipeline reported
    committed before the kill, and no reading twice."""
    group, per_upload = 4, 15
    writer = start_writer(db, group, per_upload, "pipeline")
    assert writer.stdout is not None
    reported = 0
    for line in writer.stdout:
        reported = int(line.split()[1])
        if reported >= 60 * group:
            break
    kill(writer)
    with Store(db) as store:
        stored_uploads, remainder = divmod(store.readings.count(), per_upload)
    assert remainder == 0 and stored_uploads % group == 0
    assert stored_uploads >= reported
    check_after_restart(db, stored_uploads, per_upload)


# --- fast reads, the asset registry and batch detections ------------------------------------


def test_read_series_columns_match_a_plain_query(store: Store, db: Path) -> None:
    """read_series (decimal group_concat + exceptions query) returns what a plain SELECT
    returns, odd durations, raw qualities, NULLs and edited values included."""
    b = batch(0, 50, quality=np.where(np.arange(50) % 7 == 0, 10, QUALITY_NONE))
    durations = np.full(50, 900, dtype=np.int64)
    durations[[3, 40]] = [600, 1200]
    b = replace(b, duration_s=durations, value=b.value - 1030)  # negative values too
    store.readings.upsert_batch(b)
    validated = b.value.astype(float)
    validated[[5, 6]] = [12.25, np.nan]
    quality = np.zeros(50, dtype=np.int64)
    quality[[5, 6]] = [9, 10]
    store.readings.set_validated("m-1", ENERGY, b.start_s[:45], validated[:45], quality[:45])
    rows = store.readings.read_series("m-1", ENERGY, int(b.start_s[2]), int(b.start_s[48]))
    with sqlite3.connect(db) as conn:
        plain = conn.execute(
            "SELECT start_s, duration_s, value, raw_quality, validated_value, validated_quality"
            " FROM readings WHERE start_s BETWEEN ? AND ? ORDER BY start_s",
            (int(b.start_s[2]), int(b.start_s[48])),
        ).fetchall()
    assert rows.start_s.tolist() == [r[0] for r in plain]
    assert rows.duration_s.tolist() == [r[1] for r in plain]
    assert rows.raw_value.tolist() == [r[2] for r in plain]
    assert rows.raw_quality.tolist() == [QUALITY_NONE if r[3] is None else r[3] for r in plain]
    want = np.array([np.nan if r[4] is None else r[4] for r in plain])
    np.testing.assert_array_equal(rows.validated_value, want)
    want_quality = [QUALITY_NONE if r[5] is None else r[5] for r in plain]
    assert rows.validated_quality.tolist() == want_quality
    assert rows.validated_value[3] == 12.25 and np.isnan(rows.validated_value[4])


def test_series_skip_scan_and_reading_types_of(store: Store) -> None:
    store.readings.upsert_batch(batch(0, 3, meter_id="b"))
    store.readings.upsert_batch(batch(0, 3, meter_id="a", reading_type=VOLTAGE))
    store.readings.upsert_batch(batch(0, 3, meter_id="a"))
    assert store.readings.series() == [("a", ENERGY), ("a", VOLTAGE), ("b", ENERGY)]
    assert store.readings.reading_types_of("a") == [ENERGY, VOLTAGE]
    assert store.readings.reading_types_of("b") == [ENERGY]
    assert store.readings.reading_types_of("nobody") == []


def test_sites_round_trip_and_replace(db: Path) -> None:
    from dataclasses import fields

    assert tuple(f.name for f in fields(SiteMeta)) == SITE_COLUMNS
    pv = SiteMeta("pv-1", "pv", 10_000.0, 40.0, -105.0, 1600.0, 30.0, 180.0, 8_000.0)
    wind = SiteMeta("wt-1", "wind", 2.3e6)
    with Store(db) as store:
        store.sites.put(pv)
        store.sites.put(wind)
        store.sites.put(replace(wind, capacity_w=3.0e6))
    with Store(db) as store:
        assert store.sites.all() == {"pv-1": pv, "wt-1": replace(wind, capacity_w=3.0e6)}


def test_local_times_round_trip_and_replacement(db: Path) -> None:
    eastern = LocalTime(-18000, 3600, 0x360E2000, 0xB40E2000)
    pacific = LocalTime(-28800, 3600, 0x360E2000, 0xB40E2000)

    def stored_local_times() -> list[tuple[object, ...]]:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT * FROM local_time_parameters ORDER BY 1").fetchall()

    with Store(db) as store:
        assert stored_local_times() == []
        store.local_times.put("m", eastern)
        assert stored_local_times() == [("m", -18000, 3600, 0x360E2000, 0xB40E2000)]
        store.local_times.put("m", pacific)
        store.local_times.put("other", eastern)
        store.begin()  # inside a transaction the row joins it
        store.local_times.put("late", pacific)
        store.rollback()
    assert stored_local_times() == [
        ("m", -28800, 3600, 0x360E2000, 0xB40E2000),
        ("other", -18000, 3600, 0x360E2000, 0xB40E2000),
    ]


def test_detections_are_stored_once_per_fault(store: Store, db: Path) -> None:
    def det(start: int, end: int, magnitude: float, meter: str = "pv-1") -> Detection:
        return Detection(
            "inverter_trip",
            meter,
            T0 + start,
            T0 + end,
            T0 + start + 1800,
            0.8,
            magnitude,
            f"trip {start}-{end}",
        )

    first, extended = store.alerts.record_detections([det(0, 3600, 10.0)], created_s=T0 + 3600)
    assert (len(first), extended) == (1, 0)
    # the same fault seen again, longer: extended in place, not raised again
    again, extended = store.alerts.record_detections([det(0, 7200, 20.0)], created_s=T0 + 7200)
    assert (again, extended) == ([], 1)
    # seen through a window that cut its start: end extended, the rest kept
    cut, extended = store.alerts.record_detections([det(1800, 9000, 5.0)])
    assert (cut, extended) == ([], 1)
    # nothing new: nothing written
    assert store.alerts.record_detections([det(0, 7200, 20.0)]) == ([], 0)
    # another fault later, and the same times on another meter: new rows
    later, _ = store.alerts.record_detections([det(20_000, 23_600, 1.0), det(0, 3600, 1.0, "pv-2")])
    assert len(later) == 2
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT meter_id, start_s, end_s, detected_s, value, message, created FROM alerts "
            "ORDER BY meter_id, start_s"
        ).fetchall()
    assert rows[0] == ("pv-1", T0, T0 + 9000, T0 + 1800, 20.0, "trip 0-7200", T0 + 3600.0)
    assert [r[:3] for r in rows[1:]] == [
        ("pv-1", T0 + 20_000, T0 + 23_600),
        ("pv-2", T0, T0 + 3600),
    ]
    stored = store.alerts.detections(T0 + 9000)
    assert [(d.series_id, d.start_s, d.end_s) for d in stored] == [
        ("pv-1", T0, T0 + 9000),
        ("pv-1", T0 + 20_000, T0 + 23_600),
    ]
    assert stored[0].confidence == 0.8 and stored[0].magnitude == 20.0
