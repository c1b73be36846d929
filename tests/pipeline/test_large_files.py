"""Real files over libxml2's 10,000,000-byte input buffer (and within the 64 MB size limit)
parse, ingest and go through the meter upload path, every reading stored; the parser's
own safety limits stay on for them. The file is generated here: a year of 5-minute
readings of one meter, about 13 MB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import Pipeline, ReadingType, RejectedUpload, Store
from pipeline.espi.namespaces import ESPI
from pipeline.fetch.parse import parse_upload
from pipeline.ingest import INGEST_LIMITS
from tests.conftest import PROJECT_ROOT
from tests.espi_feeds import Channel, feed, meter_upload

T0 = 1_700_000_000
STEP_S = 300
N_READINGS = 365 * 24 * 12
#: libxml2's limit on input buffered at once without huge_tree, bytes.
LIBXML2_BUFFER_BYTES = 10_000_000
ENERGY = ReadingType(uom=72, power_of_ten_multiplier=0, interval_length_s=STEP_S, flow_direction=1)
STARTS = T0 + STEP_S * np.arange(N_READINGS, dtype=np.int64)
VALUES = (np.arange(N_READINGS, dtype=np.int64) * 7919) % 100_003


@pytest.fixture(scope="module")
def year_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fields = {"flowDirection": 1, "intervalLength": STEP_S, "powerOfTenMultiplier": 0, "uom": 72}
    body = meter_upload("m-1", 1, STARTS.tolist(), [Channel(fields, VALUES.tolist())])
    assert LIBXML2_BUFFER_BYTES < len(body) <= INGEST_LIMITS.max_size_bytes
    path = tmp_path_factory.mktemp("large") / "year.xml"
    path.write_bytes(body)
    return path


def check_every_reading_stored(db: Path, meter_id: str) -> None:
    with Store(db) as store:
        rows = store.readings.read_series(meter_id, ENERGY)
        assert store.readings.count() == N_READINGS
    assert np.array_equal(rows.start_s, STARTS)
    assert np.array_equal(rows.raw_value, VALUES)
    assert np.all(rows.duration_s == STEP_S)


def test_parse_of_a_file_over_the_buffer_limit(year_file: Path) -> None:
    root = parse_upload(year_file.read_bytes(), INGEST_LIMITS)
    assert sum(1 for _ in root.iter(f"{ESPI}IntervalReading")) == N_READINGS


def test_ingest_cli_stores_every_reading(year_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "ingest", str(year_file), "--db", str(db), "--json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [file] = json.loads(proc.stdout)["files"]
    assert file["status"] == "ok" and file["rejected"] == []
    [series] = file["series"]
    assert (series["count"], series["inserted"]) == (N_READINGS, N_READINGS)
    assert series["sum"] == float(VALUES.sum())
    check_every_reading_stored(db, "/espi/1_1/resource/UsagePoint/m-1")


def test_meter_upload_path_stores_every_reading(year_file: Path, tmp_path: Path) -> None:
    """`Pipeline.handle` with the limits of a utility's file takes the same bytes."""
    db = tmp_path / "mdc.sqlite"
    with Pipeline(db, INGEST_LIMITS) as pipe:
        outcome = pipe.handle(year_file.read_bytes())
    assert outcome.accepted, outcome.reason
    assert (outcome.meter_id, outcome.inserted, outcome.duplicates) == ("m-1", N_READINGS, 0)
    check_every_reading_stored(db, "m-1")


def test_the_parser_keeps_its_limits_on_large_files() -> None:
    """Fed in pieces, the parse still refuses what huge_tree would allow: a single text
    node over libxml2's 10,000,000-character limit."""
    body = feed(feed_id="x" * (LIBXML2_BUFFER_BYTES + 1_000_000))
    with pytest.raises(RejectedUpload) as info:
        parse_upload(body, INGEST_LIMITS)
    assert info.value.code == "malformed" and "huge" in info.value.reason.lower()
