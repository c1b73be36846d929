"""The ``twin sweep`` and ``twin size`` commands: their options, and the study each runs on
the executor the options ask for (a process pool or a Dask cluster)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from twin.errors import ScenarioError, interruption

if TYPE_CHECKING:
    from twin.study.runbook import RunBook

StudyT = TypeVar("StudyT")


def add_study_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``sweep`` and ``size`` to the ``twin`` command's subcommands."""
    _add_sweep(commands)
    _add_size(commands)


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


def _add_sweep(commands: argparse._SubParsersAction) -> None:
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


def sweep_command(args: argparse.Namespace) -> int:
    """``twin sweep``: resolve every point, run what ``runs.jsonl`` lacks, write the tables."""
    from twin.accounting.kpi_names import HEADLINE_KPIS, check_kpi_name
    from twin.study.files import write_sweep
    from twin.study.points import parse_axis
    from twin.study.summary import sweep_text
    from twin.study.sweep import SweepSpec, plan, run_sweep

    if not args.vary:
        raise ScenarioError("--vary", None, "at least one KEY=V1,V2,...")
    for name in args.kpi:
        check_kpi_name(name, "--kpi", name)
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
    return 0


def _add_size(commands: argparse._SubParsersAction) -> None:
    from twin.study.cost import DEFAULT_ENERGY_PRICE_PER_KWH, DEFAULT_YEARS

    size = commands.add_parser(
        "size",
        help="cheapest configuration meeting every SLO at 95 %% confidence, or the largest "
        "fleet the hardware carries (--grow)",
    )
    _study_options(size)
    size.add_argument(
        "--slo", action="append", default=[], metavar="KPI<=LIMIT",
        help="a service-level objective, e.g. 'latency_s.p99<=1800' (repeatable; default the "
        "scenario's [slo] table)",
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


def size_command(args: argparse.Namespace) -> int:
    """``twin size``: judge candidates until the cheapest (or the largest fleet) is found."""
    from twin.accounting.intervals import CONFIDENCE
    from twin.accounting.kpi_names import check_kpi_name, check_slos
    from twin.scenario.loader import load_scenario
    from twin.scenario.slo import parse_slo
    from twin.study.feasibility import SequentialCheck
    from twin.study.files import write_sizing
    from twin.study.points import parse_axis
    from twin.study.sizing import Sizer, SizingSpec, validate
    from twin.study.summary import sizing_text

    scenario = load_scenario(args.scenario, args.overrides)
    check_slos(scenario.slo, "slo")
    slos = tuple(parse_slo(text) for text in args.slo) or scenario.slo
    for text, slo in zip(args.slo, slos, strict=False):
        check_kpi_name(slo.kpi, "--slo", text)
    spec = SizingSpec(
        args.scenario,
        tuple(args.overrides),
        slos,
        tuple(parse_axis(c, "--choose") for c in args.choose),
        parse_axis(args.grow, "--grow") if args.grow is not None else None,
        SequentialCheck(args.replications, CONFIDENCE, args.tolerance, args.max_replications),
        seed=args.seed,
        years=args.years,
        energy_price_per_kwh=args.energy_price_per_kwh,
        keep_stores=args.keep_stores,
    )
    validate(spec)  # every mistake before anything runs
    out_dir = args.out or Path("out") / f"{scenario.name}-size"
    result, tally = _study(args, out_dir, lambda book: Sizer(spec, book).run())
    files = write_sizing(result, out_dir)
    print(sizing_text(result))
    print(tally)
    print("  " + "  ".join(str(f) for f in files))
    return 0


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
        if isinstance(exc, KeyboardInterrupt):
            name, code = interruption(exc)
            what = f"interrupted ({name})"
        else:
            what, code = str(exc), 1
        print(
            f"twin: {what}; {len(book.records)} runs are recorded in {book.file.path}, "
            "the same command goes on from there",
            file=sys.stderr,
        )
        raise SystemExit(code) from None
    finally:
        book.close()
        executor.close()
    tally = (
        f"{book.executed} runs executed, {book.reused} reused from {book.file.path} "
        f"({book.wall_time_s:.0f} s on {executor.workers} worker(s))"
    )
    return result, tally
