"""``run(scenario, seed) -> Results``: one simulation, start to finish."""

from __future__ import annotations

import dataclasses
import math
import platform
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.analytics import SiteMeta
from pipeline.auth import Keyring
from pipeline.service import Pipeline
from twin.accounting.forecasts import score_forecasts
from twin.accounting.ledger import LedgerError
from twin.accounting.results import Kpis, LatencyStats, Results
from twin.accounting.scoring import score_detections
from twin.errors import ScenarioError
from twin.outputs.progress import ProgressBar
from twin.outputs.timeseries import timeseries_table, write_csv, write_records
from twin.rng import component_rng
from twin.scenario.loader import Scenario
from twin.sil.service_time import SERVICE_TIME_MODES, load_cost_model
from twin.world.fleet import FleetData, build_fleets
from twin.world.world import World

STORE_NAME = "store.sqlite"


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("imdc-twin", "simpy", "numpy", "numba", "lxml", "pvlib", "windpowerlib"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def scenario_record(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario as plain JSON types (times in s, start as ISO 8601)."""
    data = dataclasses.asdict(scenario)
    data["start"] = scenario.start.isoformat().replace("+00:00", "Z")
    return data


def site_records(fleets: list[FleetData]) -> list[SiteMeta]:
    """The commissioning record of every site, as the MDC's asset registry holds it."""
    sites = []
    for f in fleets:
        for i, meter_id in enumerate(f.meter_ids):
            pv = f.spec.kind == "pv"
            sites.append(
                SiteMeta(
                    site_id=meter_id,
                    kind=f.spec.kind,
                    capacity_w=float(
                        f.params["capacity_kw"][i] * 1000.0 if pv else f.nominal_power_w[i]
                    ),
                    latitude_deg=float(f.latitude_deg[i]),
                    longitude_deg=float(f.longitude_deg[i]),
                    altitude_m=f.altitude_m,
                    tilt_deg=float(f.params["tilt_deg"][i]) if pv else 0.0,
                    azimuth_deg=float(f.params["azimuth_deg"][i]) if pv else 180.0,
                    ac_nameplate_w=float(f.nominal_power_w[i]) if pv else None,
                )
            )
    return sites


def meter_keys(scenario: Scenario, fleets: list[FleetData]) -> dict[str, bytes]:
    """Each meter's 32-byte HMAC-SHA256 key (RFC 2104: a key as long as the hash output),
    drawn from the meter's own stream: the keyring the MDC is provisioned with."""
    return {
        m: component_rng(scenario.seed, f"meter/{m}/hmac-key").bytes(32)
        for f in fleets
        for m in f.meter_ids
    }


def _fresh_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def run(
    scenario: Scenario,
    seed: int | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
    audit_every_s: float | None = None,
    plots: bool = False,
) -> Results:
    """Simulate ``scenario``; the pipeline's store goes to ``out_dir`` (a temporary folder
    when None). ``audit_every_s`` re-checks the ledger's balance during the run; ``plots``
    writes ``overview.png`` into ``out_dir``."""
    seed = scenario.seed if seed is None else seed
    if seed < 0:
        raise ScenarioError("--seed", seed, "an integer >= 0")
    if seed != scenario.seed:
        scenario = dataclasses.replace(scenario, seed=seed)
    t0 = time.perf_counter()
    cost_model = load_cost_model(scenario.pipeline.cost_model)
    service_time = SERVICE_TIME_MODES[scenario.pipeline.service_time](
        cost_model,
        scenario.pipeline.pipeline_sample_rate,
        component_rng(seed, "pipeline/sample"),
    )
    fleets = build_fleets(scenario)
    with tempfile.TemporaryDirectory(prefix="twin-") as tmp:
        folder = Path(out_dir) if out_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        store_path = folder / STORE_NAME
        _fresh_store(store_path)
        keys = meter_keys(scenario, fleets) if scenario.pipeline.authenticate else None
        pipeline = Pipeline(store_path, keyring=Keyring(keys) if keys is not None else None)
        for site in site_records(fleets):
            pipeline.register_site(site)
        bar = ProgressBar(scenario.duration_s) if progress else None
        world = World(scenario, seed, fleets, pipeline, service_time, bar, audit_every_s, keys)
        try:
            world.run()
        finally:
            if bar is not None:
                bar.close()
        stored_rows = pipeline.store.count_readings()
        recommendations = pipeline.recommendations(world.epoch_s + int(scenario.duration_s))
        pipeline.close()
    snapshot = world.ledger.audit(scenario.duration_s)
    # the database also holds readings whose (simulated) commit ends after the horizon: the
    # ledger counts those as in flight, but they are in its STORED state already
    expected_rows = int(np.dot(world.n_channels, world.ledger.stored_per_meter()))
    modelled = world.counters.rows_modelled  # model mode: counted as stored, never written
    if not stored_rows <= expected_rows <= stored_rows + modelled or (
        not modelled and stored_rows != expected_rows
    ):
        raise LedgerError(
            f"store holds {stored_rows} rows, the ledger says {world.ledger.stored} readings "
            f"({expected_rows} rows over their channels, {modelled} of them modelled)"
        )
    wall_time_s = time.perf_counter() - t0
    extra: dict[str, Any] = {}
    if out_dir is not None:
        columns, rows = timeseries_table(
            fleets, world.ledger, world.samples, world.sample_columns(), scenario.duration_s
        )
        extra["timeseries"] = str(write_csv(Path(out_dir) / "timeseries.csv", columns, rows))
        truth = [r for f in fleets for r in f.ground_truth]
        if truth:
            extra["ground_truth"] = str(write_records(Path(out_dir) / "ground_truth.csv", truth))
    if plots and out_dir is not None:
        from twin.outputs.plots import overview_png

        png = overview_png(
            Path(out_dir) / "overview.png", fleets, world.ledger, scenario.duration_s
        )
        extra["plots"] = [str(png)]
    counters = world.counters
    kpis = Kpis(
        readings_generated=snapshot.generated,
        readings_stored=snapshot.stored,
        readings_lost=snapshot.lost,
        readings_in_flight=snapshot.in_flight,
        duplicates_discarded=snapshot.duplicates,
        uploads_started=counters.uploads_started,
        uploads_delivered=counters.uploads_delivered,
        uploads_acknowledged=counters.uploads_acknowledged,
        uploads_failed=counters.uploads_failed,
        uploads_rejected=counters.uploads_rejected,
        upload_windows_skipped=counters.windows_skipped_busy,
        cellular_attempts=sum(c.attempts for c in world.net.all_cells()),
        cellular_failed_attempts=sum(c.failed_attempts for c in world.net.all_cells()),
        throughput_readings_per_s=snapshot.stored / scenario.duration_s,
        latency_s=LatencyStats.of(world.ledger.latencies_s(scenario.duration_s)),
        utilization={
            s.name: s.busy_fraction(scenario.duration_s)
            for mdc in world.mdcs
            for s in mdc.pool.servers
        },
        mdc_queue_peak=max(mdc.pool.queue_peak for mdc in world.mdcs),
        energy_mdc_kwh={
            m.name: m.pool.facility_energy_j(scenario.duration_s) / 3.6e6 for m in world.mdcs
        },
        hop_latency_s={
            hop: {k: (None if math.isnan(v) else v) for k, v in stats.items()}
            for hop, stats in world.net.hops.percentiles().items()
        },
        alerts=len(world.detections),
        energy_generated_kwh={
            f.spec.name: float(np.sum(f.power_w) * f.spec.meter.sample_s / 3.6e6) for f in fleets
        },
        energy_consumed_kwh={
            f.spec.name: float(np.sum(f.load_w) * f.spec.meter.sample_s / 3.6e6)
            for f in fleets
            if f.load_w is not None
        },
    )
    ledger = {
        "balanced": snapshot.balanced,
        "generated": snapshot.generated,
        "stored": snapshot.stored,
        "lost": snapshot.lost,
        "in_flight": snapshot.in_flight,
        "duplicates": snapshot.duplicates,
        "store_rows": stored_rows,
        "committing_at_end": world.ledger.stored - snapshot.stored,
    }
    return Results(
        scenario=scenario_record(scenario),
        seed=seed,
        kpis=kpis,
        ledger=ledger,
        rejections=counters.rejections,
        faults=world.fault_log,
        mdcs=[m.report(scenario.duration_s) for m in world.mdcs],
        network=world.net.stats()
        | {
            "upload_bytes_max": counters.upload_bytes_max,
            "attempts_unroutable": counters.attempts_unroutable,
            "uploads_lost_at_mdc": counters.uploads_lost_at_mdc,
        },
        ground_truth=[r for f in fleets for r in f.ground_truth],
        detections=world.detections,
        analytics=[
            dataclasses.asdict(s)
            for s in score_detections([r for f in fleets for r in f.ground_truth], world.detections)
        ],
        recommendations=recommendations,
        forecasts=score_forecasts(world.forecasts, fleets, world.epoch_s),
        service_time={
            "mode": scenario.pipeline.service_time,
            "cost_model": scenario.pipeline.cost_model,
            "calibrated_on": cost_model.machine,
            "pipeline_sample_rate": scenario.pipeline.pipeline_sample_rate,
            "uploads_run": service_time.uploads_run,
            "uploads_modelled": service_time.uploads_modelled,
            "rows_modelled": modelled,
        },
        software=software_versions(),
        wall_time_s=wall_time_s,
        store_path=str(store_path) if out_dir is not None else None,
        extra=extra,
    )
