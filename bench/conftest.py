"""Collects benchmark medians so that ratios against a bare reference in the same run can be
printed at the end (DESIGN.md §7: gates and reports are ratios, not absolute times)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

_MEDIANS_S: dict[str, float] = {}

#: Ratios printed at the end: (label, numerator benchmark, denominator benchmark).
RATIOS: list[tuple[str, str, str]] = [
    ("fetch+process / bare fromstring (15 readings)", "fetch_process", "bare_fromstring"),
    ("full pipeline incl. SQLite store / bare fromstring", "pipeline_handle", "bare_fromstring"),
    # test_service_bench.py: wall time of 1000 sealed uploads (above 1: the service is slower)
    ("MDC service, 1 worker / in-process, commit per upload", "service_1", "in_process"),
    ("MDC service, 2 workers / in-process, commit per upload", "service_2", "in_process"),
    ("MDC service, 1 worker / in-process, group commits", "service_1", "in_process_grouped"),
    ("MDC service, 2 workers / in-process, group commits", "service_2", "in_process_grouped"),
]


@pytest.fixture
def record_median(benchmark: Any) -> Iterator[Callable[[str], None]]:
    names: list[str] = []
    yield names.append
    if benchmark.stats is not None:
        for name in names:
            _MEDIANS_S[name] = benchmark.stats.stats.median


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows = [
        (label, _MEDIANS_S[a] / _MEDIANS_S[b], _MEDIANS_S[a], _MEDIANS_S[b])
        for label, a, b in RATIOS
        if a in _MEDIANS_S and b in _MEDIANS_S
    ]
    if not rows:
        return
    terminalreporter.section("ratios against the bare reference (medians, same run)")
    for label, r, a, b in rows:
        terminalreporter.write_line(
            f"{label:<52} {r:6.2f}x   ({a * 1e6:8.1f} us / {b * 1e6:8.1f} us)"
        )
