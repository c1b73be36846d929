"""Standalone ingest of Green Button files into a pipeline database (no simulator).

``python -m pipeline ingest FILE... --db PATH [--json]`` (see `pipeline.__main__`) reads
each file with the hardened parser (`pipeline.fetch.parse.parse_upload`, with
`INGEST_LIMITS`: a utility's download is larger than a meter's upload), extracts every
(UsagePoint, ReadingType) series (`pipeline.process.greenbutton.extract_series`) and stores
each series as one `ReadingBatch` through `pipeline.store.store.Store`: meter id the
UsagePoint's self href, series identity its ReadingType fields (see
`pipeline.process.greenbutton.GreenButtonSeries`), ESPI ReadingQuality codes (or the
ReadingType's defaultQuality) as the readings' raw quality.

Storing is idempotent and never overwrites a raw value (`pipeline.store.readings`): each
reading of a series is *inserted*, a *duplicate* (its interval already stored with the same
duration, value and quality: ingesting a file again stores nothing twice) or a *conflict*
(its interval already stored, by an earlier file or earlier in this one, with another
value, duration or quality, as in a utility's correction): the stored reading is kept, the
conflicting version recorded in the store's ``reading_revisions`` with the file's path,
and the series listed as a rejected part (``conflicting_readings``). A series' ``count``,
``sum``, ``first_start`` and ``last_start`` describe what the store holds for the file's
intervals: one reading per distinct interval start, the stored value where a reading
conflicted. Each file is stored in one transaction, each series a unit inside it (a
series rejected by the store is left out, the others of the file kept).
The local time of each usage point with a stored series (its LocalTimeParameters, see
`pipeline.process.greenbutton`) is recorded in the same transaction
(`pipeline.store.local_times`), keyed by the meter id of its readings;
a later file's local time for the same usage point replaces it. The ``--json`` report does
not show it; the table output does.

`ingest_files` refuses a misuse before ingesting anything, with `IngestError` (one line
per problem): an input path that is missing, a directory or unreadable; a database path
that is empty or ``:memory:`` (nothing would persist), a directory, not a SQLite database,
read-only, in a missing or read-only folder, or locked by another writer beyond the busy
timeout (`pipeline.store.schema.unusable_reason`; a lock met between files stops there,
the files before are stored). Ctrl-C stops it with `IngestInterrupted`: the files before
are stored, the file in progress is rolled back (nothing of it is committed).

A file's status is ``ok`` when every part was ingested, ``partial`` when some series were
stored and some parts rejected (conflicting readings included), ``rejected`` when nothing
was stored (unreadable, too large, hostile or malformed XML, not Atom, no interval data, or
every part rejected). The exit code is 2 if any file was rejected whole, else 1 if any was
partial, else 0.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.espi.localtime import LocalTime
from pipeline.fetch.limits import Limits
from pipeline.fetch.parse import parse_upload
from pipeline.fetch.rejection import RejectedUpload
from pipeline.process.batch import ReadingBatch
from pipeline.process.greenbutton import GreenButtonSeries, RejectedPart, extract_series
from pipeline.store.readings import StoredCounts
from pipeline.store.schema import unusable_reason
from pipeline.store.store import Store

__all__ = [
    "INGEST_LIMITS",
    "FileReport",
    "IngestError",
    "IngestInterrupted",
    "SeriesReport",
    "exit_code",
    "format_table",
    "ingest_file",
    "ingest_files",
    "to_json",
]

#: Bounds for a utility's Green Button download: a year of 15-minute readings of several
#: meters is tens of MB and a few million elements. Depth stays that of ESPI (7 to 9).
INGEST_LIMITS = Limits(max_size_bytes=64_000_000, max_depth=64, max_elements=4_000_000)


@dataclass(frozen=True)
class SeriesReport:
    """One (UsagePoint, ReadingType) of a file, as in the ``--json`` output: what the store
    holds for the file's intervals (`count`, `first_start`, `last_start`, `sum`; see the
    module docstring), what it did with the file's readings (`inserted`, `duplicates`,
    `conflicts`, summing to the series' readings in the file), and the usage point's local
    time (`local_time`, None when the file gives none; not in the ``--json`` output)."""

    usage_point: str
    reading_type: str
    uom: int
    flow_direction: int
    interval_length_s: int
    count: int
    first_start: str
    last_start: str
    sum: float
    inserted: int
    duplicates: int
    conflicts: int
    local_time: LocalTime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "usage_point": self.usage_point,
            "reading_type": self.reading_type,
            "uom": self.uom,
            "flow_direction": self.flow_direction,
            "interval_length_s": self.interval_length_s,
            "count": self.count,
            "first_start": self.first_start,
            "last_start": self.last_start,
            "sum": self.sum,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
        }


@dataclass
class FileReport:
    """What ingest did with one file."""

    path: str
    status: str = "ok"
    series: list[SeriesReport] = field(default_factory=list)
    rejected: list[RejectedPart] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "series": [s.to_json() for s in self.series],
            "rejected": [{"part": r.part, "reason": r.reason} for r in self.rejected],
        }


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(path: Path, limits: Limits) -> bytes:
    """The file's bytes, never more than the size limit plus one byte."""
    with path.open("rb") as handle:
        body = handle.read(limits.max_size_bytes + 1)
    if len(body) > limits.max_size_bytes:
        raise RejectedUpload(
            f"too_large: the file exceeds the limit of {limits.max_size_bytes} bytes"
        )
    return body


def _series_sum(batch: ReadingBatch) -> float:
    """The batch's sum in its uom (`ReadingBatch.total`); RejectedUpload when it is beyond
    float64 (a powerOfTenMultiplier of 309 or more: the schema allows any Int16, no unit
    needs one), so that the report, and its JSON, always hold a finite number."""
    try:
        return batch.total
    except OverflowError:
        raise RejectedUpload(
            "out_of_range: the sum of the series overflows a float64 (powerOfTenMultiplier "
            f"{batch.power_of_ten_multiplier})"
        ) from None


def _held(store: Store, batch: ReadingBatch, stored: StoredCounts) -> ReadingBatch:
    """What the store holds for the intervals of `batch` once it is stored: one reading per
    distinct interval start, the stored one (the batch itself when all of it was new)."""
    if stored.inserted == batch.n_readings:
        return batch
    rows = store.readings.read_series(
        batch.meter_id, batch.reading_type, int(batch.start_s.min()), int(batch.start_s.max())
    )
    at = np.searchsorted(rows.start_s, np.unique(batch.start_s))
    return ReadingBatch.of(
        batch.meter_id,
        batch.sequence_no,
        batch.reading_type,
        rows.start_s[at],
        rows.duration_s[at],
        rows.raw_value[at],
    )


def _conflict_reason(n_conflicts: int) -> str:
    what = (
        "1 reading differs (value, duration or quality) from the one stored for its "
        "interval; the stored one is kept, this one recorded"
        if n_conflicts == 1
        else f"{n_conflicts} readings differ (value, duration or quality) from the ones "
        "stored for their intervals; the stored ones are kept, these recorded"
    )
    return f"conflicting_readings: {what} in reading_revisions"


def _series_report(
    series: GreenButtonSeries, held: ReadingBatch, stored: StoredCounts, total: float
) -> SeriesReport:
    return SeriesReport(
        usage_point=series.usage_point,
        reading_type=series.reading_type,
        uom=held.uom,
        flow_direction=held.flow_direction,
        interval_length_s=held.interval_length_s,
        count=held.n_readings,
        first_start=_iso(int(held.start_s.min())),
        last_start=_iso(int(held.start_s.max())),
        sum=total,
        inserted=stored.inserted,
        duplicates=stored.duplicates,
        conflicts=stored.conflicts,
        local_time=series.local_time,
    )


def ingest_file(path: str | Path, store: Store, limits: Limits = INGEST_LIMITS) -> FileReport:
    """Ingest one Green Button file into `store`; never raises for bad content (errors that
    are not about the input, such as a full disk, propagate)."""
    report = FileReport(str(path))
    try:
        try:
            root = parse_upload(_read(Path(path), limits), limits)
            extraction = extract_series(root)
            del root
        except OSError as exc:
            raise RejectedUpload(f"unreadable: {exc.strerror or exc}") from None
        except RejectedUpload:
            raise
        except Exception as exc:  # an input nobody foresaw: reject it, go on
            raise RejectedUpload(
                f"processing_error: {type(exc).__name__}: {str(exc)[:200]}"
            ) from exc
    except RejectedUpload as exc:
        report.status = "rejected"
        report.rejected.append(RejectedPart("file", exc.reason))
        return report
    report.rejected.extend(extraction.rejected)
    store.begin()  # one transaction per file; each series is its own unit inside it
    try:
        for series in extraction.series:
            part = f"series {series.usage_point} / {series.reading_type}"
            try:
                with store.unit():
                    stored = store.readings.upsert_batch(series.batch, source=report.path)
                    held = _held(store, series.batch, stored)
                    total = _series_sum(held)
            except RejectedUpload as exc:
                report.rejected.append(RejectedPart(part, exc.reason))
                continue
            report.series.append(_series_report(series, held, stored, total))
            if stored.conflicts:
                report.rejected.append(RejectedPart(part, _conflict_reason(stored.conflicts)))
        _store_local_times(store, report.series)
        store.commit()
    except BaseException:
        store.rollback()
        raise
    if not report.series:
        report.status = "rejected"
        if not report.rejected:
            report.rejected.append(
                RejectedPart(
                    "file",
                    "no_interval_data: the document holds no IntervalBlock with readings",
                )
            )
    elif report.rejected:
        report.status = "partial"
    return report


def _store_local_times(store: Store, series: list[SeriesReport]) -> None:
    """Record the local time of every usage point with a stored series, in the store's
    open transaction."""
    local_times = {s.usage_point: s.local_time for s in series if s.local_time is not None}
    for usage_point, local_time in local_times.items():
        store.local_times.put(usage_point, local_time)


class IngestError(Exception):
    """A misuse that stops ingest: `problems` holds one line per problem, each naming the
    path (``FILE: ...`` or ``--db PATH: ...``) and what is wrong with it."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class IngestInterrupted(KeyboardInterrupt):
    """Ctrl-C during `ingest_files`: `reports` of the files stored before it, and the file
    in progress (`current`, None between files), whose transaction was rolled back."""

    def __init__(self, reports: list[FileReport], current: str | None) -> None:
        super().__init__()
        self.reports = reports
        self.current = current


def _input_problem(path: Path) -> str | None:
    """What makes `path` unusable as an input file, None if nothing does (a FIFO or
    /dev/stdin is fine)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return "is a directory, not a Green Button file"
    if not os.access(path, os.R_OK):
        return "cannot be read: permission denied"
    return None


def _open_store(db_path: str | Path) -> Store:
    text = str(db_path)
    if text == "":
        raise IngestError("--db '': an empty path names no database file; give a file path")
    if text == ":memory:":
        raise IngestError(
            "--db ':memory:': an in-memory database keeps nothing after ingest; give a file path"
        )
    try:
        return Store(db_path)
    except sqlite3.Error as exc:
        raise IngestError(f"--db {text}: {unusable_reason(db_path, exc)}") from None
    except ValueError as exc:  # another schema version: its message starts with the path
        raise IngestError(f"--db {exc}") from None


def ingest_files(
    paths: Iterable[str | Path], db_path: str | Path, limits: Limits = INGEST_LIMITS
) -> list[FileReport]:
    """Ingest each file into the database at `db_path` (created if missing).

    Raises:
        IngestError: a misuse (see the module docstring); nothing is ingested when it is
            found before the first file.
        IngestInterrupted: Ctrl-C.
    """
    paths = list(paths)
    problems = [f"{p}: {why}" for p in paths if (why := _input_problem(Path(p))) is not None]
    if problems:
        raise IngestError(*problems)
    reports: list[FileReport] = []
    current: str | None = None
    try:
        with _open_store(db_path) as store:
            for path in paths:
                current = str(path)
                reports.append(ingest_file(path, store, limits))
                current = None
    except KeyboardInterrupt:
        raise IngestInterrupted(reports, current) from None
    except sqlite3.Error as exc:
        raise IngestError(f"--db {db_path}: {unusable_reason(db_path, exc)}") from None
    return reports


def exit_code(reports: Iterable[FileReport]) -> int:
    """2 if a file was rejected whole, else 1 if one was partially rejected, else 0."""
    statuses = {r.status for r in reports}
    if "rejected" in statuses:
        return 2
    return 1 if "partial" in statuses else 0


def to_json(reports: Iterable[FileReport]) -> dict[str, Any]:
    """The ``--json`` document: ``{"files": [...]}``."""
    return {"files": [r.to_json() for r in reports]}


def format_table(reports: Iterable[FileReport]) -> str:
    """A short human-readable summary."""
    lines: list[str] = []
    for report in reports:
        lines.append(f"{report.path}: {report.status}")
        if report.series:
            lines.append(
                f"  {'usage point':<40} {'reading type':<28} {'uom':>4} {'flow':>4} "
                f"{'interval':>8} {'count':>6} {'first start':<20} {'last start':<20} "
                f"{'sum':>14} {'new':>6} {'dup':>6} {'conflict':>8}"
            )
        for s in report.series:
            lines.append(
                f"  {_tail(s.usage_point, 40):<40} {_tail(s.reading_type, 28):<28} "
                f"{s.uom:>4} {s.flow_direction:>4} {s.interval_length_s:>8} {s.count:>6} "
                f"{s.first_start:<20} {s.last_start:<20} {s.sum:>14.6g} {s.inserted:>6} "
                f"{s.duplicates:>6} {s.conflicts:>8}"
            )
        local_times = {s.usage_point: s.local_time for s in report.series if s.local_time}
        for usage_point, local_time in local_times.items():
            lines.append(f"  local time of {_tail(usage_point, 40)}: {local_time.describe()}")
        for r in report.rejected:
            lines.append(f"  rejected {r.part}: {r.reason}")
    return "\n".join(lines)


def _tail(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]
