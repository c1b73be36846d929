"""Command line of the pipeline: ``python -m pipeline ingest FILE... --db PATH [--json]``.

See `pipeline.ingest` for what ingest does and its exit codes: 0 all ingested, 1 some
parts rejected (conflicting readings included), 2 a file rejected whole or a misuse (one
line per problem on stderr, ``pipeline: PATH: what is wrong``), 130 interrupted (Ctrl-C:
the files before are stored and reported, the file in progress is not).

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pipeline.ingest import (
    FileReport,
    IngestError,
    IngestInterrupted,
    exit_code,
    format_table,
    ingest_files,
    to_json,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser(
        "ingest",
        help="ingest Green Button files (Atom feeds or single entries) into a database",
        description="Readings go to the database's interval_readings, each usage point's "
        "LocalTimeParameters (time zone and DST rules) to local_time_parameters, other "
        "versions of stored readings (corrections, conflicts) to reading_revisions. "
        "Exit code 0: all ingested; 1: some parts rejected (conflicting readings "
        "included); 2: a file rejected whole, or a misuse (one line on stderr); 130: "
        "interrupted.",
    )
    ingest.add_argument("files", nargs="+", metavar="FILE", help="Green Button XML files")
    ingest.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    ingest.add_argument(
        "--json", action="store_true", help="print a JSON report instead of a table"
    )
    args = parser.parse_args(argv)
    try:
        return _ingest(args.files, args.db, as_json=args.json)
    except KeyboardInterrupt:  # outside the ingest itself (writing the report)
        print("pipeline: interrupted", file=sys.stderr)
        return 130


def _ingest(files: Sequence[str], db: str, *, as_json: bool) -> int:
    """Run ``ingest`` and print its report; the exit code."""
    try:
        reports = ingest_files(files, db)
    except IngestError as exc:
        for problem in exc.problems:
            print(f"pipeline: {problem}", file=sys.stderr)
        return 2
    except IngestInterrupted as stop:
        _print_reports(stop.reports, as_json=as_json)
        n_done = len(stop.reports)
        done = f"{n_done} file{'' if n_done == 1 else 's'} stored"
        lost = "" if stop.current is None else f"; {stop.current} not stored (rolled back)"
        print(f"pipeline: interrupted: {done}{lost}", file=sys.stderr)
        return 130
    _print_reports(reports, as_json=as_json)
    return exit_code(reports)


def _print_reports(reports: list[FileReport], *, as_json: bool) -> None:
    if as_json:
        json.dump(to_json(reports), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif reports:
        print(format_table(reports))


if __name__ == "__main__":
    sys.exit(main())
