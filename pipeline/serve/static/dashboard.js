// The MDC operators' dashboard: reads the service's JSON API and draws with plotly.js
// (served by the service itself, no CDN). Refreshes every 10 s while "refresh" is on.
"use strict";

const REFRESH_MS = 10000;
const state = { site: null, timer: null, busy: false };
const $ = (id) => document.getElementById(id);
const PLOT_CONFIG = { displaylogo: false, responsive: true };

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`${url.split("?")[0]}: ${body.reason || response.statusText}`);
  }
  return body;
}

const toDate = (s) => new Date(s * 1000);
const fmtTime = (s) =>
  s == null ? "–" : new Date(s * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
const kw = (w) => (w == null ? "–" : (w / 1000).toFixed(2));
const perK = (values) => values.map((v) => (v == null ? null : v / 1000));

function layout(yTitle) {
  return {
    margin: { l: 55, r: 10, t: 10, b: 35 },
    xaxis: { type: "date" },
    yaxis: { title: { text: yTitle }, rangemode: "tozero" },
    legend: { orientation: "h", y: 1.12 },
    hovermode: "x unified",
  };
}

function emptyPlot(id, text) {
  const l = layout("");
  l.xaxis = { visible: false };
  l.yaxis = { visible: false };
  l.annotations = [{ text, showarrow: false, font: { color: "#6b7886" } }];
  Plotly.react(id, [], l, PLOT_CONFIG);
}

function energyTraces(series) {
  const x = series.t_s.map(toDate);
  return [
    { x, y: perK(series.generation_w), name: "generation", type: "scatter", mode: "lines",
      line: { color: "#2a9d55" }, connectgaps: false },
    { x, y: perK(series.consumption_w), name: "consumption", type: "scatter", mode: "lines",
      line: { color: "#d2691e" }, connectgaps: false },
  ];
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function badge(td, text, className) {
  td.textContent = "";
  const span = document.createElement("span");
  span.className = `badge ${className}`;
  span.textContent = text;
  td.appendChild(span);
}

function renderSites(answer) {
  const body = document.querySelector("#sites tbody");
  body.replaceChildren();
  $("site-count").textContent = `(${answer.total})`;
  for (const site of answer.sites) {
    const row = document.createElement("tr");
    row.dataset.site = site.site_id;
    if (site.site_id === state.site) row.classList.add("selected");
    cell(row, site.site_id);
    cell(row, site.kind || "?");
    badge(cell(row, ""), site.state.replace("_", " "), `state-${site.state}`);
    cell(row, fmtTime(site.latest_s));
    cell(row, kw(site.generation_w), "num");
    cell(row, kw(site.consumption_w), "num");
    cell(row, String(site.open_alerts), "num");
    row.addEventListener("click", () => {
      state.site = site.site_id;
      refresh();
    });
    body.appendChild(row);
  }
}

function renderAlerts(answer) {
  const body = document.querySelector("#alerts tbody");
  body.replaceChildren();
  const open = answer.alerts.filter((a) => a.status === "open").length;
  $("alert-count").textContent = `(${open} open, ${answer.total} in all)`;
  for (const alert of answer.alerts) {
    const row = document.createElement("tr");
    row.dataset.site = alert.site_id;
    row.dataset.kind = alert.kind;
    badge(cell(row, ""), alert.status, `status-${alert.status}`);
    cell(row, alert.kind);
    cell(row, alert.site_id);
    cell(row, fmtTime(alert.detected_s));
    cell(row, `${Math.round(alert.confidence * 100)} %`, "num");
    cell(row, alert.recommendation || alert.message);
    row.addEventListener("click", () => {
      state.site = alert.site_id;
      refresh();
    });
    body.appendChild(row);
  }
}

function renderForecasts(answer) {
  const issued = answer.forecasts.filter((f) => f.flow_direction === 19);
  $("forecast-note").textContent = "";
  if (!issued.length) {
    emptyPlot("forecast-chart", "no forecast issued for this site yet");
    return;
  }
  // each forecast against the energy metered over its hours so far (the service's own
  // view: what the meters reported, not what the site produced)
  const scored = issued.filter((f) => f.mae_wh !== null && f.reference_mae_wh !== null);
  if (scored.length) {
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const mae = mean(scored.map((f) => f.mae_wh)) / 1000;
    const ref = mean(scored.map((f) => f.reference_mae_wh)) / 1000;
    $("forecast-note").textContent =
      `${scored.length} forecasts against what was metered: MAE ${mae.toFixed(2)} kWh per hour, ` +
      `${scored[0].reference_method} ${ref.toFixed(2)} kWh per hour`;
  }
  const actual = answer.actual["19"];
  const latest = issued[issued.length - 1];
  const traces = [
    { x: actual.t_s.map(toDate), y: perK(actual.energy_wh), name: "came in", type: "bar",
      marker: { color: "#9cc9a9" } },
    { x: issued.map((f) => toDate(f.issued_s)), y: issued.map((f) => f.forecast_wh[0] / 1000),
      name: "1 h ahead", mode: "markers", type: "scatter", marker: { color: "#17324d" } },
    { x: latest.forecast_wh.map((_, k) => toDate(latest.issued_s + k * latest.step_s)),
      y: perK(latest.forecast_wh), name: `latest (${latest.method})`, mode: "lines",
      type: "scatter", line: { color: "#3b6ea8", dash: "dot" } },
  ];
  Plotly.react("forecast-chart", traces, layout("kWh per hour"), PLOT_CONFIG);
}

async function refresh() {
  if (state.busy) return;
  state.busy = true;
  const period = Number($("period").value);
  const fleet = $("fleet").value;
  try {
    const sites = await getJSON("/api/sites");
    $("clock").textContent = `data clock: ${fmtTime(sites.now_s)}`;
    renderSites(sites);
    renderAlerts(await getJSON("/api/alerts?limit=200"));
    if (sites.now_s == null) {
      emptyPlot("fleet-chart", "no readings stored yet");
      emptyPlot("site-chart", "no readings stored yet");
      emptyPlot("forecast-chart", "no readings stored yet");
    } else {
      const range = `start=${sites.now_s - period}&end=${sites.now_s}`;
      const fleetSeries = await getJSON(`/api/series?fleet=${encodeURIComponent(fleet)}&${range}`);
      Plotly.react("fleet-chart", energyTraces(fleetSeries), layout("kW"), PLOT_CONFIG);
      if (state.site == null) {
        const first = sites.sites.find((s) => s.latest_s != null);
        state.site = first ? first.site_id : null;
        if (first) renderSites(sites);
      }
      if (state.site != null) {
        const site = encodeURIComponent(state.site);
        $("site-name").textContent = state.site;
        const siteSeries = await getJSON(`/api/series?site=${site}&${range}`);
        Plotly.react("site-chart", energyTraces(siteSeries), layout("kW"), PLOT_CONFIG);
        renderForecasts(await getJSON(`/api/forecasts?site=${site}`));
      }
    }
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $("status").textContent = `error: ${error.message}`;
  } finally {
    state.busy = false;
  }
}

function schedule() {
  if (state.timer) clearInterval(state.timer);
  state.timer = $("auto").checked ? setInterval(refresh, REFRESH_MS) : null;
}

$("period").addEventListener("change", refresh);
$("fleet").addEventListener("change", refresh);
$("auto").addEventListener("change", schedule);
schedule();
refresh();
