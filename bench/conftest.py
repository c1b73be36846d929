"""Collects benchmark medians so that ratios against a bare reference in the same run can be
printed at the end (DESIGN.md §7: gates and reports are ratios, not absolute times), and
measures the interleaved ratios the gates use.

The gates (tests marked ``gate``) are the quick subset CI runs (``make gates``): each
asserts a ratio of our code to a bare reference measured in the same test, on
interleaved minimums (:func:`interleaved_ratio`), which a shared, noisy machine moves far
less than a real regression does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

_MEDIANS_S: dict[str, float] = {}
#: label -> (ratio, numerator s, denominator s) from :func:`interleaved_ratio`.
INTERLEAVED: dict[str, tuple[float, float, float]] = {}

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gate: a ratio gate of the quick CI subset (make gates, DESIGN.md §7)"
    )


#: Wall time of one block of calls in :func:`interleaved_ratio`, s.
BLOCK_S = 1e-3


def fastest_calls_s(fns: Sequence[Callable[[], Any]], blocks: int = 150) -> list[float]:
    """Per call, s, of each of ``fns``: the fastest of ``blocks`` blocks, the functions'
    blocks alternating so that all see the same load. A block lasts about ``BLOCK_S``
    (as many calls as fit, from one timed call): short enough that many blocks run
    without being preempted, so the minimums settle on what the calls cost (blocks of
    tens of milliseconds rarely run whole on a busy machine)."""
    numbers = []
    for fn in fns:
        t0 = time.perf_counter()
        fn()
        numbers.append(max(1, round(BLOCK_S / max(time.perf_counter() - t0, 1e-7))))
    best = [float("inf")] * len(fns)
    for _ in range(blocks):
        for k, (fn, number) in enumerate(zip(fns, numbers, strict=True)):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t0) / number)
    return best


def interleaved_ratio(
    label: str, fn: Callable[[], Any], reference: Callable[[], Any], blocks: int = 600
) -> float:
    """`fn` / `reference` from :func:`fastest_calls_s` (medians of separately run
    benchmarks are not comparable when the load changes between them); recorded under
    ``label`` for the summary. 600 blocks (about 1.2 s for two functions): with 150, a
    slow second of a shared machine (a bare parse 40 % slower, Python code more so) once
    lasted the whole measurement and took a 1.6x ratio to 2.05x."""
    fn_s, reference_s = fastest_calls_s([fn, reference], blocks)
    INTERLEAVED[label] = (fn_s / reference_s, fn_s, reference_s)
    return fn_s / reference_s


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
    if rows:
        terminalreporter.section("ratios against the bare reference (medians, same run)")
        for label, r, a, b in rows:
            terminalreporter.write_line(
                f"{label:<52} {r:6.2f}x   ({a * 1e6:8.1f} us / {b * 1e6:8.1f} us)"
            )
    if INTERLEAVED:
        terminalreporter.section("ratios against the bare reference (interleaved minimums)")
        for label, (r, a, b) in INTERLEAVED.items():
            terminalreporter.write_line(
                f"{label:<52} {r:6.2f}x   ({a * 1e6:10.1f} us / {b * 1e6:8.1f} us)"
            )
