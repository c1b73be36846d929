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


if __name__ == "__main__":
    raise SystemExit(main())
