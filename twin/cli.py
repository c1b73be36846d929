"""The ``twin`` command: run, validate and calibrate scenarios."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from twin.errors import ScenarioError

EXIT_OK = 0
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin", description="IMDC Twin: a digital twin of a renewable-energy monitoring fleet."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="simulate a scenario and print its KPIs")
    run.add_argument("scenario", type=Path, help="scenario TOML file")
    run.add_argument("--out", type=Path, default=None, help="output folder (default out/NAME)")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set fleet.pv.count=500 (repeatable)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    run.add_argument("--no-plots", action="store_true", help="do not write overview.png")

    validate = commands.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario", type=Path)
    validate.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE"
    )

    calibrate = commands.add_parser(
        "calibrate", help="measure the real pipeline and write the per-stage cost model"
    )
    calibrate.add_argument("--out", type=Path, default=Path("twin/data/cost_model.json"))
    calibrate.add_argument("--repeats", type=int, default=200, help="calls per upload size")

    report = commands.add_parser("report", help="(re)build report.html of a run's output folder")
    report.add_argument("out_dir", type=Path, help="a folder written by twin run")

    compare = commands.add_parser(
        "compare", help="KPIs of runs side by side: changes, confidence intervals, gates"
    )
    compare.add_argument(
        "sides",
        nargs="*",
        type=Path,
        metavar="RUN",
        help="run folders, or folders of replications; the first is the reference (A)",
    )
    compare.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    compare.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="GATE",
        help="exit 1 if this holds, e.g. 'latency_s.p99>+10%%' or 'readings_lost_total>0'",
    )
    compare.add_argument(
        "--kpi", action="append", default=[], metavar="PATTERN", help="only these KPIs (globs)"
    )
    compare.add_argument("--changed", action="store_true", help="only KPIs that differ from A")
    compare.add_argument(
        "--html", type=Path, default=None, help="the page (default: compare.html beside RUN A)"
    )
    compare.add_argument("--list-kpis", action="store_true", help="print the KPI names")

    golden = commands.add_parser(
        "golden", help="check (CI) or rewrite the shipped scenarios' golden KPIs"
    )
    mode = golden.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail with a diff on drift")
    mode.add_argument("--update", action="store_true", help="rewrite the golden files")
    golden.add_argument("names", nargs="*", metavar="NAME", help="scenarios (default: all)")
    golden.add_argument(
        "--jobs", type=int, default=2, help="scenarios run at a time (processes; default 2)"
    )
    golden.add_argument(
        "--dir", type=Path, default=Path("scenarios"), help="the scenarios (golden/ inside)"
    )
    golden.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="with --update: run with these overrides, declared in the golden file",
    )
    golden.add_argument(
        "--full", action="store_true", help="with --update: run the full scenario (no overrides)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "report":
            return _report(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "golden":
            return _golden(args)
        return _calibrate(args)
    except ScenarioError as exc:
        print(f"twin: scenario error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    from twin.outputs.files import write_outputs
    from twin.outputs.progress import ProgressBar
    from twin.outputs.summary import summary_text
    from twin.runner import run
    from twin.scenario.loader import load_scenario

    if args.seed is not None and args.seed < 0:
        raise ScenarioError("--seed", args.seed, "an integer >= 0")
    scenario = load_scenario(args.scenario, args.overrides)
    out_dir = args.out if args.out is not None else Path("out") / scenario.name
    bar = None if args.no_progress else ProgressBar(scenario.duration_s)
    try:
        results = run(scenario, seed=args.seed, store_dir=out_dir, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    files = write_outputs(results, out_dir, plots=not args.no_plots)
    print(summary_text(results, files))
    print(f"  results: {files.results}")
    print(f"  report: {files.report}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from twin.scenario.loader import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    sites = sum(f.count for f in scenario.fleets)
    print(f"{args.scenario}: ok ({scenario.name}: {sites} sites, {len(scenario.faults)} faults)")
    return EXIT_OK


def _calibrate(args: argparse.Namespace) -> int:
    from twin.sil.calibrate import calibrate

    model = calibrate(repeats=args.repeats)
    model_path = args.out
    model_path.parent.mkdir(parents=True, exist_ok=True)
    import json

    model_path.write_text(json.dumps(model.to_json(), indent=2, sort_keys=True) + "\n", "utf-8")
    for stage, cost in model.stages.items():
        print(
            f"{stage:<8} a = {cost.a_s * 1e6:8.2f} us   b = {cost.b_s_per_byte * 1e9:8.3f} ns/byte"
            f"   c = {cost.c_s_per_reading * 1e6:8.3f} us/reading"
        )
    print(
        f"analysis a = {model.analytics.a_s * 1e6:8.2f} us   "
        f"c = {model.analytics.c_s_per_point * 1e6:8.3f} us/point (batch VEE + detectors)"
    )
    print(f"cost model written to {model_path}")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    """``twin report OUT_DIR``: rebuild the run's report.html from its files."""
    from twin.errors import UsageError
    from twin.outputs.report import write_report

    try:
        print(write_report(args.out_dir))
    except UsageError as exc:
        print(f"twin report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    """``twin compare A B [C...]``: print the KPI table, write compare.html, check gates."""
    import json

    from twin.errors import UsageError
    from twin.outputs import compare
    from twin.outputs.compare_page import compare_html
    from twin.outputs.kpi_names import kpi_patterns

    if args.list_kpis:
        print("\n".join(kpi_patterns()))
        return EXIT_OK
    try:
        if not args.sides:
            raise UsageError("name at least one run folder (RUN), the reference first")
        gates = [compare.parse_gate(text) for text in args.fail_on]
        sides = compare.load_sides(args.sides)
        rows = [compare.compare_kpi(sides, n) for n in compare.kpi_names(sides, args.kpi)]
        verdicts = compare.check_gates(gates, sides)
        page = args.html or args.sides[0].parent / "compare.html"
        try:
            page.write_text(compare_html(sides, rows, verdicts), "utf-8")
        except OSError as exc:
            raise UsageError(f"--html {page}: cannot write it ({exc.strerror})") from None
    except UsageError as exc:
        print(f"twin compare: {exc}", file=sys.stderr)
        return EXIT_USAGE
    shown = [r for r in rows if r.changed] if args.changed else rows
    if args.format == "json":
        print(json.dumps(compare.to_json(sides, shown, verdicts), indent=2, sort_keys=True))
    else:
        header, cells = compare.table(sides, shown)
        render = compare.markdown_table if args.format == "markdown" else compare.text_table
        print(render(header, cells))
    print(f"compare page: {page}", file=sys.stderr)
    broken = [v for v in verdicts if v.broken]
    for verdict in verdicts:
        state = "BROKEN" if verdict.broken else "passed"
        print(f"gate {state}: {verdict.describe(sides[0].label)}", file=sys.stderr)
    return 1 if broken else EXIT_OK


def _golden(args: argparse.Namespace) -> int:
    """``twin golden --check|--update [NAME...]``: the golden KPIs of the shipped scenarios."""
    from twin.errors import UsageError
    from twin.outputs import golden

    try:
        if (args.overrides is not None or args.full) and not args.update:
            raise UsageError("--set and --full go with --update (the check runs what is declared)")
        if args.jobs < 1:
            raise UsageError(f"--jobs {args.jobs}: expected at least 1")
        overrides = [] if args.full else args.overrides
        jobs = golden.plan(args.dir, args.names, overrides)
    except UsageError as exc:
        print(f"twin golden: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stale = [] if args.names else golden.orphans(args.dir)  # all scenarios: no leftovers
    command = golden.update if args.update else golden.check
    return command(jobs, args.jobs, sys.stdout, stale)


if __name__ == "__main__":
    raise SystemExit(main())
