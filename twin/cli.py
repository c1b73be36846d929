"""The ``twin`` command: run, validate and calibrate scenarios."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from twin.errors import ScenarioError, UsageError

EXIT_OK = 0
EXIT_USAGE = 2
#: Exit code after Ctrl-C (or SIGTERM): 128 + the signal's number, as shells report it.
EXIT_SIGNAL_BASE = 128


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            return _validate(args)
        return _calibrate(args)
    except UsageError as exc:
        print(f"twin: {exc.label}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("twin: error: out of memory (see the run's estimate: twin validate)", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        signum = exc.args[0] if exc.args else signal.SIGINT
        name = signal.Signals(signum).name
        print(f"twin: interrupted ({name}); nothing written", file=sys.stderr)
        return EXIT_SIGNAL_BASE + signum
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM stops a command as Ctrl-C does (its files are left as they were)."""
    raise KeyboardInterrupt(signum)


def _run(args: argparse.Namespace) -> int:
    from twin.scenario.schema import MAX_INTEGER, read_scenario_text

    if args.seed is not None and not 0 <= args.seed <= MAX_INTEGER:
        raise ScenarioError("--seed", args.seed, f"an integer in [0, {MAX_INTEGER}]")
    read_scenario_text(args.scenario)  # a bad path is reported before the slow imports
    import dataclasses

    from twin.outputs.files import run_folder, write_outputs
    from twin.outputs.progress import ProgressBar
    from twin.outputs.summary import summary_text
    from twin.runner import STORE_NAME, run
    from twin.scenario.estimate import check_fits, estimate_run
    from twin.scenario.loader import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    estimate = estimate_run(scenario)
    check_fits(estimate)
    out_dir = args.out if args.out is not None else Path("out") / scenario.name
    with run_folder(out_dir, scenario.name, args.force) as staging:
        bar = None if args.no_progress else ProgressBar(scenario.duration_s)
        if bar is not None:
            print(f"twin: {scenario.name}: building {estimate.describe()}", file=sys.stderr)
        try:
            results = run(scenario, seed=args.seed, store_dir=staging, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        results = dataclasses.replace(results, store_path=str(out_dir / STORE_NAME))
        files = write_outputs(results, out_dir, plots=not args.no_plots, staging=staging)
    print(summary_text(results, files))
    print(f"  results: {files.results}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from twin.scenario.schema import read_scenario_text

    read_scenario_text(args.scenario)  # a bad path is reported before the slow imports
    from twin.scenario.estimate import check_fits, estimate_run
    from twin.scenario.loader import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
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


if __name__ == "__main__":
    raise SystemExit(main())
