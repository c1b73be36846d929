"""The ``twin`` command: run, validate and calibrate scenarios; sweep and size them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from twin.errors import ScenarioError

if TYPE_CHECKING:
    from twin.study.runbook import RunBook

StudyT = TypeVar("StudyT")

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
    _sweep_parser(commands)
    _size_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "size":
            return _size(args)
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


def _study_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``sweep`` and ``size``: overrides, seed, output, executor."""
    parser.add_argument("scenario", type=Path, help="scenario TOML file")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a key of the base scenario (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=None,
        help="seed of replication 0 (replication i: SEED + i); default the scenario's",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="study folder")
    parser.add_argument(
        "--workers", type=int, default=None,
        help="parallel runs (default: every core; 1: in this process)",
    )  # fmt: skip
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="run on the Dask scheduler at ADDRESS (tcp://HOST:PORT), or 'local' for a "
        "LocalCluster of --workers processes",
    )  # fmt: skip
    parser.add_argument(
        "--keep-stores", type=Path, default=None, metavar="DIR",
        help="keep each run's store.sqlite in DIR/POINT/rep-I",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _sweep_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run every point of the varied keys N times; KPI means with confidence intervals",
    )
    _study_options(sweep)
    sweep.add_argument(
        "--vary", action="append", default=[], metavar="KEY=V1,V2,...",
        help="a key and its values (or an integer range A..B[:STEP]); repeatable",
    )  # fmt: skip
    combine = sweep.add_mutually_exclusive_group()
    combine.add_argument("--grid", action="store_true", help="every combination (default)")
    combine.add_argument("--zip", action="store_true", help="the i-th values of each --vary")
    sweep.add_argument("--replications", type=int, default=5, help="runs per point")
    sweep.add_argument(
        "--kpi", action="append", default=[], metavar="NAME",
        help="KPI to print and chart first (repeatable; default a headline set)",
    )  # fmt: skip


def _sweep(args: argparse.Namespace) -> int:
    """``twin sweep``: resolve every point, run what ``runs.jsonl`` lacks, write the tables."""
    from twin.study.files import write_sweep
    from twin.study.kpi_names import HEADLINE_KPIS, check_kpi_name
    from twin.study.points import parse_axis
    from twin.study.summary import sweep_text
    from twin.study.sweep import SweepSpec, plan, run_sweep

    if not args.vary:
        raise ScenarioError("--vary", None, "at least one KEY=V1,V2,...")
    for name in args.kpi:
        check_kpi_name(name, "--kpi")
    spec = SweepSpec(
        args.scenario,
        tuple(args.overrides),
        tuple(parse_axis(v, "--vary") for v in args.vary),
        zip_axes=args.zip,
        replications=args.replications,
        seed=args.seed,
        keep_stores=args.keep_stores,
    )
    points, _ = plan(spec)  # every mistake before anything runs
    out_dir = args.out or Path("out") / f"{points[0].scenario.name}-sweep"
    result, tally = _study(args, out_dir, lambda book: run_sweep(spec, book))
    headline = tuple(args.kpi) or HEADLINE_KPIS
    files = write_sweep(result, out_dir, headline)
    print(sweep_text(result, headline))
    print(tally)
    print("  " + "  ".join(str(f) for f in files))
    return EXIT_OK


def _size_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from twin.study.cost import DEFAULT_ENERGY_PRICE_PER_KWH, DEFAULT_YEARS

    size = commands.add_parser(
        "size",
        help="cheapest configuration meeting every SLO at 95 %% confidence, or the largest "
        "fleet the hardware carries (--grow)",
    )
    _study_options(size)
    size.add_argument(
        "--slo", action="append", default=[], metavar="KPI<=LIMIT",
        help="a service-level objective, e.g. 'latency_s.p99<=1800' (repeatable)",
    )  # fmt: skip
    size.add_argument(
        "--choose", action="append", default=[], metavar="KEY=V1,V2,...",
        help="what to buy: a key and its options; one may be a count range A..B (bisected)",
    )  # fmt: skip
    size.add_argument(
        "--grow", default=None, metavar="KEY=A..B[:STEP]",
        help="instead: the largest value of KEY (e.g. fleet.pv.count) that meets every SLO",
    )  # fmt: skip
    numbers: list[tuple[str, type, float, str]] = [
        ("--replications", int, 5, "first-stage replications of each candidate (more only "
         "where one is too close to call)"),
        ("--max-replications", int, 100, "most replications of one candidate"),
        ("--tolerance", float, 0.05, "fraction of a limit within which either verdict is "
         "acceptable"),
        ("--years", float, DEFAULT_YEARS, "cost horizon, years"),
        ("--energy-price-per-kwh", float, DEFAULT_ENERGY_PRICE_PER_KWH,
         "USD per kWh of facility energy"),
    ]  # fmt: skip
    for flag, kind, default, text in numbers:
        size.add_argument(flag, type=kind, default=default, help=f"{text} (default {default:g})")


def _size(args: argparse.Namespace) -> int:
    """``twin size``: judge candidates until the cheapest (or the largest fleet) is found."""
    from twin.scenario.loader import load_scenario
    from twin.study.feasibility import SequentialCheck
    from twin.study.files import write_sizing
    from twin.study.points import parse_axis
    from twin.study.sizing import Sizer, SizingSpec, validate
    from twin.study.slo import parse_slo
    from twin.study.stats import CONFIDENCE
    from twin.study.summary import sizing_text

    spec = SizingSpec(
        args.scenario,
        tuple(args.overrides),
        tuple(parse_slo(s) for s in args.slo),
        tuple(parse_axis(c, "--choose") for c in args.choose),
        parse_axis(args.grow, "--grow") if args.grow is not None else None,
        SequentialCheck(args.replications, CONFIDENCE, args.tolerance, args.max_replications),
        seed=args.seed,
        years=args.years,
        energy_price_per_kwh=args.energy_price_per_kwh,
        keep_stores=args.keep_stores,
    )
    validate(spec)  # every mistake before anything runs
    name = load_scenario(args.scenario, args.overrides).name
    out_dir = args.out or Path("out") / f"{name}-size"
    result, tally = _study(args, out_dir, lambda book: Sizer(spec, book).run())
    files = write_sizing(result, out_dir)
    print(sizing_text(result))
    print(tally)
    print("  " + "  ".join(str(f) for f in files))
    return EXIT_OK


def _study(
    args: argparse.Namespace, out_dir: Path, work: Callable[[RunBook], StudyT]
) -> tuple[StudyT, str]:
    """``work(book)`` on the executor the options ask for, and a line tallying its runs. An
    interruption or a worker lost for good ends the command with one line (exit 130 or 1);
    the runs finished so far stay recorded for a rerun."""
    from twin.study.executors import WorkerLostError, make_executor
    from twin.study.runbook import RunBook

    executor = make_executor(args.workers, args.scheduler)
    book = RunBook(out_dir, executor, progress=not args.no_progress)
    try:
        result = work(book)
    except (KeyboardInterrupt, WorkerLostError) as exc:
        book.close()
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        print(
            f"twin: {what}; {len(book.records)} runs are recorded in {book.file.path}, "
            "the same command goes on from there",
            file=sys.stderr,
        )
        raise SystemExit(130 if isinstance(exc, KeyboardInterrupt) else 1) from None
    finally:
        book.close()
        executor.close()
    tally = (
        f"{book.executed} runs executed, {book.reused} reused from {book.file.path} "
        f"({book.wall_time_s:.0f} s on {executor.workers} worker(s))"
    )
    return result, tally


if __name__ == "__main__":
    raise SystemExit(main())
