"""``report.html``: one self-contained page per run (DESIGN.md §6), built from the files
of its output folder alone (``results.json``, ``timeseries.csv``, ``latency.json``), so
``twin report OUT_DIR`` rebuilds the very page ``twin run`` wrote.

In order: the scenario's question and its KPIs with a verdict per service level
(``[slo]``, :mod:`twin.scenario.slo`); the ledger as a flow; latency CDFs end to end and
per hop with p50/p95/p99 marked; the time series with every fault, weather event, grid
outage and maintenance window shaded and labelled; the per-fault table; the MDCs
(energy, utilisation, availability, Little's law, power supply and brown-out) and the
network; the analytics scored against the ground truth, the forecasts and the
recommendations (:mod:`twin.outputs.report_analytics`); the rejected uploads; and the
resolved scenario, seed and software versions.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

from twin.accounting.kpi_names import DERIVED_KPIS, kpi_table, kpi_values
from twin.accounting.results import Results
from twin.outputs.charts import (
    MAX_POINTS_PER_TRACE,
    Curve,
    Window,
    cdf_figure,
    ledger_figure,
    timeseries_figure,
)
from twin.outputs.page import Cell, Page, number_text, value_cell
from twin.outputs.report_analytics import analytics_section
from twin.outputs.report_tables import fault_rows, mdc_rows, network_rows, server_rows
from twin.outputs.run_folder import RunFolder, load_run, write_latency
from twin.scenario.slo import parse_slo
from twin.units import format_duration

REPORT_NAME = "report.html"
#: Most windows shaded on the time axis (the rest are in the tables).
MAX_WINDOWS = 40
#: Most rejected uploads and ground-truth records listed.
MAX_LISTED = 25
#: The KPIs at the top of the page, in this order (every KPI is in the full table below).
HEADLINE = (
    "readings_generated",
    "readings_stored",
    "readings_lost_total",
    "readings_in_flight",
    "duplicates_discarded",
    "throughput_readings_per_s",
    "latency_s.p50",
    "latency_s.p95",
    "latency_s.p99",
    "latency_s.max",
    "uploads_started",
    "uploads_failed",
    "uploads_rejected",
    "mdc_queue_peak",
    "alerts",
)


def write_run_report(results: Results, out_dir: Path) -> Path:
    """Write what the report needs beside ``results.json`` (``latency.json``), then the
    report itself, from the folder."""
    write_latency(results.series, out_dir)
    return write_report(out_dir)


def write_report(out_dir: Path) -> Path:
    """(Re)build ``report.html`` from the run folder ``out_dir``."""
    path = out_dir / REPORT_NAME
    path.write_text(report_html(load_run(out_dir)), "utf-8")
    return path


def kpi_cell(name: str, value: float) -> Cell:
    """A KPI's value, with its name and exact value as attributes (what tests read)."""
    return Cell(number_text(value), {"data-kpi": name, "data-value": repr(value)}, number=True)


def windows_of(results: dict[str, Any]) -> list[Window]:
    """Every window of the run to shade: the scenario's faults, its weather events, each
    MDC's grid outages and maintenance, sorted by start."""
    sc = results["scenario"]
    out = []
    for f in sc["faults"]:
        target = f.get("meter") or f.get("mdc") or f.get("region") or ""
        if f.get("cell", -1) >= 0:
            target += f" cell {f['cell']}"
        end_s = f["at_s"] + f["duration_s"]
        out.append(Window(f"{f['kind']} {target}".strip(), f["at_s"] / 3600, end_s / 3600))
    for e in sc["weather"].get("events", []):
        end_s = e["at_s"] + e["duration_s"]
        out.append(Window(f"{e['kind']} (weather)", e["at_s"] / 3600, end_s / 3600, "weather"))
    for m in sc["mdcs"]:
        for at_s, duration_s in (m.get("power") or {}).get("grid_outages_s", []):
            end_h = (at_s + duration_s) / 3600
            out.append(Window(f"grid outage {m['name']}", at_s / 3600, end_h, "grid outage"))
        for w in m.get("maintenance", []):
            label = f"maintenance {m['name']}/server-{w['server']}"
            end_h = (w["at_s"] + w["duration_s"]) / 3600
            out.append(Window(label, w["at_s"] / 3600, end_h, "maintenance"))
    return sorted(out, key=lambda w: (w.start_h, w.label))


def report_html(run: RunFolder) -> str:
    """The report page of one run folder."""
    r = run.results
    sc = r["scenario"]
    page = Page(f"IMDC Twin · {sc['name']} · seed {r['seed']}")
    sites = sum(f["count"] for f in sc["fleets"])
    page.raw(f"<h1>IMDC Twin run report · {html.escape(sc['name'])}</h1>")
    if sc.get("question"):
        page.raw(f'<p class="question">{html.escape(sc["question"])}</p>')
    page.paragraph(
        f"{format_duration(sc['duration_s'])} from {sc['start']} · {sites:,} sites in "
        f"{len(sc['fleets'])} fleets · {len(sc['mdcs'])} MDC(s) · {len(sc['faults'])} "
        f"fault(s) · seed {r['seed']} · {r['wall_time_s']:.1f} s wall",
        "note",
    )
    _kpis(page, r)
    _ledger(page, r)
    _latency(page, run)
    _over_time(page, run)
    _faults(page, r)
    _mdcs(page, r)
    analytics_section(page, r)
    _rejections(page, r)
    _reproduce(page, r)
    return page.render()


def _kpis(page: Page, r: dict[str, Any]) -> None:
    page.section("Service levels and KPIs", "kpis")
    slos = [parse_slo(f"{k} {v}", f"slo.{k}") for k, v in r["scenario"].get("slo", {}).items()]
    if slos:
        table = kpi_table(r)
        rows = []
        for slo in slos:
            value = table.get(slo.kpi)
            met = slo.met(value)
            word, css = (
                ("not measured", "unknown")
                if met is None
                else ("met", "pass")
                if met
                else ("MISSED", "fail")
            )
            what = DERIVED_KPIS[slo.kpi].description if slo.kpi in DERIVED_KPIS else ""
            rows.append(
                [
                    slo.kpi,
                    what,
                    f"{slo.op} {number_text(slo.limit)}",
                    value_cell(value if met is not None else None),
                    Cell(word, {"data-slo": slo.kpi}, css=css),
                ]
            )
        page.table(["KPI", "what", "service level", "measured", "verdict"], rows, "slo")
    else:
        page.paragraph("The scenario sets no service levels (no [slo] table).", "note")
    values = kpi_values(r)
    page.table(
        ["KPI", "value"],
        [[name, kpi_cell(name, values[name])] for name in HEADLINE if name in values],
        "headline",
    )
    page.raw("<details><summary>Every KPI (the names twin compare takes)</summary>")
    page.table(["KPI", "value"], [[n, kpi_cell(n, v)] for n, v in values.items()], "all-kpis")
    page.raw("</details>")


def _ledger(page: Page, r: dict[str, Any]) -> None:
    ledger = r["ledger"]
    page.section("Ledger: where every reading went", "ledger")
    page.figure("ledger-flow", ledger_figure(ledger))
    rows: list[list[Any]] = [
        ["generated", value_cell(ledger["generated"])],
        ["stored", value_cell(ledger["stored"])],
        ["in flight at the end", value_cell(ledger["in_flight"])],
        *[[f"lost: {c}", value_cell(n)] for c, n in sorted(ledger["lost"].items()) if n],
        ["duplicates discarded (never stored twice)", value_cell(ledger["duplicates"])],
        ["rows in the store (readings x channels)", value_cell(ledger["store_rows"])],
        ["balanced (generated = stored + lost + in flight)", value_cell(ledger["balanced"])],
    ]
    page.table(["readings", "count"], rows, "ledger")


def _percentiles(stats: dict[str, Any]) -> dict[str, float | None]:
    return {p: stats.get(p) for p in ("p50", "p95", "p99")}


def _latency(page: Page, run: RunFolder) -> None:
    k = run.results["kpis"]
    page.section("Latency", "latency")
    if run.latency is None:
        page.paragraph("This folder has no latency.json: no distributions to draw.", "note")
        return
    page.figure(
        "latency-e2e",
        cdf_figure(
            [Curve("end to end", "latency", run.latency, _percentiles(k["latency_s"]))],
            "End to end: end of a reading's interval to its commit",
        ),
    )
    hops = [
        Curve(hop, hop, dist, _percentiles(k["hop_latency_s"].get(hop, {})))
        for hop, dist in run.hop_latency.items()
        if dist.n
    ]
    if hops:
        page.figure("latency-hops", cdf_figure(hops, "Per hop: time an upload spent in it"))
    rows = [
        [hop, *(value_cell(s.get(f)) for f in ("n", "mean", "p50", "p95", "p99", "max"))]
        for hop, s in k["hop_latency_s"].items()
    ]
    page.table(["hop", "uploads", "mean, s", "p50, s", "p95, s", "p99, s", "max, s"], rows)


def _over_time(page: Page, run: RunFolder) -> None:
    page.section("Over time", "time")
    if run.timeseries is None:
        page.paragraph("This folder has no timeseries.csv.", "note")
        return
    windows = windows_of(run.results)
    page.figure("timeseries", timeseries_figure([("", run.timeseries)], windows[:MAX_WINDOWS]))
    page.paragraph(
        f"Every 5 simulated minutes (timeseries.csv); shaded: faults (red), weather events "
        f"(blue), grid outages (orange), maintenance (grey). Traces longer than "
        f"{MAX_POINTS_PER_TRACE} points show each bucket's minimum and maximum."
        + (
            f" {len(windows) - MAX_WINDOWS} more windows are in the tables."
            if len(windows) > MAX_WINDOWS
            else ""
        ),
        "note",
    )


def _faults(page: Page, r: dict[str, Any]) -> None:
    page.section("Faults", "faults")
    header, rows = fault_rows(r["faults"])
    if rows:
        page.table(header, rows, "fault-table")
    else:
        page.paragraph("No world fault (network, MDC, meter power, upload) was injected.", "note")
    truth = r.get("ground_truth", [])
    if truth:
        kinds = Counter(t["kind"] for t in truth)
        page.subheading("Field faults (ground truth)")
        page.table(["kind", "injected"], [[k, value_cell(n)] for k, n in sorted(kinds.items())])
        listed = truth[:MAX_LISTED]
        columns = list(dict.fromkeys(key for t in listed for key in t))
        more = len(truth) - len(listed)
        page.raw(
            f"<details><summary>The records ({len(listed)} of {len(truth)}"
            f"{'; the rest are in results.json' if more else ''})</summary>"
        )
        page.table(columns, [[value_cell(t.get(c)) for c in columns] for t in listed])
        page.raw("</details>")


def _mdcs(page: Page, r: dict[str, Any]) -> None:
    page.section("MDCs and network", "mdcs")
    header, rows = mdc_rows(r["mdcs"], r["kpis"])
    page.table(header, rows, "mdc-table")
    header, rows = server_rows(r["mdcs"])
    page.raw("<details><summary>Per server</summary>")
    page.table(header, rows)
    page.raw("</details>")
    page.subheading("Network")
    header, rows = network_rows(r["network"])
    page.table(header, rows, "network-table")


def _rejections(page: Page, r: dict[str, Any]) -> None:
    rejections = r.get("rejections", [])
    if rejections:
        page.subheading(f"Rejected uploads ({len(rejections):,})")
        listed = rejections[:MAX_LISTED]
        columns = list(dict.fromkeys(key for x in listed for key in x))
        page.table(columns, [[value_cell(x.get(c)) for c in columns] for x in listed])


def _reproduce(page: Page, r: dict[str, Any]) -> None:
    page.section("Reproduce", "reproduce")
    page.paragraph(
        f"Seed {r['seed']}; service time {r['service_time']['mode']} "
        f"(cost model {r['service_time']['cost_model']}). The same scenario, seed and "
        "software give identical KPIs.",
    )
    page.table(["software", "version"], sorted(r["software"].items()), "software")
    page.preformatted("Resolved scenario", json.dumps(r["scenario"], indent=2, sort_keys=True))
    page.preformatted("Service time", json.dumps(r["service_time"], indent=2, sort_keys=True))
