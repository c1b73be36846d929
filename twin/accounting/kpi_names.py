"""KPI names: one name for one number of one run, as ``twin compare``, the golden files, the
report's service levels and the studies (``twin sweep``, ``twin size``) call it.

A name is a dotted path into the ``kpis`` record of ``results.json``
(:meth:`twin.accounting.kpis.Kpis.to_json`), down to a number:

- counts of readings: ``readings_generated``, ``readings_stored``, ``readings_in_flight``,
  ``duplicates_discarded``, ``readings_lost.<cause>`` and their sum ``readings_lost_total``;
- uploads: ``uploads_started``, ``uploads_delivered``, ``uploads_acknowledged``,
  ``uploads_failed``, ``uploads_rejected``, ``upload_windows_skipped``,
  ``cellular_attempts``, ``cellular_failed_attempts``;
- ``throughput_readings_per_s``; ``latency_s.{p50,p95,p99,max,mean}`` (end to end, s);
  ``hop_latency_s.<hop>.{n,mean,p50,p95,p99,max}`` (per hop, s);
- ``utilization.<server>`` (busy fraction, e.g. ``utilization.north/server-0``),
  ``mdc_queue_peak``, ``alerts``;
- ``energy_generated_kwh.<fleet>``, ``energy_consumed_kwh.<fleet>``,
  ``energy_mdc_kwh.<mdc>`` (kWh);

plus the :data:`DERIVED_KPIS`, computed from the rest of the record. A value a run could not
compute (``None`` in ``results.json``: a percentile of no readings) is NaN in
:func:`kpi_table` and left out by :func:`kpi_values`. :func:`check_kpi_name` checks a name
against the names runs reported or, before any run, its shape against the
:class:`~twin.accounting.kpis.Kpis` record (the names under a table keyed by server, fleet,
MDC or hop exist once a run reports them).
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
from twin.errors import ScenarioError, UsageError
from twin.scenario.slo import Slo

Number = bool | int | float


@dataclass(frozen=True)
class DerivedKpi:
    """A KPI computed from a ``results.json`` record (``of``), with what it means; it
    exists for records that hold every section it ``needs``."""

    description: str
    of: Callable[[Mapping[str, Any]], float]
    needs: tuple[str, ...] = ("kpis",)


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _availability(record: Mapping[str, Any]) -> float:
    up = _finite(a for m in record["mdcs"] for a in m["server_availability"].values())
    return math.fsum(up) / len(up) if up else math.nan


def _energy_total_kwh(record: Mapping[str, Any]) -> float:
    return math.fsum(float(e) for e in record["kpis"].get("energy_mdc_kwh", {}).values())


def _loss_fraction(record: Mapping[str, Any]) -> float:
    k = record["kpis"]
    return k["readings_lost_total"] / k["readings_generated"] if k["readings_generated"] else 0.0


def _utilization_max(record: Mapping[str, Any]) -> float:
    return max(_finite(record["kpis"].get("utilization", {}).values()), default=math.nan)


def _unserved_wh(record: Mapping[str, Any]) -> float:
    return math.fsum(float(m.get("power_unserved_wh", 0.0)) for m in record["mdcs"])


def _drain_max_s(record: Mapping[str, Any]) -> float:
    return max(_finite(f.get("drain_s") for f in record["faults"]), default=math.nan)


def _recall_min(record: Mapping[str, Any]) -> float:
    scores = record["analytics"]
    kinds = [] if scores is None else scores.get("kinds", [])
    return min(_finite(k.get("recall") for k in kinds), default=math.nan)


def _precision(record: Mapping[str, Any]) -> float:
    precision = None if record["analytics"] is None else record["analytics"].get("precision")
    return math.nan if precision is None else float(precision)


def _forecast_skill_min(record: Mapping[str, Any]) -> float:
    skills = (
        f["overall"]["skill"]
        for f in record["forecasts"].values()
        if f.get("overall") and set(f.get("methods", ())) - set(f.get("references", ()))
    )
    return min(_finite(skills), default=math.nan)


#: KPIs that are not stored in ``kpis`` but computed from the record, by name.
DERIVED_KPIS: dict[str, DerivedKpi] = {
    "availability": DerivedKpi(
        "fraction of server-time the MDCs' servers were up (0..1): the mean over every server "
        "of every MDC of mdcs[].server_availability. The mean, not the least available "
        "server: it is time-based availability (uptime over total time, IEC 60050-192 and "
        "ITU-T E.800) of the server fleet, an unbiased estimate of one server's "
        "MTTF/(MTTF+MTTR) whatever the count; the minimum over n servers falls as n grows, "
        "so a sizing study would read more servers as less available",
        _availability,
        ("mdcs",),
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
    "utilization_max": DerivedKpi(
        "the busiest server's busy fraction (0..1): the largest of kpis.utilization",
        _utilization_max,
    ),
    "power_unserved_wh_total": DerivedKpi(
        "MDC energy demanded but not supplied (brown-out) over the run, Wh: the sum of "
        "mdcs[].power_unserved_wh",
        _unserved_wh,
        ("mdcs",),
    ),
    "drain_s_max": DerivedKpi(
        "the longest backlog drain after a fault, s: the largest faults[].drain_s (NaN when "
        "no fault's backlog drained)",
        _drain_max_s,
        ("faults",),
    ),
    "analytics_recall_min": DerivedKpi(
        "the recall of the worst-found injected fault kind (0..1): the smallest "
        "analytics.kinds[].recall (NaN when no fault was injected)",
        _recall_min,
        ("analytics",),
    ),
    "analytics_precision": DerivedKpi(
        "the share of the alerts raised that were not false alarms (0..1): "
        "analytics.precision (NaN when none was raised)",
        _precision,
        ("analytics",),
    ),
    "forecast_skill_min": DerivedKpi(
        "the lowest overall forecast skill against its reference over the kinds of site "
        "forecast by something other than their reference (a reference scored against itself "
        "has skill 0 by construction): the smallest forecasts.<kind>.overall.skill",
        _forecast_skill_min,
        ("forecasts",),
    ),
}


def flatten(node: Any, prefix: str = "") -> dict[str, Number]:
    """The numbers under ``node`` (nested mappings) by dotted path, as they are (booleans,
    integers, floats), None as NaN; anything else (text, lists) is left out."""
    out: dict[str, Number] = {}
    if isinstance(node, Mapping):
        for key, value in node.items():
            out |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif node is None and prefix:
        out[prefix] = math.nan
    elif isinstance(node, bool | int | float) and prefix:
        out[prefix] = node
    return out


def kpi_table(record: Mapping[str, Any]) -> dict[str, float]:
    """Every KPI of one ``results.json`` record (at least its ``kpis``), by name, as floats:
    the numbers of ``kpis`` (None as NaN), then the derived KPIs the record has the sections
    for."""
    table = {name: float(value) for name, value in flatten(record["kpis"]).items()}
    return table | derived_kpis(record)


def derived_kpis(record: Mapping[str, Any]) -> dict[str, float]:
    """The :data:`DERIVED_KPIS` of one ``results.json`` record that it holds the sections
    for, by name."""
    return {
        name: float(kpi.of(record))
        for name, kpi in DERIVED_KPIS.items()
        if all(section in record for section in kpi.needs)
    }


def kpi_values(results: Mapping[str, Any]) -> dict[str, float]:
    """The KPIs of a run's ``results.json`` content (:func:`kpi_table`) that it measured
    (NaN ones left out)."""
    return {k: v for k, v in kpi_table(results).items() if not math.isnan(v)}


def check_kpi_name(name: str, key: str, value: str, known: Iterable[str] | None = None) -> None:
    """Raise a :class:`UsageError` naming the option ``key`` and its ``value`` unless
    ``name`` is a KPI: one of ``known`` (the names runs reported) when given, else a name of
    the right shape (a derived KPI, or a path through the fields of :class:`Kpis` down to a
    number, with any key where a field is a table). The message lists the closest names."""
    if known is None:
        if name in DERIVED_KPIS or _numeric_path(Kpis, name.split(".")):
            return
        hint = _hint(name, kpi_patterns())
        raise UsageError(key, value, f"a KPI name ({name!r} is none; {hint})")
    known = list(known)
    if name not in known:
        hint = _hint(name, known)
        raise UsageError(key, value, f"a KPI the runs report ({name!r} is none; {hint})")


def check_slos(slos: Iterable[Slo], key: str) -> None:
    """Raise a :class:`ScenarioError` naming ``key.KPI`` for the first of ``slos`` whose KPI
    is no KPI name (:func:`check_kpi_name` by shape)."""
    for slo in slos:
        try:
            check_kpi_name(slo.kpi, key, slo.text)
        except UsageError as error:
            raise ScenarioError(f"{key}.{slo.kpi}", slo.text, error.expected) from None


def missing_kpis(names: Iterable[str], table: Mapping[str, float], flag: str) -> None:
    """Raise a :class:`ScenarioError` for the first of ``names`` that a run's KPI ``table``
    does not have (a server, fleet, MDC or hop the scenario does not have)."""
    for name in names:
        if name not in table:
            raise ScenarioError(flag, name, "a KPI this scenario reports: " + _hint(name, table))


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    if close:
        return "did you mean " + ", ".join(close) + "?"
    shapes = ", ".join(sorted(kpi_patterns())[:12])
    return f"e.g. {shapes}; twin compare --list-kpis lists them"


def kpi_patterns() -> list[str]:
    """Every KPI name, with ``<key>`` where a scenario supplies the key (a server, fleet,
    MDC, hop or loss cause), then the derived KPIs."""
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
