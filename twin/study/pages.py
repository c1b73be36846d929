"""The study pages, ``sweep.html`` and ``size.html``: self-contained HTML that opens offline,
with plotly.js inlined from the ``plotly`` package (no CDN) and each chart drawn by
``Plotly.newPlot`` from figure JSON written here.

``sweep.html``: each headline KPI against the first varied key, with its confidence band
(error bars when the key's values are not numbers), one line per combination of the other
keys; a selector draws any other KPI of the sweep the same way. ``size.html``: cost against
p99 latency of every candidate judged, by verdict, with the Pareto frontier (no other
candidate both cheaper and faster) and the answer marked, or each SLO's KPI against the
grown key with its limit; then the table of candidates.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from plotly.offline import get_plotlyjs

from twin.study.kpi_names import HEADLINE_KPIS
from twin.study.sizing import Candidate, SizingResult, axis_keys
from twin.study.sweep import SweepResult

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.chart { height: 360px; } .meets { color: #1a7f37; } .breaks { color: #b42318; }
.unresolved { color: #9a6700; } code { background: #f4f4f4; padding: 0 0.2em; }
"""

#: Draws the sweep's charts from DATA (see ``sweep_page``): the KPI against the first key,
#: one trace per combination of the other keys, a band (numeric x) or error bars.
_SWEEP_JS = """
function sweepFigure(kpi) {
  const series = new Map();
  for (const p of DATA.points) {
    if (!series.has(p.series)) series.set(p.series, []);
    series.get(p.series).push(p);
  }
  const numeric = DATA.points.every(p => typeof p.x === "number");
  const data = [];
  let k = 0;
  for (const [name, pts] of series) {
    const color = COLORS[k++ % COLORS.length];
    const est = pts.map(p => p.kpis[kpi] || [null, null, null, 0]);
    const xs = pts.map(p => p.x), mean = est.map(e => e[0]);
    const lo = est.map(e => e[1]), hi = est.map(e => e[2]);
    const label = name || kpi;
    if (numeric) {
      data.push({x: xs, y: hi, mode: "lines", line: {width: 0, color: color},
                 showlegend: false, hoverinfo: "skip", legendgroup: label});
      data.push({x: xs, y: lo, mode: "lines", line: {width: 0, color: color},
                 fill: "tonexty", fillcolor: color + "33", name: label + " 95 % CI",
                 showlegend: false, hoverinfo: "skip", legendgroup: label});
    }
    const trace = {x: xs, y: mean, mode: "lines+markers", name: label, legendgroup: label,
                   line: {color: color}, text: pts.map(p => p.id + " (n=" + est[0][3] + ")")};
    if (!numeric) trace.error_y = {type: "data", symmetric: false,
      array: est.map(e => e[2] === null ? null : e[2] - e[0]),
      arrayminus: est.map(e => e[1] === null ? null : e[0] - e[1])};
    data.push(trace);
  }
  return {data: data, layout: {title: {text: kpi}, xaxis: {title: {text: DATA.x_key}},
          yaxis: {title: {text: kpi + " (mean, 95 % CI)"}}, margin: {t: 40},
          showlegend: series.size > 1}};
}
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];
DATA.headline.forEach((kpi, i) => {
  const f = sweepFigure(kpi);
  Plotly.newPlot("kpi-" + i, f.data, f.layout, {displaylogo: false, responsive: true});
});
const pick = document.getElementById("any-kpi");
function drawPicked() {
  const f = sweepFigure(pick.value);
  Plotly.react("kpi-any", f.data, f.layout, {displaylogo: false, responsive: true});
}
pick.addEventListener("change", drawPicked);
drawPicked();
"""


def _json(data: Any) -> str:
    """JSON for a ``<script>``: NaN as null, and no ``</`` that could end the script."""
    return json.dumps(_nulls(data), allow_nan=False).replace("</", "<\\/")


def _nulls(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _nulls(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_nulls(v) for v in data]
    return data


def page(title: str, body: str, script: str) -> str:
    """A whole page: ``body`` (HTML) then ``script`` (JavaScript), plotly.js inlined."""
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head>\n<body>\n{body}\n"
        f"<script>\n{script}\n</script>\n</body></html>\n"
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def sweep_page(result: SweepResult, headline: tuple[str, ...] = HEADLINE_KPIS) -> str:
    spec = result.spec
    keys = [a.key for a in spec.axes]
    names = list(dict.fromkeys(n for p in result.points for n in p.estimates))
    headline = tuple(k for k in headline if k in names)
    points = []
    for p in result.points:
        values = {k: p.point.value(k) for k in keys}
        x = values[keys[0]] if keys else p.point.id
        points.append(
            {
                "id": p.point.id,
                "x": x if isinstance(x, int | float) else str(x),
                "series": ", ".join(f"{k}={values[k]}" for k in keys[1:]),
                "kpis": {n: [e.mean, e.ci_low, e.ci_high, e.n] for n, e in p.estimates.items()},
            }
        )
    data = {"x_key": keys[0] if keys else "point", "headline": headline, "points": points}
    scenario = result.points[0].point.scenario if result.points else None
    combine = "zipped" if spec.zip_axes else "grid"
    body = [
        f"<h1>Sweep of {html.escape(str(spec.scenario_path))}</h1>",
        f"<p>{html.escape(scenario.question if scenario else '')}</p>",
        f"<p>{len(result.points)} points ({combine} of "
        + ", ".join(f"<code>{html.escape(k)}</code>" for k in keys)
        + f"), {spec.replications} replications each with common random numbers; "
        "means with 95 % Student-t confidence intervals.</p>",
        *(f"<div id='kpi-{i}' class='chart'></div>" for i in range(len(headline))),
        "<h2>Any KPI</h2><select id='any-kpi'>"
        + "".join(f"<option>{html.escape(n)}</option>" for n in names)
        + "</select><div id='kpi-any' class='chart'></div>",
        "<h2>Points</h2>"
        + _table(
            ["point", *keys],
            [
                [p.point.id, *(html.escape(str(p.point.value(k))) for k in keys)]
                for p in result.points
            ],
        ),
    ]
    return page(
        f"Sweep: {scenario.name if scenario else ''}",
        "\n".join(body),
        f"const DATA = {_json(data)};\n{_SWEEP_JS}",
    )


def pareto_frontier(points: list[tuple[str, float, float]]) -> list[str]:
    """Ids of the ``(id, cost, latency)`` points that no other point beats on both (lower
    cost and lower latency), by increasing cost."""
    frontier, best = [], math.inf
    for pid, _, latency in sorted(
        (p for p in points if math.isfinite(p[1]) and math.isfinite(p[2])),
        key=lambda p: (p[1], p[2]),
    ):
        if latency < best:
            frontier.append(pid)
            best = latency
    return frontier


def _verdict_html(c: Candidate) -> str:
    v = c.verdict
    broken = f" ({html.escape(', '.join(v.broken))})" if v.broken else ""
    return f"<span class='{v.verdict}'>{v.verdict}</span>{broken}"


def size_page(result: SizingResult) -> str:
    spec = result.spec
    keys = axis_keys(spec)
    figures: dict[str, dict[str, Any]] = {}
    if spec.grow is None:
        figures["cost-latency"] = _cost_latency_figure(result)
    else:
        for i in range(len(spec.slos)):
            figures[f"slo-{i}"] = _grow_figure(result, i)
    rows = []
    for c in result.candidates:
        star = " ★" if c is result.answer else ""
        rows.append(
            [
                html.escape(c.point.id) + star,
                *(html.escape(str(c.point.value(k))) for k in keys),
                _verdict_html(c),
                str(c.verdict.replications),
                *(_estimate_text(c, s.kpi) for s in spec.slos),
                f"{c.cost.total_usd:,.0f}",
            ]
        )
    answer = result.answer
    if spec.grow is None:
        verdict = (
            f"Cheapest configuration meeting every SLO: <b>{html.escape(answer.point.label)}</b>, "
            f"{answer.cost.total_usd:,.0f} USD over {spec.years:g} years."
            if answer is not None
            else "No configuration of the ranges given meets every SLO."
        )
    else:
        limit = result.limit
        verdict = (
            f"Largest value meeting every SLO: <b>{html.escape(answer.point.label)}</b>"
            + (f"; {html.escape(limit.point.label)} breaks them." if limit is not None else ".")
            if answer is not None
            else f"Even {html.escape(spec.grow.values[0])} breaks an SLO."
        )
    body = [
        f"<h1>Sizing of {html.escape(str(spec.scenario_path))}</h1>",
        "<p>SLOs: "
        + ", ".join(f"<code>{html.escape(s.text)}</code>" for s in spec.slos)
        + f" at {spec.check.confidence:.0%} confidence (fully sequential feasibility check, "
        f"Batur &amp; Kim 2010; first stage {spec.check.n0} replications).</p>",
        f"<p>{verdict}</p>",
        *(f"<div id='{fid}' class='chart'></div>" for fid in figures),
        "<h2>Candidates judged</h2>"
        + _table(
            [
                "candidate",
                *keys,
                "verdict",
                "replications",
                *(s.kpi for s in spec.slos),
                "cost USD",
            ],
            rows,
        ),
    ]
    script = (
        f"const FIGURES = {_json(figures)};\n"
        "for (const [id, f] of Object.entries(FIGURES))\n"
        "  Plotly.newPlot(id, f.data, f.layout, {displaylogo: false, responsive: true});"
    )
    return page("Sizing", "\n".join(body), script)


def _estimate_text(c: Candidate, kpi: str) -> str:
    e = c.estimates.get(kpi)
    if e is None or math.isnan(e.mean):
        return ""
    return f"{e.mean:.4g}" + ("" if math.isnan(e.half_width) else f" ± {e.half_width:.2g}")


def _cost_latency_figure(result: SizingResult) -> dict[str, Any]:
    kpi = "latency_s.p99"
    points = [
        (c.point.id, c.cost.total_usd, c.estimates[kpi].mean if kpi in c.estimates else math.nan)
        for c in result.candidates
    ]
    frontier = pareto_frontier(points)
    by_id = {c.point.id: c for c in result.candidates}
    data: list[dict[str, Any]] = []
    for verdict, color in (("meets", "#1a7f37"), ("breaks", "#b42318"), ("unresolved", "#9a6700")):
        chosen = [c for c in result.candidates if c.verdict.verdict == verdict]
        if not chosen:
            continue
        est = [c.estimates.get(kpi) for c in chosen]
        data.append(
            {
                "x": [c.cost.total_usd for c in chosen],
                "y": [e.mean if e else None for e in est],
                "error_y": {
                    "type": "data",
                    "array": [e.half_width if e else None for e in est],
                },
                "mode": "markers",
                "name": verdict,
                "marker": {"color": color, "size": 9},
                "text": [f"{c.point.id}: {c.point.label}" for c in chosen],
            }
        )
    data.append(
        {
            "x": [by_id[i].cost.total_usd for i in frontier],
            "y": [by_id[i].estimates[kpi].mean for i in frontier],
            "mode": "lines",
            "name": "Pareto frontier",
            "line": {"dash": "dot", "color": "#555"},
        }
    )
    if result.answer is not None and kpi in result.answer.estimates:
        data.append(
            {
                "x": [result.answer.cost.total_usd],
                "y": [result.answer.estimates[kpi].mean],
                "mode": "markers",
                "name": "answer",
                "marker": {"symbol": "star", "size": 18, "color": "#f5b700"},
                "text": [result.answer.point.label],
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": "Cost over the horizon against p99 latency"},
            "xaxis": {"title": {"text": f"cost over {result.spec.years:g} years, USD"}},
            "yaxis": {"title": {"text": "latency_s.p99, s (mean, 95 % CI)"}},
            "margin": {"t": 40},
        },
    }


def _grow_figure(result: SizingResult, index: int) -> dict[str, Any]:
    slo = result.spec.slos[index]
    key = axis_keys(result.spec)[0]
    judged = sorted(result.candidates, key=lambda c: float(c.point.value(key)))
    est = [c.estimates.get(slo.kpi) for c in judged]
    xs = [c.point.value(key) for c in judged]
    return {
        "data": [
            {
                "x": xs,
                "y": [e.mean if e else None for e in est],
                "error_y": {"type": "data", "array": [e.half_width if e else None for e in est]},
                "mode": "lines+markers",
                "name": slo.kpi,
                "marker": {
                    "color": [
                        {"meets": "#1a7f37", "breaks": "#b42318"}.get(c.verdict.verdict, "#9a6700")
                        for c in judged
                    ],
                    "size": 9,
                },
                "text": [f"{c.point.id}: {c.verdict.verdict}" for c in judged],
            },
            {
                "x": [xs[0], xs[-1]] if xs else [],
                "y": [slo.limit, slo.limit],
                "mode": "lines",
                "name": f"limit {slo.text}",
                "line": {"dash": "dash", "color": "#b42318"},
            },
        ],
        "layout": {
            "title": {"text": slo.text},
            "xaxis": {"title": {"text": key}},
            "yaxis": {"title": {"text": f"{slo.kpi} (mean, 95 % CI)"}},
            "margin": {"t": 40},
        },
    }
