"""Command line of the pipeline: ``python -m pipeline ingest FILE... --db PATH [--json]``
and ``python -m pipeline serve --db PATH --keyring FILE [...]``.

See `pipeline.ingest` for what ingest does and its exit codes: 0 all ingested, 1 some
parts rejected (conflicting readings included), 2 a file rejected whole or a misuse (one
line per problem on stderr, ``pipeline: PATH: what is wrong``), 130 interrupted (Ctrl-C:
the files before are stored and reported, the file in progress is not). See
`pipeline.serve` for the service.

Only numpy, numba, lxml and the standard library may be imported here (DESIGN §2); ``serve``
imports the service's web stack when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

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
    _add_serve(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
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


def _add_serve(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the MDC as an HTTP service: upload ingest, batch analysis, metrics and "
        "the operators' dashboard",
        description="Listens on loopback by default; any other address needs --token. "
        "Prints 'MDC service listening on http://HOST:PORT' once it listens. Exit code 2: "
        "a setting it refuses (one line on stderr).",
    )
    serve.add_argument("--db", required=True, type=Path, metavar="PATH", help="SQLite store")
    serve.add_argument(
        "--keyring",
        required=True,
        type=Path,
        metavar="FILE",
        help='meter keys: JSON {"keys": {"METER_ID": "HEX_KEY", ...}} (or TOML [keys])',
    )
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (0: any free one)")
    serve.add_argument(
        "--ack",
        choices=("commit", "receipt"),
        default="commit",
        help="answer an upload after its COMMIT (default), or on receipt: checked and "
        "written, committed within --commit-wait",
    )
    serve.add_argument(
        "--analyze-every", default="1h", metavar="DURATION",
        help="batch analysis period of wall time, e.g. 1h, 5min, or off (default 1h)",
    )  # fmt: skip
    serve.add_argument("--token", default=None, help="bearer token for the dashboard and API")
    serve.add_argument(
        "--sites", type=Path, default=None, metavar="FILE",
        help='site registry to register at start: JSON {"sites": [{...}, ...]}',
    )  # fmt: skip
    serve.add_argument("--commit-every", type=int, default=256, help="uploads per commit, most")
    serve.add_argument(
        "--commit-wait", default="200ms", metavar="DURATION",
        help="with --ack receipt: longest wait of an answered upload for its commit",
    )  # fmt: skip
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")


def _serve(args: argparse.Namespace) -> int:
    from pipeline.serve.config import ConfigError, ServeConfig, parse_interval_s
    from pipeline.serve.server import serve

    try:
        commit_wait_s = parse_interval_s(args.commit_wait, "--commit-wait") or 0.0
        config = ServeConfig(
            db_path=args.db,
            keyring_path=args.keyring,
            host=args.host,
            port=args.port,
            ack=args.ack,
            analyze_every_s=parse_interval_s(args.analyze_every, "--analyze-every"),
            token=args.token,
            sites_path=args.sites,
            commit_every=args.commit_every,
            commit_wait_s=commit_wait_s,
            workers=args.workers,
        )
    except ConfigError as exc:
        print(f"python -m pipeline serve: {exc}", file=sys.stderr)
        return 2
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
