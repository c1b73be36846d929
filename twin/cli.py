"""The ``twin`` command: run (in-process, or live against a real MDC service), validate and
calibrate scenarios, write the keyring of a scenario's meters, (re)build a run's report,
compare runs, check or update the golden KPIs, sweep and size them
(:mod:`twin.study.commands`)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from twin.errors import PipelineWorkerError, ScenarioError, UsageError, interruption

if TYPE_CHECKING:
    from twin.scenario.loader import Scenario

EXIT_OK = 0
EXIT_USAGE = 2
#: A run that stopped on a failure of the run itself (the pipeline worker died).
EXIT_RUN_FAILED = 1
#: ``twin run --pipeline-workers`` by default: a core for the pipeline when there are two.
DEFAULT_PIPELINE_WORKERS = min(1, (os.cpu_count() or 1) - 1)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (DESIGN.md §9), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    run.add_argument(
        "--force",
        action="store_true",
        help="replace the run of another scenario in the output folder",
    )
    run.add_argument(
        "--pipeline-workers",
        type=int,
        default=None,
        metavar="N",
        help="1: the real pipeline runs in a worker process beside the simulation, same "
        "results (calibrated and model modes; measured runs in-process); 0: in this process "
        f"(default {DEFAULT_PIPELINE_WORKERS}: cores - 1, at most 1)",
    )
    _add_live_options(run)

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
    _add_keys(commands)
    from twin.study.commands import add_study_commands

    add_study_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
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
        if args.command == "keys":
            return _keys(args)
        if args.command in ("sweep", "size"):
            from twin.study.commands import size_command, sweep_command

            return sweep_command(args) if args.command == "sweep" else size_command(args)
        return _calibrate(args)
    except UsageError as exc:
        print(f"twin: {exc.label}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PipelineWorkerError as exc:
        print(f"twin: error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except MemoryError:
        print("twin: error: out of memory (see the run's estimate: twin validate)", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        name, code = interruption(exc)
        print(f"twin: interrupted ({name}); nothing written", file=sys.stderr)
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM stops a command as Ctrl-C does (its files are left as they were)."""
    raise KeyboardInterrupt(signum)


def _run(args: argparse.Namespace) -> int:
    from twin.scenario.schema import MAX_INTEGER, read_scenario_text

    if args.seed is not None and not 0 <= args.seed <= MAX_INTEGER:
        raise ScenarioError("--seed", args.seed, f"an integer in [0, {MAX_INTEGER}]")
    if args.pipeline_workers not in (None, 0, 1):
        raise UsageError(
            "--pipeline-workers",
            args.pipeline_workers,
            "0 (the pipeline in this process) or 1 (in a worker process: the store has one "
            "writer)",
        )
    if args.live is not None and args.pipeline_workers is not None:
        raise UsageError(
            "--pipeline-workers",
            args.pipeline_workers,
            "no value with --live (the service runs the pipeline)",
        )
    read_scenario_text(args.scenario)  # a bad path is reported before the slow imports
    import dataclasses

    from twin.accounting.kpi_names import check_slos
    from twin.outputs.files import run_folder, write_outputs
    from twin.outputs.progress import ProgressBar
    from twin.outputs.summary import summary_text
    from twin.runner import STORE_NAME, run
    from twin.scenario.estimate import check_fits, estimate_run
    from twin.scenario.loader import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    check_slos(scenario.slo, "slo")
    estimate = estimate_run(scenario)
    check_fits(estimate)
    out_dir = args.out if args.out is not None else Path("out") / scenario.name
    workers = DEFAULT_PIPELINE_WORKERS if args.pipeline_workers is None else args.pipeline_workers
    with run_folder(out_dir, scenario.name, args.force) as staging:
        if args.live is not None:
            return _run_live(args, scenario, out_dir, staging)
        bar = None if args.no_progress else ProgressBar(scenario.duration_s)
        if bar is not None:
            print(f"twin: {scenario.name}: building {estimate.describe()}", file=sys.stderr)
        try:
            results = run(
                scenario,
                seed=args.seed,
                store_dir=staging,
                progress=bar,
                pipeline_workers=workers,
            )
        finally:
            if bar is not None:
                bar.close()
        results = dataclasses.replace(results, store_path=str(out_dir / STORE_NAME))
        files = write_outputs(results, out_dir, plots=not args.no_plots, staging=staging)
    print(summary_text(results, files))
    print(f"  results: {files.results}")
    print(f"  report: {files.report}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from twin.scenario.schema import read_scenario_text

    read_scenario_text(args.scenario)  # a bad path is reported before the slow imports
    from twin.accounting.kpi_names import check_slos
    from twin.scenario.estimate import check_fits, estimate_run
    from twin.scenario.loader import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    check_slos(scenario.slo, "slo")
    estimate = estimate_run(scenario)
    check_fits(estimate)
    sites = sum(f.count for f in scenario.fleets)
    print(f"{args.scenario}: ok ({scenario.name}: {sites} sites, {len(scenario.faults)} faults)")
    print(f"  estimate: {estimate.describe()}")
    return EXIT_OK


def _calibrate(args: argparse.Namespace) -> int:
    import json

    from twin.outputs.files import write_text_atomic
    from twin.sil.calibrate import calibrate

    model_path = args.out
    if args.repeats < 1:
        raise UsageError("--repeats", args.repeats, "an integer >= 1")
    if model_path.is_dir():
        raise UsageError("--out", str(model_path), "a file path (it is a folder)")
    model = calibrate(repeats=args.repeats)
    try:
        model_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(model_path, json.dumps(model.to_json(), indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        why = f"a file it can write ({exc.strerror})"
        raise UsageError("--out", str(model_path), why) from None
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
    from twin.outputs.report import write_report

    print(write_report(args.out_dir))
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    """``twin compare A B [C...]``: print the KPI table, write compare.html, check gates."""
    import json

    from twin.accounting.kpi_names import kpi_patterns
    from twin.outputs import compare
    from twin.outputs.compare_page import compare_html

    if args.list_kpis:
        print("\n".join(kpi_patterns()))
        return EXIT_OK
    if not args.sides:
        raise UsageError("RUN", [], "at least one run folder, the reference first")
    gates = [compare.parse_gate(text) for text in args.fail_on]
    sides = compare.load_sides(args.sides)
    rows = [compare.compare_kpi(sides, n) for n in compare.kpi_names(sides, args.kpi)]
    verdicts = compare.check_gates(gates, sides)
    page = args.html or args.sides[0].parent / "compare.html"
    try:
        page.write_text(compare_html(sides, rows, verdicts), "utf-8")
    except OSError as exc:
        raise UsageError("--html", str(page), f"a file it can write ({exc.strerror})") from None
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
    from twin.outputs import golden

    if (args.overrides is not None or args.full) and not args.update:
        raise UsageError(
            "--set/--full",
            args.overrides or "--full",
            "given with --update only (the check runs what the golden files declare)",
        )
    if args.jobs < 1:
        raise UsageError("--jobs", args.jobs, "an integer >= 1")
    overrides = [] if args.full else args.overrides
    jobs = golden.plan(args.dir, args.names, overrides)
    stale = [] if args.names else golden.orphans(args.dir)  # all scenarios: no leftovers
    command = golden.update if args.update else golden.check
    return command(jobs, args.jobs, sys.stdout, stale)


def _add_live_options(run: argparse.ArgumentParser) -> None:
    live = run.add_argument_group(
        "live mode", "deliver the uploads to a real MDC service over HTTP (DESIGN §11)"
    )
    live.add_argument(
        "--live",
        metavar="URL|spawn",
        default=None,
        help="the base URL of a running 'python -m pipeline serve' (on a new store), or "
        "'spawn': start one per MDC (an mdc_power_loss fault then kills it with kill -9 "
        "and restarts it)",
    )
    live.add_argument(
        "--speed",
        default="max",
        metavar="X|max",
        help="simulated seconds per wall second, or max: as fast as the service answers (default)",
    )
    live.add_argument(
        "--concurrency", type=int, default=64, help="uploads in flight at most (default 64)"
    )
    live.add_argument(
        "--lookahead",
        default="1s",
        metavar="DURATION",
        help="how far simulated time may run past the oldest unanswered upload (default 1s)",
    )
    live.add_argument("--token", default=None, help="the service's bearer token, if it has one")
    live.add_argument(
        "--commit-wait",
        default=None,
        metavar="DURATION",
        help="spawned services with receipt acks: the longest an acknowledged upload waits "
        "for its commit (the window a kill loses; default the service's, 200ms)",
    )


def _run_live(args: argparse.Namespace, scenario: Scenario, out_dir: Path, staging: Path) -> int:
    """``twin run --live``: the run's files go to ``staging`` (:func:`run_folder`)."""
    import dataclasses

    from twin.outputs.files import write_outputs
    from twin.outputs.progress import ProgressBar
    from twin.outputs.summary import summary_text
    from twin.sil.live import LiveOptions
    from twin.sil.live_run import run_live
    from twin.units import parse_duration_s

    if args.speed == "max":
        speed = None
    else:
        try:
            speed = float(args.speed)
        except ValueError:
            raise ScenarioError("--speed", args.speed, "a positive number or max") from None
    try:
        lookahead_s = parse_duration_s(args.lookahead)
    except ValueError:
        raise ScenarioError("--lookahead", args.lookahead, "a duration such as 1s") from None
    try:
        commit_wait_s = None if args.commit_wait is None else parse_duration_s(args.commit_wait)
    except ValueError:
        raise ScenarioError("--commit-wait", args.commit_wait, "a duration such as 1s") from None
    options = LiveOptions(
        target=args.live,
        speed=speed,
        concurrency=args.concurrency,
        lookahead_s=lookahead_s,
        token=args.token,
        commit_wait_s=commit_wait_s,
    )
    bar = None if args.no_progress else ProgressBar(scenario.duration_s)
    try:
        results, report = run_live(
            scenario,
            options,
            seed=args.seed,
            store_dir=staging if args.live == "spawn" else None,
            progress=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    if results.store_path is not None:
        results = dataclasses.replace(
            results, store_path=str(out_dir / Path(results.store_path).name)
        )
    (staging / "live.json").write_text(json.dumps(report.to_json(), indent=2) + "\n", "utf-8")
    files = write_outputs(results, out_dir, plots=not args.no_plots, staging=staging)
    print(summary_text(results, files))
    answers = ", ".join(f"{n} {kind}" for kind, n in sorted(report.answers.items()))
    p50 = f"{report.latency_p50_s * 1e3:.1f} ms" if report.latency_p50_s is not None else "-"
    p99 = f"{report.latency_p99_s * 1e3:.1f} ms" if report.latency_p99_s is not None else "-"
    print(
        f"  live: {', '.join(report.targets.values())}: {answers}; request latency p50 "
        f"{p50}, p99 {p99}; {report.uploads_per_s:.0f} uploads/s over {report.wall_s:.1f} s"
        + (f"; {report.kills} kills" if report.kills else "")
    )
    print(f"  results: {files.results}")
    print(f"  report: {files.report}")
    return EXIT_OK


def _add_keys(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser(
        "keys",
        help="write the keyring (and site registry) of a scenario's meters and met stations, for "
        "'python -m pipeline serve --keyring FILE [--sites FILE]'",
    )
    keys.add_argument("scenario", type=Path)
    keys.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    keys.add_argument(
        "--out", type=Path, required=True, help='keyring JSON: {"keys": {METER_ID: HEX_KEY}}'
    )
    keys.add_argument(
        "--sites", type=Path, default=None, help='also write the site registry: {"sites": [...]}'
    )


def _keys(args: argparse.Namespace) -> int:
    from twin.runner import site_records, upload_keys
    from twin.scenario.loader import load_scenario
    from twin.sil.live_run import write_keyring, write_sites
    from twin.world.fleet import build_fleets

    scenario = load_scenario(args.scenario, args.overrides)
    fleets = build_fleets(scenario)
    keys = upload_keys(scenario, fleets)
    write_keyring(args.out, keys)
    print(f"{args.out}: keys of {len(keys)} meters and met stations")
    if args.sites is not None:
        sites = site_records(fleets)
        write_sites(args.sites, sites)
        print(f"{args.sites}: {len(sites)} sites")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
