"""Command line of the pipeline: ``python -m pipeline ingest FILE... --db PATH [--json]``.

See `pipeline.ingest` for what ingest does and its exit codes.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pipeline.ingest import exit_code, format_table, ingest_files, to_json


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser(
        "ingest",
        help="ingest Green Button files (Atom feeds or single entries) into a database",
        description="Readings go to the database's interval_readings, each usage point's "
        "LocalTimeParameters (time zone and DST rules) to local_time_parameters. "
        "Exit code 0: all ingested; 1: some parts rejected; 2: a file rejected whole.",
    )
    ingest.add_argument("files", nargs="+", metavar="FILE", help="Green Button XML files")
    ingest.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    ingest.add_argument(
        "--json", action="store_true", help="print a JSON report instead of a table"
    )
    args = parser.parse_args(argv)
    reports = ingest_files(args.files, args.db)
    if args.json:
        json.dump(to_json(reports), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_table(reports))
    return exit_code(reports)


if __name__ == "__main__":
    sys.exit(main())
