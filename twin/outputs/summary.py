"""The one-screen summary ``twin run`` prints on the terminal."""

from __future__ import annotations

import numpy as np

from twin.accounting.kpis import HopLatency
from twin.accounting.results import Results
from twin.accounting.scoring import AnalyticsScores
from twin.outputs.files import OutputFiles
from twin.units import format_duration


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f} s" if value >= 1 else f"{value * 1000:,.1f} ms"


def _utilization_text(utilization: dict[str, float], most: int = 4) -> str:
    """Each server when there are few; mean and max when there are many."""
    if len(utilization) <= most:
        return ", ".join(f"{name} {100 * u:.3f} %" for name, u in utilization.items())
    values = np.array(list(utilization.values()))
    return (
        f"{len(values)} servers: mean {100 * values.mean():.3f} %, max {100 * values.max():.3f} %"
    )


def _hops_text(hops: dict[str, HopLatency]) -> str:
    return " · ".join(f"{hop} {_fmt_s(v.p50)}/{_fmt_s(v.p99)}" for hop, v in hops.items() if v.n)


def _scores_text(scores: AnalyticsScores | None) -> str:
    """Totals, then the confusion matrix (injected kind: detected kinds) and delays."""
    if scores is None or not (scores.faults or scores.detections or scores.cutouts):
        return ""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.0f} %"

    parts = [
        f"\n    {scores.faults} faults: found {scores.found} (recall {pct(scores.recall)}), "
        f"right kind {scores.classified_right} ({pct(scores.classified_right_fraction)}); "
        f"precision {pct(scores.precision)}, false alarms {scores.false_alarms}"
    ]
    delays = {k.fault_kind: k for k in scores.kinds}
    for kind, row in scores.confusion.items():
        cells = ", ".join(f"{d} {n}" for d, n in sorted(row.items()))
        k = delays.get(kind)
        delay = "" if k is None or k.delay_reported_s_max is None else (
            f"  (delay max {_fmt_s(k.delay_reported_s_max)})"
        )
        parts.append(f"\n    {kind:<22}-> {cells}{delay}")
    if scores.cutouts:
        parts.append(
            f"\n    storm cut-outs        {scores.cutouts_recognised} of {scores.cutouts} "
            f"recognised as events, {scores.cutout_false_alarms} alerts on them"
        )
    return "".join(parts)


def summary_text(results: Results, files: OutputFiles | None = None) -> str:
    """The one-screen KPI summary of ``results`` (and where ``files`` went)."""
    k = results.kpis
    sc = results.scenario
    lines = [
        f"IMDC Twin · {sc.name} · seed {results.seed} · "
        f"{format_duration(sc.duration_s)} simulated in {results.wall_time_s:.1f} s wall",
        "",
        f"  readings generated   {k.readings_generated:>12,}",
        f"  stored               {k.readings_stored:>12,}  "
        f"({100 * k.readings_stored / max(k.readings_generated, 1):.2f} %)",
        f"  lost                 {k.readings_lost_total:>12,}"
        + "".join(f"\n    {cause:<24}{n:>10,}" for cause, n in k.readings_lost.items() if n),
        f"  in flight at end     {k.readings_in_flight:>12,}",
        f"  duplicates discarded {k.duplicates_discarded:>12,}",
        f"  ledger balanced      {'yes' if results.ledger.balanced else 'NO':>12}",
        "",
        f"  uploads delivered    {k.uploads_delivered:>12,}   "
        f"acknowledged {k.uploads_acknowledged:,}   failed {k.uploads_failed:,}   "
        f"rejected {k.uploads_rejected:,}",
        f"  cellular attempts    {k.cellular_attempts:>12,}   "
        f"failed {k.cellular_failed_attempts:,}",
        f"  throughput           {k.throughput_readings_per_s:>12.2f} readings/s (simulated)",
        f"  latency p50 {_fmt_s(k.latency_s.p50)} · p95 {_fmt_s(k.latency_s.p95)} · "
        f"p99 {_fmt_s(k.latency_s.p99)} · max {_fmt_s(k.latency_s.max)}",
        f"  per hop p50 / p99    {_hops_text(k.hop_latency_s)}",
        f"  utilization          {_utilization_text(k.utilization)}",
        f"  MDC queue peak       {k.mdc_queue_peak:>12,} uploads",
        f"  alerts raised        {k.alerts:>12,}" + _scores_text(results.analytics),
        "  energy generated     "
        + ", ".join(f"{f} {e:,.0f} kWh" for f, e in k.energy_generated_kwh.items()),
    ]
    if k.energy_consumed_kwh:
        lines.append(
            "  energy consumed      "
            + ", ".join(f"{f} {e:,.0f} kWh" for f, e in k.energy_consumed_kwh.items())
        )
    if results.ground_truth:
        kinds: dict[str, int] = {}
        for record in results.ground_truth:
            kinds[record["kind"]] = kinds.get(record["kind"], 0) + 1
        lines.append(
            "  field faults injected "
            + ", ".join(f"{kind} x{n}" for kind, n in sorted(kinds.items()))
            + " (ground truth in results.json)"
        )
    for mdc in results.mdcs:
        shed_server_s = mdc.brownout.power_servers_shed_server_s if mdc.brownout else 0.0
        lines.append(
            f"  MDC {mdc.name:<16} {mdc.servers} x {mdc.sku or 'generic'} · "
            f"{k.energy_mdc_kwh.get(mdc.name, 0.0):,.2f} kWh facility · Little's law "
            f"{'holds' if mdc.little.little_ok else 'FAILS'} (L {mdc.little.little_l:.4g}) · "
            f"energy check {'ok' if mdc.energy.energy_check_ok else 'FAILS'}"
            + (f" · lost jobs {mdc.lost_jobs:,}" if mdc.lost_jobs else "")
            + (f" · shed {shed_server_s / 3600:,.1f} server-h" if shed_server_s else "")
        )
    net = results.network
    if net.failovers or any(v.down_s > 60 for v in net.vpn):
        lines.append(
            f"  network              failovers {net.failovers:,}   "
            + "   ".join(
                f"tunnel {v.mdc} down {_fmt_s(v.down_s)} "
                f"(buffered {v.buffered_uploads:,}, overflowed {v.overflowed_uploads:,})"
                for v in net.vpn
            )
        )
    for fault in results.faults:
        drain = fault.drain
        if drain is not None:
            lines.append(
                f"  {fault.kind} at {_fmt_s(fault.at_s)}: {drain.meters_affected:,} "
                f"meters cut off; their readings up to its end all stored "
                f"{_fmt_s(drain.drain_s)} after it (lost to it {fault.lost or 0:,}, "
                f"pending {drain.pending:,})"
            )
        elif fault.lost:
            lines.append(f"  {fault.kind} at {_fmt_s(fault.at_s)}: lost {fault.lost:,} readings")
    if k.upload_windows_skipped:
        lines.append(
            f"  upload windows skipped (previous upload still retrying) "
            f"{k.upload_windows_skipped:,}"
        )
    for kind, fc in results.forecasts.items():
        if fc.overall is None or fc.overall.skill is None:
            continue
        steps = " ".join(
            "-" if e.skill is None else f"{e.skill:.2f}" for e in fc.by_step
        )
        lines.append(
            f"  forecasts {kind:<10} {fc.issued:,} issued ({', '.join(fc.methods)}), skill "
            f"{fc.overall.skill:.2f} vs {', '.join(fc.references)}; per step {steps}"
        )
    for rec in results.recommendations[:3]:
        lines.append(f"  recommend: {rec.text}")
    for rejection in results.rejections[:5]:
        lines.append(
            f"  rejected {rejection.meter_id} #{rejection.sequence_no}: {rejection.reason}"
        )
    if results.store_path:
        lines += ["", f"  store: {results.store_path}"]
    if files is not None:
        lines.append(f"  time series: {files.timeseries}")
        lines += [f"  plot: {plot}" for plot in files.plots]
    return "\n".join(lines)
