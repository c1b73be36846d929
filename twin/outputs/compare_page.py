"""``compare.html``: the comparison of ``twin compare`` as one self-contained page: the
sides, the gates, the KPI table with changes and confidence intervals, the end-to-end
and per-hop latency CDFs overlaid and the main time series overlaid (each side's first
run; its faults shaded and labelled with the side's name)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import replace

from twin.outputs.charts import Curve, cdf_figure, timeseries_figure
from twin.outputs.compare import GateResult, Row, Side, table
from twin.outputs.page import Cell, Page
from twin.outputs.report import MAX_WINDOWS, windows_of

#: Time series columns overlaid (shell patterns; each side's first run).
COMPARED_COLUMNS = (
    "readings_stored",
    "uploads_waiting",
    "cores_busy",
    "sessions_open",
    "cell_up_*",
    "vpn_up_*",
    "mdc_up_*",
)


def _marks(stats: dict[str, float | None]) -> dict[str, float | None]:
    return {p: stats.get(p) for p in ("p50", "p95", "p99")}


def compare_html(sides: Sequence[Side], rows: Sequence[Row], gates: Sequence[GateResult]) -> str:
    """The page of one comparison."""
    labels = " vs ".join(s.label for s in sides)
    page = Page(f"IMDC Twin · compare {labels}")
    page.raw(f"<h1>IMDC Twin comparison · {html.escape(labels)}</h1>")
    page.section("Runs compared", "sides")
    page.table(
        ["side", "folder", "scenario", "runs", "seeds", "question"],
        [
            [
                "A (reference)" if i == 0 else s.label,
                str(s.path),
                s.runs[0].results["scenario"]["name"],
                len(s.runs),
                ", ".join(str(r.results["seed"]) for r in s.runs),
                s.runs[0].results["scenario"].get("question", ""),
            ]
            for i, s in enumerate(sides)
        ],
        "sides",
    )
    if gates:
        page.section("Gates", "gates")
        page.table(
            ["gate", "side", "result"],
            [
                [
                    g.gate.text,
                    g.side,
                    Cell(
                        ("BROKEN: " if g.broken else "passed: ") + g.describe(sides[0].label),
                        {"data-gate": g.gate.text},
                        css="fail" if g.broken else "pass",
                    ),
                ]
                for g in gates
            ],
            "gates",
        )
    page.section("KPIs", "kpis")
    header, cells = table(sides, rows)
    page.table(
        header, [[Cell(c, number=j > 0) for j, c in enumerate(line)] for line in cells], "kpi-table"
    )
    page.paragraph(
        "Changes are against the first side (A). With replications, the interval is Welch's "
        "95 % confidence interval of the difference of means; significant when it excludes 0.",
        "note",
    )
    _latency(page, sides)
    _over_time(page, sides)
    return page.render()


def _latency(page: Page, sides: Sequence[Side]) -> None:
    page.section("Latency", "latency")
    firsts = [(s.label, s.runs[0]) for s in sides if s.runs[0].latency is not None]
    if not firsts:
        page.paragraph("No side has latency.json.", "note")
        return
    e2e = [
        Curve(label, "end to end", run.latency, _marks(run.results["kpis"]["latency_s"]))
        for label, run in firsts
        if run.latency is not None
    ]
    page.figure("latency-e2e", cdf_figure(e2e, "End to end, each side's first run"))
    hops = [
        Curve(label, hop, dist, _marks(run.results["kpis"]["hop_latency_s"].get(hop, {})))
        for label, run in firsts
        for hop, dist in run.hop_latency.items()
        if dist.n
    ]
    if hops:
        page.figure("latency-hops", cdf_figure(hops, "Per hop, each side's first run"))


def _over_time(page: Page, sides: Sequence[Side]) -> None:
    page.section("Over time", "time")
    runs = [(s.label, s.runs[0].timeseries) for s in sides if s.runs[0].timeseries is not None]
    windows = [
        replace(w, label=f"{s.label}: {w.label}")
        for s in sides
        for w in windows_of(s.runs[0].results)
    ]
    page.figure(
        "timeseries",
        timeseries_figure(
            [(label, ts) for label, ts in runs if ts is not None],
            windows[:MAX_WINDOWS],
            COMPARED_COLUMNS,
        ),
    )
