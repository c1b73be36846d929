"""The optional ``[slo]`` table of a scenario: the service levels its run is judged against.

Each key is one service level of :data:`SLO_KINDS` with its limit, e.g.::

    [slo]
    latency_p99_s = 1800      # end-to-end p99 at most 30 min
    readings_lost = 0         # no reading lost, whatever the cause
    availability = 0.999      # every server up at least 99.9 % of the run

A key names what it bounds and whether the limit is a ceiling or a floor; each reads its
value from a run's ``results.json`` content (mostly a KPI, :mod:`twin.outputs.kpi_names`),
so a report rebuilt from the files gives the same verdicts as the run. An unknown key or a
value that is not a number is one :class:`~twin.errors.ScenarioError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from twin.errors import ScenarioError
from twin.scenario.schema import Table, check_number

ResultsJson = Mapping[str, Any]


def _kpi(*path: str) -> Callable[[ResultsJson], float | None]:
    def read(results: ResultsJson) -> float | None:
        node: Any = results["kpis"]
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        return None if node is None else float(node)

    return read


def _values(items: Iterable[Any]) -> list[float]:
    return [float(v) for v in items if v is not None]


def _extreme(pick: Callable[[list[float]], float], values: list[float]) -> float | None:
    return pick(values) if values else None


def _stored_fraction(results: ResultsJson) -> float | None:
    k = results["kpis"]
    return k["readings_stored"] / k["readings_generated"] if k["readings_generated"] else None


def _availability(results: ResultsJson) -> float | None:
    servers = [v for m in results["mdcs"] for v in m["server_availability"].values()]
    return _extreme(min, _values(servers))


def _utilization(results: ResultsJson) -> float | None:
    return _extreme(max, _values(results["kpis"]["utilization"].values()))


def _drain(results: ResultsJson) -> float | None:
    return _extreme(max, _values(f.get("drain_s") for f in results["faults"]))


def _mdc_energy(results: ResultsJson) -> float | None:
    return float(sum(results["kpis"]["energy_mdc_kwh"].values()))


def _unserved(results: ResultsJson) -> float | None:
    return float(sum(m.get("power_unserved_wh", 0.0) for m in results["mdcs"]))


def _lowest_recall(results: ResultsJson) -> float | None:
    scores = results["analytics"]
    kinds = [] if scores is None else scores["kinds"]
    return _extreme(min, _values(k["recall"] for k in kinds))


def _precision(results: ResultsJson) -> float | None:
    scores = results["analytics"]
    return None if scores is None or scores["precision"] is None else float(scores["precision"])


def _forecast_skill(results: ResultsJson) -> float | None:
    """The lowest overall skill over the kinds of site forecast by something other than
    their reference (a reference scored against itself has skill 0 by construction)."""
    skills = [
        f["overall"]["skill"]
        for f in results["forecasts"].values()
        if f.get("overall") and set(f["methods"]) - set(f["references"])
    ]
    return _extreme(min, _values(skills))


@dataclass(frozen=True)
class SloKind:
    """What one ``[slo]`` key bounds: a description, whether its limit is a ceiling
    (``"max"``: the value must be at most the limit) or a floor (``"min"``), the unit and
    how to read the value from a run's ``results.json`` content (None: not measured)."""

    what: str
    bound: str
    unit: str
    read: Callable[[ResultsJson], float | None]


#: Every key an ``[slo]`` table may hold.
SLO_KINDS: dict[str, SloKind] = {
    "latency_p50_s": SloKind("end-to-end latency p50", "max", "s", _kpi("latency_s", "p50")),
    "latency_p95_s": SloKind("end-to-end latency p95", "max", "s", _kpi("latency_s", "p95")),
    "latency_p99_s": SloKind("end-to-end latency p99", "max", "s", _kpi("latency_s", "p99")),
    "latency_max_s": SloKind("end-to-end latency max", "max", "s", _kpi("latency_s", "max")),
    "readings_lost": SloKind("readings lost, all causes", "max", "", _kpi("readings_lost_total")),
    "readings_in_flight": SloKind(
        "readings in flight at the end", "max", "", _kpi("readings_in_flight")
    ),
    "stored_fraction": SloKind("readings stored / generated", "min", "", _stored_fraction),
    "throughput_readings_per_s": SloKind(
        "readings stored per simulated second", "min", "1/s", _kpi("throughput_readings_per_s")
    ),
    "uploads_rejected": SloKind("uploads rejected", "max", "", _kpi("uploads_rejected")),
    "uploads_failed": SloKind("upload sessions out of attempts", "max", "", _kpi("uploads_failed")),
    "mdc_queue_peak": SloKind("MDC queue peak", "max", "uploads", _kpi("mdc_queue_peak")),
    "utilization_max": SloKind("busiest server's utilisation", "max", "", _utilization),
    "availability": SloKind("least available server's availability", "min", "", _availability),
    "drain_s": SloKind("longest backlog drain after a fault", "max", "s", _drain),
    "energy_mdc_kwh": SloKind("facility energy of all MDCs", "max", "kWh", _mdc_energy),
    "power_unserved_wh": SloKind("MDC energy unserved (brown-out)", "max", "Wh", _unserved),
    "analytics_recall": SloKind("lowest recall of a fault kind", "min", "", _lowest_recall),
    "analytics_precision": SloKind(
        "precision of the alerts (not false alarms / raised)", "min", "", _precision
    ),
    "forecast_skill": SloKind(
        "lowest forecast skill vs its reference, by kind of site", "min", "", _forecast_skill
    ),
}


@dataclass(frozen=True)
class Slo:
    """One service level: its ``key`` in :data:`SLO_KINDS` and its ``limit``."""

    key: str
    limit: float


@dataclass(frozen=True)
class Verdict:
    """One service level judged on a run: the :class:`Slo`, its kind, the value measured
    (None: the run did not measure it) and whether it ``met`` the limit (None: unknown)."""

    slo: Slo
    kind: SloKind
    value: float | None
    met: bool | None


def parse_slo(table: Table) -> tuple[Slo, ...]:
    """The ``[slo]`` table (empty when absent), in the file's key order."""
    slos = []
    for key in list(table.data):
        if key not in SLO_KINDS:
            raise ScenarioError(
                table.key(key), table.data[key], "a service level: " + ", ".join(SLO_KINDS)
            )
        slos.append(Slo(key, check_number(table.key(key), table.raw(key))))
    table.finish()
    return tuple(slos)


def judge(results: ResultsJson) -> list[Verdict]:
    """Each service level of the run's scenario (``scenario.slo`` of its ``results.json``
    content), sorted by key, against the run."""
    verdicts = []
    for key, limit in sorted(results["scenario"].get("slo", {}).items()):
        slo = Slo(key, float(limit))
        kind = SLO_KINDS[slo.key]
        value = kind.read(results)
        met = (
            None
            if value is None
            else (value <= slo.limit if kind.bound == "max" else value >= slo.limit)
        )
        verdicts.append(Verdict(slo, kind, value, met))
    return verdicts
