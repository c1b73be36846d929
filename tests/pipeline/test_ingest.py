"""Standalone Green Button ingest: every real sample file, through the function and through
``python -m pipeline ingest ... --json``, checked against an independent oracle.

The oracle does not resolve ESPI links: it assigns every IntervalBlock to the latest
MeterReading entry before it in document order (how every sample is written) and takes
each MeterReading's series identity and ReadingType fields from the table `EXPECTED`,
written by reading the files (and, for PG&E, the values eemeter's tests asserted)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from pipeline import ReadingType, Store
from pipeline.espi.namespaces import ATOM as A
from pipeline.espi.namespaces import ESPI as E
from pipeline.fetch.parse import parse_upload
from pipeline.ingest import INGEST_LIMITS, exit_code, ingest_file, ingest_files, to_json
from pipeline.process import greenbutton
from pipeline.process.greenbutton import MAX_HREF_LEVELS, Extraction, extract_series
from tests.conftest import GREENBUTTON_DIR as DATA
from tests.conftest import PROJECT_ROOT as ROOT
from tests.espi_feeds import BILLION_LAUGHS, feed, interval_reading, local_time_parameters
from tests.espi_feeds import entry as atom_entry
from tests.espi_feeds import resource as espi

BAD = "nist_1hrLP_32DaysM_D000_BAD.xml"

PGE_UP = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/Subscription/REDACTED/UsagePoint/REDACTED"
PGE_RT = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/ReadingType/"

#: Per file, per MeterReading in document order: (usage_point, reading_type, uom, p10,
#: flow_direction, interval_length_s).
EXPECTED: dict[str, list[tuple[str, str, int, int, int, int]]] = {
    "gba_test_usage_data.xml": [
        (
            "/espi/1_1/resource/RetailCustomer/9B6C7066/UsagePoint/5446AF3F",
            "/espi/1_1/resource/ReadingType/07",
            72,
            0,
            1,
            900,
        )
    ],
    "nist_15minLP_15Days.xml": [
        ("RetailCustomer/9b6c7063/UsagePoint/01", "ReadingType/07", 72, 0, 1, 900)
    ],
    "nist_1hrLP_32DaysFiveUsagePoints_M.xml": [
        (f"/User/9b6c706{u}/UsagePoint/01", f"/ReadingType/0{r}", 72, 0, 1, 3600)
        for u, r in ((7, 5), (3, 1), (4, 2), (5, 3), (6, 4))
    ],
    "nist_MonthlyOnlyElectricData.xml": [
        ("User/9b6c7063/UsagePoint/01", "ReadingType/07", 72, 3, 1, 2_678_400)
    ],
    "nist_Temperature.xml": [
        ("RetailCustomer/9b6c7063/UsagePoint/01", "ReadingType/07", 6, -3, 0, 2_678_400)
    ],
    "pge_electric_hourly_netmetering_redacted.xml": [
        (PGE_UP, PGE_RT + "NzI6bnVsbDozNjAwOjE=", 72, -3, 1, 3600),
        (PGE_UP, PGE_RT + "REDACTED", 72, -3, 19, 3600),
    ],
    "pge_gas_daily_redacted.xml": [
        (PGE_UP, PGE_RT + "MTY5Om51bGw6ODY0MDA6MQ==", 169, -8, 1, 86_400)
    ],
}
GOOD = sorted(EXPECTED)


def test_every_sample_file_is_covered() -> None:
    assert sorted(p.name for p in DATA.glob("*.xml")) == sorted([*GOOD, BAD])


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def oracle(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Expected JSON series of a sample, keyed by (usage_point, reading_type)."""
    parser = etree.XMLParser(remove_comments=True, resolve_entities=False, no_network=True)
    root = etree.parse(str(DATA / name), parser).getroot()
    per_reading: dict[int, list[tuple[int, int]]] = defaultdict(list)
    mr = -1
    for entry in root.iter(f"{A}entry"):
        for resource in entry.iterfind(f"{A}content/*"):
            if resource.tag == f"{E}MeterReading":
                mr += 1
            elif resource.tag == f"{E}IntervalBlock":
                for reading in resource.iter(f"{E}IntervalReading"):
                    start = reading.findtext(f"{E}timePeriod/{E}start") or "x"
                    value = reading.findtext(f"{E}value") or "x"
                    per_reading[mr].append((int(start), int(value)))
    series: dict[tuple[str, str], dict[str, Any]] = {}
    for i, (up, rt, uom, p10, flow, interval) in enumerate(EXPECTED[name]):
        pairs = per_reading[i]
        starts = [s for s, _ in pairs]
        series[(up, rt)] = {
            "usage_point": up,
            "reading_type": rt,
            "uom": uom,
            "flow_direction": flow,
            "interval_length_s": interval,
            "count": len(pairs),
            "first_start": iso(min(starts)),
            "last_start": iso(max(starts)),
            "sum": float(sum(Fraction(v) for _, v in pairs) * Fraction(10) ** p10),
            # into an empty database: every reading new
            "inserted": len(pairs),
            "duplicates": 0,
            "conflicts": 0,
        }
    assert mr + 1 == len(EXPECTED[name])
    return series


def check_series(name: str, got: list[dict[str, Any]]) -> None:
    expected = oracle(name)
    assert len(got) == len(expected)
    for item in got:
        want = expected[(item["usage_point"], item["reading_type"])]
        assert item["sum"] == pytest.approx(want["sum"], rel=1e-12)
        assert {k: v for k, v in item.items() if k != "sum"} == {
            k: v for k, v in want.items() if k != "sum"
        }


SERIES_TYPES = {
    "usage_point": str,
    "reading_type": str,
    "uom": int,
    "flow_direction": int,
    "interval_length_s": int,
    "count": int,
    "first_start": str,
    "last_start": str,
    "sum": float,
    "inserted": int,
    "duplicates": int,
    "conflicts": int,
}


def check_shape(document: Any) -> None:
    assert set(document) == {"files"}
    for file in document["files"]:
        assert set(file) == {"path", "status", "series", "rejected"}
        assert isinstance(file["path"], str)
        assert file["status"] in ("ok", "partial", "rejected")
        for item in file["series"]:
            assert set(item) == set(SERIES_TYPES)
            for key, kind in SERIES_TYPES.items():
                assert type(item[key]) is kind, key
        for part in file["rejected"]:
            assert set(part) == {"part", "reason"}
            assert isinstance(part["part"], str) and isinstance(part["reason"], str)


def run_cli(*args: str | Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "ingest", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout


# --- the real files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", GOOD)
def test_real_file_via_function(name: str, tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        report = ingest_file(DATA / name, store)
        assert report.status == "ok", report.rejected
        assert report.rejected == []
        document = to_json([report])
        check_shape(document)
        check_series(name, document["files"][0]["series"])
        total = sum(s.count for s in report.series)
        assert sum(s.inserted for s in report.series) == store.readings.count() == total


@pytest.mark.parametrize("name", GOOD)
def test_real_file_via_cli(name: str, tmp_path: Path) -> None:
    code, out = run_cli(DATA / name, "--db", tmp_path / "db.sqlite", "--json")
    assert code == 0
    document = json.loads(out)
    check_shape(document)
    [file] = document["files"]
    assert file["path"] == str(DATA / name)
    assert file["status"] == "ok" and file["rejected"] == []
    check_series(name, file["series"])


def test_all_files_in_one_database_via_cli(tmp_path: Path) -> None:
    """The BAD file makes the exit code 2; every other file is ingested, and series that
    reuse relative hrefs with other units (temperature vs energy) do not conflict."""
    paths = [DATA / n for n in [*GOOD, BAD]]
    code, out = run_cli(*paths, "--db", tmp_path / "db.sqlite", "--json")
    assert code == 2
    document = json.loads(out)
    check_shape(document)
    by_name = {Path(f["path"]).name: f for f in document["files"]}
    for name in GOOD:
        assert by_name[name]["status"] == "ok", by_name[name]["rejected"]
        check_series(name, by_name[name]["series"])
    bad = by_name[BAD]
    assert bad["status"] == "rejected" and bad["series"] == []
    assert bad["rejected"][0]["part"] == "file"
    assert bad["rejected"][0]["reason"].startswith("bad_root:")
    assert "xyz" in bad["rejected"][0]["reason"]
    with Store(tmp_path / "db.sqlite") as store:
        total = sum(s["count"] for f in document["files"] for s in f["series"])
        assert store.readings.count() == total


def test_bad_file_alone_exit_2(tmp_path: Path) -> None:
    code, out = run_cli(DATA / BAD, "--db", tmp_path / "db.sqlite")
    assert code == 2
    assert "rejected" in out and "bad_root" in out


def test_pge_values_match_eemeter(tmp_path: Path) -> None:
    """Values eemeter's tests asserted for the PG&E feeds (see SOURCE.txt)."""
    with Store(tmp_path / "db.sqlite") as store:
        gas = ingest_file(DATA / "pge_gas_daily_redacted.xml", store)
        elec = ingest_file(DATA / "pge_electric_hourly_netmetering_redacted.xml", store)
    assert gas.series[0].uom == 169 and gas.series[0].interval_length_s == 86_400
    assert sorted(s.flow_direction for s in elec.series) == [1, 19]
    assert {s.first_start for s in elec.series} == {"2015-11-01T09:00:00Z"}


def test_ingest_twice_stores_nothing_twice(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    paths = [DATA / n for n in GOOD]
    first = ingest_files(paths, db)
    with Store(db) as store:
        stored = store.readings.count()
    second = ingest_files(paths, db)
    with Store(db) as store:
        assert store.readings.count() == stored
    assert stored == sum(s.inserted for r in first for s in r.series)
    assert all(s.inserted == 0 and s.duplicates == s.count for r in second for s in r.series)
    assert exit_code(second) == 0
    code, _out = run_cli(*paths, "--db", db, "--json")
    assert code == 0
    with Store(db) as store:
        assert store.readings.count() == stored


# --- hostile and partial documents ------------------------------------------------------------

def test_billion_laughs_rejected_whole(tmp_path: Path) -> None:
    path = tmp_path / "lolz.xml"
    path.write_bytes(BILLION_LAUGHS)
    code, out = run_cli(path, "--db", tmp_path / "db.sqlite", "--json")
    assert code == 2
    [file] = json.loads(out)["files"]
    assert file["status"] == "rejected" and file["series"] == []
    assert file["rejected"][0]["reason"].startswith("dtd_forbidden:")
    with Store(tmp_path / "db.sqlite") as store:
        assert store.readings.count() == 0


def entry(links: dict[str, str | list[str]], content: str) -> str:
    """An Atom entry with one link per href of each rel."""
    pairs = [
        (rel, h)
        for rel, hrefs in links.items()
        for h in ([hrefs] if isinstance(hrefs, str) else hrefs)
    ]
    return atom_entry(content, pairs)


def reading(start: int | None, value: int | None, duration: int = 3600) -> str:
    return interval_reading(start, duration, value)


UP = "/espi/1_1/resource/Subscription/1/UsagePoint/7"
MR = UP + "/MeterReading/1"
RT = "/espi/1_1/resource/ReadingType/9"
T0 = 1_700_000_000
#: The ReadingType of `small_feed`'s series: Wh with powerOfTenMultiplier -3, hourly.
SMALL_FEED_TYPE = ReadingType(72, -3, 3600, 1)


def small_feed(*blocks: str, extra: str = "") -> bytes:
    return feed(
        entry({"self": UP, "up": UP.rpartition("/")[0]}, espi("UsagePoint", "")),
        entry(
            {
                "self": MR,
                "up": MR.rpartition("/")[0],
                "related": "/espi/1_1/resource/ReadingType/9",
            },
            espi("MeterReading", ""),
        ),
        entry(
            {"self": "/espi/1_1/resource/ReadingType/9"},
            espi(
                "ReadingType",
                "<uom>72</uom><powerOfTenMultiplier>-3</powerOfTenMultiplier>"
                "<intervalLength>3600</intervalLength><flowDirection>1</flowDirection>",
            ),
        ),
        *(
            entry({"self": MR + f"/IntervalBlock/{i}", "up": MR + "/IntervalBlock"}, b)
            for i, b in enumerate(blocks)
        ),
        extra,
    )


def test_partial_rejection_exit_1(tmp_path: Path) -> None:
    good = espi("IntervalBlock", reading(T0, 100) + reading(T0 + 3600, 200))
    bad_reading = espi("IntervalBlock", reading(T0 + 7200, None) + reading(T0 + 10800, 5))
    orphan = entry(
        {
            "self": UP + "/MeterReading/2/IntervalBlock/1",
            "up": UP + "/MeterReading/2/IntervalBlock",
        },
        espi("IntervalBlock", reading(T0, 1)),
    )
    # a second MeterReading so the orphan cannot fall back to the only one
    second = entry(
        {"self": UP + "/MeterReading/3", "up": UP + "/MeterReading"}, espi("MeterReading", "")
    )
    path = tmp_path / "partial.xml"
    path.write_bytes(small_feed(good, bad_reading, extra=orphan + second))
    code, out = run_cli(path, "--db", tmp_path / "db.sqlite", "--json")
    assert code == 1
    [file] = json.loads(out)["files"]
    assert file["status"] == "partial"
    [series] = file["series"]
    assert series["count"] == 3 and series["sum"] == pytest.approx(0.305)
    reasons = sorted(r["reason"].partition(":")[0] for r in file["rejected"])
    assert reasons == ["no_value", "unresolved_meter_reading"]


def test_reading_without_time_period_follows_interval_length(tmp_path: Path) -> None:
    block = espi(
        "IntervalBlock",
        f"<interval><duration>10800</duration><start>{T0}</start></interval>"
        + reading(None, 1)
        + reading(None, 2)
        + reading(None, 3),
    )
    path = tmp_path / "implicit.xml"
    path.write_bytes(small_feed(block))
    with Store(tmp_path / "db.sqlite") as store:
        report = ingest_file(path, store)
    assert report.status == "ok"
    [s] = report.series
    assert (s.count, s.first_start, s.last_start) == (3, iso(T0), iso(T0 + 7200))


def test_entry_children_in_any_order_and_prefixes(tmp_path: Path) -> None:
    """Links after content, ``espi:`` prefix, content before links."""
    body = small_feed(espi("IntervalBlock", reading(T0, 100)))
    text = body.decode()
    text = text.replace(
        '<IntervalBlock xmlns="http://naesb.org/espi">',
        '<e:IntervalBlock xmlns:e="http://naesb.org/espi">',
    )
    text = text.replace("</IntervalBlock>", "</e:IntervalBlock>")
    for tag in ("IntervalReading", "value", "timePeriod", "duration", "start"):
        text = text.replace(f"<{tag}>", f"<e:{tag}>").replace(f"</{tag}>", f"</e:{tag}>")
    # move every entry's content before its links
    text = re.sub(
        r"<entry>((?:<link [^>]*/>)*)(<content>.*?</content>)</entry>", r"<entry>\2\1</entry>", text
    )
    path = tmp_path / "order.xml"
    path.write_bytes(text.encode())
    with Store(tmp_path / "db.sqlite") as store:
        report = ingest_file(path, store)
    assert report.status == "ok", report.rejected
    assert report.series[0].count == 1 and report.series[0].sum == pytest.approx(0.1)


def test_no_interval_data_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.xml"
    path.write_bytes(small_feed())
    with Store(tmp_path / "db.sqlite") as store:
        report = ingest_file(path, store)
    assert report.status == "rejected"
    assert report.rejected[0].reason.startswith("no_interval_data:")


def test_a_file_gone_before_it_is_read_is_rejected(tmp_path: Path) -> None:
    """(The command refuses a missing file before ingesting anything: test_cli_errors.)"""
    with Store(tmp_path / "db.sqlite") as store:
        report = ingest_file(tmp_path / "nope.xml", store)
    assert report.status == "rejected"
    assert report.rejected[0].reason.startswith("unreadable:")


# --- repeated and corrected readings ----------------------------------------------------------


def one_series(path: Path, *readings: tuple[int, int]) -> Path:
    """A file of one series with the (start, value) `readings`, in order."""
    path.write_bytes(small_feed(espi("IntervalBlock", "".join(reading(s, v) for s, v in readings))))
    return path


def revisions(db: Path) -> list[tuple[int, int, int, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT start_s, value, stored_value, source FROM revisions ORDER BY start_s, value"
        ).fetchall()


def conflict_reasons(file: dict[str, Any]) -> list[str]:
    return [r["reason"] for r in file["rejected"] if r["reason"].startswith("conflicting_")]


def test_two_values_for_one_interval_in_a_file(tmp_path: Path) -> None:
    """The first is stored, the second recorded as a revision and reported: exit code 1,
    and count and sum describe what was stored."""
    db = tmp_path / "db.sqlite"
    path = one_series(tmp_path / "twice.xml", (T0, 5), (T0, 6), (T0 + 3600, 7))
    code, out = run_cli(path, "--db", db, "--json")
    assert code == 1
    [file] = json.loads(out)["files"]
    check_shape({"files": [file]})
    assert file["status"] == "partial"
    [series] = file["series"]
    assert (series["count"], series["sum"]) == (2, pytest.approx(0.012))
    assert (series["inserted"], series["duplicates"], series["conflicts"]) == (2, 0, 1)
    [reason] = conflict_reasons(file)
    assert reason.startswith("conflicting_readings: 1 reading differs")
    assert [r["part"] for r in file["rejected"]] == [f"series {UP} / {RT}"]
    with Store(db) as store:
        assert store.readings.read_series(UP, SMALL_FEED_TYPE).raw_value.tolist() == [5, 7]
    assert revisions(db) == [(T0, 6, 5, str(path))]
    code, table = run_cli(path, "--db", db)  # the table lists the reason too
    assert code == 1 and "conflicting_readings: 1 reading differs" in table


def test_the_same_reading_twice_in_a_file_is_a_duplicate(tmp_path: Path) -> None:
    path = one_series(tmp_path / "same.xml", (T0, 5), (T0, 5))
    with Store(tmp_path / "db.sqlite") as store:
        report = ingest_file(path, store)
        assert store.readings.count() == 1
    assert report.status == "ok" and exit_code([report]) == 0
    [s] = report.series
    assert (s.count, s.sum, s.inserted, s.duplicates, s.conflicts) == (1, 0.005, 1, 1, 0)


def test_a_correction_is_recorded_and_reported_never_applied(tmp_path: Path) -> None:
    """A later file with another value for a stored interval (a utility's correction):
    the stored value stays, the correction is recorded with its file, the file is partial.
    Each file again: the original is all duplicates; the correction conflicts again but
    is recorded once."""
    db = tmp_path / "db.sqlite"
    original = one_series(tmp_path / "original.xml", (T0, 5), (T0 + 3600, 7))
    correction = one_series(tmp_path / "fix.xml", (T0, 5), (T0 + 3600, 8), (T0 + 7200, 9))
    reports = ingest_files([original, correction], db)
    assert [r.status for r in reports] == ["ok", "partial"] and exit_code(reports) == 1
    [s] = reports[1].series
    assert (s.inserted, s.duplicates, s.conflicts) == (1, 1, 1)
    assert (s.count, s.sum) == (3, pytest.approx(0.021))  # 5 + 7 (stored) + 9
    again = ingest_files([original, correction], db)
    assert [r.status for r in again] == ["ok", "partial"]
    assert [(r.series[0].duplicates, r.series[0].conflicts) for r in again] == [(2, 0), (2, 1)]
    with Store(db) as store:
        assert store.readings.read_series(UP, SMALL_FEED_TYPE).raw_value.tolist() == [5, 7, 9]
    assert revisions(db) == [(T0 + 3600, 8, 7, str(correction))]


# --- what the store holds -----------------------------------------------------------------------


def test_reading_quality_is_stored_as_raw_quality(tmp_path: Path) -> None:
    """GBA: ReadingQuality 8 and 7 on the first two readings, none on the others; PG&E gas:
    no ReadingQuality, ReadingType defaultQuality 17. Oracle: plain lxml on the files."""
    db = tmp_path / "db.sqlite"
    ingest_files([DATA / "gba_test_usage_data.xml", DATA / "pge_gas_daily_redacted.xml"], db)
    gba_root = etree.parse(str(DATA / "gba_test_usage_data.xml")).getroot()
    flagged = {
        int(r.findtext(f"{E}timePeriod/{E}start") or "x"): int(q)
        for r in gba_root.iter(f"{E}IntervalReading")
        if (q := r.findtext(f"{E}ReadingQuality/{E}quality")) is not None
    }
    assert sorted(flagged.values()) == [7, 8]
    with sqlite3.connect(db) as conn:
        gba = dict(
            conn.execute("SELECT start_s, raw_quality FROM readings WHERE uom = 72").fetchall()
        )
        gas = conn.execute("SELECT DISTINCT raw_quality FROM readings WHERE uom = 169").fetchall()
        validated = conn.execute(
            "SELECT count(*) FROM readings WHERE validated_value IS NOT NULL"
        ).fetchone()[0]
    assert {s: q for s, q in gba.items() if q is not None} == flagged
    assert len(gba) == 1340
    assert gas == [(17,)]
    assert validated == 0  # ingest stores raw data; validation is a later stage


def test_series_of_one_usage_point_are_apart_in_the_store(tmp_path: Path) -> None:
    """PG&E net metering: one UsagePoint, delivered and received energy."""
    with Store(tmp_path / "db.sqlite") as store:
        ingest_file(DATA / "pge_electric_hourly_netmetering_redacted.xml", store)
        series = store.readings.series()
        assert [meter for meter, _ in series] == [PGE_UP, PGE_UP]
        assert sorted(rt.flow_direction for _, rt in series) == [1, 19]
        counts = [store.readings.read_series(m, rt).start_s.shape[0] for m, rt in series]
    assert sum(counts) == store_count(tmp_path / "db.sqlite")


def store_count(db: Path) -> int:
    with Store(db) as store:
        return store.readings.count()


# --- local time -----------------------------------------------------------------------------


def expected_local_times(name: str) -> dict[str, tuple[int, int, int, int]]:
    """Per UsagePoint self href, the fields of the LocalTimeParameters its entry names with
    a related link, read with plain lxml."""
    root = etree.parse(str(DATA / name)).getroot()
    ltps: dict[str, tuple[int, int, int, int]] = {}
    usage_points: dict[str, list[str]] = {}
    for item in root.iter(f"{A}entry"):
        links = [(link.get("rel"), link.get("href", "")) for link in item.iterfind(f"{A}link")]
        self_href = next(h for rel, h in links if rel == "self")
        ltp = item.find(f"{A}content/{E}LocalTimeParameters")
        if ltp is not None:
            ltps[self_href] = (
                int(ltp.findtext(f"{E}tzOffset") or "x"),
                int(ltp.findtext(f"{E}dstOffset") or "x"),
                int(ltp.findtext(f"{E}dstStartRule") or "x", 16),
                int(ltp.findtext(f"{E}dstEndRule") or "x", 16),
            )
        if item.find(f"{A}content/{E}UsagePoint") is not None:
            usage_points[self_href] = [h for rel, h in links if rel == "related"]
    return {up: next(ltps[h] for h in related if h in ltps) for up, related in usage_points.items()}


def stored_local_times(db: Path) -> dict[str, tuple[int, int, int, int]]:
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute(
                "SELECT meter_id, tz_offset_s, dst_offset_s, dst_start_rule, dst_end_rule "
                "FROM local_time_parameters"
            ).fetchall()
        except sqlite3.OperationalError:
            return {}
    return {row[0]: tuple(row[1:]) for row in rows}


@pytest.mark.parametrize("name", GOOD)
def test_local_time_is_stored_per_usage_point(name: str, tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    code, _out = run_cli(DATA / name, "--db", db)
    assert code == 0
    expected = expected_local_times(name)
    assert stored_local_times(db) == expected
    with sqlite3.connect(db) as conn:  # every row names a meter of the readings
        meters = {row[0] for row in conn.execute("SELECT meter_id FROM meters")}
    assert set(expected) == meters


def test_table_output_shows_the_local_time(tmp_path: Path) -> None:
    code, out = run_cli(DATA / "pge_gas_daily_redacted.xml", "--db", tmp_path / "db.sqlite")
    assert code == 0
    assert (
        "UTC-08:00, DST +3600 s from the second Sunday of March at 02:00:00 to the first "
        "Sunday of November at 02:00:00"
    ) in out


LTP_SELF = "/espi/1_1/resource/LocalTimeParameters/1"


def ltp_entry(self_href: str = LTP_SELF, tz: str = "-18000", start: str = "360E2000") -> str:
    return entry({"self": self_href}, local_time_parameters(tz, 3600, start, "B40E2000"))


def ingest_body(body: bytes, tmp_path: Path) -> tuple[Any, dict[str, tuple[int, int, int, int]]]:
    path = tmp_path / "f.xml"
    path.write_bytes(body)
    with Store(tmp_path / "db.sqlite") as store:
        report = ingest_file(path, store)
    return report, stored_local_times(tmp_path / "db.sqlite")


def test_a_lone_unlinked_local_time_applies_to_the_document(tmp_path: Path) -> None:
    block = espi("IntervalBlock", reading(T0, 100))
    report, stored = ingest_body(small_feed(block, extra=ltp_entry()), tmp_path)
    assert report.status == "ok"
    assert stored == {UP: (-18000, 3600, 0x360E2000, 0xB40E2000)}


def test_two_unlinked_local_times_apply_to_nothing(tmp_path: Path) -> None:
    block = espi("IntervalBlock", reading(T0, 100))
    extra = ltp_entry() + ltp_entry("/espi/1_1/resource/LocalTimeParameters/2", tz="3600")
    report, stored = ingest_body(small_feed(block, extra=extra), tmp_path)
    assert report.status == "ok" and stored == {}
    assert report.series[0].local_time is None


@pytest.mark.parametrize(
    ("tz", "start"), [("-5h", "360E2000"), ("-18000", "D60E2000"), ("1_000", "360E2000")]
)
def test_a_bad_local_time_is_a_rejected_part(tz: str, start: str, tmp_path: Path) -> None:
    """The readings (UTC) are stored; the file is partial, with a bad_local_time part."""
    block = espi("IntervalBlock", reading(T0, 100))
    report, stored = ingest_body(small_feed(block, extra=ltp_entry(tz=tz, start=start)), tmp_path)
    assert report.status == "partial"
    [part] = report.rejected
    assert part.part == f"LocalTimeParameters {LTP_SELF}"
    assert part.reason.startswith("bad_local_time: ")
    assert report.series[0].count == 1 and stored == {}


def test_a_rejected_file_stores_no_local_time(tmp_path: Path) -> None:
    report, stored = ingest_body(small_feed(extra=ltp_entry()), tmp_path)
    assert report.status == "rejected" and stored == {}


def test_a_later_file_replaces_the_local_time(tmp_path: Path) -> None:
    block = espi("IntervalBlock", reading(T0, 100))
    ingest_body(small_feed(block, extra=ltp_entry()), tmp_path)
    _, stored = ingest_body(small_feed(block, extra=ltp_entry(tz="-21600")), tmp_path)
    assert stored == {UP: (-21600, 3600, 0x360E2000, 0xB40E2000)}


# --- numbers and hostile links ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1_000", "\u0661\u0662", "\uff11\uff12", "\u00a012", "1.0"])
def test_values_that_are_not_xs_integers_are_rejected(text: str, tmp_path: Path) -> None:
    """Python's int() reads "1_000" as 1000 and Arabic-Indic or full-width digits as 12; none
    is an XML Schema integer, so the reading is rejected, not given an invented value."""
    block = espi(
        "IntervalBlock",
        reading(T0, 100) + f"<IntervalReading><value>{text}</value><timePeriod><duration>"
        f"3600</duration><start>{T0 + 3600}</start></timePeriod></IntervalReading>",
    )
    report, _ = ingest_body(small_feed(block), tmp_path)
    assert report.status == "partial"
    assert [r.reason.partition(":")[0] for r in report.rejected] == ["non_integer"]
    assert report.series[0].count == 1 and report.series[0].sum == pytest.approx(0.1)


def test_a_reading_type_field_that_is_not_an_xs_integer_is_rejected(tmp_path: Path) -> None:
    body = small_feed(espi("IntervalBlock", reading(T0, 100))).replace(
        b"<uom>72</uom>", b"<uom>7_2</uom>"
    )
    report, _ = ingest_body(body, tmp_path)
    assert report.status == "rejected"
    reasons = {r.reason.partition(":")[0] for r in report.rejected}
    assert reasons == {"non_integer", "bad_reading_type"}


def redacted_feed(n: int, href: str = MR) -> bytes:
    """n (MeterReading, IntervalBlock) pairs whose MeterReadings all have the same href (as
    in redacted PG&E feeds), all naming one ReadingType: block i has value i."""
    rt = "/espi/1_1/resource/ReadingType/9"
    links: dict[str, str | list[str]] = {"self": href, "up": UP + "/MeterReading", "related": rt}
    pairs = "".join(
        entry(links, espi("MeterReading", ""))
        + entry({"up": href + "/IntervalBlock"}, espi("IntervalBlock", reading(T0 + 3600 * i, i)))
        for i in range(n)
    )
    return small_feed(extra=pairs)


def test_redacted_meter_readings_take_the_blocks_after_them(tmp_path: Path) -> None:
    report, _ = ingest_body(redacted_feed(50), tmp_path)
    assert report.status == "ok"
    [series] = report.series
    assert series.count == 50 and series.sum == pytest.approx(sum(range(50)) / 1000)


def extract(body: bytes) -> Extraction:
    return extract_series(parse_upload(body, INGEST_LIMITS))


def test_link_resolution_stays_linear_on_hostile_documents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """8,000 MeterReadings sharing one href (as in redacted feeds), each of 8,000 blocks
    placed among them by binary search: about log2(8,000) comparisons per block, where a
    linear search made 32 million; and one MeterReading href of 200,000 path segments,
    walked up at most `MAX_HREF_LEVELS` parents to find its UsagePoint. (How fast is in
    bench/test_pipeline_bench.py.)"""
    compared = [0]
    bisect_left = greenbutton.bisect.bisect_left

    def counting_bisect_left(a: Any, x: Any, *, key: Any) -> int:
        def counted(item: Any) -> Any:
            compared[0] += 1
            return key(item)

        return bisect_left(a, x, key=counted)

    monkeypatch.setattr(greenbutton.bisect, "bisect_left", counting_bisect_left)
    n = 8000
    shared = extract(redacted_feed(n))
    assert shared.series[0].batch.n_readings == n
    assert 0 < compared[0] <= n * (n.bit_length() + 1)

    parents = [0]
    href_parent = greenbutton.href_parent

    def counting_href_parent(key: str) -> str:
        parents[0] += 1
        return href_parent(key)

    monkeypatch.setattr(greenbutton, "href_parent", counting_href_parent)
    deep_href = "/x" * 200_000
    rt = "/espi/1_1/resource/ReadingType/9"
    deep = extract(
        feed(
            entry({"self": UP}, espi("UsagePoint", "")),
            entry({"self": UP + "/other"}, espi("UsagePoint", "")),
            entry({"self": deep_href, "related": rt}, espi("MeterReading", "")),
            entry(
                {"self": rt}, espi("ReadingType", "<uom>72</uom><intervalLength>1</intervalLength>")
            ),
            entry({"up": deep_href + "/IntervalBlock"}, espi("IntervalBlock", reading(T0, 1))),
        )
    )
    # the block's owner (one parent) and the walk up from the MeterReading's href
    assert parents[0] <= 1 + 1 + MAX_HREF_LEVELS
    # no UsagePoint is a prefix of the href, and there are two: a rejected part
    reasons = [r.reason.partition(":")[0] for r in deep.rejected]
    assert reasons == ["unresolved_usage_point"]
