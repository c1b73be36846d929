"""SQLite store: idempotent upserts, all-or-nothing batches, durability across a crash."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.analyze import Alert
from pipeline.fetch import RejectedUpload
from pipeline.process import ReadingBatch
from pipeline.store import Store

T0 = 1_782_000_000
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def batch(
    first: int,
    n: int,
    *,
    meter_id: str = "m-1",
    flow_direction: int = 1,
    uom: int = 72,
    power_of_ten_multiplier: int = 0,
    interval_length_s: int = 900,
    duration_s: np.ndarray | None = None,
) -> ReadingBatch:
    """Readings first..first+n-1 of a meter: start T0 + 900 i, value 1000 + i."""
    i = np.arange(first, first + n, dtype=np.int64)
    return ReadingBatch(
        meter_id=meter_id,
        sequence_no=first,
        uom=uom,
        power_of_ten_multiplier=power_of_ten_multiplier,
        interval_length_s=interval_length_s,
        flow_direction=flow_direction,
        start_s=T0 + 900 * i,
        duration_s=np.full(n, 900, dtype=np.int64) if duration_s is None else duration_s,
        value=1000 + i,
    )


def stored(path: Path) -> list[tuple[str, int, int, int, int]]:
    """All readings, read through a separate connection (so only committed data shows)."""
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT meter_id, flow_direction, start_s, duration_s, value FROM readings "
            "ORDER BY meter_id, flow_direction, start_s"
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
        columns = {
            table: [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            for table in ("meters", "readings", "alerts")
        }
        readings_sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'readings'"
        ).fetchone()[0]
    assert columns == {
        "meters": [
            "meter_id",
            "uom",
            "power_of_ten_multiplier",
            "interval_length_s",
            "flow_direction",
        ],
        "readings": ["meter_id", "flow_direction", "start_s", "duration_s", "value"],
        "alerts": ["meter_id", "start_s", "kind", "score", "value", "created"],
    }
    assert "WITHOUT ROWID" in readings_sql
    assert "PRIMARY KEY (meter_id, flow_direction, start_s)" in readings_sql


def test_same_batch_twice_is_stored_once(store: Store, db: Path) -> None:
    assert store.upsert_readings(batch(0, 15)) == (15, 0)
    assert store.upsert_readings(batch(0, 15)) == (0, 15)
    assert store.count_readings() == 15
    assert len(stored(db)) == 15


def test_partial_overlap(store: Store) -> None:
    assert store.upsert_readings(batch(0, 10)) == (10, 0)
    assert store.upsert_readings(batch(6, 10)) == (6, 4)  # 6..9 known, 10..15 new
    assert store.upsert_readings(batch(20, 3)) == (3, 0)
    assert store.count_readings() == 19


def test_values_read_back(store: Store, db: Path) -> None:
    b = batch(3, 5, meter_id="pv-9", flow_direction=19)
    store.upsert_readings(b)
    assert stored(db) == [
        ("pv-9", 19, int(s), 900, int(v)) for s, v in zip(b.start_s, b.value, strict=True)
    ]
    with sqlite3.connect(db) as conn:
        meter = conn.execute("SELECT * FROM meters").fetchall()
    assert meter == [("pv-9", 72, 0, 900, 19)]


def test_repeats_within_a_batch_count_as_duplicates(store: Store) -> None:
    b = batch(0, 4)
    twice = replace(
        b,
        start_s=np.tile(b.start_s, 2),
        duration_s=np.tile(b.duration_s, 2),
        value=np.tile(b.value, 2),
    )
    assert store.upsert_readings(twice) == (4, 4)


def test_flow_directions_are_separate_series(store: Store) -> None:
    assert store.upsert_readings(batch(0, 5, flow_direction=1)) == (5, 0)
    assert store.upsert_readings(batch(0, 5, flow_direction=19)) == (5, 0)
    assert store.count_readings() == 10


def test_batch_breaking_a_constraint_is_all_or_nothing(store: Store, db: Path) -> None:
    store.upsert_readings(batch(0, 3))
    durations = np.full(10, 900, dtype=np.int64)
    durations[-1] = 0  # the last row breaks CHECK (duration_s > 0)
    with pytest.raises(RejectedUpload) as info:
        store.upsert_readings(batch(3, 10, duration_s=durations))
    assert info.value.code == "invalid_reading"
    assert (info.value.meter_id, info.value.sequence_no) == ("m-1", 3)
    assert store.count_readings() == 3
    assert len(stored(db)) == 3
    # the store goes on, and the good part of that batch was never stored
    assert store.upsert_readings(batch(3, 9)) == (9, 0)


def test_failure_mid_batch_stores_nothing(store: Store, db: Path) -> None:
    """A value sqlite cannot bind in row 7 of 8: rows 0..6 were inserted, then rolled back."""
    b = batch(0, 8)
    values = b.value.astype(object)
    values[6] = {"not": "a number"}
    with pytest.raises(sqlite3.Error):
        store.upsert_readings(replace(b, value=values))
    assert store.count_readings() == 0
    assert stored(db) == []
    assert store.upsert_readings(b) == (8, 0)


def test_process_crash_mid_transaction(db: Path) -> None:
    """A process killed inside a batch's transaction: after restart the committed batch is
    all there and nothing of the open one."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(PROJECT_ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store import batch
        from pipeline.store import Store
        from pipeline.store import _INSERT_READING
        store = Store({str(db)!r})
        store.upsert_readings(batch(0, 10))
        conn = store._conn
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_INSERT_READING, [("m-1", 1, 10**9 + i, 900, i) for i in range(50)])
        os._exit(3)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == 3, result.stderr.decode()
    reopened = Store(db)
    assert reopened.count_readings() == 10
    assert reopened.upsert_readings(batch(0, 12)) == (2, 10)
    reopened.close()


def test_data_survives_close_and_reopen(db: Path) -> None:
    with Store(db) as first:
        first.upsert_readings(batch(0, 6))
    with Store(db) as second:
        assert second.count_readings() == 6
        assert second.upsert_readings(batch(0, 6)) == (0, 6)


def test_changing_units_of_a_meter_is_rejected(store: Store) -> None:
    store.upsert_readings(batch(0, 3))
    for changed in (batch(3, 3, uom=38), batch(3, 3, power_of_ten_multiplier=-3)):
        with pytest.raises(RejectedUpload) as info:
            store.upsert_readings(changed)
        assert info.value.code == "reading_type_conflict"
    assert store.count_readings() == 3
    # interval length and flow direction may change: the meter row follows the latest
    assert store.upsert_readings(batch(3, 3, interval_length_s=60)) == (3, 0)


def test_unit_conflict_is_found_after_reopening(db: Path) -> None:
    with Store(db) as first:
        first.upsert_readings(batch(0, 3))
    with Store(db) as second, pytest.raises(RejectedUpload, match="reading_type_conflict"):
        second.upsert_readings(batch(3, 3, uom=38))


def test_alerts_are_stored_once(store: Store, db: Path) -> None:
    alert = Alert("m-1", T0, "robust_z_spike", 12.5, 1400.0)
    store.add_alerts([])
    store.add_alerts([alert], created_s=T0 + 60.0)
    store.add_alerts([alert, Alert("m-1", T0 + 900, "robust_z_spike", -9.0, 2.0)])
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT * FROM alerts ORDER BY start_s").fetchall()
    assert rows[0] == ("m-1", T0, "robust_z_spike", 12.5, 1400.0, T0 + 60.0)
    assert [row[:5] for row in rows[1:]] == [("m-1", T0 + 900, "robust_z_spike", -9.0, 2.0)]
