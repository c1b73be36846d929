"""``twin size``: the cheapest configuration that meets every SLO at 95 % confidence, and the
inverse question, how far the fleet can grow on given hardware (DESIGN.md §8).

Candidates are configurations (settings of the ``--choose`` axes over the scenario), each
judged by the sequential check of :mod:`twin.study.feasibility` on replications with common
random numbers (replication ``i`` has seed ``S + i`` in every candidate, as in a sweep).

- ``--choose``: every combination of the listed axes (e.g. SKUs) is searched for the
  smallest value of the one integer range (e.g. ``mdc.north.servers.count=1..8``) that
  meets the SLOs, by bisection: more of the same server is never slower, so meeting is
  monotone in the count. The top of the range is judged first (if it breaks, no count of
  that SKU will do), then the range is halved. The answer is the cheapest of those
  smallest counts (:mod:`twin.study.cost`).
- ``--grow KEY=A..B[:STEP]``: the largest value that still meets the SLOs, by bisection
  (a larger fleet is never easier to serve), with the first value that breaks.

The searches of different combinations run side by side: each step asks for the
replications it needs, all of them go to the executor together, and each search goes on with
its own. Every run is recorded as it ends, so a rerun after a kill redoes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import ScenarioError
from twin.study.cost import DEFAULT_ENERGY_PRICE_PER_KWH, DEFAULT_YEARS, Cost, horizon_cost
from twin.study.feasibility import SequentialCheck, Verdict, judge
from twin.study.kpi_names import missing_kpis
from twin.study.points import Axis, Point, Setting, check_distinct, grid, resolve_one
from twin.study.records import RunRecord, RunTask
from twin.study.runbook import RunBook
from twin.study.slo import Slo
from twin.study.stats import Estimate
from twin.study.sweep import replication_task, summarise

#: A search step: the tasks it needs; it is sent their records, in the same order.
Search = Generator[list[RunTask], list[RunRecord], Any]


@dataclass(frozen=True)
class SizingSpec:
    """What to size: the scenario file and its ``--set`` overrides, the SLOs, the
    ``--choose`` axes or the ``--grow`` axis, the sequential check's settings, the base seed
    (None: the scenario's), the cost horizon and tariff, where to keep the stores."""

    scenario_path: Path
    base_overrides: tuple[str, ...] = ()
    slos: tuple[Slo, ...] = ()
    choose: tuple[Axis, ...] = ()
    grow: Axis | None = None
    check: SequentialCheck = field(default_factory=SequentialCheck)
    seed: int | None = None
    years: float = DEFAULT_YEARS
    energy_price_per_kwh: float = DEFAULT_ENERGY_PRICE_PER_KWH
    keep_stores: Path | None = None


@dataclass(frozen=True)
class Candidate:
    """One configuration judged: its verdict, the replications the verdict used, the
    estimate of every KPI over them, and its cost over the horizon."""

    point: Point
    verdict: Verdict
    runs: list[RunRecord]
    estimates: dict[str, Estimate]
    cost: Cost

    def to_json(self) -> dict[str, Any]:
        return self.point.to_json() | {
            "verdict": self.verdict.verdict,
            "replications": self.verdict.replications,
            "broken": self.verdict.broken,
            "slos": [
                {"slo": v.slo.text, "verdict": v.verdict, "decided_at": v.at}
                for v in self.verdict.slos
            ],
            "cost": self.cost.to_json(),
            "kpis": {name: e.to_json() for name, e in self.estimates.items()},
        }


@dataclass(frozen=True)
class SizingResult:
    """The candidates in the order they were judged; ``answer``: the cheapest meeting the
    SLOs (``--choose``) or the largest value meeting them (``--grow``), None if none does;
    ``limit``: with ``--grow``, the first value above the answer that breaks them."""

    spec: SizingSpec
    candidates: list[Candidate]
    answer: Candidate | None
    limit: Candidate | None = None
    executed: int = 0
    reused: int = 0
    files: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        spec, check = self.spec, self.spec.check
        return {
            "scenario": str(spec.scenario_path),
            "set": list(spec.base_overrides),
            "slos": [s.text for s in spec.slos],
            "choose": [{"key": a.key, "values": list(a.values)} for a in spec.choose],
            "grow": {"key": spec.grow.key, "values": [spec.grow.values[0], spec.grow.values[-1]]}
            if spec.grow is not None
            else None,
            "procedure": {
                "name": "fully sequential feasibility check (Batur & Kim 2010, on Kim & Nelson "
                "2001's continuation region), bisection on the monotone axis",
                "n0": check.n0,
                "confidence": check.confidence,
                "tolerance": check.tolerance,
                "max_replications": check.max_replications,
            },
            "cost": {"years": spec.years, "energy_price_per_kwh": spec.energy_price_per_kwh},
            "answer": self.answer.point.id if self.answer is not None else None,
            "limit": self.limit.point.id if self.limit is not None else None,
            "candidates": [c.to_json() for c in self.candidates],
        }


class Sizer:
    """Runs the searches of one :class:`SizingSpec` (checked by :func:`validate`) on a
    :class:`RunBook`."""

    def __init__(self, spec: SizingSpec, book: RunBook) -> None:
        self.spec = spec
        self.book = book
        self._judged: list[Candidate | None] = []  # in the order candidates were created
        self._checked_names = False

    def run(self) -> SizingResult:
        spec = self.spec
        if spec.grow is not None:
            (found,) = self._drive([self._largest(spec.grow)])
            answer, limit = found
            return self._result(answer, limit)
        lists = [a for a in spec.choose if not a.ranged]
        ranged = next((a for a in spec.choose if a.ranged), None)
        combos = grid(lists)
        searches = [
            self._smallest(combo, ranged) if ranged else self._candidate(combo) for combo in combos
        ]
        meeting = [c for c in self._drive(searches) if c is not None and c.verdict.meets]
        answer = min(meeting, key=lambda c: c.cost.total_usd, default=None)
        return self._result(answer, None)

    def _result(self, answer: Candidate | None, limit: Candidate | None) -> SizingResult:
        candidates = [c for c in self._judged if c is not None]
        return SizingResult(
            self.spec, candidates, answer, limit, self.book.executed, self.book.reused
        )

    def _drive(self, searches: list[Search]) -> list[Any]:
        """Advance every search together until each has returned; their results."""
        outcomes: list[Any] = [None] * len(searches)
        asks: dict[int, list[RunTask]] = {}
        for i, search in enumerate(searches):
            self._advance(i, search, None, asks, outcomes)
        while asks:
            tasks = [t for ask in asks.values() for t in ask]
            records = iter(self.book.run(tasks))
            answers = {i: [next(records) for _ in ask] for i, ask in asks.items()}
            asks = {}
            for i, got in answers.items():
                self._advance(i, searches[i], got, asks, outcomes)
        return outcomes

    @staticmethod
    def _advance(
        i: int,
        search: Search,
        got: list[RunRecord] | None,
        asks: dict[int, list[RunTask]],
        outcomes: list[Any],
    ) -> None:
        try:
            asks[i] = next(search) if got is None else search.send(got)
        except StopIteration as done:
            outcomes[i] = done.value

    def _candidate(self, settings: tuple[Setting, ...]) -> Search:
        """Judge one configuration, asking for replications until the check decides."""
        spec, check = self.spec, self.spec.check
        slot = len(self._judged)
        point = resolve_one(spec.scenario_path, spec.base_overrides, settings, f"c{slot}")
        self._judged.append(None)
        batch = max(1, self.book.executor.workers)
        n = check.n0
        while True:
            tasks = [replication_task(point, i, spec.seed, spec.keep_stores) for i in range(n)]
            runs = yield tasks
            tables = [r.table() for r in runs]
            if not self._checked_names:
                missing_kpis([s.kpi for s in spec.slos], tables[0], "--slo")
                self._checked_names = True
            values = {s.kpi: np.array([t.get(s.kpi, math.nan) for t in tables]) for s in spec.slos}
            verdict = judge(list(spec.slos), values, check)
            if verdict is not None:
                used = runs[: verdict.replications]
                estimates = summarise(used)
                energy = estimates["energy_mdc_kwh_total"].mean
                cost = horizon_cost(point.scenario, energy, spec.years, spec.energy_price_per_kwh)
                candidate = Candidate(point, verdict, list(used), estimates, cost)
                self._judged[slot] = candidate
                return candidate
            n = min(check.max_replications, n + batch)

    def _smallest(self, combo: tuple[Setting, ...], axis: Axis) -> Search:
        """The smallest value of ``axis`` meeting the SLOs with ``combo`` (None: none)."""
        values = axis.values
        top = yield from self._candidate((*combo, (axis.key, values[-1])))
        if not top.verdict.meets:
            return None
        low, best, found = 0, len(values) - 1, top
        while low < best:
            mid = (low + best) // 2
            c = yield from self._candidate((*combo, (axis.key, values[mid])))
            if c.verdict.meets:
                best, found = mid, c
            else:
                low = mid + 1
        return found

    def _largest(self, axis: Axis) -> Search:
        """The largest value of ``axis`` meeting the SLOs and the next judged that breaks
        them (None, None: the smallest breaks them already)."""
        values = axis.values
        first = yield from self._candidate(((axis.key, values[0]),))
        if not first.verdict.meets:
            return None, first
        best, high, found, limit = 0, len(values) - 1, first, None
        while best < high:
            mid = (best + high + 1) // 2
            c = yield from self._candidate(((axis.key, values[mid]),))
            if c.verdict.meets:
                best, found = mid, c
            else:
                high, limit = mid - 1, c
        return found, limit


def validate(spec: SizingSpec) -> None:
    """Every mistake in the request, before anything runs (one :class:`ScenarioError`)."""
    check = spec.check
    if not spec.slos:
        raise ScenarioError("--slo", None, "at least one SLO, e.g. --slo 'latency_s.p99<=1800'")
    if (spec.grow is None) == (not spec.choose):
        raise ScenarioError(
            "--choose/--grow", None, "either --choose axes (what to buy) or one --grow axis"
        )
    if spec.grow is not None and not spec.grow.ranged:
        raise ScenarioError("--grow", spec.grow.key, "an integer range KEY=A..B[:STEP]")
    if sum(a.ranged for a in spec.choose) > 1:
        raise ScenarioError(
            "--choose", [a.key for a in spec.choose if a.ranged], "one range A..B (the count)"
        )
    check_distinct(spec.choose, "--choose")
    if check.n0 < 2:
        raise ScenarioError("--replications", check.n0, "an integer >= 2 (first stage)")
    if check.max_replications < check.n0:
        raise ScenarioError("--max-replications", check.max_replications, ">= --replications")
    if not 0 < check.tolerance < 1:
        raise ScenarioError("--tolerance", check.tolerance, "a fraction in (0, 1)")
    if not (spec.years > 0 and spec.energy_price_per_kwh >= 0):
        raise ScenarioError(
            "--years/--energy-price-per-kwh",
            (spec.years, spec.energy_price_per_kwh),
            "years > 0 and a price >= 0",
        )
    if spec.seed is not None and spec.seed < 0:
        raise ScenarioError("--seed", spec.seed, "an integer >= 0")
    axes = [spec.grow] if spec.grow is not None else list(spec.choose)
    for k, axis in enumerate(axes):
        others = tuple((a.key, a.values[0]) for j, a in enumerate(axes) if j != k)
        values = (axis.values[0], axis.values[-1]) if axis.ranged else axis.values
        for value in values:
            resolve_one(spec.scenario_path, spec.base_overrides, (*others, (axis.key, value)), "")


def axis_keys(spec: SizingSpec) -> list[str]:
    return [spec.grow.key] if spec.grow is not None else [a.key for a in spec.choose]
