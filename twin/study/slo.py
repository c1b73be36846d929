"""Service-level objectives of a sizing study: ``KPI OP LIMIT``, e.g. ``latency_s.p99<=1800``,
``readings_lost_total==0``, ``availability>=0.999``. ``KPI`` is a name of
:mod:`twin.study.kpi_names`; ``OP`` one of ``<=``, ``<``, ``>=``, ``>``, ``==``.

An inequality is a bound on the KPI's mean over replications, judged by the sequential check
of :mod:`twin.study.feasibility`; ``==`` must hold in every replication (e.g. no reading lost
in any run).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twin.errors import ScenarioError
from twin.study.kpi_names import check_kpi_name

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


def parse_slo(text: str) -> Slo:
    """Parse one ``--slo``; a syntax error or an unknown KPI is a :class:`ScenarioError`."""
    match = _SLO.fullmatch(text)
    if match is None:
        raise ScenarioError("--slo", text, _EXPECTED)
    kpi, op, limit_text = match.groups()
    try:
        limit = float(limit_text)
    except ValueError:
        raise ScenarioError("--slo", text, _EXPECTED) from None
    check_kpi_name(kpi, "--slo")
    return Slo(kpi, op, limit)
