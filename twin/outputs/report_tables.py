"""The tables of the run report: each world fault and what became of it, each MDC (one
column per MDC), each server and the network, as (header, rows) from a run's
``results.json`` content."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from twin.outputs.page import value_cell
from twin.units import format_duration

Rows = tuple[list[str], list[list[Any]]]

#: Fault record fields shown in their own column: (key, header).
_FAULT_COLUMNS = (
    ("meters_affected", "meters cut off"),
    ("drain_s", "drain, s"),
    ("pending", "pending"),
    ("lost", "lost"),
    ("reconnect_peak_per_s", "reconnect peak, 1/s"),
)
_FAULT_TARGET = ("region", "cell", "mdc", "meter_id")


def fault_rows(faults: Sequence[dict[str, Any]]) -> Rows:
    """One row per world fault: when, its target, what it cut off and how the backlog
    drained (``twin.accounting.records.FaultRecord``); other fields in the last column."""
    header = ["#", "kind", "at", "duration", "target", *(h for _, h in _FAULT_COLUMNS), "more"]
    shown = {"index", "kind", "at_s", "duration_s", *_FAULT_TARGET, *(k for k, _ in _FAULT_COLUMNS)}
    rows = []
    for f in faults:
        target = " ".join(f"{k} {f[k]}" for k in _FAULT_TARGET if k in f)
        more = ", ".join(f"{k} {v}" for k, v in sorted(f.items()) if k not in shown)
        duration = f.get("duration_s")
        rows.append(
            [
                value_cell(f["index"]),
                f["kind"],
                format_duration(f["at_s"]) if f["at_s"] > 0 else "0",
                format_duration(duration) if duration else "-",
                target or "-",
                *(value_cell(f.get(k)) for k, _ in _FAULT_COLUMNS),
                more or "-",
            ]
        )
    return header, rows


def _spread(values: dict[str, float]) -> str:
    """Mean and range of per-server figures."""
    if not values:
        return "-"
    v = np.array(list(values.values()), dtype=float)
    if len(v) == 1:
        return f"{v[0]:.6g}"
    return f"mean {v.mean():.6g} (min {v.min():.6g}, max {v.max():.6g})"


#: MDC rows: (label, how to read it from one ``mdcs`` record).
_MDC_FIELDS: tuple[tuple[str, Any], ...] = (
    ("region", lambda m: m["region"]),
    ("servers", lambda m: f"{m['servers']} x {m['sku'] or 'generic'} ({m['cores']} cores)"),
    ("speed factor, PUE", lambda m: f"{m['speed_factor']:g}, {m['pue']:g}"),
    ("acknowledges on", lambda m: m["ack"]),
    ("facility energy, Wh", lambda m: m["facility_energy_wh"]),
    ("IT energy, Wh", lambda m: m["it_energy_wh"]),
    ("accelerator energy, Wh", lambda m: m["gpu_energy_wh"]),
    ("server utilisation", lambda m: _spread(m["server_utilisation"])),
    ("server availability", lambda m: _spread(m["server_availability"])),
    ("queue peak, uploads", lambda m: m["queue_peak"]),
    ("memory peak, bytes", lambda m: m["memory_peak_bytes"]),
    ("RAM admission waits", lambda m: m["admission_waits"]),
    ("jobs lost", lambda m: m["lost_jobs"]),
    ("jobs lost by cause", lambda m: m["lost_jobs_by_cause"]),
    ("whole-MDC power losses", lambda m: m["power_losses"]),
    ("Little's law L", lambda m: m["little_l"]),
    ("Little's law lambda, 1/s", lambda m: m["little_lambda_per_s"]),
    ("Little's law W, s", lambda m: m["little_w_s"]),
    ("Little's law check, relative error", lambda m: m["little_check_relative_error"]),
    ("Little's law holds", lambda m: m["little_ok"]),
    ("energy check holds", lambda m: m["energy_check_ok"]),
)
#: Brown-out rows (MDCs with a ``power`` table): field suffix after ``power_``.
_POWER_FIELDS = (
    "load_wh",
    "grid_import_wh",
    "renewable_wh",
    "renewable_used_wh",
    "renewable_surplus_wh",
    "unserved_wh",
    "servers_shed_events",
    "servers_shed_server_s",
    "battery_capacity_wh",
    "battery_min_soc_wh",
    "battery_min_soc",
    "battery_losses_wh",
)


def mdc_rows(mdcs: Sequence[dict[str, Any]], kpis: dict[str, Any]) -> Rows:
    """One column per MDC, one row per figure (``twin.accounting.mdc_report``), the power
    supply's rows where an MDC has one."""
    header = ["", *(m["name"] for m in mdcs)]
    rows = [[label, *(value_cell(read(m)) for m in mdcs)] for label, read in _MDC_FIELDS]
    rows.insert(
        4,
        [
            "facility energy, kWh (KPI)",
            *(value_cell(kpis["energy_mdc_kwh"].get(m["name"])) for m in mdcs),
        ],
    )
    if any(f"power_{f}" in m for m in mdcs for f in _POWER_FIELDS):
        rows += [
            [
                f"power supply: {f.replace('_', ' ')}",
                *(value_cell(m.get(f"power_{f}")) for m in mdcs),
            ]
            for f in _POWER_FIELDS
        ]
    return header, rows


def server_rows(mdcs: Sequence[dict[str, Any]]) -> Rows:
    """One row per server: utilisation, availability, jobs and energy."""
    header = ["server", "utilisation", "availability", "jobs", "energy, Wh"]
    rows = [
        [
            name,
            value_cell(m["server_utilisation"].get(name)),
            value_cell(m["server_availability"].get(name)),
            value_cell(m["server_jobs"].get(name)),
            value_cell(m["server_energy_wh"].get(name)),
        ]
        for m in mdcs
        for name in m["server_utilisation"]
    ]
    return header, rows


def network_rows(network: dict[str, Any]) -> Rows:
    """The network's counts, then each tunnel's."""
    rows: list[list[Any]] = [
        [k.replace("_", " "), value_cell(v)] for k, v in sorted(network.items()) if k != "vpn"
    ]
    for tunnel in network.get("vpn", []):
        rows.append(
            [
                f"tunnel {tunnel['mdc']}",
                ", ".join(f"{k} {v:,.6g}" for k, v in sorted(tunnel.items()) if k != "mdc"),
            ]
        )
    return ["", "value"], rows
