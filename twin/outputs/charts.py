"""Plotly figures of runs, as plain JSON (``{"data": [...], "layout": {...}}``) for
``Plotly.newPlot``: time series in stacked panels on one time axis with fault windows
shaded and labelled, latency CDFs with their percentiles marked, the ledger as a flow.

Large runs stay small on the page: every time series trace is cut to at most
``MAX_POINTS_PER_TRACE`` points by keeping, in each of ``MAX_POINTS_PER_TRACE / 2`` equal
buckets of samples, the minimum and the maximum (in time order), so peaks and dips survive
(the "min/max decimation" of plotting libraries); numbers are written with 6 significant
digits. A CDF has at most one point per quantile level (``twin.accounting.series``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

import numpy as np

from twin.accounting.series import TimeSeries
from twin.outputs.run_folder import Quantiles

Figure = dict[str, Any]

#: Most points one time series trace puts on the page.
MAX_POINTS_PER_TRACE = 1200
#: Height of one time series panel, px.
PANEL_HEIGHT_PX = 190
#: Colours of compared runs (Plotly's default qualitative sequence).
COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692")


@dataclass(frozen=True)
class Panel:
    """One panel of the time series figure: its title, the y axis title and the columns it
    draws (shell patterns; a column goes to the first panel that matches it)."""

    title: str
    y_title: str
    patterns: tuple[str, ...]


#: The time series panels (columns: ``twin.accounting.series``; ``<mdc>_...`` are each
#: MDC's own); columns no panel claims go to a last "other" panel.
PANELS: tuple[Panel, ...] = (
    Panel("Generation and load", "kW", ("generation_kw_*", "consumption_kw_*")),
    Panel("Readings committed per 5 min", "readings", ("readings_stored",)),
    Panel(
        "MDC queues and busy cores",
        "uploads / cores",
        ("uploads_waiting", "cores_busy", "*_queue_depth", "*_admission_pending", "*_busy_cores"),
    ),
    Panel("Meters with an upload session open", "meters", ("sessions_open",)),
    Panel(
        "Cells, tunnels, MDCs and servers up",
        "fraction / servers",
        ("cell_up_*", "vpn_up_*", "mdc_up_*", "*_online_servers"),
    ),
    Panel("MDC facility power", "W", ("*_facility_power_w",)),
    Panel("Battery state of charge", "fraction", ("*_battery_soc",)),
)


#: Fill and label colours of shaded windows by category.
WINDOW_COLOURS: dict[str, tuple[str, str]] = {
    "fault": ("rgba(214,39,40,0.15)", "#a11d1d"),
    "weather": ("rgba(31,119,180,0.13)", "#1f3b73"),
    "grid outage": ("rgba(255,127,14,0.16)", "#9a4a00"),
    "maintenance": ("rgba(120,120,120,0.16)", "#444444"),
}


@dataclass(frozen=True)
class Window:
    """A shaded window on the time axis: a label, its start and end, h after the start
    (equal for an instant), and its category (a key of :data:`WINDOW_COLOURS`)."""

    label: str
    start_h: float
    end_h: float
    category: str = "fault"


def compact(values: np.ndarray) -> list[float | None]:
    """Numbers for the page: 6 significant digits, NaN as null (JSON has no NaN)."""
    return [float(f"{v:.6g}") if math.isfinite(v) else None for v in values.tolist()]


def decimate(y: np.ndarray, max_points: int = MAX_POINTS_PER_TRACE) -> np.ndarray:
    """Indices of at most ``max_points`` samples of ``y`` that keep each bucket's minimum
    and maximum (module docstring), in order; all of them when they fit."""
    n = len(y)
    if n <= max_points:
        return np.arange(n)
    buckets = max_points // 2
    size = -(-n // buckets)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = y
    blocks = padded.reshape(buckets, size)
    finite = np.isfinite(blocks)
    lo = np.argmin(np.where(finite, blocks, np.inf), axis=1)
    hi = np.argmax(np.where(finite, blocks, -np.inf), axis=1)
    base = np.arange(buckets) * size
    keep = np.unique(np.concatenate((base + lo, base + hi)))
    return keep[keep < n]


def _panel_of(column: str) -> int:
    for i, panel in enumerate(PANELS):
        if any(fnmatch(column, p) for p in panel.patterns):
            return i
    return len(PANELS)


def _axis(i: int) -> str:
    return "" if i == 0 else str(i + 1)


def window_shapes(windows: Sequence[Window]) -> tuple[list[Figure], list[Figure]]:
    """Shapes (one shaded rectangle, or a line for an instant, over every panel) and their
    labels above the plot, staggered on three rows so that neighbours stay readable."""
    shapes, notes = [], []
    for i, w in enumerate(windows):
        colour, text_colour = WINDOW_COLOURS[w.category]
        shapes.append(
            {
                "type": "rect" if w.end_h > w.start_h else "line",
                "xref": "x",
                "yref": "paper",
                "x0": w.start_h,
                "x1": w.end_h,
                "y0": 0,
                "y1": 1,
                "fillcolor": colour,
                "line": {"width": 0 if w.end_h > w.start_h else 2, "color": colour},
                "layer": "below",
                "name": w.label,
            }
        )
        notes.append(
            {
                "text": w.label,
                "xref": "x",
                "yref": "paper",
                "x": w.start_h,
                "y": 1.0,
                "yshift": 4 + 15 * (i % 3),
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11, "color": text_colour},
            }
        )
    return shapes, notes


def timeseries_figure(
    runs: Sequence[tuple[str, TimeSeries]],
    windows: Sequence[Window] = (),
    only: Sequence[str] = (),
) -> Figure:
    """Stacked panels (:data:`PANELS`) of one or more runs' time series over simulated
    hours, one x axis for all (zoom one, zoom all); with several runs, each run has its
    colour and each column its line style. ``only``: the columns to draw (shell patterns;
    all when empty). Columns without a value are left out."""
    columns = [
        c
        for _, ts in runs
        for c in ts.columns
        if c != "t_s"
        and (not only or any(fnmatch(c, p) for p in only))
        and not np.all(np.isnan(ts_col(ts, c)))
    ]
    columns = list(dict.fromkeys(columns))
    used = sorted({_panel_of(c) for c in columns})
    row_of = {p: r for r, p in enumerate(used)}
    n_rows = len(used)
    gap = 0.045
    height = (1.0 - gap * (n_rows - 1)) / max(n_rows, 1)
    layout: Figure = {
        "height": PANEL_HEIGHT_PX * n_rows + 140,
        "margin": {"t": 70, "l": 70, "r": 20, "b": 50},
        "hovermode": "x unified",
        "xaxis": {"title": {"text": "simulated time, h"}, "anchor": f"y{_axis(n_rows - 1)}"},
    }
    notes: list[Figure] = []
    for panel_index, row in row_of.items():
        top = 1.0 - row * (height + gap)
        panel = PANELS[panel_index] if panel_index < len(PANELS) else Panel("Other", "", ())
        layout[f"yaxis{_axis(row)}"] = {
            "domain": [max(top - height, 0.0), top],
            "title": {"text": panel.y_title, "font": {"size": 11}},
        }
        layout[f"legend{_axis(row)}"] = {"y": top, "yanchor": "top", "font": {"size": 10}}
        notes.append(
            {
                "text": f"<b>{panel.title}</b>",
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": top,
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11},
            }
        )
    data = []
    for run_index, (label, ts) in enumerate(runs):
        t_h = ts_col(ts, "t_s") / 3600.0
        for k, column in enumerate(c for c in columns if c in ts.columns):
            panel_index = _panel_of(column)
            y = ts_col(ts, column)
            keep = decimate(y)
            trace: Figure = {
                "type": "scatter",
                "mode": "lines",
                "name": column if len(runs) == 1 else f"{label}: {column}",
                "x": compact(t_h[keep]),
                "y": compact(y[keep]),
                "yaxis": f"y{_axis(row_of[panel_index])}",
                "legend": f"legend{_axis(row_of[panel_index])}",
                "line": {"width": 1.4},
            }
            if len(runs) > 1:
                trace["line"] |= {
                    "color": COLOURS[run_index % len(COLOURS)],
                    "dash": ("solid", "dot", "dash", "dashdot", "longdash")[k % 5],
                }
                trace["legendgroup"] = label
            data.append(trace)
    shapes, window_notes = window_shapes(windows)
    layout["shapes"] = shapes
    layout["annotations"] = notes + window_notes
    return {"data": data, "layout": layout}


def ts_col(ts: TimeSeries, column: str) -> np.ndarray:
    """One column of a time series table."""
    return ts.rows[:, ts.columns.index(column)]


@dataclass(frozen=True)
class Curve:
    """One CDF to draw: its ``name`` (a hop, or a compared run), the ``panel`` it goes to
    (its x axis title), the distribution and its percentiles to mark ({"p50": s, ...})."""

    name: str
    panel: str
    dist: Quantiles
    marks: dict[str, float | None]


def cdf_figure(curves: Sequence[Curve], title: str) -> Figure:
    """CDFs of latency distributions with their percentiles marked: one panel per distinct
    ``Curve.panel`` (three to a row), curves of the same name in the same colour across
    panels. A button switches the x axes to log scale."""
    panels = list(dict.fromkeys(c.panel for c in curves))
    names = list(dict.fromkeys(c.name for c in curves))
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols) if panels else 1
    data: list[Figure] = []
    layout: Figure = {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"t": 60, "l": 60, "r": 20, "b": 50},
        "hovermode": "closest",
        "height": (260 if len(panels) > 1 else 400) * rows + 90,
    }
    for index, panel in enumerate(panels):
        axis = _axis(index)
        r, c = divmod(index, cols)
        y_hi = 1.0 - r / rows
        layout[f"xaxis{axis}"] = {
            "domain": [c / cols + (0.04 if cols > 1 else 0), (c + 1) / cols - 0.02 * (cols > 1)],
            "anchor": f"y{axis}",
            "title": {"text": f"{panel}, s", "font": {"size": 11}},
        }
        layout[f"yaxis{axis}"] = {
            "domain": [y_hi - 1.0 / rows + 0.14 / rows, y_hi - 0.06 / rows],
            "anchor": f"x{axis}",
            "range": [0, 1.02],
            "title": {"text": "fraction", "font": {"size": 11}},
        }
    shown_in_legend: set[str] = set()
    for curve in curves:
        axis = _axis(panels.index(curve.panel))
        colour = COLOURS[names.index(curve.name) % len(COLOURS)]
        dist = curve.dist
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": curve.name if len(names) > 1 else f"{curve.name} (n = {dist.n:,})",
                "x": compact(dist.quantiles_s),
                "y": compact(dist.levels),
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
                "legendgroup": curve.name,
                "showlegend": curve.name not in shown_in_legend,
                "line": {"color": colour, "shape": "hv" if dist.n < 50 else "linear"},
                "hovertemplate": "%{x:.4g} s: %{y:.3f}<extra>"
                + f"{curve.name}, n = {dist.n:,}</extra>",
            }
        )
        shown_in_legend.add(curve.name)
        marks = [(p, v) for p, v in curve.marks.items() if v is not None]
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": f"{curve.name} percentiles",
                "legendgroup": curve.name,
                "showlegend": False,
                "x": [float(f"{v:.6g}") for _, v in marks],
                "y": [int(p[1:]) / 100.0 for p, _ in marks],
                "text": [f"{p} {_seconds(v)}" for p, v in marks],
                "textposition": "middle right",
                "textfont": {"size": 10, "color": colour},
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
                "marker": {"color": colour, "size": 8, "symbol": "diamond"},
            }
        )
    layout["updatemenus"] = [
        {
            "type": "buttons",
            "direction": "right",
            "x": 1.0,
            "y": 1.0,
            "xanchor": "right",
            "yanchor": "bottom",
            "pad": {"b": 30},
            "buttons": [
                {
                    "label": f"{scale} x",
                    "method": "relayout",
                    "args": [{f"xaxis{_axis(i)}.type": scale for i in range(len(panels))}],
                }
                for scale in ("linear", "log")
            ],
        }
    ]
    return {"data": data, "layout": layout}


def _seconds(value: float) -> str:
    return f"{value:,.4g} s" if value >= 1 else f"{value * 1000:,.3g} ms"


def ledger_figure(ledger: dict[str, Any]) -> Figure:
    """The ledger as a flow (Sankey): generated -> stored, in flight, lost -> each cause."""
    labels = [f"generated {ledger['generated']:,}"]
    sources: list[int] = []
    targets: list[int] = []
    values: list[int] = []

    def link(src: int, label: str, value: int) -> int:
        labels.append(label)
        sources.append(src)
        targets.append(len(labels) - 1)
        values.append(value)
        return len(labels) - 1

    link(0, f"stored {ledger['stored']:,}", ledger["stored"])
    if ledger["in_flight"]:
        link(0, f"in flight {ledger['in_flight']:,}", ledger["in_flight"])
    lost = sum(ledger["lost"].values())
    if lost:
        node = link(0, f"lost {lost:,}", lost)
        for cause, n in sorted(ledger["lost"].items()):
            if n:
                link(node, f"{cause} {n:,}", n)
    return {
        "data": [
            {
                "type": "sankey",
                "arrangement": "snap",
                "valueformat": ",d",
                "valuesuffix": " readings",
                "node": {"label": labels, "pad": 18, "thickness": 18},
                "link": {"source": sources, "target": targets, "value": values},
            }
        ],
        "layout": {"height": 320, "margin": {"t": 20, "l": 20, "r": 20, "b": 20}},
    }


def bar_figure(
    title: str, x: Sequence[str], series: dict[str, Sequence[float | None]], y_title: str
) -> Figure:
    """A bar chart, one trace per named series side by side (e.g. forecast skill by horizon
    step, per kind of site)."""
    return {
        "data": [
            {"type": "bar", "name": name, "x": list(x), "y": list(y)} for name, y in series.items()
        ],
        "layout": {
            "title": {"text": title, "font": {"size": 14}},
            "height": 300,
            "barmode": "group",
            "margin": {"t": 50, "l": 60, "r": 20, "b": 50},
            "yaxis": {"title": {"text": y_title}},
        },
    }
