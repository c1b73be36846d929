"""What a study calls a KPI: one name for one number of one run.

A name is a dotted path into the ``kpis`` record of ``results.json``
(:meth:`twin.accounting.kpis.Kpis.to_json`), down to a number:

- ``readings_lost_total``, ``throughput_readings_per_s``, ``mdc_queue_peak``, ... (top level);
- ``latency_s.p99`` (``p50``, ``p95``, ``p99``, ``max``, ``mean``, s);
- ``readings_lost.<cause>`` (a ledger cause, e.g. ``readings_lost.mdc_crash_unpersisted``);
- ``utilization.<server>`` (e.g. ``utilization.north/server-0``), ``energy_mdc_kwh.<mdc>``,
  ``energy_generated_kwh.<fleet>``, ``energy_consumed_kwh.<fleet>``;
- ``hop_latency_s.<hop>.<stat>`` (e.g. ``hop_latency_s.mdc_queue.mean``, s);

plus the :data:`DERIVED_KPIS`, computed from the rest of the record (its ``mdcs``). A value a
run could not compute (``None`` in ``results.json``: a percentile of no readings) is NaN.
``kpi_table`` gives every KPI of one record; ``check_kpi_name`` checks a name's shape
against the :class:`~twin.accounting.kpis.Kpis` record before any run (the names under a
table keyed by server, fleet, MDC or hop exist once a run reports them).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from twin.accounting.kpis import Kpis
from twin.errors import ScenarioError


@dataclass(frozen=True)
class DerivedKpi:
    """A KPI computed from a whole ``results.json`` record (``of``), with what it means."""

    description: str
    of: Callable[[Mapping[str, Any]], float]


def _availability(record: Mapping[str, Any]) -> float:
    up = [float(a) for m in record["mdcs"] for a in m["server_availability"].values()]
    return math.fsum(up) / len(up) if up else math.nan


def _energy_total_kwh(record: Mapping[str, Any]) -> float:
    return math.fsum(float(e) for e in record["kpis"]["energy_mdc_kwh"].values())


def _loss_fraction(record: Mapping[str, Any]) -> float:
    k = record["kpis"]
    return k["readings_lost_total"] / k["readings_generated"] if k["readings_generated"] else 0.0


#: KPIs that are not stored in ``kpis`` but computed from the record, by name.
DERIVED_KPIS: dict[str, DerivedKpi] = {
    "availability": DerivedKpi(
        "fraction of server-time the MDCs' servers were up (0..1): the mean over every server "
        "of every MDC of mdcs[].server_availability",
        _availability,
    ),
    "energy_mdc_kwh_total": DerivedKpi(
        "facility energy (IT x PUE) of all MDCs over the run, kWh: the sum of kpis.energy_mdc_kwh",
        _energy_total_kwh,
    ),
    "loss_fraction": DerivedKpi(
        "readings lost to any cause per reading generated (0..1): kpis.readings_lost_total / "
        "kpis.readings_generated",
        _loss_fraction,
    ),
}


def kpi_table(record: Mapping[str, Any]) -> dict[str, float]:
    """Every KPI of one ``results.json`` record (at least its ``kpis`` and ``mdcs``), by
    name: the numeric leaves of ``kpis`` (None as NaN), then the derived KPIs."""
    table: dict[str, float] = {}
    _flatten(record["kpis"], "", table)
    for name, kpi in DERIVED_KPIS.items():
        table[name] = float(kpi.of(record))
    return table


def _flatten(node: Any, prefix: str, out: dict[str, float]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            _flatten(value, f"{prefix}{key}.", out)
    elif node is None:
        out[prefix[:-1]] = math.nan
    elif isinstance(node, int | float) and not isinstance(node, bool):
        out[prefix[:-1]] = float(node)


def check_kpi_name(name: str, flag: str) -> None:
    """Raise a :class:`ScenarioError` (key ``flag``) unless ``name`` has the shape of a KPI:
    a derived KPI, or a path through the fields of :class:`Kpis` down to a number, with any
    key where a field is a table (a server, fleet, MDC, hop or loss cause)."""
    if name in DERIVED_KPIS or _numeric_path(Kpis, name.split(".")):
        return
    raise ScenarioError(flag, name, "a KPI name: " + _hint(name, _shapes()))


def missing_kpis(names: Iterable[str], table: Mapping[str, float], flag: str) -> None:
    """Raise a :class:`ScenarioError` for the first of ``names`` that a run's KPI ``table``
    does not have (a server, fleet, MDC or hop the scenario does not have)."""
    for name in names:
        if name not in table:
            raise ScenarioError(flag, name, "a KPI this scenario reports: " + _hint(name, table))


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    listing = close or sorted(_shapes())[:12]
    return ("did you mean " if close else "e.g. ") + ", ".join(listing)


def _shapes() -> list[str]:
    """The name patterns of :class:`Kpis` (``<key>`` where a table's key goes)."""
    return [*_patterns(Kpis, ""), *DERIVED_KPIS]


def _patterns(tp: Any, prefix: str) -> list[str]:
    if dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp)] + _properties(tp)
        return [p for n in names for p in _patterns(hints.get(n, float), f"{prefix}{n}.")]
    if get_origin(tp) is dict:
        return _patterns(get_args(tp)[1], f"{prefix}<key>.")
    return [prefix[:-1]]


def _properties(tp: Any) -> list[str]:
    return [n for n in vars(tp) if isinstance(vars(tp)[n], property)]


def _numeric_path(tp: Any, parts: list[str]) -> bool:
    if _optional_of(tp) is not None:
        tp = _optional_of(tp)
    if not parts:
        return tp in (int, float)
    if dataclasses.is_dataclass(tp):
        head, rest = parts[0], parts[1:]
        if head in _properties(tp):
            return not rest
        hints = get_type_hints(tp)
        fields = {f.name for f in dataclasses.fields(tp)}
        return head in fields and _numeric_path(hints[head], rest)
    if get_origin(tp) is dict:
        return bool(parts[0]) and _numeric_path(get_args(tp)[1], parts[1:])
    return False


def _optional_of(tp: Any) -> Any:
    """``X`` of ``X | None``; None for any other type."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0]
    return None


#: The KPIs a study prints and charts first.
HEADLINE_KPIS: tuple[str, ...] = (
    "latency_s.p99",
    "latency_s.p50",
    "readings_lost_total",
    "throughput_readings_per_s",
    "availability",
    "energy_mdc_kwh_total",
    "hop_latency_s.mdc_queue.mean",
)
