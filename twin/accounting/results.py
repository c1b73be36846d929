"""Results of one run: typed KPI records, their JSON form and the one-screen summary."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.accounting.counters import Rejection
from twin.units import format_duration


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles of end-to-end latency, s: end of a reading's interval to its storage."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, latencies_s: np.ndarray) -> LatencyStats:
        if latencies_s.size == 0:
            return cls(None, None, None, None, None)
        p50, p95, p99 = np.percentile(latencies_s, [50, 95, 99]).tolist()
        return cls(p50, p95, p99, float(latencies_s.max()), float(latencies_s.mean()))


@dataclass(frozen=True)
class Kpis:
    """What a run achieved. Counts are readings unless the name says uploads."""

    readings_generated: int
    readings_stored: int
    readings_lost: dict[str, int]  # cause -> readings
    readings_in_flight: int  # in meter buffers, on the network or queued at the end
    duplicates_discarded: int  # extra copies that reached the store (never stored twice)
    uploads_started: int
    uploads_delivered: int  # copies that reached the MDC, retries included
    uploads_acknowledged: int
    uploads_failed: int  # sessions that ran out of attempts without an acknowledgement (the
    #                      data stays in the meter; some may have reached the MDC unacked)
    uploads_rejected: int
    upload_windows_skipped: int  # windows that found the previous upload still retrying
    cellular_attempts: int
    cellular_failed_attempts: int
    throughput_readings_per_s: float  # stored readings per simulated second
    latency_s: LatencyStats
    utilization: dict[str, float]  # server -> busy fraction of its cores
    mdc_queue_peak: int  # uploads waiting for a core, at most
    alerts: int  # faults and anomalies raised by the MDC's analytics
    energy_generated_kwh: dict[str, float]  # fleet -> true AC energy of its sources
    energy_consumed_kwh: dict[str, float] = field(default_factory=dict)  # fleet -> its loads
    #: Facility energy (IT x PUE) of each MDC over the run, kWh (hw_models power model).
    energy_mdc_kwh: dict[str, float] = field(default_factory=dict)
    #: Per hop (cellular, vpn, backbone, mdc_queue, pipeline): p50/p95/p99/max of the
    #: time an upload spent in it, s (network.hops); null where no upload crossed it.
    hop_latency_s: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def readings_lost_total(self) -> int:
        return sum(self.readings_lost.values())


@dataclass(frozen=True)
class Results:
    """Everything ``twin run`` reports; ``to_json`` gives the shape of ``results.json``."""

    scenario: dict[str, Any]
    seed: int
    kpis: Kpis
    ledger: dict[str, Any]
    rejections: list[Rejection]
    faults: list[dict[str, Any]]  # each network/device fault and what became of it
    service_time: dict[str, Any]
    software: dict[str, str]
    wall_time_s: float
    store_path: str | None = None
    #: One record per injected field fault (meters.faults.GROUND_TRUTH_FIELDS): what the
    #: analytics are scored against.
    ground_truth: list[dict[str, Any]] = field(default_factory=list)
    #: What the MDC's analytics reported (times in s after the scenario's start), its
    #: scores per fault kind (twin.accounting.scoring.KindScore) and its recommendations at the end.
    detections: list[dict[str, Any]] = field(default_factory=list)
    analytics: list[dict[str, Any]] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    #: The analytics' short-term forecasts scored against the true output
    #: (twin.accounting.forecasts.score_forecasts): issued, realised MAE/RMSE, skill vs persistence.
    forecasts: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: One flat record per MDC (twin.world.mdc.Mdc.report): SKU, energy and its check, per-server
    #: utilisation and availability, RAM push-back, lost jobs, Little's law check, power.
    mdcs: list[dict[str, Any]] = field(default_factory=list)
    #: Network counters: cells, coverage, handshakes, failovers, per-MDC tunnel figures.
    network: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kpis"]["readings_lost_total"] = self.kpis.readings_lost_total
        return data

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "results.json"
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n", "utf-8")
        return path


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


def _hops_text(hops: dict[str, dict[str, float | None]]) -> str:
    return " · ".join(
        f"{hop} {_fmt_s(v.get('p50'))}/{_fmt_s(v.get('p99'))}"
        for hop, v in hops.items()
        if v.get("n")
    )


def _scores_text(scores: list[dict[str, Any]]) -> str:
    """Recall / precision / median delay per fault kind that has a detector."""
    parts = []
    for s in scores:
        if s["detection_kind"] is None or (not s["faults"] and not s["detections"]):
            continue
        recall = "-" if s["recall"] is None else f"{100 * s['recall']:.0f} %"
        precision = "-" if s["precision"] is None else f"{100 * s['precision']:.0f} %"
        delay = "" if s["delay_s_median"] is None else f", delay {_fmt_s(s['delay_s_median'])}"
        parts.append(
            f"\n    {s['fault_kind']:<22}recall {recall} of {s['faults']}, "
            f"precision {precision} of {s['detections']}{delay}"
        )
    return "".join(parts)


def summary_text(results: Results) -> str:
    """The one-screen KPI summary printed by ``twin run``."""
    k = results.kpis
    sc = results.scenario
    lines = [
        f"IMDC Twin · {sc['name']} · seed {results.seed} · "
        f"{format_duration(sc['duration_s'])} simulated in {results.wall_time_s:.1f} s wall",
        "",
        f"  readings generated   {k.readings_generated:>12,}",
        f"  stored               {k.readings_stored:>12,}  "
        f"({100 * k.readings_stored / max(k.readings_generated, 1):.2f} %)",
        f"  lost                 {k.readings_lost_total:>12,}"
        + "".join(f"\n    {cause:<24}{n:>10,}" for cause, n in k.readings_lost.items() if n),
        f"  in flight at end     {k.readings_in_flight:>12,}",
        f"  duplicates discarded {k.duplicates_discarded:>12,}",
        f"  ledger balanced      {'yes' if results.ledger['balanced'] else 'NO':>12}",
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
        lines.append(
            f"  MDC {mdc['name']:<16} {mdc['servers']} x {mdc['sku'] or 'generic'} · "
            f"{k.energy_mdc_kwh.get(mdc['name'], 0.0):,.2f} kWh facility · Little's law "
            f"{'holds' if mdc['little_ok'] else 'FAILS'} (L {mdc['little_l']:.4g}) · "
            f"energy check {'ok' if mdc['energy_check_ok'] else 'FAILS'}"
            + (f" · lost jobs {mdc['lost_jobs']:,}" if mdc["lost_jobs"] else "")
            + (
                f" · shed {mdc['power_servers_shed_server_s'] / 3600:,.1f} server-h"
                if mdc.get("power_servers_shed_server_s")
                else ""
            )
        )
    net = results.network
    if net.get("failovers") or any(v.get("down_s", 0) > 60 for v in net.get("vpn", [])):
        lines.append(
            f"  network              failovers {net.get('failovers', 0):,}   "
            + "   ".join(
                f"tunnel {v['mdc']} down {_fmt_s(v['down_s'])} "
                f"(buffered {v['buffered_uploads']:,}, overflowed {v['overflowed_uploads']:,})"
                for v in net.get("vpn", [])
            )
        )
    for fault in results.faults:
        if "drain_s" in fault:
            lines.append(
                f"  {fault['kind']} at {_fmt_s(fault['at_s'])}: {fault['meters_affected']:,} "
                f"meters cut off; their readings up to its end all stored "
                f"{_fmt_s(fault['drain_s'])} after it (lost {fault['lost']:,}, "
                f"pending {fault['pending']:,})"
            )
    if k.upload_windows_skipped:
        lines.append(
            f"  upload windows skipped (previous upload still retrying) "
            f"{k.upload_windows_skipped:,}"
        )
    fc = results.forecasts
    if fc.get("scored"):
        skill = fc["skill"]
        lines.append(
            f"  forecasts            {fc['issued']:,} issued ({', '.join(fc['methods'])}), "
            f"realised MAE {fc['mae_wh']:,.0f} Wh/h vs persistence "
            f"{fc['mae_persistence_wh']:,.0f} Wh/h"
            + (f", skill {skill:.2f}" if skill is not None else "")
        )
    for text in results.recommendations[:3]:
        lines.append(f"  recommend: {text}")
    for rejection in results.rejections[:5]:
        lines.append(
            f"  rejected {rejection.meter_id} #{rejection.sequence_no}: {rejection.reason}"
        )
    if results.store_path:
        lines += ["", f"  store: {results.store_path}"]
    if "timeseries" in results.extra:
        lines.append(f"  time series: {results.extra['timeseries']}")
    for plot in results.extra.get("plots", []):
        lines.append(f"  plot: {plot}")
    return "\n".join(lines)
