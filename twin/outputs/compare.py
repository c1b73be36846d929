"""``twin compare A B [C...]``: KPIs of runs side by side, their differences from the first
side (A, the reference) and gates on them for CI.

A side is a folder: a run folder (``results.json`` in it) is one run; any other folder is
a set of replications, every run folder below it (``*/results.json``, at any depth, in
path order), as a sweep point with several seeds writes them. Each KPI
(:mod:`twin.outputs.kpi_names`) of a side is the mean over its runs; against A, each other
side gets the absolute and relative difference and, where a side has replications, Welch's
95 % confidence interval of the difference (:mod:`twin.accounting.intervals`) and whether
it is significant (the interval excludes zero).

A gate (``--fail-on``) is ``KPI OP VALUE`` with OP one of ``> >= < <=``, checked on every
side after A (on A when it is the only one), on the side's mean:

- ``readings_lost_total>0``: the KPI itself (VALUE without a sign);
- ``latency_s.p99>+30``: its change from A, in the KPI's unit (VALUE with a sign);
- ``latency_s.p99>+10%``: its relative change from A, in percent.

A gate breaks when its comparison holds, or when a side lacks the KPI.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np

from twin.accounting.intervals import DifferenceInterval, welch_interval
from twin.errors import UsageError
from twin.outputs.files import RESULTS_NAME
from twin.outputs.kpi_names import check_kpi_name, kpi_values
from twin.outputs.page import number_text
from twin.outputs.run_folder import RunFolder, load_run

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_GATE = re.compile(
    r"^\s*(?P<kpi>[^<>=\s]+)\s*(?P<op>>=|<=|>|<)\s*(?P<sign>[+-])?"
    r"(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<percent>%)?\s*$"
)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a label (its folder's name), its folder, its runs and
    each run's KPIs by name."""

    label: str
    path: Path
    runs: list[RunFolder]
    kpis: list[dict[str, float]]

    def values(self, name: str) -> np.ndarray:
        """The KPI ``name`` of each run that has it."""
        return np.array([k[name] for k in self.kpis if name in k], dtype=float)


def load_side(path: Path) -> Side:
    """A run folder, or a folder of replications (module docstring)."""
    if (path / RESULTS_NAME).exists():
        runs = [load_run(path)]
    elif path.is_dir():
        folders = sorted(p.parent for p in path.rglob(RESULTS_NAME))
        if not folders:
            raise UsageError("RUN", str(path), "a run folder or a folder of runs (no results.json)")
        runs = [load_run(f) for f in folders]
    else:
        raise UsageError("RUN", str(path), "an existing folder")
    return Side(path.resolve().name, path, runs, [kpi_values(r.results) for r in runs])


def load_sides(paths: Sequence[Path]) -> list[Side]:
    """Each path as a :class:`Side`; sides whose folders share a name are labelled by the
    path as given (numbered if that is the same too), so no two labels are alike."""
    sides = [load_side(p) for p in paths]
    names = [s.label for s in sides]
    labels = [
        str(p) if names.count(s.label) > 1 else s.label for p, s in zip(paths, sides, strict=True)
    ]
    labels = [
        f"{label} ({labels[:i].count(label) + 1})" if labels.count(label) > 1 else label
        for i, label in enumerate(labels)
    ]
    return [replace(s, label=label) for s, label in zip(sides, labels, strict=True)]


@dataclass(frozen=True)
class Stat:
    """A KPI on one side: mean over its ``n`` runs and their standard deviation (NaN for
    fewer than two)."""

    mean: float
    sd: float
    n: int


@dataclass(frozen=True)
class Delta:
    """One side's KPI against A's: absolute and relative difference (NaN where A is zero
    and the side too; inf where only A is zero) and Welch's interval where one of them
    has replications."""

    absolute: float
    relative: float
    interval: DifferenceInterval | None


@dataclass(frozen=True)
class Row:
    """One KPI across the sides: a :class:`Stat` per side (None where it lacks the KPI)
    and a :class:`Delta` per side after A (None where either lacks it)."""

    name: str
    stats: list[Stat | None]
    deltas: list[Delta | None]

    @property
    def changed(self) -> bool:
        return any(d is not None and d.absolute != 0 for d in self.deltas)


def _stat(values: np.ndarray) -> Stat | None:
    if values.size == 0:
        return None
    sd = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return Stat(float(values.mean()), sd, int(values.size))


def relative_change(reference: float, value: float) -> float:
    """``(value - reference) / |reference|``; 0 when both are 0, ±inf when only the
    reference is."""
    if reference == 0:
        return 0.0 if value == 0 else math.copysign(math.inf, value)
    return (value - reference) / abs(reference)


def kpi_names(sides: Sequence[Side], patterns: Sequence[str] = ()) -> list[str]:
    """Every KPI any side has (those matching one of ``patterns``, shell style, when
    given), sorted; a :class:`UsageError` for a pattern that matches none."""
    names = sorted({n for s in sides for k in s.kpis for n in k})
    for pattern in patterns:
        if not any(fnmatch(n, pattern) for n in names):
            check_kpi_name(pattern, names, "--kpi", pattern)
    return [n for n in names if not patterns or any(fnmatch(n, p) for p in patterns)]


def compare_kpi(sides: Sequence[Side], name: str) -> Row:
    """One KPI across the sides."""
    values = [s.values(name) for s in sides]
    stats = [_stat(v) for v in values]
    reference = stats[0]
    deltas: list[Delta | None] = []
    for stat, v in zip(stats[1:], values[1:], strict=True):
        if reference is None or stat is None:
            deltas.append(None)
        else:
            change = stat.mean - reference.mean
            relative = relative_change(reference.mean, stat.mean)
            deltas.append(Delta(change, relative, welch_interval(values[0], v)))
    return Row(name, stats, deltas)


@dataclass(frozen=True)
class Gate:
    """A parsed ``--fail-on`` (module docstring): the KPI, the operator, the threshold and
    what it applies to (``"value"``, ``"change"`` or ``"relative"``, the last in %)."""

    text: str
    kpi: str
    op: str
    threshold: float
    mode: str


def parse_gate(text: str) -> Gate:
    """A :class:`Gate`; a :class:`UsageError` naming the text when it does not parse."""
    match = _GATE.match(text)
    if match is None:
        raise UsageError(
            "--fail-on",
            text,
            "KPI OP VALUE, e.g. 'latency_s.p99>+10%' (OP one of > >= < <=; VALUE a number, "
            "signed for a change from A, % for a relative change)",
        )
    number = float(match["number"]) * (-1 if match["sign"] == "-" else 1)
    mode = "relative" if match["percent"] else "change" if match["sign"] else "value"
    return Gate(text.strip(), match["kpi"], match["op"], number, mode)


@dataclass(frozen=True)
class GateResult:
    """A gate on one side: the figure it compared (None: the side lacks the KPI) and
    whether it broke."""

    gate: Gate
    side: str
    figure: float | None
    broken: bool

    def describe(self, reference: str) -> str:
        """One line: the gate, the side and the figure it compared."""
        head = f"{self.gate.text}: {self.side}"
        if self.figure is None:
            return f"{head} has no KPI {self.gate.kpi}"
        if self.gate.mode == "value":
            return f"{head} {self.gate.kpi} = {self.figure:.6g}"
        unit = " %" if self.gate.mode == "relative" else ""
        return f"{head} {self.gate.kpi} changed by {self.figure:+.6g}{unit} from {reference}"


def check_gates(gates: Sequence[Gate], sides: Sequence[Side]) -> list[GateResult]:
    """Every gate on every side after A (on A alone when it is the only side); a
    :class:`UsageError` for a KPI no side has, or a change gate without a second side."""
    known = kpi_names(sides)
    results = []
    for gate in gates:
        check_kpi_name(gate.kpi, known, "--fail-on", gate.text)
        if gate.mode != "value" and len(sides) < 2:
            raise UsageError(
                "--fail-on", gate.text, "a gate on the KPI itself: a change needs a second run"
            )
        row = compare_kpi(sides, gate.kpi)
        targets = range(1, len(sides)) if len(sides) > 1 else range(1)
        for i in targets:
            stat, reference = row.stats[i], row.stats[0]
            figure: float | None = None
            if stat is not None and gate.mode == "value":
                figure = stat.mean
            elif stat is not None and reference is not None:
                change = stat.mean - reference.mean
                figure = (
                    change
                    if gate.mode == "change"
                    else 100 * relative_change(reference.mean, stat.mean)
                )
            broken = figure is None or _OPERATORS[gate.op](figure, gate.threshold)
            results.append(GateResult(gate, sides[i].label, figure, broken))
    return results


def _num(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return number_text(value)


def _percent(relative: float) -> str:
    if math.isnan(relative):
        return "-"
    if relative == 0:
        return "0 %"
    return f"{100 * relative:+.3g} %" if math.isfinite(relative) else "from 0"


def table(sides: Sequence[Side], rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """The comparison as text cells: KPI, A, then per other side its value, the change,
    the relative change and (with replications) the 95 % interval and its significance."""

    def label(s: Side) -> str:
        return s.label if len(s.runs) == 1 else f"{s.label} (mean of {len(s.runs)})"

    header = ["KPI", label(sides[0])]
    with_ci = any(len(s.runs) > 1 for s in sides)
    for s in sides[1:]:
        header += [label(s), "change", "change %"] + (
            ["95 % CI of change", "significant"] if with_ci else []
        )
    cells = []
    for row in rows:
        line = [row.name, "-" if row.stats[0] is None else _num(row.stats[0].mean)]
        for stat, delta in zip(row.stats[1:], row.deltas, strict=True):
            line.append("-" if stat is None else _num(stat.mean))
            if delta is None:
                line += ["-", "-"] + (["-", "-"] if with_ci else [])
                continue
            line += [
                "0" if delta.absolute == 0 else f"{delta.absolute:+,.6g}",
                _percent(delta.relative),
            ]
            if with_ci:
                ci = delta.interval
                line += (
                    ["-", "-"]
                    if ci is None
                    else [f"[{ci.low:+,.4g}, {ci.high:+,.4g}]", "yes" if ci.significant else "no"]
                )
        cells.append(line)
    return header, cells


def text_table(header: list[str], cells: list[list[str]]) -> str:
    """Aligned columns for the terminal."""
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *cells]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(header: list[str], cells: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (for a CI comment)."""

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"

    return "\n".join([line(header), "|" + "---|" + "---:|" * (len(header) - 1), *map(line, cells)])


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def to_json(
    sides: Sequence[Side], rows: Sequence[Row], gates: Sequence[GateResult]
) -> dict[str, Any]:
    """The comparison as JSON (NaN and inf as null)."""
    return {
        "sides": [
            {"label": s.label, "path": str(s.path), "runs": [str(r.path) for r in s.runs]}
            for s in sides
        ],
        "kpis": [
            {
                "name": row.name,
                "values": [
                    None if st is None else {"mean": st.mean, "sd": _finite(st.sd), "n": st.n}
                    for st in row.stats
                ],
                "changes": [
                    None
                    if d is None
                    else {
                        "absolute": d.absolute,
                        "relative": _finite(d.relative),
                        "ci95": None if d.interval is None else [d.interval.low, d.interval.high],
                        "df": None if d.interval is None else _finite(d.interval.df),
                        "significant": None if d.interval is None else d.interval.significant,
                    }
                    for d in [None, *row.deltas]  # aligned with the sides: A has none
                ],
            }
            for row in rows
        ],
        "gates": [
            {"gate": g.gate.text, "side": g.side, "figure": g.figure, "broken": g.broken}
            for g in gates
        ],
    }
