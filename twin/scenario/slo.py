"""Service levels: ``KPI OP LIMIT``, e.g. ``latency_s.p99<=1800``, ``readings_lost_total==0``,
``availability>=0.999``. ``KPI`` is a KPI name (:mod:`twin.accounting.kpi_names`); ``OP`` one
of ``<=``, ``<``, ``>=``, ``>``, ``==``.

A scenario declares its service levels in the optional ``[slo]`` table, one per KPI: the key
is the KPI name (TOML's dotted keys, quoted where a part holds ``/``) and the value ``"OP
LIMIT"``::

    [slo]
    readings_lost_total = "== 0"     # no reading lost, whatever the cause
    latency_s.p99 = "<= 1800"        # end-to-end p99 at most 30 min
    availability = ">= 0.999"        # servers up 99.9 % of server-time

``twin size --slo 'KPI OP LIMIT'`` takes the same text, and ``--set slo.latency_s.p99='<=900'``
overrides one. A run's report judges each with :meth:`Slo.met` on the run's KPI; a study
judges the mean over replications (``==`` in every replication, :mod:`twin.study.feasibility`).
Syntax errors are one :class:`ScenarioError` naming the key; whether the KPI exists is
checked against the KPI record (:func:`twin.accounting.kpi_names.check_slos`).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from twin.errors import ScenarioError
from twin.scenario.schema import Table

#: The comparison of each operator.
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}
_SLO = re.compile(r"\s*([^<>=!\s]+)\s*(<=|>=|==|<|>)\s*(\S+)\s*")
_EXPECTED = "KPI OP NUMBER with OP one of <=, <, >=, >, ==; e.g. latency_s.p99<=1800"
_EXPECTED_VALUE = "'OP NUMBER' with OP one of <=, <, >=, >, ==; e.g. '<= 1800'"


@dataclass(frozen=True)
class Slo:
    """``kpi op limit``."""

    kpi: str
    op: str
    limit: float

    @property
    def text(self) -> str:
        return f"{self.kpi}{self.op}{self.limit:g}"

    @property
    def upper(self) -> bool:
        """Whether the limit is an upper bound (``<=``, ``<``)."""
        return self.op in ("<=", "<")

    @property
    def every_run(self) -> bool:
        """Whether it must hold in every replication (``==``)."""
        return self.op == "=="

    def holds(self, value: float) -> bool:
        return bool(OPERATORS[self.op](value, self.limit))

    def met(self, value: float | None) -> bool | None:
        """Whether one run's ``value`` meets it; None when the run did not measure it
        (None or NaN)."""
        if value is None or math.isnan(value):
            return None
        return self.holds(value)


def parse_slo(text: str, key: str = "--slo") -> Slo:
    """Parse one ``KPI OP LIMIT``; a syntax error is a :class:`ScenarioError` naming ``key``."""
    match = _SLO.fullmatch(text)
    if match is None:
        raise ScenarioError(key, text, _EXPECTED)
    kpi, op, limit_text = match.groups()
    try:
        limit = float(limit_text)
    except ValueError:
        raise ScenarioError(key, text, _EXPECTED) from None
    if not math.isfinite(limit):
        raise ScenarioError(key, text, _EXPECTED)
    return Slo(kpi, op, limit)


def slo_table(table: Table) -> tuple[Slo, ...]:
    """The ``[slo]`` table (empty when absent), in the file's key order."""
    slos = []
    top = {name: table.raw(name) for name in list(table.data)}
    for kpi, value in _leaves(top, ""):
        key = table.key(kpi)
        if not isinstance(value, str):
            raise ScenarioError(key, value, _EXPECTED_VALUE)
        slo = parse_slo(f"{kpi} {value}", key) if _SLO.fullmatch(f"x {value}") else None
        if slo is None or slo.kpi != kpi:
            raise ScenarioError(key, value, _EXPECTED_VALUE)
        slos.append(slo)
    table.finish()
    return tuple(slos)


def slo_json(slos: tuple[Slo, ...]) -> dict[str, str]:
    """The ``[slo]`` table of ``slos`` (KPI name: ``"OP LIMIT"``), as :func:`slo_table`
    reads it back."""
    return {s.kpi: f"{s.op} {s.limit!r}" for s in slos}


def _leaves(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for name, value in node.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _leaves(value, f"{path}.")
        else:
            yield path, value
