"""Golden KPIs: what each shipped scenario gives for its default seed, committed as
``scenarios/golden/NAME.json`` and checked in CI (``twin golden --check``); an intended
change rewrites them (``twin golden --update``) and the diff of the file shows in review.

A golden file holds the scenario's name and seed, the ``--set`` overrides the check
applies (a scenario too long for CI is shortened there, and its ``note`` says how), the
tolerances and the values::

    {"scenario": "growth_3x", "seed": 7,
     "overrides": ["scenario.duration=\\"8h\\""],
     "note": "shortened for CI: the first 8 h of the day",
     "tolerances": {"exact": "integers and booleans", "rules": [...]},
     "values": {"latency_s.p99": 894.2384523, "readings_lost_total": 0, ...}}

The values are :func:`golden_values` of the run: every KPI (named as ``twin compare``
names them, :mod:`twin.accounting.kpi_names`), and ``ledger.*``, ``faults.<index>.<kind>.*``,
``mdcs.<name>.*``, ``network.*``, ``analytics.*`` (totals,
``analytics.confusion.<injected>.<detected>``, ``analytics.kinds.<kind>.*``),
``forecasts.<kind>.*`` (``by_step.<step>.*``) and ``weather_feed.<station>.*`` from the
rest of ``results.json``. Integers and booleans (every count of the ledger) must match
exactly; a float matches when it is within the first of the file's tolerance rules whose
pattern fits its name: the larger of its absolute and its relative tolerance times the
value (``math.isclose``); ``--update`` declares :data:`TOLERANCES`. Runs are deterministic
for a seed, so the tolerances absorb only floating-point differences between machines and
library builds. Floats are written with 10 significant digits and keys sorted, so an
update is byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TextIO

from twin.accounting.kpi_names import Number, derived_kpis, flatten
from twin.errors import UsageError

Rule = tuple[tuple[str, ...], float, float]

#: Tolerance rules that ``--update`` declares, first match wins: (name patterns, relative,
#: absolute in the value's unit). Simulated times are about 1e5 s, where float64 resolves
#: 1e-11 s, so a microsecond floor is far above rounding yet far below any real change.
TOLERANCES: tuple[Rule, ...] = (
    (("*latency_s*",), 1e-6, 1e-6),  # end-to-end and per-hop latencies, s
    (("*energy*", "*_wh", "*_wh.*", "*_kwh", "*_kwh.*"), 1e-6, 1e-6),  # Wh or kWh
    (("*",), 1e-6, 1e-9),
)
GOLDEN_FOLDER = "golden"
#: Significant digits of the floats written.
DIGITS = 10


def _keyed(items: Sequence[dict[str, Any]], *keys: Callable[[dict[str, Any]], str]) -> dict:
    """``items`` by the first of ``keys`` that names each one differently, else by
    position, so that no record hides another."""
    for key in keys:
        names = [key(item) for item in items]
        if len(set(names)) == len(names):
            return dict(zip(names, items, strict=True))
    return {str(i): item for i, item in enumerate(items)}


def _analytics(scores: dict[str, Any] | None) -> dict[str, Any]:
    """The analytics' totals, the confusion matrix and the scores per fault kind (keyed by
    kind, or kind and detector where a kind has several)."""
    if scores is None:
        return {}
    kinds = _keyed(
        scores["kinds"],
        lambda k: k["fault_kind"],
        lambda k: f"{k['fault_kind']}.{k['detection_kind']}",
    )
    return scores | {"kinds": kinds}


def golden_values(results: dict[str, Any]) -> dict[str, Number]:
    """The values a golden file holds (module docstring), from ``results.json`` content."""
    network = dict(results["network"])
    network["vpn"] = _keyed(network["vpn"], lambda t: t["mdc"])
    sections = {
        "ledger": results["ledger"],
        "faults": _keyed(results["faults"], lambda f: f"{f['index']}.{f['kind']}"),
        "mdcs": _keyed(results["mdcs"], lambda m: m["name"]),
        "network": network,
        "analytics": _analytics(results["analytics"]),
        "forecasts": {
            kind: f | {"by_step": {str(i + 1): e for i, e in enumerate(f["by_step"])}}
            for kind, f in results["forecasts"].items()
        },
        "weather_feed": _keyed(results["weather_feed"], lambda x: x["station_id"]),
    }
    values = flatten(results["kpis"]) | derived_kpis(results) | flatten(sections)
    return {k: v for k, v in values.items() if not (isinstance(v, float) and math.isnan(v))}


def tolerance(name: str, rules: Sequence[Rule] = TOLERANCES) -> tuple[float, float]:
    """(relative, absolute) tolerance of a float value: the first rule that fits."""
    for patterns, rel, absolute in rules:
        if any(fnmatch(name, p) for p in patterns):
            return rel, absolute
    return 0.0, 0.0


def _rounded(value: Number) -> Number:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{DIGITS}g}")
    return value


@dataclass(frozen=True)
class GoldenFile:
    """One golden file (module docstring); ``rules`` are the tolerances it declares."""

    scenario: str
    seed: int
    overrides: list[str]
    note: str
    values: dict[str, Number] = field(default_factory=dict)
    rules: tuple[Rule, ...] = TOLERANCES

    def to_text(self) -> str:
        data = {
            "scenario": self.scenario,
            "seed": self.seed,
            "overrides": self.overrides,
            "note": self.note,
            "tolerances": {
                "exact": "integers and booleans",
                "rules": [
                    {"match": list(p), "relative": rel, "absolute": a} for p, rel, a in self.rules
                ],
            },
            "values": {k: _rounded(v) for k, v in self.values.items()},
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: Path) -> GoldenFile:
        try:
            data = json.loads(path.read_text("utf-8"))
            rules = tuple(
                (tuple(r["match"]), float(r["relative"]), float(r["absolute"]))
                for r in data["tolerances"]["rules"]
            )
            return cls(
                data["scenario"],
                data["seed"],
                data["overrides"],
                data["note"],
                data["values"],
                rules,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError("golden file", str(path), f"a golden file ({exc!r})") from None


def drift(
    golden: dict[str, Number], now: dict[str, Number], rules: Sequence[Rule] = TOLERANCES
) -> list[str]:
    """One readable line per value outside its tolerance (``rules``), new or gone, sorted
    by name."""
    lines = []
    for name in sorted(set(golden) | set(now)):
        if name not in now:
            lines.append(f"- {name}: golden {golden[name]!r}, no longer reported")
            continue
        if name not in golden:
            lines.append(f"+ {name}: now {now[name]!r}, not in the golden file")
            continue
        g, v = golden[name], now[name]
        if isinstance(g, bool | int) and not isinstance(g, float):
            if g != v:
                lines.append(f"  {name}: golden {g!r}, now {v!r} (exact)")
            continue
        rel, absolute = tolerance(name, rules)
        if not math.isclose(float(v), float(g), rel_tol=rel, abs_tol=absolute):
            change = f", {100 * (float(v) - g) / abs(g):+.4g} %" if g else ""
            lines.append(
                f"  {name}: golden {g!r}, now {_rounded(v)!r}{change} "
                f"(tolerance {rel:g} relative + {absolute:g})"
            )
    return lines


def run_golden(scenario_path: Path, overrides: list[str]) -> tuple[dict[str, Number], float]:
    """Run a scenario with its default seed and ``overrides``: its golden values and the
    wall time, s. A top-level function, so that a process pool can call it."""
    from twin.runner import run
    from twin.scenario.loader import load_scenario

    t0 = time.perf_counter()
    results = run(load_scenario(scenario_path, overrides))
    return {k: _rounded(v) for k, v in golden_values(results.to_json()).items()}, (
        time.perf_counter() - t0
    )


@dataclass(frozen=True)
class GoldenJob:
    """One scenario to check or update: its file, its golden file and what that holds
    (None when there is none yet), the overrides to run with and a scheduling weight
    (readings the run generates)."""

    scenario_path: Path
    golden_path: Path
    golden: GoldenFile | None
    overrides: list[str]
    seed: int
    weight: float

    @property
    def name(self) -> str:
        return self.scenario_path.stem


def plan(folder: Path, names: Sequence[str], overrides: Sequence[str] | None) -> list[GoldenJob]:
    """The jobs for the scenarios ``names`` in ``folder`` (all of them when empty), run
    with ``overrides`` when given, else with what their golden file declares."""
    from twin.scenario.loader import load_scenario

    paths = {p.stem: p for p in sorted(folder.glob("*.toml"))}
    if not paths:
        raise UsageError("--dir", str(folder), "a folder of scenario files (*.toml)")
    unknown = [n for n in names if n not in paths]
    if unknown:
        raise UsageError("NAME", unknown[0], f"a scenario of {folder}: {', '.join(paths)}")
    jobs = []
    for name in names or list(paths):
        golden_path = folder / GOLDEN_FOLDER / f"{name}.json"
        golden = GoldenFile.read(golden_path) if golden_path.exists() else None
        chosen = list(overrides) if overrides is not None else (golden.overrides if golden else [])
        scenario = load_scenario(paths[name], chosen)
        weight = sum(f.count * scenario.duration_s / f.meter.sample_s for f in scenario.fleets)
        jobs.append(GoldenJob(paths[name], golden_path, golden, chosen, scenario.seed, weight))
    return jobs


def orphans(folder: Path) -> list[Path]:
    """The golden files in ``folder`` whose scenario file is gone."""
    scenarios = {p.stem for p in folder.glob("*.toml")}
    return sorted(p for p in (folder / GOLDEN_FOLDER).glob("*.json") if p.stem not in scenarios)


def run_jobs(
    jobs: Sequence[GoldenJob],
    workers: int,
    report: Callable[[GoldenJob, dict[str, Number] | Exception, float], None],
) -> None:
    """Run every job, ``workers`` at a time in separate processes (in this one for 1),
    the heaviest first; ``report(job, values or the run's exception, wall_s)`` as each
    ends."""
    order = sorted(jobs, key=lambda j: (-j.weight, j.name))
    if workers <= 1:
        for job in order:
            report(job, *_outcome(partial(run_golden, job.scenario_path, job.overrides)))
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_golden, j.scenario_path, j.overrides): j for j in order}
        for future in as_completed(futures):
            report(futures[future], *_outcome(future.result))


def _outcome(
    call: Callable[[], tuple[dict[str, Number], float]],
) -> tuple[dict[str, Number] | Exception, float]:
    try:
        return call()
    except Exception as exc:  # a run that fails is that scenario's outcome, not the command's
        return exc, math.nan


def _head(job: GoldenJob, wall_s: float) -> str:
    how = ", ".join(job.overrides) if job.overrides else "full run"
    return f"{job.name:<16} ({how}; {wall_s:.1f} s)"


def check(jobs: Sequence[GoldenJob], workers: int, out: TextIO, stale: Sequence[Path] = ()) -> int:
    """Run the jobs and compare each with its golden file; 0 when all match and no golden
    file is ``stale`` (its scenario gone, :func:`orphans`), else 1."""
    failed: list[str] = []
    for path in stale:
        failed.append(path.stem)
        print(
            f"STALE  {path}: no scenario {path.stem}.toml (twin golden --update removes it)",
            file=out,
        )

    def report(job: GoldenJob, values: dict[str, Number] | Exception, wall_s: float) -> None:
        if isinstance(values, Exception):
            lines = [f"  the run failed: {type(values).__name__}: {values}"]
        elif job.golden is None:
            lines = [f"  no golden file {job.golden_path}"]
        else:
            lines = drift(job.golden.values, values, job.golden.rules)
            if job.golden.seed != job.seed:
                lines.insert(0, f"  seed: golden {job.golden.seed}, scenario now {job.seed}")
        if not lines and not isinstance(values, Exception):
            print(f"ok     {_head(job, wall_s)}: {len(values)} values match", file=out)
            return
        failed.append(job.name)
        print(f"DRIFT  {_head(job, wall_s)}:", file=out)
        for line in lines:
            print(f"    {line}", file=out)
        out.flush()

    run_jobs(jobs, workers, report)
    if failed:
        print(
            f"golden: {len(failed)} of {len(jobs) + len(stale)} scenarios drifted "
            f"({', '.join(sorted(failed))}); if the change is intended: twin golden --update "
            + ("" if stale else " ".join(sorted(failed))),
            file=out,
        )
        return 1
    print(f"golden: all {len(jobs)} scenarios match their golden KPIs", file=out)
    return 0


def update(jobs: Sequence[GoldenJob], workers: int, out: TextIO, stale: Sequence[Path] = ()) -> int:
    """Run the jobs and rewrite their golden files (write them for new scenarios), and
    remove the ``stale`` ones (:func:`orphans`); 0 unless a run failed."""
    failed: list[str] = []
    for path in stale:
        path.unlink()
        print(f"removed {path}: no scenario {path.stem}.toml", file=out)

    def report(job: GoldenJob, values: dict[str, Number] | Exception, wall_s: float) -> None:
        if isinstance(values, Exception):
            failed.append(job.name)
            print(f"FAILED {_head(job, wall_s)}: {type(values).__name__}: {values}", file=out)
            return
        note = _note(job)
        golden = GoldenFile(job.name, job.seed, job.overrides, note, values)
        job.golden_path.parent.mkdir(parents=True, exist_ok=True)
        job.golden_path.write_text(golden.to_text(), "utf-8")
        changed = len(drift(job.golden.values, values)) if job.golden else len(values)
        print(f"wrote  {_head(job, wall_s)}: {job.golden_path}, {changed} values changed", file=out)
        out.flush()

    run_jobs(jobs, workers, report)
    return 1 if failed else 0


def _note(job: GoldenJob) -> str:
    if job.golden is not None and job.golden.overrides == job.overrides:
        return job.golden.note
    if not job.overrides:
        return "the full scenario"
    return "shortened for CI (" + ", ".join(job.overrides) + "): the full run is too long"
